"""Pre-training, embedding and search speed on whatever backend JAX sees (CPU, GPU, TPU).

  python launch/benchmark.py                      # NB201 cells, batches 32 256 1024 4096, RL/BO at 1 8 64 500 seeds
  python launch/benchmark.py --space nb101 --batch_sizes 32,256 --parts training,embedding
  python launch/benchmark.py --cpu_devices 8      # the CPU split into 8 devices: data-parallel training, sharded seeds

Parts (`--parts`, default all):
  training   for each batch size: compile time of the compiled epoch (one
             `lax.scan` over `--cells` cells, data parallel over `--num_devices`
             devices, default all), the best wall time of `--epochs` timed epochs
             -> graphs/s, and the compiled program's memory (XLA's
             `memory_analysis`: arguments + outputs + temporaries) and the
             device's peak bytes where the backend reports them (GPU/TPU).
  metrics    one full pre-training epoch's metric time (held-out reconstruction
             and 10,000 prior decodes judged by the space).
  embedding  embedding extraction of every cell of the space, cells/s.
  search     RL and BO (`--search_methods`) on the NB201 CIFAR-10 table
             (`--search_benchmark`) at `--search_seeds` seeds x `--search_queries`
             queries, every seed count one compiled call (seeds sharded over all
             devices): compile time and seed-queries/s = seeds x queries / run
             time. Embeddings: `--search_embeddings` if it exists, else the ones
             this benchmark just computed (recorded in the JSON).
Every run first measures the machine's fp32 matmul rates (`perf.machine_rates`:
a 1024^3 GEMM, the reference "peak", and the hot loops' small shapes) and
states training and BO also as GFLOP/s (XLA's FLOP count of one training step
per graph; `dngo.flops_per_seed` for BO) and as a fraction of that peak.
Prints a table and writes `results/benchmarks/<backend>-<device>.json` (atomic)
with the command, the machine (instruction set included) and its load average.
"""

import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from arch2vec_jax import cli, fileio, parallel, perf, train
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib

PARTS = ("training", "metrics", "embedding", "search")

FLAGS = flags.FLAGS
flags.DEFINE_enum(
  "space", "nb201", ["nb101", "nb201"], "Cells to train on (NB101: the first --cells cells)."
)
flags.DEFINE_list("batch_sizes", ["32", "256", "1024", "4096"], "Global batch sizes to time.")
flags.DEFINE_integer("cells", 16384, "Training cells per timed epoch.")
flags.DEFINE_integer(
  "epochs", 2, "Timed epochs per batch size (after the compile and a warm-up epoch)."
)
flags.DEFINE_integer(
  "num_devices", None, "Devices the training batch is split over (default: all)."
)
flags.DEFINE_list("parts", list(PARTS), f"Parts to run, of {','.join(PARTS)}.")
flags.DEFINE_list("search_methods", ["rl", "bo"], "Search methods to time (rl, bo, rs, re).")
flags.DEFINE_list("search_seeds", ["1", "8", "64", "500"], "Seed counts to time.")
flags.DEFINE_integer("search_queries", 100, "Queries per search.")
flags.DEFINE_float(
  "search_max_s",
  None,
  "Skip a method's larger seed counts whose run time, extrapolated linearly "
  "from its previous seed count, exceeds this (recorded as skipped with the estimate).",
)
flags.DEFINE_string(
  "search_benchmark", "../shared/data/nb201_accuracies.csv", "NB201 table for the search part."
)
# The space of the search part's table (--search_benchmark): its cells must be the ones trained on.
SEARCH_SPACE = "nb201"
flags.DEFINE_string(
  "search_embeddings",
  "workdir/nb201/embeddings.npz",
  "embeddings.npz for RL/BO (if absent: this benchmark's own embeddings of every NB201 cell).",
)
flags.DEFINE_string(
  "out", None, "Output JSON (default results/benchmarks/<backend>-<device>.json)."
)
cli.define_device_flags()


def _device_peak_mib():
  """The first device's peak bytes in use (MiB) where the backend reports it (GPU, TPU), else None."""
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2**20


def _program_memory_mib(compiled):
  """XLA's memory analysis of a compiled program, per device (MiB), or None if the backend gives none."""
  try:
    m = compiled.memory_analysis()
  except Exception:  # noqa: BLE001 (not every backend implements it, and each fails its own way)
    return None
  if m is None:
    return None
  out = {
    k: getattr(m, f"{k}_size_in_bytes", 0) / 2**20
    for k in ("argument", "output", "temp", "generated_code")
  }
  out["total"] = (
    out["argument"] + out["output"] + out["temp"] - getattr(m, "alias_size_in_bytes", 0) / 2**20
  )
  return out


