"""Pre-training, embedding and search speed on whatever backend JAX sees (CPU, GPU, TPU).

  config = bench.BenchConfig(batch_sizes=(32, 256), parts=("training", "embedding"))
  result = bench.run_benchmark(config)     # prints a table, writes config.out (or the default)

`launch/benchmark.py` is this module's command line: its flags are generated
from `BenchConfig` (`cli.define_config_flags`), one per field. The parts
(`BenchConfig.parts`):

  training   for each batch size: compile time of the compiled epoch (one
             `lax.scan` over `cells` cells, data parallel over `num_devices`
             devices), the best wall time of `epochs` timed epochs -> graphs/s,
             and the compiled program's memory (XLA's `memory_analysis`).
  metrics    one full pre-training epoch's metric time (held-out reconstruction
             and 10,000 prior decodes judged by the space).
  embedding  embedding extraction of every cell of the space, cells/s.
  profile    with training: where each batch size's epoch spends its time
             (`op_profile.profile`: XLA's per-operation timings by kind, the
             rate inside the matmuls; needs the training part).
  search     RL and BO (`search_methods`) on the NB201 CIFAR-10 table at
             `search_seeds` seeds x `search_queries` queries, every seed count
             one compiled call (seeds sharded over all devices).

Every run first measures the machine's fp32 matmul rates (`perf.machine_rates`)
and states training and BO also as GFLOP/s and as a fraction of the 1024^3
GEMM's rate (the reference "peak"). The benchmark tables' readers are the
separate package `arch2vec_jax.benchmarks`.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio, machine, op_profile, parallel, perf, train
from arch2vec_jax import model as model_lib
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import dngo, experiment, runner
from arch2vec_jax.search import env as env_lib

__all__ = [
  "PARTS",
  "SEARCH_SPACE",
  "BenchConfig",
  "bench_embedding",
  "bench_metrics",
  "bench_search",
  "bench_search_part",
  "bench_training",
  "bo_flops_per_seed",
  "command_for",
  "default_out_path",
  "format_table",
  "load_search_problem",
  "resolve_devices",
  "run_benchmark",
]

PARTS = ("training", "metrics", "embedding", "profile", "search")
# The space of the search part's table (`search_benchmark`): its cells must be the ones trained on.
SEARCH_SPACE = "nb201"
Log = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class BenchConfig:
  """What `run_benchmark` times (the defaults: `launch/benchmark.py`'s; its flags come from here).

  Attributes:
    space: Cells to train on (NB101: the first --cells cells).
    batch_sizes: Global batch sizes to time.
    cells: Training cells per timed epoch.
    epochs: Timed epochs per batch size (after the compile and a warm-up epoch).
    num_devices: Devices the training batch is split over (default: all).
    parts: Parts to run, of training,metrics,embedding,profile,search.
    search_methods: Search methods to time (rl, bo, rs, re).
    search_seeds: Seed counts to time.
    search_queries: Queries per search.
    search_max_s: Skip a method's larger seed counts whose run time, extrapolated linearly from
      its previous seed count, exceeds this (recorded as skipped with the estimate).
    search_benchmark: NB201 table for the search part.
    search_embeddings: embeddings.npz for RL/BO (if absent: this benchmark's own embeddings of
      every NB201 cell).
    out: Output JSON (default results/benchmarks/<backend>-<device>.json).
  """

  space: Literal["nb101", "nb201"] = "nb201"
  batch_sizes: tuple[int, ...] = (32, 256, 1024, 4096)
  cells: int = 16384
  epochs: int = 2
  num_devices: int | None = None
  parts: tuple[str, ...] = PARTS
  search_methods: tuple[str, ...] = ("rl", "bo")
  search_seeds: tuple[int, ...] = (1, 8, 64, 500)
  search_queries: int = 100
  search_max_s: float | None = None
  search_benchmark: str = csv_data.SHARED_CSV["nb201"]
  search_embeddings: str = "workdir/nb201/embeddings.npz"
  out: str | None = None

  def __post_init__(self):
    unknown = sorted(set(self.parts) - set(PARTS))
    if unknown:
      raise ValueError(f"--parts: unknown {unknown}; expected some of {PARTS}")
    if self.search_queries < 1:
      raise ValueError(f"--search_queries must be >= 1, got {self.search_queries}")
    for name in ("cells", "epochs"):
      if getattr(self, name) < 1:
        raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")
    if "profile" in self.parts and "training" not in self.parts:
      raise ValueError("--parts profile needs training (it profiles the training epochs)")
    if "search" in self.parts and self.space != SEARCH_SPACE:
      raise ValueError("--parts search needs --space nb201 (the search runs on the NB201 table)")


def resolve_devices(config: BenchConfig) -> int:
  """The training device count (`config.num_devices`, default all), each batch size checked against it.

  Raises:
    ValueError: more devices than present, or a batch size that is not a multiple of the count.
  """
  num_devices = parallel.resolve_num_devices(config.num_devices)
  for b in config.batch_sizes:
    parallel.check_batch_size(b, num_devices)
  return num_devices


def command_for(config: BenchConfig) -> str:
  """`python launch/benchmark.py` with a flag per field that differs from `BenchConfig()`'s."""
  parts, default = ["python", "launch/benchmark.py"], BenchConfig()
  for field in dataclasses.fields(config):
    value = getattr(config, field.name)
    if value != getattr(default, field.name):
      text = ",".join(map(str, value)) if isinstance(value, tuple) else value
      parts.append(shlex.quote(f"--{field.name}={text}"))
  return " ".join(parts)


def default_out_path() -> str:
  """results/benchmarks/<backend>-<device kind>.json (the device kind's spaces and slashes as _)."""
  kind = jax.devices()[0].device_kind.replace(" ", "_").replace("/", "_")
  return os.path.join("results", "benchmarks", f"{jax.default_backend()}-{kind}.json")


def _device_peak_mib() -> float | None:
  """The first device's peak bytes in use (MiB) where the backend reports it (GPU, TPU), else None."""
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2**20


def _program_memory_mib(compiled: Any) -> dict[str, float] | None:
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


def bench_training(
  space: str,
  adj: np.ndarray,
  ops: np.ndarray,
  batch_size: int,
  epochs: int,
  mesh: jax.sharding.Mesh | None = None,
  profile: bool = False,
) -> tuple[dict[str, Any], train.TrainState, model_lib.Arch2Vec]:
  """Compile time, graphs/s and memory of the compiled epoch at one global batch size.

  Args:
    space: the space's name.
    adj: int8 [N, n, n] adjacency of the cells of one epoch.
    ops: int8 [N, n, d] one-hot operations of the same cells.
    batch_size: global batch (cells per step, over all devices).
    epochs: timed epochs (after one warm-up epoch).
    mesh: data-parallel mesh (`parallel.data_mesh`) or None for one device.
    profile: also run one more epoch under `op_profile.profile`.

  Returns:
    (row, final state (local copy), model). The row: batch_size, devices,
    flops_per_graph (XLA's FLOP count of one step / batch), gflops, compile_s (s),
    epoch_s (s per timed epoch), graphs_per_s, steps_per_s, program_memory_mib
    (`memory_analysis`, MiB, or None), device_peak_mib (MiB, or None on CPU), and
    with `profile` the epoch's `op_profile.profile` (profile).
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
  if profile:  # one more epoch (after an untraced one), the state threaded: it is donated

    def run_epoch():
      nonlocal state
      state, out = compiled(state, data, jnp.int32(epochs + 1))
      return out

    row["profile"] = op_profile.profile(compiled, calls=1, run=run_epoch)
  return row, parallel.local_value(state), model


def _training_line(row: dict[str, Any]) -> str:
  """One batch size's printed line."""
  mem = row["program_memory_mib"]
  return (
    f"  batch {row['batch_size']:5d}: {row['graphs_per_s']:>10,.0f} graphs/s  "
    f"{row['steps_per_s']:>8,.1f} steps/s  {row['gflops']:.1f} GFLOP/s "
    f"({100 * row['fraction_of_peak']:.0f}% of the 1024^3 GEMM)  compile {row['compile_s']:.1f}s  "
    f"epoch {min(row['epoch_s']):.3f}s"
    + (f"  program memory {mem['total']:.1f} MiB" if mem else "")
  )


def _profile_fractions(row: dict[str, Any], peak_gflops: float) -> None:
  """Adds to a profiled training row: the rate inside the matmul operations / peak
  (matmul_fraction_of_peak) and the epoch's FLOPs in the matmuls' time alone / peak
  (fraction_if_only_matmuls: the bound if every other operation took no time)."""
  prof = row["profile"]
  matmul_s = prof["categories"]["matmul"]["us_per_call"] * 1e-6
  prof["matmul_fraction_of_peak"] = (prof["matmul_gflops"] or 0.0) / peak_gflops
  prof["fraction_if_only_matmuls"] = (
    row["fraction_of_peak"] * min(row["epoch_s"]) / matmul_s if matmul_s else None
  )


def _percent(fraction: float | None) -> str:
  return "-" if fraction is None else f"{100 * fraction:.0f}%"


def _profile_line(row: dict[str, Any]) -> str:
  """One profiled batch size's printed line: the share of each kind of operation."""
  prof = row["profile"]
  shares = ", ".join(
    f"{name} {100 * c['share']:.0f}%"
    for name, c in prof["categories"].items()
    if c["share"] >= 0.005
  )
  return (
    f"    profile: {shares}; the matmuls at {100 * prof['matmul_fraction_of_peak']:.0f}% of the "
    f"GEMM; with nothing else the epoch would run at {_percent(prof['fraction_if_only_matmuls'])}"
  )


def bench_metrics(
  model: model_lib.Arch2Vec,
  state: train.TrainState,
  space: Any,
  adj_all: np.ndarray,
  ops_all: np.ndarray,
) -> dict[str, Any]:
  """One epoch's metric time: held-out reconstruction (the last 10% of the space) + 10,000 prior decodes.

  Args:
    model, state: a trained model and its state (`bench_training`).
    space: the `SearchSpace` (judges the decoded cells).
    adj_all: int8 [N, n, n], ops_all: int8 [N, n, d]: every cell of the space.

  Returns:
    {"metrics_s": s per epoch, "metrics_first_s": s of the first call (with the
    compile), "metrics_breakdown_s": the evaluator's per-metric times (s)}.
  """
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  cut = int(0.9 * len(ops_all))
  val = (adj_all[cut:], ops_all[cut:], model_lib.count_nodes(ops_all[cut:]))
  evaluator = train.Evaluator(model, space, val, num_prior_samples=10_000, chunk_size=2048)
  latent = model.config.latent
  mean = np.zeros((ops_all.shape[1], latent), np.float32)
  std = np.ones((ops_all.shape[1], latent), np.float32)
  t0 = time.perf_counter()
  evaluator(variables, mean, std, jax.random.PRNGKey(0))
  first_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  ev = evaluator(variables, mean, std, jax.random.PRNGKey(1))
  return {
    "metrics_s": time.perf_counter() - t0,
    "metrics_first_s": first_s,
    "metrics_breakdown_s": ev["time"],
  }


def bench_embedding(
  state: train.TrainState, adj_all: np.ndarray, ops_all: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
  """Embedding extraction of every cell (after a compile on the first 8,192).

  Returns:
    (embeddings float32 [N, latent], {"cells": N, "seconds": s, "cells_per_s"}).
  """
  embed_lib.encode(state.params, state.batch_stats, adj_all[:8192], ops_all[:8192])  # compile
  t0 = time.perf_counter()
  emb = embed_lib.encode(state.params, state.batch_stats, adj_all, ops_all)
  seconds = time.perf_counter() - t0
  return emb, {"cells": len(emb), "seconds": seconds, "cells_per_s": len(emb) / seconds}


def load_search_problem(
  benchmark: str, embeddings_path: str, methods: tuple[str, ...], embeddings: np.ndarray, space: Any
) -> tuple[Any, str]:
  """The NB201 CIFAR-10 `SearchProblem` and where its embeddings came from.

  Args:
    benchmark: the NB201 table (csv).
    embeddings_path: an embeddings.npz, used if it exists.
    methods: the methods the problem serves.
    embeddings: float32 [15625, latent] embeddings of every cell of `space`, used otherwise.
    space: the NB201 `SearchSpace`.

  Returns:
    (problem, the embeddings' absolute path or a description of this benchmark's model).
  """
  methods = list(methods)
  if os.path.exists(embeddings_path):
    problem = experiment.load_problem("nb201", benchmark, "cifar10", embeddings_path, methods)
    return problem, os.path.abspath(embeddings_path)
  adj, ops = (np.asarray(x, np.int8) for x in space.cells())
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "embeddings.npz")
    embed_lib.save_embeddings(path, embeddings, embed_lib.cell_ids(space, adj, ops))
    problem = experiment.load_problem("nb201", benchmark, "cifar10", path, methods)
  return problem, "this benchmark's model (3 epochs of --cells NB201 cells at batch 32)"


def bo_flops_per_seed(problem: Any, queries: int) -> dict[str, Any]:
  """`dngo.flops_per_seed` of the benchmark's BO (NB201 defaults, `queries` queries); "total" in FLOP."""
  return dngo.flops_per_seed(
    runner.default_config("bo", "nb201"), problem.env, env_lib.Budget(queries)
  )


def bench_search(problem: Any, method: str, seeds: int, queries: int) -> dict[str, Any]:
  """One method at one seed count: compile time and seed-queries/s of the batched (sharded) call.

  Returns:
    {"method", "seeds", "queries", "devices", "padded_seeds", "compile_s" (s),
    "run_s" (s per timed run, up to 3), "seed_queries_per_s" (seeds x queries / best
    run), "final_test_mean" (%), "load_average"}.
  """
  run = runner.make_search(
    method,
    runner.default_config(method, "nb201"),
    problem.env,
    env_lib.Budget(queries),
    problem.neighbours,
  )
  keys = jax.random.split(jax.random.PRNGKey(0), seeds)
  compiled, placed, num = experiment.compile_seeds(run, keys)
  times = []
  while len(times) < 3 and (not times or sum(times) < 2.0):  # short runs up to 3 times
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


def _skip_estimate(config: BenchConfig, last: dict[str, Any] | None, seeds: int) -> str | None:
  """Why `seeds` seeds are skipped (their run time extrapolated from `last` > search_max_s), or None."""
  if config.search_max_s is None or last is None:
    return None
  estimate = min(last["run_s"]) * seeds / last["seeds"]
  if estimate <= config.search_max_s:
    return None
  return f"estimated {estimate:.0f} s > --search_max_s {config.search_max_s:g}"


def bench_search_part(
  config: BenchConfig, embeddings: np.ndarray, space: Any, peak_gflops: float, log: Log = print
) -> dict[str, Any]:
  """The search part: every method of `config.search_methods` at every seed count.

  Args:
    config: the benchmark's config (search_* fields).
    embeddings: float32 [15625, latent]: this run's embeddings of every NB201 cell (used
      when `config.search_embeddings` does not exist).
    space: the NB201 `SearchSpace`.
    peak_gflops: the machine's reference rate (GFLOP/s), for BO's fraction of it.
    log: where the per-row lines go.

  Returns:
    {"table", "dataset", "embeddings", "queries", "rows": `bench_search` rows (BO's with
    flops_per_seed, gflops and fraction_of_peak), skipped ones {"method", "seeds",
    "queries", "skipped"}}, or {"skipped": why} without a table.
  """
  if not os.path.exists(config.search_benchmark):
    log(f"  search: skipped, no table at {config.search_benchmark}")
    return {"skipped": f"no table at {config.search_benchmark}"}
  problem, source = load_search_problem(
    config.search_benchmark, config.search_embeddings, config.search_methods, embeddings, space
  )
  queries, rows = config.search_queries, []
  bo_flops = bo_flops_per_seed(problem, queries)["total"] if "bo" in config.search_methods else None
  for m in config.search_methods:
    last = None
    for s in config.search_seeds:
      skipped = _skip_estimate(config, last, s)
      if skipped:
        rows.append({"method": m, "seeds": s, "queries": queries, "skipped": skipped})
        log(f"  {m} {s:4d} seeds: skipped ({skipped})")
        continue
      row = last = bench_search(problem, m, s, queries)
      if m == "bo":
        row["flops_per_seed"] = bo_flops
        row.update(perf.rate(row["flops_per_seed"] * s, min(row["run_s"]), peak_gflops))
      rows.append(row)
      log(
        f"  {m} {s:4d} seeds x {queries} queries: {row['seed_queries_per_s']:>10,.0f} "
        f"seed-queries/s  run {min(row['run_s']):.2f}s  compile {row['compile_s']:.1f}s  "
        f"(final test {row['final_test_mean']:.2f}%)"
      )
  return {
    "table": os.path.abspath(config.search_benchmark),
    "dataset": "cifar10",
    "embeddings": source,
    "queries": queries,
    "rows": rows,
  }


def format_table(result: dict[str, Any]) -> str:
  """The summary table (Markdown) of a `run_benchmark` result, after an empty line."""
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
  for r in result.get("training", []):
    if "profile" in r:
      p, mm = r["profile"], r["profile"]["categories"]["matmul"]
      lines.append(
        f"| profile | batch {r['batch_size']} | matmuls {100 * mm['share']:.0f}% of the time, at "
        f"{100 * p['matmul_fraction_of_peak']:.0f}% of peak | alone: "
        f"{_percent(p['fraction_if_only_matmuls'])} of peak | | |"
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
  return "\n".join(lines)


def _epoch_cells(space: Any, cells: int) -> tuple[np.ndarray, ...]:
  """(adj_all, ops_all, adj, ops): every cell of the space, and `cells` of them drawn with seed 0."""
  adj_all, ops_all = (np.asarray(x, np.int8) for x in space.cells())
  idx = np.random.default_rng(0).choice(len(ops_all), min(cells, len(ops_all)), replace=False)
  return adj_all, ops_all, adj_all[idx], ops_all[idx]


def _training_part(
  config: BenchConfig,
  adj: np.ndarray,
  ops: np.ndarray,
  mesh: jax.sharding.Mesh | None,
  peak_gflops: float,
  log: Log,
) -> tuple[list[dict[str, Any]], train.TrainState | None, model_lib.Arch2Vec | None]:
  """`bench_training` at every batch size (only batch 32 without the training part: the model the
  other parts use), each row with its fraction_of_peak; (rows, the batch-32 state, model)."""
  rows, state, model = [], None, None
  sizes = config.batch_sizes if "training" in config.parts else (32,)
  for b in sizes if config.parts else ():  # every part needs the model
    row, st, mdl = bench_training(
      config.space, adj, ops, b, config.epochs, mesh, profile="profile" in config.parts
    )
    if b == 32 or state is None:
      state, model = st, mdl
    row["fraction_of_peak"] = row["gflops"] / peak_gflops
    rows.append(row)
    log(_training_line(row))
    if "profile" in row:
      _profile_fractions(row, peak_gflops)
      log(_profile_line(row))
  return rows, state, model


def run_benchmark(config: BenchConfig, log: Log = print, command: str | None = None) -> dict:
  """Runs `config.parts` and writes the result JSON (atomic) to `config.out` or `default_out_path()`.

  Args:
    config: what to time.
    log: where the progress lines and the final table go (one string per call).
    command: the command recorded in the JSON (default: `command_for(config)`).

  Returns:
    The result: command, machine, load_average_at_start, space, cells_per_epoch,
    training_devices, matmul_rates (`perf.machine_rates`, GFLOP/s), then per part
    training (`bench_training` rows + fraction_of_peak, with the profile part their
    profile + `_profile_fractions`), metrics_s /
    metrics_first_s / metrics_breakdown_s (`bench_metrics`), embedding
    (`bench_embedding`), search (`bench_search_part`), and peak_host_rss_mib,
    peak_device_mib, load_average_at_end.

  Raises:
    ValueError: a device count or batch size the devices do not allow (`resolve_devices`).
  """
  num_devices = resolve_devices(config)
  info = machine.machine_info()
  rates = perf.machine_rates()
  peak = rates["peak_gflops"]
  log(
    "fp32 matmul rates (GFLOP/s): "
    + ", ".join(f"{k} {v['gflops']:.1f}" for k, v in rates.items() if isinstance(v, dict))
  )
  mesh = parallel.data_mesh(num_devices) if num_devices > 1 else None
  space = train.get_space(config.space)
  adj_all, ops_all, adj, ops = _epoch_cells(space, config.cells)
  log(
    f"backend {jax.default_backend()} ({jax.devices()[0].device_kind}, {jax.device_count()} "
    f"devices, training on {num_devices}), {config.space} {len(ops):,} cells per epoch; "
    f"load average {info['load_average']}"
  )
  result = {
    "command": command or command_for(config),
    "machine": info,
    "load_average_at_start": info["load_average"],
    "space": config.space,
    "cells_per_epoch": len(ops),
    "training_devices": num_devices,
    "matmul_rates": rates,
  }
  parts = config.parts
  rows, state, model = _training_part(config, adj, ops, mesh, peak, log)
  if "training" in parts:
    result["training"] = rows
  if "metrics" in parts:
    result.update(bench_metrics(model, state, space, adj_all, ops_all))
    log(
      f"  metrics: {result['metrics_s']:.2f}s per epoch ({result['metrics_first_s']:.2f}s first, "
      f"with compile); {result['metrics_breakdown_s']}"
    )
  emb = None
  if "embedding" in parts or "search" in parts:
    emb, result["embedding"] = bench_embedding(state, adj_all, ops_all)
    e = result["embedding"]
    log(
      f"  embeddings: {e['cells']:,} cells in {e['seconds']:.2f}s = {e['cells_per_s']:,.0f} cells/s"
    )
  if "search" in parts:
    result["search"] = bench_search_part(config, emb, space, peak, log)
  result["peak_host_rss_mib"] = train._peak_rss_mib()  # pylint: disable=protected-access
  result["peak_device_mib"] = _device_peak_mib()
  result["load_average_at_end"] = list(os.getloadavg())
  log(format_table(result))
  out = config.out or default_out_path()
  fileio.atomic_write_json(out, result)
  log(f"wrote {out}")
  return result
