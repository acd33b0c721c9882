"""Search speed on whatever backend JAX sees: all seeds in one compiled call against a Python loop over seeds.

  python launch/benchmark_search.py                     # NB201 CIFAR-10, rl,bo,rs,re, 500 seeds x 100 queries
  python launch/benchmark_search.py --method rs,re --cpu_devices 2
  python launch/benchmark_search.py --method gd --out results/benchmarks/search-cpu-gd.json  # arch2vec-GD

For each method: the compile time of the batched program (`jit(vmap(run))`,
compiled ahead of time), the wall time of all `--seeds` seeds in one call, and
the same seeds as a Python loop of the single-seed program (`jit(run)`, as
`runner.run_seeds_loop`; its compile timed apart). A loop that passes
`--max_loop_s` stops there and its time is extrapolated to all seeds
(`loop.extrapolated` in the JSON). For BO also the time of its parts at a few
data sizes (network fit, BLR, acquisition sweep; `bo_parts`), to show where
the time goes, and its FLOPs per seed (`dngo.flops_per_seed`) as GFLOP/s and
as a fraction of the machine's 1024^3 GEMM rate measured in the same run
(`perf.machine_rates`); `floor_s` = the FLOPs at that rate. The machine's load: the load average and a calibration probe (a
fixed NumPy sort timed 40 times; slowdown = mean / best, about 1 when idle)
before and after. Writes `results/benchmarks/search-<backend>.json` (atomic)
with the command.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from arch2vec_jax import cli, fileio, perf
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import blr, dngo, experiment, runner
from arch2vec_jax.search import env as env_lib

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "benchmark", csv_data.SHARED_CSV["nb201"], "NB201 source (CSV, .npz, .pth ...)."
)
flags.DEFINE_string("dataset", "cifar10", "NB201 dataset.")
flags.DEFINE_string(
  "embeddings",
  "nb201",
  "embeddings.npz from launch/pretrain.py, or an encoder (default: the shipped nb201 one).",
)
flags.DEFINE_string("method", "rl,bo,rs,re", "Comma list of methods (rl, bo, rs, re, gd).")
flags.DEFINE_integer(
  "seeds", 500, "Seeds in the batched call (and in the loop, unless it is cut short)."
)
flags.DEFINE_integer("budget", 100, "Queries per search.")
flags.DEFINE_float(
  "max_loop_s", 120.0, "Stop a Python loop over seeds after this many seconds and extrapolate."
)
flags.DEFINE_bool("bo_parts", True, "Also time the parts of one BO iteration.")
cli.define_device_flags()  # --cpu_devices N: the seeds sharded over the CPU split into N devices
flags.DEFINE_string("out", None, "Output JSON (default results/benchmarks/search-<backend>.json).")


def _calibration() -> dict:
  """A fixed NumPy workload timed 40 times: best / median / mean ms and slowdown = mean / best."""
  data = np.random.default_rng(0).random(200_000)
  times = []
  for _ in range(40):
    t0 = time.perf_counter()
    np.sort(data)
    times.append(time.perf_counter() - t0)
  best, mean = min(times), float(np.mean(times))
  return {
    "workload": "np.sort of 200,000 float64",
    "best_ms": 1e3 * best,
    "median_ms": 1e3 * float(np.median(times)),
    "mean_ms": 1e3 * mean,
    "slowdown": mean / best,
  }


def _loop(run, keys, max_s):
  """The seeds one at a time with the single-seed program: (compile s, seconds, seeds done, stacked traces)."""
  t0 = time.perf_counter()
  fn = jax.jit(run).lower(keys[0]).compile()
  compile_s = time.perf_counter() - t0
  outs = []
  t0 = time.perf_counter()
  for k in keys:
    outs.append(jax.block_until_ready(fn(k)))
    if time.perf_counter() - t0 > max_s:
      break
  seconds = time.perf_counter() - t0
  return compile_s, seconds, len(outs), jax.tree.map(lambda *a: np.stack(a), *outs)


def _best_of(fn, args_list, reps=3):
  """Min over `reps` passes of the mean seconds per call over `args_list` (each call on fresh inputs)."""
  jax.block_until_ready(fn(*args_list[0]))
  best = np.inf
  for _ in range(reps):
    t0 = time.perf_counter()
    for a in args_list:
      jax.block_until_ready(fn(*a))
    best = min(best, (time.perf_counter() - t0) / len(args_list))
  return best


def bo_parts(
  env: env_lib.SearchEnv, config: dngo.BOConfig, budget: int, sizes=(16, 58, 99)
) -> dict:
  """Seconds per call of the parts of one BO iteration (one seed) with n queried cells, and the implied seed time.

  Parts: the network fit (`fit_mlp`, 100 epochs of floor(n / 10) Adam steps),
  the BLR (eigendecomposition and evidence grid, `blr.fit`) and the
  acquisition sweep over every cell (`acquire`). Per seed: the parts summed
  over the iterations, interpolated linearly in n.
  """
  n_cells, dim = env.embeddings.shape
  rng = np.random.default_rng(0)
  rows = budget
  chunk = min(config.predict_chunk, n_cells)
  pad = -(-n_cells // chunk) * chunk - n_cells
  chunks = jnp.pad(env.embeddings, ((0, pad), (0, 0))).reshape(-1, chunk, dim)
  net = dngo.init_mlp(jax.random.PRNGKey(0), dim, config.hidden_dim)
  fit_mlp = jax.jit(
    lambda k, x, y, m, n: dngo.fit_mlp(
      k, net, x, y, m, n, config.num_epochs, config.batch_size, config.learning_rate
    )
  )
  fit_blr = jax.jit(lambda phi, y, m: blr.fit(phi, y, m))
  surrogate = jax.jit(lambda k, x, y, m, n: dngo.fit_surrogate(k, config, x, y, m, n, net)[0])
  acquire = jax.jit(
    lambda s, v, b: dngo.acquire(s, env.embeddings, v, b, config.top_k, config, chunks)
  )
  out = {}
  for n in sizes:
    cases = []
    for r in range(4):
      cells = rng.choice(n_cells, rows, replace=False)
      x, y = env.embeddings[cells], env.reward[cells]
      mask = jnp.arange(rows) < n
      visited = jnp.zeros(n_cells, bool).at[cells[:n]].set(True)
      cases.append((jax.random.PRNGKey(r), x, y, mask, jnp.int32(n), visited))
    surs = [surrogate(*c[:5]) for c in cases]
    phis = [jnp.tanh(c[1] @ s.w + s.b) for c, s in zip(cases, surs)]
    out[str(n)] = {
      "fit_mlp_s": _best_of(fit_mlp, [c[:5] for c in cases]),
      "blr_fit_s": _best_of(fit_blr, [(p, c[2], c[3]) for p, c in zip(phis, cases)]),
      "acquire_s": _best_of(acquire, [(s, c[5], jnp.max(c[2])) for s, c in zip(surs, cases)]),
      "adam_steps": config.num_epochs * max(n // max(config.batch_size, 1), 1)
      if config.batch_size
      else config.num_epochs,
    }
  # Per seed: every iteration's n from num_init to budget - 1, parts interpolated in n.
  ns = np.arange(config.num_init, budget, config.top_k)
  per_seed = {}
  for part in ("fit_mlp_s", "blr_fit_s", "acquire_s"):
    per_seed[part] = float(np.interp(ns, sizes, [out[str(n)][part] for n in sizes]).sum())
  per_seed["total_s"] = sum(per_seed.values())
  return {
    "per_call": out,
    "per_seed_estimate": per_seed,
    "iterations": len(ns),
    "note": "min over 3 passes of 4 fresh inputs each; single seed, one call per part",
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    cli.setup_devices()
    methods = experiment.parse_methods(FLAGS.method)
    problem = experiment.load_problem(
      "nb201", FLAGS.benchmark, FLAGS.dataset, FLAGS.embeddings, methods
    )
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from e
  budget = env_lib.Budget(FLAGS.budget)
  dev = jax.devices()[0]
  result = {
    "command": cli.command_line("launch/benchmark_search.py"),
    "machine": cli.machine_info(),
    "dataset": problem.dataset,
    "cells": len(problem.table),
    "seeds": FLAGS.seeds,
    "queries": FLAGS.budget,
    "load_average_at_start": list(os.getloadavg()),
    "calibration_start": _calibration(),
    "matmul_rates": perf.machine_rates(),
    "methods": {},
  }
  peak = result["matmul_rates"]["peak_gflops"]
  print(
    f"backend {result['machine']['backend']} ({dev.device_kind}, {jax.device_count()} devices), "
    f"NB201 {problem.dataset}, {FLAGS.seeds} seeds x {FLAGS.budget} queries; load average {result['load_average_at_start']}"
  )
  keys = jax.random.split(jax.random.PRNGKey(0), FLAGS.seeds)
  for m in methods:
    config = runner.default_config(m, "nb201")
    run = runner.make_search(m, config, problem.env, budget, problem.neighbours)
    compiled, placed, num = experiment.compile_seeds(run, keys)
    t0 = time.perf_counter()
    batched = jax.block_until_ready(compiled(placed))
    batched_s = time.perf_counter() - t0
    batched = jax.tree.map(lambda a, n=num: np.asarray(a)[:n], batched)
    loop_compile_s, loop_s, done, looped = _loop(run, keys, FLAGS.max_loop_s)
    same = all(
      np.allclose(np.asarray(a)[:done], b, rtol=1e-5, atol=1e-6, equal_nan=True)
      for a, b in zip(batched, looped)
    )
    row = {
      "compile_s": compiled.compile_s,
      "batched_s": batched_s,
      "batched_per_seed_ms": 1e3 * batched_s / FLAGS.seeds,
      "loop": {
        "compile_s": loop_compile_s,
        "seeds_run": done,
        "seconds": loop_s,
        "seconds_for_all_seeds": loop_s * FLAGS.seeds / done,
        "extrapolated": done < FLAGS.seeds,
      },
      "speedup_batched_vs_loop": loop_s * FLAGS.seeds / done / batched_s,
      "loop_equals_batched": bool(same),
      "final_test_mean": float(100 * batched.best_test[:, -1].mean()),
      "load_average": list(os.getloadavg()),
    }
    if m == "bo":
      row["flops_per_seed"] = dngo.flops_per_seed(config, problem.env, budget)
      row["batched_rate"] = perf.rate(row["flops_per_seed"]["total"] * FLAGS.seeds, batched_s, peak)
      row["floor_s"] = row["flops_per_seed"]["total"] * FLAGS.seeds / (peak * 1e9)
      print(
        f"  bo: {row['flops_per_seed']['total'] / 1e9:.1f} GFLOP per seed; {row['batched_rate']['gflops']:.1f} "
        f"GFLOP/s = {100 * row['batched_rate']['fraction_of_peak']:.0f}% of the {peak:.1f} GFLOP/s GEMM; "
        f"floor {row['floor_s']:.0f}s",
        flush=True,
      )
    result["methods"][m] = row
    loop_note = f" ({done} seeds run, extrapolated)" if done < FLAGS.seeds else ""
    print(
      f"  {m}: compile {row['compile_s']:.1f}s, {FLAGS.seeds} seeds in one call {batched_s:.2f}s, Python loop "
      f"{row['loop']['seconds_for_all_seeds']:.2f}s{loop_note} (compile {loop_compile_s:.1f}s); "
      f"loop == batched: {same}; load {row['load_average'][0]:.2f}",
      flush=True,
    )
    if m == "bo" and FLAGS.bo_parts:
      result["bo_parts"] = bo_parts(problem.env, config, FLAGS.budget)
      est = result["bo_parts"]["per_seed_estimate"]
      print("  bo parts per seed (s): " + ", ".join(f"{k} {v:.3f}" for k, v in est.items()))
  result["load_average_at_end"] = list(os.getloadavg())
  result["calibration_end"] = _calibration()
  out = FLAGS.out or os.path.join("results", "benchmarks", f"search-{jax.default_backend()}.json")
  fileio.atomic_write_json(out, result)
  print(
    f"calibration slowdown start {result['calibration_start']['slowdown']:.1f}, end "
    f"{result['calibration_end']['slowdown']:.1f}; wrote {out}"
  )


if __name__ == "__main__":
  cli.run(main)
