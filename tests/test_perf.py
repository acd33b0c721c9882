"""perf: XLA's FLOP counts and measured matmul rates; dngo.flops_per_seed composes them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import perf
from arch2vec_jax.search import dngo
from arch2vec_jax.search import env as env_lib


def test_compiled_flops_of_a_matmul_is_2mkn():
  a, b = jnp.ones((64, 16)), jnp.ones((16, 32))
  assert perf.compiled_flops(jnp.matmul, a, b) == 2 * 64 * 16 * 32
  # Abstract shapes are enough.
  spec = (
    jax.ShapeDtypeStruct((8, 64, 16), jnp.float32),
    jax.ShapeDtypeStruct((8, 16, 32), jnp.float32),
  )
  assert perf.compiled_flops(jnp.matmul, *spec) == 8 * 2 * 64 * 16 * 32


def test_matmul_rate_counts_every_product():
  r = perf.matmul_rate(32, 16, 8, inner=50, min_time=0.01)
  assert r["flops_per_call"] == 50 * 2 * 32 * 16 * 8 and r["seconds"] > 0
  assert r["gflops"] == pytest.approx(r["flops_per_call"] / r["seconds"] / 1e9)
  assert (
    perf.matmul_rate(4, 8, 8, batch=3, inner=10, min_time=0.01)["flops_per_call"]
    == 10 * 3 * 2 * 4 * 8 * 8
  )
  assert perf.rate(2e9, 2.0, 4.0) == {"gflops": 1.0, "fraction_of_peak": 0.25}


def test_bo_flops_per_seed_counts_pybnn_steps():
  rng = np.random.default_rng(0)
  env = env_lib.make_env(
    rng.uniform(0.8, 0.9, 300), embeddings=rng.normal(size=(300, 4)).astype(np.float32)
  )
  config = dngo.BOConfig(
    num_init=5,
    hidden_dim=8,
    num_epochs=3,
    batch_size=4,
    predict_chunk=64,
    num_candidates=8,
    bound_rank=2,
  )
  f = dngo.flops_per_seed(config, env, env_lib.Budget(12))
  sizes = range(5, 12)  # one query per iteration after the 5 random cells
  assert f["fit_steps"] == sum(3 * max(n // 4, 1) for n in sizes)
  assert f["fit"] == f["adam_step"] * f["fit_steps"] > 0
  assert f["sweep"] > 0 and f["blr"] > 0
  assert f["total"] == pytest.approx(f["fit"] + f["blr"] + f["sweep"])
  # The sweep grows with the table (every cell's bound), the fit does not.
  env2 = env_lib.make_env(
    rng.uniform(0.8, 0.9, 600), embeddings=rng.normal(size=(600, 4)).astype(np.float32)
  )
  g = dngo.flops_per_seed(config, env2, env_lib.Budget(12))
  assert g["fit"] == f["fit"] and g["sweep"] > 1.5 * f["sweep"]
