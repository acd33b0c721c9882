"""What the machine can do and what a program asks of it: measured fp32 matmul rates, XLA's FLOP counts.

The benchmarks (`launch/benchmark.py`, `launch/benchmark_search.py`) state
every speed also as achieved GFLOP/s and as a fraction of the machine's own
matmul rate, measured in the same run:

  peak = perf.matmul_rate(1024, 1024, 1024)            # {"gflops": ..., "seconds": ...}
  flops = perf.compiled_flops(step, state, batch)      # XLA's count for one call
  fraction = flops * steps_per_s / 1e9 / peak["gflops"]

`compiled_flops` is XLA's `cost_analysis()` of the compiled program. XLA
counts the body of a loop (`scan`, `fori_loop`, `while_loop`, `lax.map`)
once, so count a loop's body and multiply by its trip count yourself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["HOT_SHAPES", "compiled_flops", "machine_rates", "matmul_rate", "rate", "time_compiled"]


def compiled_flops(fn: Callable, *args: Any) -> float:
  """XLA's FLOP count of one call of `jit(fn)(*args)` (loop bodies counted once).

  Raises:
    ValueError: if the backend gives no count.
  """
  analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
  if isinstance(analysis, (list, tuple)):  # older JAX: one dict per program
    analysis = analysis[0] if analysis else None
  if not analysis or "flops" not in analysis:
    raise ValueError(f"the {jax.default_backend()} backend reports no FLOP count")
  return float(analysis["flops"])


def time_compiled(compiled: Callable, *args: Any, min_time: float = 0.2, repeats: int = 3) -> float:
  """Best wall time (s) of `compiled(*args)` over `repeats` timed calls, each repeated to last >= `min_time`."""
  jax.block_until_ready(compiled(*args))  # warm-up
  best = float("inf")
  for _ in range(repeats):
    calls, t0 = 0, time.perf_counter()
    while True:
      jax.block_until_ready(compiled(*args))
      calls += 1
      elapsed = time.perf_counter() - t0
      if elapsed >= min_time:
        break
    best = min(best, elapsed / calls)
  return best


def matmul_rate(
  m: int, k: int, n: int, batch: int | None = None, inner: int | None = None, min_time: float = 0.2
) -> dict[str, Any]:
  """The measured fp32 rate of [batch,] m x k @ k x n matmuls inside one compiled loop.

  The loop runs `inner` dependent products (each input scaled by the step
  index, so XLA cannot hoist or fuse them away; those m*k multiplies are not
  counted) so that dispatch costs nothing; `inner` defaults to enough products
  for about 1e8 FLOP per call.

  Returns:
    {"shape", "flops_per_call", "seconds", "gflops"}.
  """
  flops_one = 2.0 * m * k * n * (batch or 1)
  inner = int(inner or max(1, min(100_000, round(1e8 / flops_one))))
  shape_a = (m, k) if batch is None else (batch, m, k)
  shape_b = (k, n) if batch is None else (batch, k, n)
  a = jax.random.normal(jax.random.PRNGKey(0), shape_a, jnp.float32)
  b = jax.random.normal(jax.random.PRNGKey(1), shape_b, jnp.float32) / jnp.sqrt(k)
  scale = 1.0 + jnp.arange(inner, dtype=jnp.float32) * 1e-7

  def chain(a, b, scale):
    out = jnp.zeros(shape_a[:-1] + (n,), jnp.float32)
    return jax.lax.fori_loop(0, inner, lambda i, acc: acc + jnp.matmul(a * scale[i], b), out)

  compiled = jax.jit(chain).lower(a, b, scale).compile()
  seconds = time_compiled(compiled, a, b, scale, min_time=min_time)
  return {
    "shape": {"batch": batch, "m": m, "k": k, "n": n},
    "flops_per_call": flops_one * inner,
    "seconds": seconds,
    "gflops": flops_one * inner / seconds / 1e9,
  }


# The shapes the hot loops multiply (m, k, n): the GIN MLP on a batch of B NB201
# cells (B x 8 nodes, 128 -> 128), the DNGO network on a minibatch (10 x 16 -> 128)
# and the acquisition sweep's feature layer on a chunk of cells (512 x 16 -> 128).
HOT_SHAPES = {
  "gin_mlp_batch32": (32 * 8, 128, 128),
  "gin_mlp_batch256": (256 * 8, 128, 128),
  "dngo_minibatch": (10, 16, 128),
  "bo_sweep_chunk": (512, 16, 128),
}


def machine_rates(min_time: float = 0.2) -> dict[str, Any]:
  """The machine's measured fp32 matmul rates (GFLOP/s): a 1024^3 GEMM (the reference "peak") and `HOT_SHAPES`."""
  out = {"gemm_1024": matmul_rate(1024, 1024, 1024, min_time=min_time)}
  for name, (m, k, n) in HOT_SHAPES.items():
    out[name] = matmul_rate(m, k, n, min_time=min_time)
  out["peak_gflops"] = out["gemm_1024"]["gflops"]
  return out


def rate(flops: float, seconds: float, peak_gflops: float) -> dict[str, float]:
  """{"gflops": achieved GFLOP/s, "fraction_of_peak": of `peak_gflops`} for `flops` done in `seconds`."""
  gflops = flops / seconds / 1e9
  return {"gflops": gflops, "fraction_of_peak": gflops / peak_gflops}
