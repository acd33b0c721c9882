"""A search problem: a benchmark table, the embeddings of its cells and the environment, and its budget.

  problem = load_problem("nb201", "../shared/data/nb201_accuracies.csv", "cifar10",
                         embeddings="workdir/nb201/embeddings.npz")
  budget = make_budget(problem, queries=100)

`load_problem` reads the table (any source `benchmarks.loader.load_table`
takes: a `.npz` cache, an original benchmark file or a shared CSV), matches the
pre-trained embeddings to its cells by identifier (NB201 arch strings, NB101
hashes) and builds the `SearchEnv`: reward = the table's validation accuracy,
report = its test accuracy, cost = its training time (or a fixed cost per
query). What is reported follows the table: the test accuracy of the
best-validation cell where the table has test accuracies (NB201), else the best
validation accuracy itself (the NB101 subset, reported as validation regret
against the table's best).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import pretrained, spaces
from arch2vec_jax.benchmarks import loader
from arch2vec_jax.benchmarks.table import BenchmarkTable
from arch2vec_jax.search import baselines, runner
from arch2vec_jax.search import env as env_lib

__all__ = [
  "DATASETS",
  "NEEDS_EMBEDDINGS",
  "SPACES",
  "SearchProblem",
  "check_dataset",
  "is_encoder_source",
  "is_shipped_name",
  "load_problem",
  "make_budget",
  "parse_methods",
]

SPACES = ("nb201", "nb101")
# Datasets per space (`SearchSpace.datasets`; NB201: the paper protocol of `benchmarks.loader`).
DATASETS = {name: spaces.get(name).datasets for name in SPACES}
# Methods that search in the embedding space.
NEEDS_EMBEDDINGS = ("rl", "bo", "gd")
# The paper's NB201 test accuracies (%, mean over 500 seeds), Yan et al. 2020, Table 4.


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
      dataset=dataset,
      allow_subset=True,
      **options,
    )
    source = os.path.abspath(os.fspath(benchmark))
  if table.space != space:
    raise ValueError(f"{source}: a {table.space} table, but space={space!r}")
  table_ds = table.meta.get("dataset")
  # Where the space has a table per dataset, the table must be that dataset's.
  several = len(DATASETS[space]) > 1
  if several and table_ds is not None and check_dataset(space, table_ds) != dataset:
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