def bench_training(space, adj, ops, batch_size, epochs, mesh=None):
  """Compile time, graphs/s and memory of the compiled epoch at one global batch size.

  Args:
    space: the space's name; adj [N, n, n], ops [N, n, d]: the cells of one epoch.
    batch_size: global batch; epochs: timed epochs (after one warm-up epoch).
    mesh: data-parallel mesh (`parallel.data_mesh`) or None for one device.

  Returns:
    (row dict, final state (local copy), model).
  """
  config = train.TrainConfig(space=space, batch_size=batch_size)
  model = train.create_model(ops.shape[-1], config.model)
  tx = train.create_optimizer(config)
  state = train.create_train_state(model, tx, jax.random.PRNGKey(0), ops.shape[1])
  data = train.Dataset(adj, ops, model_lib.count_nodes(ops).astype(np.int32))
  if mesh is None:
    data = train.Dataset(*jax.device_put(tuple(data)))
  else:
    state, data = parallel.replicate((state, data), mesh)
  fn = train.jit_train_epoch(
    train.make_train_epoch(model, tx, batch_size=batch_size, num_train=len(ops), mesh=mesh), mesh
  )
  t0 = time.perf_counter()
  compiled = fn.lower(state, data, jnp.int32(0)).compile()
  compile_s = time.perf_counter() - t0
  state, stats = compiled(state, data, jnp.int32(0))  # warm-up
  jax.block_until_ready(stats)
  times = []
  for e in range(epochs):
    t0 = time.perf_counter()
    state, stats = compiled(state, data, jnp.int32(e + 1))
    jax.block_until_ready(stats)
    times.append(time.perf_counter() - t0)
  best = min(times)
  # XLA's FLOP count of one training step (the epoch's scan body) at this batch, per graph.
  step = train.make_train_step(model, tx)
  b = batch_size
  flops_per_graph = (
    perf.compiled_flops(step, state, adj[:b], ops[:b], data.n_node[:b], np.ones(b, bool)) / b
  )
  row = {
    "batch_size": batch_size,
    "devices": 1 if mesh is None else int(mesh.devices.size),
    "flops_per_graph": flops_per_graph,
    "gflops": flops_per_graph * len(ops) / best / 1e9,
    "compile_s": compile_s,
    "epoch_s": times,
    "graphs_per_s": len(ops) / best,
    "steps_per_s": -(-len(ops) // batch_size) / best,
    "program_memory_mib": _program_memory_mib(compiled),
    "device_peak_mib": _device_peak_mib(),
  }
  return row, parallel.local_value(state), model


def _search_problem(embeddings, space):
  """The NB201 CIFAR-10 `SearchProblem` with the given embeddings file or, if absent, `embeddings` of every cell."""
  from arch2vec_jax.search import experiment  # pylint: disable=import-outside-toplevel

  methods = [m for m in FLAGS.search_methods]
  if os.path.exists(FLAGS.search_embeddings):
    return experiment.load_problem(
      SEARCH_SPACE, FLAGS.search_benchmark, "cifar10", FLAGS.search_embeddings, methods
    ), os.path.abspath(FLAGS.search_embeddings)
  adj, ops = (np.asarray(x, np.int8) for x in space.cells())
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "embeddings.npz")
    embed_lib.save_embeddings(path, embeddings, embed_lib.cell_ids(space, adj, ops))
    problem = experiment.load_problem(
      SEARCH_SPACE, FLAGS.search_benchmark, "cifar10", path, methods
    )
  return problem, "this benchmark's model (3 epochs of --cells NB201 cells at batch 32)"


def _bo_flops(problem):
  """`dngo.flops_per_seed` of the benchmark's BO (NB201 defaults, --search_queries)."""
  from arch2vec_jax.search import dngo, runner  # pylint: disable=import-outside-toplevel
  from arch2vec_jax.search import env as env_lib  # pylint: disable=import-outside-toplevel

  return dngo.flops_per_seed(
    runner.default_config("bo", SEARCH_SPACE), problem.env, env_lib.Budget(FLAGS.search_queries)
  )


