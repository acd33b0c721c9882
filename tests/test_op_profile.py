"""op_profile: HLO operations grouped by kind, XLA's per-operation trace summed per kind (the training
profile of `launch/benchmark.py --parts training,profile`: tests/test_bench.py)."""

import jax
import jax.numpy as jnp
import pytest

from arch2vec_jax import op_profile

# A hand-written optimised module: a tuple-shaped loop (a scatter XLA expanded, named by its
# metadata), a fused dot, an elementwise fusion, a call XLA:CPU runs as one kernel, a copy.
HLO = """HloModule jit_f, is_scheduled=true

%fused_dot (param_0: f32[10,16], param_1: f32[16,128]) -> f32[10,128] {
  %param_0 = f32[10,16]{1,0} parameter(0)
  %param_1 = f32[16,128]{1,0} parameter(1)
  ROOT %dot.1 = f32[10,128]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_tanh (param_0.1: f32[10,128]) -> f32[10,128] {
  %param_0.1 = f32[10,128]{1,0} parameter(0)
  ROOT %tanh.1 = f32[10,128]{1,0} tanh(%param_0.1)
}

%while_body (p: (s32[], f32[8,128])) -> (s32[], f32[8,128]) {
  %p = (s32[], f32[8,128]{1,0}) parameter(0)
  %g = f32[8,128]{1,0} get-tuple-element(%p), index=1
  %i = s32[] get-tuple-element(%p), index=0
  %update = f32[8,128]{1,0} add(%g, %g)
  ROOT %t = (s32[], f32[8,128]{1,0}) tuple(%i, %update)
}

%while_cond (q: (s32[], f32[8,128])) -> pred[] {
  %q = (s32[], f32[8,128]{1,0}) parameter(0)
  %j = s32[] get-tuple-element(%q), index=0
  ROOT %lt = pred[] compare(%j, %j), direction=LT
}

ENTRY %main (x: f32[10,16], w: f32[16,128], s: (s32[], f32[8,128])) -> f32[10,128] {
  %x = f32[10,16]{1,0} parameter(0)
  %w = f32[16,128]{1,0} parameter(1)
  %s = (s32[], f32[8,128]{1,0}) parameter(2)
  %loop = (s32[], /*index=1*/f32[8,128]{1,0}) while(%s), condition=%while_cond, body=%while_body, metadata={op_name="jit(f)/scatter-add" stack_frame_id=2}
  %mm = f32[10,128]{1,0} fusion(%x, %w), kind=kCustom, calls=%fused_dot, metadata={op_name="jit(f)/dot_general"}
  %act = f32[10,128]{1,0} fusion(%mm), kind=kLoop, calls=%fused_tanh, metadata={op_name="jit(f)/tanh"}
  %small = f32[10,128]{1,0} call(%act), to_apply=%fused_tanh, frontend_attributes={xla_cpu_small_call="true"}, metadata={op_name="jit(f)/sort"}
  ROOT %out = f32[10,128]{1,0} copy(%small)
}
"""


def test_hlo_ops_categories_and_matmul_flops():
  ops = op_profile.hlo_ops(HLO)
  assert ops["mm"] == {"opcode": "fusion", "category": "matmul", "matmul_flops": 2 * 10 * 16 * 128}
  assert ops["act"]["category"] == "elementwise" and ops["act"]["matmul_flops"] == 0
  assert ops["out"]["category"] == "copy"
  assert ops["small"]["category"] == "sort"  # one kernel, named by the operation it came from
  assert ops["loop"]["category"] == "control"  # spans its body: left out of the sums
  # The expanded scatter's body and condition are the scatter's time.
  assert ops["update"]["category"] == "scatter" and ops["lt"]["category"] == "scatter"
  # Operations inside fused computations are not operations of their own.
  assert "dot.1" not in ops and "tanh.1" not in ops


def test_profile_sums_the_programs_operations():
  def f(a, b, idx):
    looped = jax.lax.fori_loop(0, 3, lambda i, c: jnp.tanh(c @ b), a)
    return looped, jax.ops.segment_sum(a, idx, 8)

  a, b = jnp.ones((64, 32)), jnp.ones((32, 32)) / 32
  idx = jnp.arange(64) % 8
  compiled = jax.jit(f).lower(a, b, idx).compile()
  p = op_profile.profile(compiled, a, b, idx, calls=3)
  cats = p["categories"]
  assert set(cats) == set(op_profile.CATEGORIES)
  assert cats["matmul"]["us_per_call"] > 0 and cats["scatter"]["us_per_call"] > 0
  assert sum(c["share"] for c in cats.values()) == pytest.approx(1.0)
  assert sum(c["us_per_call"] for c in cats.values()) == pytest.approx(p["op_us_per_call"])
  # Each of the loop's 3 products counted once per iteration.
  assert p["matmul_flops_per_call"] == 3 * 2 * 64 * 32 * 32
  assert p["matmul_gflops"] > 0 and cats["matmul"]["ops_per_call"] >= 3
  assert p["slowest"] and all(s["category"] in op_profile.CATEGORIES for s in p["slowest"])
