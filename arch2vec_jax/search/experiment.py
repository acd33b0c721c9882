"""Search experiments end to end: a benchmark table and embeddings in, traces, a summary and a plot out.

  problem = load_problem("nb201", "../shared/data/nb201_accuracies.csv", "cifar10",
                         embeddings="workdir/nb201/embeddings.npz")
  summary = run_experiment(problem, ("rl", "bo", "rs", "re"), num_seeds=500,
                           budget=make_budget(problem, queries=100), workdir="results/search/nb201/cifar10")

`load_problem` reads the table (any source `benchmarks.loader.load_table`
takes: a `.npz` cache, an original benchmark file or a shared CSV), matches the
pre-trained embeddings to its cells by identifier (NB201 arch strings, NB101
hashes) and builds the `SearchEnv`: reward = the table's validation accuracy,
report = its test accuracy, cost = its training time (or a fixed cost per
query). What is reported follows the table: the test accuracy of the
best-validation cell where the table has test accuracies (NB201), else the best
validation accuracy itself (the NB101 subset, reported as validation regret
against the table's best).

`run_experiment` runs every method over all seeds in one compiled call each
(`runner.batched_run`, compiled ahead of time so that compile and run seconds
are measured apart) and writes into `workdir`:

  traces/<method>.npz   the per-seed traces ([S, T] arrays, `save_trace`)
  summary.json          per method: mean +- std over seeds at several budgets,
                        regret, timings, config; the command and the machine
  curves.png            accuracy and regret curves of the methods (`plot_curves`)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio, machine, parallel, pretrained
from arch2vec_jax.benchmarks import loader
from arch2vec_jax.benchmarks.table import BenchmarkTable
from arch2vec_jax.search import baselines, runner
from arch2vec_jax.search import env as env_lib

__all__ = [
  "DATASETS",
  "NEEDS_EMBEDDINGS",
  "PAPER_NB201",
  "SPACES",
  "SearchProblem",
  "check_dataset",
  "compile_seeds",
  "cost_points",
  "curve",
  "format_summary",
  "load_problem",
  "load_trace",
  "make_budget",
  "parse_methods",
  "plot_curves",
  "query_points",
  "run_experiment",
  "save_trace",
  "timed_run_seeds",
]

SPACES = ("nb201", "nb101")
# Datasets per space (NB201: the paper protocol of `benchmarks.loader`).
DATASETS = {"nb201": ("cifar10", "cifar100", "imagenet16"), "nb101": ("cifar10",)}
# Methods that search in the embedding space.
NEEDS_EMBEDDINGS = ("rl", "bo", "gd")
# The paper's NB201 test accuracies (%, mean over 500 seeds), Yan et al. 2020, Table 4.
PAPER_NB201 = {
  "rl": {"cifar10": 94.12, "cifar100": 73.15, "imagenet16": 46.16},
  "bo": {"cifar10": 94.18, "cifar100": 73.37, "imagenet16": 46.27},
  "re": {"cifar10": 93.92, "cifar100": 71.84, "imagenet16": 45.54},
  "rs": {"cifar10": 93.70, "cifar100": 71.04, "imagenet16": 44.57},
}


@dataclasses.dataclass(frozen=True)
class SearchProblem:
  """One benchmark table on the device, ready to search.

  Attributes:
    space: 'nb201' or 'nb101'.
    dataset: 'cifar10', 'cifar100' or 'imagenet16'.
    table: the benchmark table (host arrays).
    env: the environment (reward = validation accuracy, report = test accuracy).
    neighbours: int32 [N, K] mutation table (None unless evolution is run).
    field: what is reported: 'best_test' (test accuracy of the best-validation
      cell) or 'best_valid' (tables without test accuracies).
    optimum: the table's best value of that kind (fraction): the regret's zero.
    oracle: the test accuracy of the table's best-validation cell (what a
      search that found it reports; NaN without test accuracies).
    meta: provenance (benchmark, embeddings, cost) for the summary.
  """

  space: str
  dataset: str
  table: BenchmarkTable
  env: env_lib.SearchEnv
  neighbours: np.ndarray | None
  field: str
  optimum: float
  oracle: float
  meta: dict[str, Any]


def parse_methods(methods: str | Iterable[str]) -> tuple[str, ...]:
  """Methods from a comma list or a sequence, checked and de-duplicated (order kept)."""
  items = methods.split(",") if isinstance(methods, str) else list(methods)
  out = []
  for m in (str(x).strip().lower() for x in items):
    if not m:
      continue
    if m not in runner.METHODS:
      raise ValueError(
        f"unknown method {m!r}; expected a comma list of {', '.join(runner.METHODS)}"
      )
    if m not in out:
      out.append(m)
  if not out:
    raise ValueError(f"no method given; expected a comma list of {', '.join(runner.METHODS)}")
  return tuple(out)


def check_dataset(space: str, dataset: str | None) -> str:
  """The dataset name for a space (default cifar10); ValueError naming the choices otherwise."""
  if space not in SPACES:
    raise ValueError(f"unknown space {space!r}; expected one of {', '.join(SPACES)}")
  name = "cifar10" if dataset is None else str(dataset).lower()
  name = {"imagenet16-120": "imagenet16", "cifar10-valid": "cifar10"}.get(name, name)
  if name not in DATASETS[space]:
    raise ValueError(f"dataset {dataset!r} is not one of {space}: {', '.join(DATASETS[space])}")
  return name


def _load_embeddings(
  path: str | os.PathLike | None,
  table: BenchmarkTable,
  methods: Sequence[str],
  per_node: bool = False,
) -> np.ndarray | None:
  needs = [m for m in methods if m in NEEDS_EMBEDDINGS]
  if not needs:
    return None
  hint = (
    f"run `python launch/pretrain.py --space {table.space} --workdir workdir/{table.space}` to make it, "
    f"or give the name {table.space!r} to embed the cells with the shipped encoder"
  )
  if path is None:
    raise ValueError(
      f"method(s) {', '.join(needs)} search in the latent space and need --embeddings "
      f"(embeddings.npz from pre-training; {hint})"
    )
  if is_encoder_source(path):
    return _encoder_embeddings(path, table, per_node)
  if per_node:
    raise ValueError(
      f"per-node features need an encoder (a shipped name such as {table.space!r} or a "
      f"launch/pretrain.py --workdir), but --embeddings {os.fspath(path)} is a file"
    )
  if not os.path.exists(path):
    raise FileNotFoundError(f"{os.fspath(path)}: no such embeddings file ({hint})")
  data = embed_lib.load_embeddings(path)
  try:
    return runner.match_embeddings(table.ids, data["ids"], data["embeddings"])
  except ValueError as e:
    raise ValueError(f"{os.fspath(path)}: {e}") from None


def is_shipped_name(embeddings: str | os.PathLike | None) -> bool:
  """True for a shipped encoder's name ('nb101', 'nb201', 'darts') that is not also an existing path."""
  return (
    isinstance(embeddings, str)
    and embeddings in pretrained.NAMES
    and not os.path.exists(embeddings)
  )


