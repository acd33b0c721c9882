"""All seeds of a search in one compiled call, with the compile and run seconds measured apart.

trace, times = timed_run_seeds(runner.make_search("rs", None, env, budget), keys)
times  # {'compile_s', 'run_s', 'devices'}
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import jax

from arch2vec_jax import parallel
from arch2vec_jax.search import runner

__all__ = ["compile_seeds", "timed_run_seeds"]


def timed_run_seeds(
  run: Callable[[jax.Array], Any], keys: jax.Array
) -> tuple[Any, dict[str, float]]:
  """All seeds in one compiled call, with the compile and run seconds measured apart.

  The program of `runner.run_seeds` (`jit(vmap(run))`, the seeds sharded over
  the devices when there are several) is compiled ahead of time
  (`compile_seeds`), then called once.

  Returns:
    (the stacked outputs as host arrays, {'compile_s', 'run_s', 'devices'}).
  """
  compiled, placed, num = compile_seeds(run, keys)
  t1 = time.perf_counter()
  out = jax.block_until_ready(compiled(placed))
  t2 = time.perf_counter()
  times = {"compile_s": compiled.compile_s, "run_s": t2 - t1, "devices": jax.device_count()}
  return jax.tree.map(lambda a: a[:num], parallel.to_host(out)), times


class _Compiled:
  """A compiled batched run and the seconds its compilation took."""

  def __init__(self, fn, compile_s: float):
    self.fn, self.compile_s = fn, compile_s

  def __call__(self, keys):
    return self.fn(keys)


def compile_seeds(
  run: Callable[[jax.Array], Any], keys: jax.Array, devices: Sequence[jax.Device] | None = None
) -> tuple[_Compiled, jax.Array, int]:
  """`runner.run_seeds`'s program (`runner.seeds_program`) compiled ahead of time for these keys.

  Returns:
    (the compiled program with its `compile_s`, the keys placed as it expects
    (sharded over a 'seeds' mesh and padded to a multiple of the device count
    when there are several devices), the number of real seeds).
  """
  t0 = time.perf_counter()
  fn, keys, num = runner.seeds_program(run, keys, devices)
  compiled = fn.lower(keys).compile()
  return _Compiled(compiled, time.perf_counter() - t0), keys, num