def bench_search(problem, method, seeds, queries):
  """One method at one seed count: compile time and seed-queries/s of the batched (sharded) call."""
  from arch2vec_jax.search import env as env_lib  # pylint: disable=import-outside-toplevel
  from arch2vec_jax.search import experiment, runner  # pylint: disable=import-outside-toplevel

  run = runner.make_search(
    method,
    runner.default_config(method, SEARCH_SPACE),
    problem.env,
    env_lib.Budget(queries),
    problem.neighbours,
  )
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  compiled, placed, num = experiment.compile_seeds(run, keys)
  times = []
  while len(times) < 3 and (
    not times or sum(times) < 2.0
  ):  # repeat short runs (up to 3), once long ones
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(placed))
    times.append(time.perf_counter() - t0)
  best = min(times)
  final = float(100 * np.asarray(out.best_test)[:num, -1].mean())
  return {
    "method": method,
    "seeds": seeds,
    "queries": queries,
    "devices": jax.device_count(),
    "padded_seeds": int(placed.shape[0]),
    "compile_s": compiled.compile_s,
    "run_s": times,
    "seed_queries_per_s": seeds * queries / best,
    "final_test_mean": final,
    "load_average": list(os.getloadavg()),
  }


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    cli.setup_devices()
    unknown = sorted(set(FLAGS.parts) - set(PARTS))
    if unknown:
      raise ValueError(f"--parts: unknown {unknown}; expected some of {PARTS}")
    num_devices = parallel.resolve_num_devices(FLAGS.num_devices)
    batch_sizes = [int(x) for x in FLAGS.batch_sizes]
    for b in batch_sizes:
      parallel.check_batch_size(b, num_devices)
    if FLAGS.search_queries < 1:
      raise ValueError(f"--search_queries must be >= 1, got {FLAGS.search_queries}")
    search_seeds = [int(x) for x in FLAGS.search_seeds]
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  machine = cli.machine_info()
  load_start = machine["load_average"]
  rates = perf.machine_rates()
  peak = rates["peak_gflops"]
  print(
    "fp32 matmul rates (GFLOP/s): "
    + ", ".join(f"{k} {v['gflops']:.1f}" for k, v in rates.items() if isinstance(v, dict)),
    flush=True,
  )
  mesh = parallel.data_mesh(num_devices) if num_devices > 1 else None
  space = train.get_space(FLAGS.space)
  adj_all, ops_all = (np.asarray(x, np.int8) for x in space.cells())
  rng = np.random.default_rng(0)
  idx = rng.choice(len(ops_all), min(FLAGS.cells, len(ops_all)), replace=False)
  adj, ops = adj_all[idx], ops_all[idx]
  dev = jax.devices()[0]
  print(
    f"backend {jax.default_backend()} ({dev.device_kind}, {jax.device_count()} devices, training on "
    f"{num_devices}), {FLAGS.space} {len(ops):,} cells per epoch; load average {load_start}",
    flush=True,
  )
  result = {
    "command": cli.command_line("launch/benchmark.py"),
    "machine": machine,
    "load_average_at_start": load_start,
    "space": FLAGS.space,
    "cells_per_epoch": len(ops),
    "training_devices": num_devices,
    "matmul_rates": rates,
  }
  rows = []
  state = model = None
  if (
    "training" in FLAGS.parts
    or "metrics" in FLAGS.parts
    or "embedding" in FLAGS.parts
    or "search" in FLAGS.parts
  ):
    sizes = batch_sizes if "training" in FLAGS.parts else [32]
    for b in sizes:
      row, st, mdl = bench_training(FLAGS.space, adj, ops, b, FLAGS.epochs, mesh)
      if b == 32 or state is None:
        state, model = st, mdl
      row["fraction_of_peak"] = row["gflops"] / peak
      rows.append(row)
      mem = row["program_memory_mib"]
      print(
        f"  batch {b:5d}: {row['graphs_per_s']:>10,.0f} graphs/s  {row['steps_per_s']:>8,.1f} steps/s  "
        f"{row['gflops']:.1f} GFLOP/s ({100 * row['fraction_of_peak']:.0f}% of the 1024^3 GEMM)  "
        f"compile {row['compile_s']:.1f}s  epoch {min(row['epoch_s']):.3f}s"
        + (f"  program memory {mem['total']:.1f} MiB" if mem else ""),
        flush=True,
      )
    if "training" in FLAGS.parts:
      result["training"] = rows

  if "metrics" in FLAGS.parts:
    # Metrics of one epoch: held-out reconstruction (10% of the space) + 10,000 prior decodes.
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    cut = int(0.9 * len(ops_all))
    val = (adj_all[cut:], ops_all[cut:], model_lib.count_nodes(ops_all[cut:]))
    evaluator = train.Evaluator(model, space, val, num_prior_samples=10_000, chunk_size=2048)
    mean, std = np.zeros((ops.shape[1], 16), np.float32), np.ones((ops.shape[1], 16), np.float32)
    t0 = time.perf_counter()
    evaluator(variables, mean, std, jax.random.PRNGKey(0))
    metric_first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    ev = evaluator(variables, mean, std, jax.random.PRNGKey(1))
    metric_s = time.perf_counter() - t0
    print(
      f"  metrics: {metric_s:.2f}s per epoch ({metric_first_s:.2f}s first, with compile); {ev['time']}"
    )
    result.update(
      metrics_s=metric_s, metrics_first_s=metric_first_s, metrics_breakdown_s=ev["time"]
    )

  emb = None
  if "embedding" in FLAGS.parts or "search" in FLAGS.parts:
    embed_lib.encode(state.params, state.batch_stats, adj_all[:8192], ops_all[:8192])  # compile
    t0 = time.perf_counter()
    emb = embed_lib.encode(state.params, state.batch_stats, adj_all, ops_all)
    embed_s = time.perf_counter() - t0
    print(
      f"  embeddings: {len(emb):,} cells in {embed_s:.2f}s = {len(emb) / embed_s:,.0f} cells/s",
      flush=True,
    )
    result["embedding"] = {"cells": len(emb), "seconds": embed_s, "cells_per_s": len(emb) / embed_s}

  if "search" in FLAGS.parts:
    if FLAGS.space != SEARCH_SPACE:
      raise app.UsageError(
        f"--parts search needs --space {SEARCH_SPACE} (the search runs on the "
        f"{SEARCH_SPACE} table --search_benchmark)"
      )
    if not os.path.exists(FLAGS.search_benchmark):
      print(f"  search: skipped, no table at {FLAGS.search_benchmark}")
      result["search"] = {"skipped": f"no table at {FLAGS.search_benchmark}"}
    else:
      problem, source = _search_problem(emb, space)
      search_rows = []
      bo_flops = _bo_flops(problem)["total"] if "bo" in FLAGS.search_methods else None
      for m in FLAGS.search_methods:
        last = None
        for s in search_seeds:
          if FLAGS.search_max_s is not None and last is not None:
            estimate = min(last["run_s"]) * s / last["seeds"]
            if estimate > FLAGS.search_max_s:
              search_rows.append(
                {
                  "method": m,
                  "seeds": s,
                  "queries": FLAGS.search_queries,
                  "skipped": f"estimated {estimate:.0f} s > --search_max_s {FLAGS.search_max_s:g}",
                }
              )
              print(f"  {m} {s:4d} seeds: skipped ({search_rows[-1]['skipped']})", flush=True)
              continue
          row = last = bench_search(problem, m, s, FLAGS.search_queries)
          if m == "bo":
            row["flops_per_seed"] = bo_flops
            row.update(perf.rate(row["flops_per_seed"] * s, min(row["run_s"]), peak))
          search_rows.append(row)
          print(
            f"  {m} {s:4d} seeds x {FLAGS.search_queries} queries: {row['seed_queries_per_s']:>10,.0f} "
            f"seed-queries/s  run {min(row['run_s']):.2f}s  compile {row['compile_s']:.1f}s  "
            f"(final test {row['final_test_mean']:.2f}%)",
            flush=True,
          )
      result["search"] = {
        "table": os.path.abspath(FLAGS.search_benchmark),
        "dataset": "cifar10",
        "embeddings": source,
        "queries": FLAGS.search_queries,
        "rows": search_rows,
      }

  result["peak_host_rss_mib"] = train._peak_rss_mib()  # pylint: disable=protected-access
  result["peak_device_mib"] = _device_peak_mib()
  result["load_average_at_end"] = list(os.getloadavg())
  _print_table(result)
  kind = dev.device_kind.replace(" ", "_").replace("/", "_")
  out = FLAGS.out or os.path.join("results", "benchmarks", f"{jax.default_backend()}-{kind}.json")
  fileio.atomic_write_json(out, result)
  print(f"wrote {out}")