def is_encoder_source(embeddings: str | os.PathLike | None) -> bool:
  """True where `embeddings` names an encoder (shipped name or pre-training workdir), not a file."""
  return embeddings is not None and (is_shipped_name(embeddings) or os.path.isdir(embeddings))


def _encoder_embeddings(
  source: str | os.PathLike, table: BenchmarkTable, per_node: bool
) -> np.ndarray:
  """float32 [N, latent] (per_node: [N, n * latent]): the table's cells embedded by an encoder.

  `source`: a shipped name or a pre-training workdir (`pretrained.load`).
  """
  enc = pretrained.load(source)
  if enc.space != table.space:
    raise ValueError(
      f"--embeddings {os.fspath(source)!r} is a {enc.space} encoder, but the benchmark is a "
      f"{table.space} table"
    )
  return enc.embed((table.adjacency, table.ops), per_node=per_node)


def _embeddings_meta(
  embeddings: str | os.PathLike | None, emb: np.ndarray | None, per_node: bool
) -> dict[str, Any]:
  """What the latent-space methods searched: source, its sha256, the rows' sha256, the features."""
  if emb is None:
    return {"embeddings": None, "embeddings_sha256": None, "embedding_rows_sha256": None}
  if is_shipped_name(embeddings):
    source, sha = f"shipped {embeddings} encoder", _sha256(pretrained.weights_path(embeddings))
  elif os.path.isdir(embeddings):
    source, sha = f"encoder of {os.path.abspath(os.fspath(embeddings))}", None
  else:
    source, sha = os.path.abspath(os.fspath(embeddings)), _sha256(embeddings)
  return {
    "embeddings": source,
    "embeddings_sha256": sha,
    # The rows searched (float32, table order): equal across machines only where the encoder's rounding is.
    "embedding_rows_sha256": hashlib.sha256(np.ascontiguousarray(emb, np.float32)).hexdigest(),
    "embedding_features": f"per-node mu, {emb.shape[1]}-d" if per_node else "pooled",
  }


