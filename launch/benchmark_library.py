"""The library's own speed: `pretrained.embed` throughput and the cost of an eager ask/tell step.

  python launch/benchmark_library.py                      # NB201 + NB101 embeds, BO and RL steps
  python launch/benchmark_library.py --parts ask_tell --steps_at 100

Parts (`--parts`):
  embed     a shipped encoder's `embed` on every cell of its space: the 15,625
            NB201 cells from their arch strings and as arrays, the 423,624 NB101
            cells as arrays (the enumeration is cached; the first run builds it).
            cells/s after a warm-up call (the compile), best of `--repeats`.
  ask_tell  arch2vec-BO and -RL over the 15,625 NB201 cells (the shipped
            encoder's embeddings, values from the CIFAR-10 table as the
            "evaluation"), one cell per ask, driven from a Python loop with the
            jitted ask/tell (`ask_tell.jit_search`): the wall time of ask + tell
            per step over the `--window` steps before `--steps_at` told cells,
            against the same ask + table lookup + tell fused in one jitted call
            from the same states. The difference is the Python / dispatch /
            host-transfer overhead of driving the search eagerly.
Prints a table and writes `--out` (JSON, atomic) with the command and the machine.
"""

import sys
import time

import jax
import numpy as np
from absl import flags

from arch2vec_jax import cli, fileio, machine, pretrained
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import ask_tell, experiment, runner
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.spaces import nb101, nb201

FLAGS = flags.FLAGS
flags.DEFINE_list("parts", ["embed", "ask_tell"], "embed, ask_tell")
flags.DEFINE_integer("repeats", 3, "Timed repeats of each embed (best reported).")
flags.DEFINE_string(
  "table", csv_data.SHARED_CSV["nb201"], "The NB201 benchmark table (ask_tell part)."
)
flags.DEFINE_integer("steps_at", 100, "Told cells around which the ask/tell step is timed.")
flags.DEFINE_integer("window", 10, "Steps timed (the last `window` before --steps_at).")
flags.DEFINE_string("out", "results/benchmarks/library-cpu.json", "Where the JSON goes.")


def _best_time(fn, repeats):
  fn()  # compile / warm-up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)


def bench_embed(repeats: int) -> dict:
  """cells/s of the shipped encoders' `embed` over whole spaces."""
  out = {}
  enc201 = pretrained.load("nb201")
  strings = nb201.arch_strings()
  adj, ops = nb201.all_cells()
  enc101 = pretrained.load("nb101")
  adj101, ops101 = nb101.SPACE.cells()
  for name, enc, cells, n in (
    ("nb201_arch_strings", enc201, strings, len(strings)),
    ("nb201_arrays", enc201, (adj, ops), len(ops)),
    ("nb101_arrays", enc101, (adj101, ops101), len(ops101)),
  ):
    s = _best_time(lambda enc=enc, cells=cells: enc.embed(cells), repeats)
    out[name] = {"cells": int(n), "seconds": s, "cells_per_s": n / s}
    print(f"  embed {name}: {n:,} cells in {s:.2f} s = {n / s:,.0f} cells/s", flush=True)
  return out


def bench_ask_tell(benchmark: str, steps_at: int, window: int) -> dict:
  """ms per eager ask + tell step (BO, RL) at `steps_at` told cells vs the compiled search per query."""
  enc = pretrained.load("nb201")
  emb = enc.embed(nb201.arch_strings())
  path = fileio.cache_dir() + "/benchmark_library_nb201_embeddings.npz"
  fileio.atomic_save_npz(
    path, embeddings=emb, ids=np.asarray(nb201.arch_strings()), index=np.arange(len(emb))
  )
  problem = experiment.load_problem("nb201", benchmark, "cifar10", path, methods=("rl", "bo"))
  env, budget = problem.env, env_lib.Budget(steps_at)
  reward = np.asarray(env.reward)
  cand = ask_tell.candidates_from_env(env)
  out = {}
  reward_dev = env.reward
  for method in ("rl", "bo"):
    config = runner.default_config(method, "nb201")
    raw = runner.make_ask_tell(method, config, 1, budget)
    search = ask_tell.jit_search(raw)
    state, step_s, states = search.init(jax.random.PRNGKey(0), cand), [], []
    for _ in range(steps_at):
      states.append(state)
      start = time.perf_counter()
      cells, state = search.ask(state)
      state = search.tell(state, cells, reward[np.asarray(cells)])  # np.asarray: waits for the ask
      jax.block_until_ready(state)
      step_s.append(time.perf_counter() - start)
    eager = float(np.mean(step_s[-window:]))

    @jax.jit
    def fused(state, raw=raw):  # the same ask + table lookup + tell as one compiled call
      cells, state = raw.ask(state)
      return raw.tell(state, cells, reward_dev[cells])

    compute = float(
      np.mean(
        [_best_time(lambda s=s: jax.block_until_ready(fused(s)), 2) for s in states[-window:]]
      )
    )
    out[method] = {
      "told_cells": steps_at,
      "eager_step_ms": 1e3 * eager,
      "compiled_step_ms": 1e3 * compute,
      "overhead_ms": 1e3 * (eager - compute),
      "first_step_s_with_compile": step_s[0],
    }
    print(
      f"  {method}: eager ask+tell {1e3 * eager:.2f} ms per step at {steps_at - window}-{steps_at} told cells, "
      f"the same step compiled {1e3 * compute:.2f} ms: overhead {1e3 * (eager - compute):.2f} ms "
      f"(first step with its compile {step_s[0]:.1f} s)",
      flush=True,
    )
  return out


def main(argv):
  del argv
  result = {
    "command": " ".join(["python", "launch/benchmark_library.py"] + sys.argv[1:]),
    "machine": machine.machine_info(),
  }
  if "embed" in FLAGS.parts:
    result["embed"] = bench_embed(FLAGS.repeats)
  if "ask_tell" in FLAGS.parts:
    result["ask_tell"] = bench_ask_tell(FLAGS.table, FLAGS.steps_at, FLAGS.window)
  fileio.atomic_write_json(FLAGS.out, result)
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  cli.run(main)