def _print_table(result):
  """The summary table (Markdown) of a result dict."""
  lines = [
    "",
    "| part | setting | throughput | GFLOP/s (of peak) | compile s | memory MiB |",
    "|---|---|---|---|---|---|",
  ]
  for r in result.get("training", []):
    mem = f"{r['program_memory_mib']['total']:.1f}" if r["program_memory_mib"] else "-"
    lines.append(
      f"| training | batch {r['batch_size']}, {r['devices']} device(s) | {r['graphs_per_s']:,.0f} graphs/s "
      f"| {r['gflops']:.1f} ({100 * r['fraction_of_peak']:.0f}%) | {r['compile_s']:.1f} | {mem} |"
    )
  if "embedding" in result:
    lines.append(
      f"| embedding | {result['embedding']['cells']:,} cells | {result['embedding']['cells_per_s']:,.0f} "
      f"cells/s | | | |"
    )
  for r in (result.get("search") or {}).get("rows", []):
    if "skipped" in r:
      lines.append(
        f"| search {r['method']} | {r['seeds']} seeds x {r['queries']} queries | skipped: {r['skipped']} "
        "| | | |"
      )
      continue
    flops = f"{r['gflops']:.1f} ({100 * r['fraction_of_peak']:.0f}%)" if "gflops" in r else "-"
    lines.append(
      f"| search {r['method']} | {r['seeds']} seeds x {r['queries']} queries, {r['devices']} device(s) | "
      f"{r['seed_queries_per_s']:,.0f} seed-queries/s | {flops} | {r['compile_s']:.1f} | |"
    )
  print("\n".join(lines))


if __name__ == "__main__":
  cli.run(main)