def _sha256(path: str | os.PathLike) -> str:
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def load_problem(
  space: str,
  benchmark: str | os.PathLike | BenchmarkTable,
  dataset: str | None = None,
  embeddings: str | os.PathLike | None = None,
  methods: Iterable[str] = runner.METHODS,
  cost_per_query: float | None = None,
  reward: str | None = None,
  per_node: bool = False,
) -> SearchProblem:
  """Reads a benchmark and the embeddings into a `SearchProblem`.

  Args:
    space: 'nb201' or 'nb101'.
    benchmark: a source for `loader.load_table` (table `.npz`, original file,
      shared CSV) or a `BenchmarkTable`.
    dataset: NB201 'cifar10' | 'cifar100' | 'imagenet16'; NB101 None or 'cifar10'.
    embeddings: `embeddings.npz` from pre-training (needed by 'rl', 'bo' and
      'gd'); or an encoder, whose embeddings of the table's cells are used: the
      space's name ('nb201', 'nb101': the shipped encoder; meta records the
      weights file's sha256) or a launch/pretrain.py workdir.
    methods: the methods to be run (decides what is loaded).
    cost_per_query: a fixed query cost in seconds instead of the table's
      training times (for time budgets on tables without them).
    reward: NB201 CSV only: the column suffix used as the reward instead of
      'valid_12ep' (e.g. 'test_200ep' for a diagnostic search that sees the
      200-epoch accuracies).
    per_node: the latent-space methods see the encoder's unpooled features
      (every node's mu concatenated, [N, n * latent]) instead of the pooled
      embedding; needs an encoder as `embeddings`.

  Returns:
    The problem.

  Raises:
    ValueError / FileNotFoundError: with a message naming the flag or file at fault.
  """
  methods = parse_methods(methods)
  dataset = check_dataset(space, dataset)
  if isinstance(benchmark, BenchmarkTable):
    table, source = benchmark, benchmark.meta.get("source", "(table)")
  else:
    options = {}
    if reward is not None:
      if loader.source_kind(benchmark) != "csv-nb201":
        raise ValueError(
          f"reward={reward!r} picks a column of the NB201 CSV, but {os.fspath(benchmark)} is not one"
        )
      options["reward"] = reward
    # A search may run on part of a space (the shared NB101 data is a 30,001-cell subset; tests use heads of
    # the CSVs): accepted, the count is logged and kept in meta['table']['subset'].
    table = loader.load_table(
      benchmark,
      space=space,
      dataset=dataset if space == "nb201" else None,
      allow_subset=True,
      **options,
    )
    source = os.path.abspath(os.fspath(benchmark))
  if table.space != space:
    raise ValueError(f"{source}: a {table.space} table, but space={space!r}")
  table_ds = table.meta.get("dataset")
  if space == "nb201" and table_ds is not None and check_dataset(space, table_ds) != dataset:
    raise ValueError(f"{source}: a table of dataset {table_ds!r}, but dataset={dataset!r}")
  emb = _load_embeddings(embeddings, table, methods, per_node)
  if cost_per_query is not None:
    if not cost_per_query > 0:
      raise ValueError(f"cost_per_query must be > 0, got {cost_per_query}")
    cost, cost_desc = (
      np.full(len(table), float(cost_per_query)),
      f"fixed {cost_per_query:g} s per query",
    )
  else:
    cost, cost_desc = table.cost, table.meta.get("cost", "table")
  report = np.asarray(table.test_acc, np.float64)
  has_test = bool(np.isfinite(report).any())
  valid = np.asarray(table.valid_acc, np.float64)
  best = int(np.nanargmax(valid))
  env = env_lib.make_env(valid, report, cost, emb)
  neighbours = baselines.neighbour_table(table) if "re" in methods else None
  meta = {
    "benchmark": source,
    "table": {k: v for k, v in table.meta.items() if k != "source"},
    "cells": len(table),
    **_embeddings_meta(embeddings, emb, per_node),
    "reward": table.meta.get("reward", "valid_acc"),
    "report": table.meta.get("test", "test_acc")
    if has_test
    else "best validation accuracy (no test accuracy)",
    "cost": cost_desc,
  }
  return SearchProblem(
    space=space,
    dataset=dataset,
    table=table,
    env=env,
    neighbours=neighbours,
    field="best_test" if has_test else "best_valid",
    optimum=float(np.nanmax(report)) if has_test else float(valid[best]),
    oracle=float(report[best]) if has_test else math.nan,
    meta=meta,
  )


def make_budget(
  problem: SearchProblem,
  queries: int | None = None,
  time_budget: float | None = None,
  max_slots: int = 4096,
) -> env_lib.Budget:
  """The search budget: `queries` (default 100), or a time budget in simulated seconds.

  With a time budget the trace needs a static length: `queries` if given, else
  the most queries the budget can buy (`env.max_queries_for_cost`, at most
  `max_slots`).

  Raises:
    ValueError: a time budget on a table without query costs.
  """
  if time_budget is None:
    return env_lib.Budget(int(queries or 100))
  cost = np.asarray(problem.env.cost)
  if not np.all(cost > 0):
    raise ValueError(
      f"a time budget needs the query cost of every cell, but {problem.meta['benchmark']} has none "
      f"({problem.meta['cost']}): use a query budget, or a fixed cost per query"
    )
  if queries is None:
    queries = env_lib.max_queries_for_cost(cost, float(time_budget), cap=max_slots)
  return env_lib.Budget(int(queries), float(time_budget))


def query_points(budget: env_lib.Budget) -> list[int]:
  """Query counts to report: 10, 25, 50, 75 and 100% of the budget's queries."""
  t = int(budget.max_queries)
  return sorted({max(1, round(t * f)) for f in (0.1, 0.25, 0.5, 0.75, 1.0)})


def cost_points(budget: env_lib.Budget) -> list[float]:
  """Time budgets to report (seconds): 10, 25, 50, 75 and 100% of a time budget; none for a query budget."""
  if not budget.is_time:
    return []
  return [float(budget.max_cost) * f for f in (0.1, 0.25, 0.5, 0.75, 1.0)]


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


def save_trace(
  path: str | os.PathLike,
  trace: env_lib.Trace,
  keys: np.ndarray | None = None,
  meta: dict[str, Any] | None = None,
) -> None:
  """Writes per-seed traces ([S, T] fields of `Trace`) as a compressed `.npz` (atomic).

  Keys: the `Trace` fields, `seed_keys` (uint32 [S, 2] raw PRNG keys, if given)
  and `meta` (a JSON string). The slots after the last one any seed used (a
  time budget reserves room for the most queries the cheapest cells could buy)
  are dropped: they are masked in every seed and carry nothing.
  """
  used = np.flatnonzero(np.asarray(trace.mask).any(axis=0))
  slots = int(used[-1]) + 1 if used.size else 0
  arrays = {
    name: _smallest_int(np.asarray(getattr(trace, name))[:, :slots])
    for name in env_lib.Trace._fields
  }
  if keys is not None:
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
      keys = jax.random.key_data(keys)
    arrays["seed_keys"] = np.asarray(keys)
  arrays["meta"] = np.str_(json.dumps(meta or {}, sort_keys=True, default=str))
  fileio.atomic_save_npz(path, **arrays)


def _smallest_int(a: np.ndarray) -> np.ndarray:
  """An integer array in the smallest signed dtype that holds its values (files stay small); others unchanged."""
  if a.dtype.kind != "i" or not a.size:
    return a
  for dtype in (np.int8, np.int16):
    info = np.iinfo(dtype)
    if info.min <= a.min() and a.max() <= info.max:
      return a.astype(dtype)
  return a


def load_trace(path: str | os.PathLike) -> tuple[env_lib.Trace, dict[str, Any]]:
  """Reads `save_trace`'s file: (Trace of host arrays, meta)."""
  data = fileio.load_npz(path)
  missing = set(env_lib.Trace._fields) - set(data)
  if missing:
    raise ValueError(f"{os.fspath(path)}: not a search trace (missing {sorted(missing)})")
  meta = json.loads(str(data["meta"])) if "meta" in data else {}
  fields = (
    data[name].astype(np.int32) if data[name].dtype.kind == "i" else data[name]
    for name in env_lib.Trace._fields
  )
  return env_lib.Trace(*fields), meta


def curve(
  trace: env_lib.Trace,
  field: str = "best_test",
  x: str = "queries",
  grid: Sequence[float] | None = None,
  optimum: float | None = None,
  scale: float = 100.0,
) -> dict[str, list[float]]:
  """The mean search curve over seeds: `field` after each query count (or time).

  Args:
    trace: [S, T] fields.
    field: 'best_test' or 'best_valid'.
    x: 'queries' (grid default 1..T) or 'cost' (grid default 100 log-spaced
      times between the cheapest first query and the largest spend).
    grid: the x values.
    optimum: if given, the regret (optimum - value) is added.
    scale: 100 for percent.

  Returns:
    {'x', 'mean', 'std', 'stderr', 'n'[, 'regret_mean', 'regret_stderr']}
    (lists; a time point before a seed's first query leaves that seed out).
  """
  if x == "queries":
    grid = list(range(1, np.asarray(trace.mask).shape[1] + 1)) if grid is None else list(grid)
    vals = _values_at_queries(trace, grid, field)
  elif x == "cost":
    if grid is None:
      cost = np.asarray(trace.cost, np.float64)
      lo = float(np.min(np.where(np.asarray(trace.mask), cost, np.inf)))
      hi = float(np.max(cost))
      grid = np.geomspace(max(lo, 1e-9), max(hi, lo * 1.0001, 1e-9), 100).tolist()
    vals = np.stack([runner.value_at_cost(trace, float(t), field) for t in grid], axis=1)
  else:
    raise ValueError(f"x must be 'queries' or 'cost', got {x!r}")
  vals = np.asarray(vals, np.float64) * scale
  n = np.isfinite(vals).sum(axis=0)
  ok = np.isfinite(vals)
  filled = np.where(ok, vals, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):  # NaN where no seed has a value
    mean = filled.sum(axis=0) / n
    std = np.sqrt((np.where(ok, vals - mean, 0.0) ** 2).sum(axis=0) / n)
  out = {
    "x": [float(g) for g in grid],
    "mean": mean.tolist(),
    "std": std.tolist(),
    "stderr": (std / np.sqrt(np.maximum(n, 1))).tolist(),
    "n": n.tolist(),
  }
  if optimum is not None:
    out["regret_mean"] = (optimum * scale - mean).tolist()
    out["regret_stderr"] = out["stderr"]
  return out


def _values_at_queries(trace: env_lib.Trace, grid: Sequence[int], field: str) -> np.ndarray:
  """[S, G]: `field` after the first q queries for each q of `grid` (after the last query if fewer were made)."""
  made = np.asarray(trace.num_queries)
  vals = np.asarray(getattr(trace, field))
  q = np.asarray(grid, np.int64)
  out = np.empty((made.shape[0], len(q)), vals.dtype)
  for s in range(made.shape[0]):
    idx = np.minimum(np.searchsorted(made[s], q, side="left"), made.shape[1] - 1)
    out[s] = vals[s, idx]
  return out


def plot_curves(
  path: str | os.PathLike,
  curves: dict[str, dict[str, list[float]]],
  title: str,
  xlabel: str,
  ylabel: str,
  optimum: float | None = None,
  oracle: float | None = None,
  log_x: bool = False,
) -> None:
  """Accuracy (left) and regret (right, log scale) curves of several methods, mean +- standard error band (PNG, atomic).

  Args:
    path: the PNG.
    curves: method -> `curve(...)` output (with regret if `optimum` is given).
    title, xlabel, ylabel: labels (ylabel of the accuracy panel).
    optimum: the table's best (percent), drawn as a line; enables the regret panel.
    oracle: the test accuracy of the best-validation cell (percent), drawn dashed.
    log_x: log-scaled x axis (time budgets).
  """
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  panels = 2 if optimum is not None else 1
  fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
  ax = axes[0, 0]
  for name, c in curves.items():
    xs, m, se = np.asarray(c["x"]), np.asarray(c["mean"]), np.asarray(c["stderr"])
    (line,) = ax.plot(xs, m, label=_LABELS.get(name, name), lw=1.5)
    ax.fill_between(xs, m - se, m + se, color=line.get_color(), alpha=0.2, lw=0)
  if optimum is not None:
    ax.axhline(optimum, color="k", lw=0.8, ls=":", label=f"table best {optimum:.2f}")
  if oracle is not None and np.isfinite(oracle):
    ax.axhline(oracle, color="k", lw=0.8, ls="--", label=f"best-validation cell {oracle:.2f}")
  means = [v for c in curves.values() for v in c["mean"] if np.isfinite(v)]
  if means:  # zoom on the interesting part: from the median of the curves' starts to the top
    lo = float(
      np.nanmedian(
        [c["mean"][min(len(c["mean"]) - 1, len(c["mean"]) // 10)] for c in curves.values()]
      )
    )
    hi = max(means + ([optimum] if optimum is not None else []))
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=8, loc="lower right")
  ax.grid(alpha=0.3)
  if log_x:
    ax.set_xscale("log")
  if panels == 2:
    ax = axes[0, 1]
    for name, c in curves.items():
      xs, r, se = np.asarray(c["x"]), np.asarray(c["regret_mean"]), np.asarray(c["regret_stderr"])
      (line,) = ax.plot(xs, r, label=_LABELS.get(name, name), lw=1.5)
      ax.fill_between(xs, np.maximum(r - se, 1e-4), r + se, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("regret (table best - value), % points")
    ax.set_title("regret, mean +- standard error over seeds", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if log_x:
      ax.set_xscale("log")
    ax.legend(fontsize=8, loc="upper right")
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=120)
  plt.close(fig)
  fileio.atomic_write_bytes(path, buf.getvalue())


_LABELS = {
  "rl": "arch2vec-RL",
  "bo": "arch2vec-BO",
  "rs": "random search",
  "re": "regularized evolution",
  "gd": "arch2vec-GD",
}


def _config_dict(config: Any) -> Any:
  return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config


def _fmt(entry: dict[str, float]) -> str:
  return f"{entry['mean']:.2f} +- {entry['std']:.2f}"


def run_experiment(
  problem: SearchProblem,
  methods: Iterable[str],
  num_seeds: int,
  budget: env_lib.Budget,
  workdir: str | os.PathLike,
  seed: int = 0,
  configs: dict[str, Any] | None = None,
  command: str | None = None,
  log: Callable[[str], None] = print,
  merge: bool = False,
) -> dict[str, Any]:
  """Runs every method over all seeds (one compiled call each) and writes traces, summary and plot.

  Args:
    problem: from `load_problem` (loaded for at least these methods).
    methods: method names (`runner.METHODS`).
    num_seeds: seeds per method (a vmap axis).
    budget: from `make_budget`.
    workdir: output folder (traces/<method>.npz, summary.json, curves.png).
    seed: the root seed; seed i of every method uses key i of
      `jax.random.split(PRNGKey(seed), num_seeds)`.
    configs: optional method -> config overrides (default `runner.default_config`).
    command: the command line to record.
    log: where progress lines go.
    merge: add these methods to the experiment already in `workdir` (its
      summary.json and traces are kept; a method run again is replaced), e.g.
      an expensive method with fewer seeds (each method records its own seed
      count). The space, dataset, reward, budget and root seed must match.

  Returns:
    The summary (also written to summary.json).

  Raises:
    ValueError: on bad arguments, or with `merge` when the experiment in
      `workdir` is a different one (naming the field that differs).
  """
  methods = parse_methods(methods)
  if num_seeds < 1:
    raise ValueError(f"num_seeds must be >= 1, got {num_seeds}")
  for m in methods:
    if m in NEEDS_EMBEDDINGS and problem.env.embeddings.shape[1] < 2:
      raise ValueError(f"method {m!r} needs embeddings, but the problem was loaded without them")
    if m == "re" and problem.neighbours is None:
      raise ValueError(
        "method 're' needs the mutation neighbours: load the problem with 're' in its methods"
      )
  workdir = os.fspath(workdir)
  # Several processes (multi-host): every process runs its share of the seeds; process 0 writes.
  write = parallel.is_main_process()
  if write:
    os.makedirs(os.path.join(workdir, "traces"), exist_ok=True)
  at_q, at_c = query_points(budget), cost_points(budget)
  keys = jax.random.split(jax.random.PRNGKey(seed), int(num_seeds))
  scale = 100.0
  summary: dict[str, Any] = {
    "command": command,
    "space": problem.space,
    "dataset": problem.dataset,
    "problem": problem.meta,
    "field": problem.field,
    "optimum": problem.optimum * scale,
    "oracle_best_valid_cell": problem.oracle * scale if np.isfinite(problem.oracle) else None,
    "budget": {
      "queries": int(budget.max_queries),
      "time_s": budget.max_cost if budget.is_time else None,
    },
    "seeds": int(num_seeds),
    "seed": int(seed),
    "units": "percent",
    "machine": machine.machine_info(),
    "methods": {},
  }
  curves = {}
  x_kind = "cost" if budget.is_time else "queries"
  old_path = os.path.join(workdir, "summary.json")
  if merge and os.path.exists(old_path):
    with open(old_path, encoding="utf-8") as f:
      old = json.load(f)
    for name in ("space", "dataset", "field", "budget", "seed", "optimum"):
      if old.get(name) != summary[name]:
        raise ValueError(
          f"{old_path}: cannot merge: its {name} is {old.get(name)!r}, this run's is {summary[name]!r}"
        )
    rows = [s.get("problem", {}).get("embedding_rows_sha256") for s in (old, summary)]
    if None not in rows and rows[0] != rows[1]:
      raise ValueError(
        f"{old_path}: cannot merge: its methods searched other embedding rows (sha256 "
        f"{rows[0][:12]}...) than this run's ({rows[1][:12]}...): another encoder, features or machine"
      )
    summary["commands"] = old.get("commands", [old.get("command")]) + [command]
    summary["paper"] = old.get("paper", {})
    for m, entry in old["methods"].items():
      if m not in methods:
        summary["methods"][m] = entry
        trace, _ = load_trace(os.path.join(workdir, "traces", f"{m}.npz"))
        curves[m] = curve(trace, problem.field, x=x_kind, optimum=problem.optimum, scale=scale)
  if problem.space == "nb201":
    summary.setdefault("paper", {}).update(
      {m: PAPER_NB201[m][problem.dataset] for m in methods if m in PAPER_NB201}
    )
  for m in methods:
    config = (configs or {}).get(m, runner.default_config(m, problem.space))
    decoder = None
    if m == "gd" and config.mapping == "decoder":
      from arch2vec_jax import pretrained  # pylint: disable=import-outside-toplevel
      from arch2vec_jax.search import gd  # pylint: disable=import-outside-toplevel

      if problem.space != "nb201":
        raise ValueError("gd mapping='decoder' is implemented for nb201 tables only")
      decoder = gd.nb201_decoder(pretrained.load(config.decoder), problem.table.ids)
    graphs = None
    if m in ("sbo", "srl"):  # the supervised searches train their own encoder on the cells' graphs
      from arch2vec_jax.search import supervised  # pylint: disable=import-outside-toplevel

      graphs = supervised.graph_candidates(
        problem.table.adjacency, problem.table.ops, np.asarray(problem.env.available)
      )
    run = runner.make_search(
      m, config, problem.env, budget, problem.neighbours, decoder=decoder, graphs=graphs
    )
    log(
      f"[{m}] {num_seeds} seeds x {budget.max_queries} query slots"
      + (f" (time budget {budget.max_cost:g} s)" if budget.is_time else "")
      + ": compiling ..."
    )
    trace, times = timed_run_seeds(run, keys)
    if write:
      save_trace(
        os.path.join(workdir, "traces", f"{m}.npz"),
        trace,
        keys,
        {
          "method": m,
          "config": _config_dict(config),
          "space": problem.space,
          "dataset": problem.dataset,
          "budget": summary["budget"],
          "seed": int(seed),
          "field": problem.field,
        },
      )
    s = runner.summarize(
      trace,
      at_queries=at_q,
      at_cost=at_c,
      field=problem.field,
      optimum=problem.optimum,
      scale=scale,
    )
    s["config"] = _config_dict(config)
    s["time"] = {**times, "load_average": list(os.getloadavg())}
    summary["methods"][m] = s
    curves[m] = curve(trace, problem.field, x=x_kind, optimum=problem.optimum, scale=scale)
    at = s["cost"][f"{at_c[-1]:g}"] if at_c else s["queries"][str(at_q[-1])]
    log(
      f"[{m}] compile {times['compile_s']:.1f} s, run {times['run_s']:.1f} s; "
      f"{'test' if problem.field == 'best_test' else 'validation'} accuracy {_fmt(at)} %, regret "
      f"{at['regret_mean']:.3f} % (mean over {num_seeds} seeds)"
    )
    # Written after every method, so that an interrupted run keeps what is done.
    summary["machine"]["load_average_at_end"] = list(os.getloadavg())
    if not write:
      continue
    fileio.atomic_write_json(os.path.join(workdir, "summary.json"), summary)
    what = (
      "test accuracy of the best-validation cell"
      if problem.field == "best_test"
      else "best validation accuracy"
    )
    plot_curves(
      os.path.join(workdir, "curves.png"),
      curves,
      title=f"{problem.space.upper()} {problem.dataset}: {what}, "
      f"{'/'.join(sorted({str(e['seeds']) for e in summary['methods'].values()}))} seeds",
      xlabel="simulated training time (s)" if budget.is_time else "queries",
      ylabel=f"{what} (%)",
      optimum=problem.optimum * scale,
      oracle=problem.oracle * scale if np.isfinite(problem.oracle) else None,
      log_x=budget.is_time,
    )
  log(format_summary(summary))
  return summary


def format_summary(summary: dict[str, Any]) -> str:
  """A table of the summary: per method, the value at each reported budget, and the paper's number."""
  kind = "cost" if summary["budget"]["time_s"] else "queries"
  points = list(next(iter(summary["methods"].values()))[kind]) if summary["methods"] else []
  seeds = sorted({s.get("seeds", summary["seeds"]) for s in summary["methods"].values()}) or [
    summary["seeds"]
  ]
  head = (
    f"{summary['space']} {summary['dataset']} ({summary['field']}, %, mean +- std over "
    f"{'/'.join(map(str, seeds))} seeds)"
  )
  lines = [
    head,
    f"{'method':8s}"
    + "".join(f"{kind[:1] + '=' + p:>16s}" for p in points)
    + "   paper   compile/run s",
  ]
  for m, s in summary["methods"].items():
    paper = summary.get("paper", {}).get(m)
    lines.append(
      f"{m:8s}"
      + "".join(f"{_fmt(s[kind][p]):>16s}" for p in points)
      + (f"   {paper:5.2f}" if paper is not None else "        ")
      + f"   {s['time']['compile_s']:.1f}/{s['time']['run_s']:.1f}"
      + (f"   ({s['seeds']} seeds)" if len(seeds) > 1 else "")
    )
  lines.append(
    f"table best {summary['optimum']:.2f}"
    + (
      f", best-validation cell {summary['oracle_best_valid_cell']:.2f}"
      if summary.get("oracle_best_valid_cell") is not None
      else ""
    )
  )
  return "\n".join(lines)
