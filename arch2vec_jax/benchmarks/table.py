"""One table type for every benchmark: cells, accuracies, costs, identifiers.

Every reader builds its table with `build_table`, the one place where the
numbers of a source are checked: accuracies finite and in the range of the
format ([0, 1] for fractions, [0, 100] for percent), costs finite and >= 0,
every cell exactly once, (optionally) every cell with the same number of runs,
and the number of cells the space has (`SPACE_SIZES`) unless the caller asks
for a subset with `allow_subset=True`. Each error is a ValueError naming the
source, where in it the offending run or cell is (line, record, key path) and
the value.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from arch2vec_jax import fileio

__all__ = ["SPACE_SIZES", "BenchmarkTable", "Column", "build_table"]

_FORMAT_VERSION = 1
_LOG = logging.getLogger("arch2vec_jax.benchmarks")

# Cells of each search space in its benchmark (NB101: the full file and nasbench_only108).
SPACE_SIZES = {"nb101": 423_624, "nb201": 15_625}


@dataclasses.dataclass(frozen=True)
class BenchmarkTable:
  """Cells of one search space with their benchmark numbers.

  Attributes:
    space: 'nb101', 'nb201' or 'darts'.
    adjacency: int8 [N, n, n], strictly upper-triangular 0/1 (see spaces.base).
    ops: int8 [N, n, d], one-hot operations; padding rows all zero.
    valid_acc: float64 [N], validation accuracy as a fraction in [0, 1]
      (the search reward); NaN where the source has none.
    test_acc: float64 [N], test accuracy as a fraction; NaN where unknown.
    cost: float64 [N], query cost in seconds (training time); NaN where unknown.
    ids: str [N], the cell identifier of the source (NB101 hash, NB201 arch
      string, DARTS genotype string).
    index: int64 [N], the cell's index in the source benchmark.
    meta: JSON-serialisable description (source file, dataset, epochs, split ...).
  """

  space: str
  adjacency: np.ndarray
  ops: np.ndarray
  valid_acc: np.ndarray
  test_acc: np.ndarray
  cost: np.ndarray
  ids: np.ndarray
  index: np.ndarray
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)

  def __post_init__(self):
    n = len(self.ids)
    if self.adjacency.ndim != 3 or self.adjacency.shape[1] != self.adjacency.shape[2]:
      raise ValueError(f"adjacency must be [N, n, n], got {self.adjacency.shape}")
    if self.ops.ndim != 3 or self.ops.shape[:2] != self.adjacency.shape[:2]:
      raise ValueError(
        f"ops must be [N, n, d] matching adjacency {self.adjacency.shape}, got {self.ops.shape}"
      )
    for name in ("adjacency", "ops", "valid_acc", "test_acc", "cost", "index"):
      if len(getattr(self, name)) != n:
        raise ValueError(f"{name} has {len(getattr(self, name))} rows, ids has {n}")

  def __len__(self) -> int:
    return len(self.ids)

  def save(self, path: str | os.PathLike) -> None:
    """Saves the table as a compressed `.npz` (atomic write)."""
    fileio.atomic_save_npz(
      path,
      format_version=np.int64(_FORMAT_VERSION),
      space=np.str_(self.space),
      adjacency=self.adjacency.astype(np.int8),
      ops=self.ops.astype(np.int8),
      valid_acc=self.valid_acc.astype(np.float64),
      test_acc=self.test_acc.astype(np.float64),
      cost=self.cost.astype(np.float64),
      ids=self.ids.astype(str),
      index=self.index.astype(np.int64),
      meta=np.str_(json.dumps(self.meta, sort_keys=True)),
    )

  @classmethod
  def load(cls, path: str | os.PathLike) -> BenchmarkTable:
    """Loads a table written by `save`; raises ValueError naming the file if it is not one."""
    z = fileio.load_npz(path)
    missing = {
      "format_version",
      "space",
      "adjacency",
      "ops",
      "valid_acc",
      "test_acc",
      "cost",
      "ids",
      "index",
      "meta",
    } - set(z)
    if missing:
      raise ValueError(f"{os.fspath(path)}: not a BenchmarkTable cache (missing {sorted(missing)})")
    if int(z["format_version"]) != _FORMAT_VERSION:
      raise ValueError(
        f"{os.fspath(path)}: table format {int(z['format_version'])}, expected {_FORMAT_VERSION}"
      )
    return cls(
      space=str(z["space"]),
      adjacency=z["adjacency"],
      ops=z["ops"],
      valid_acc=z["valid_acc"],
      test_acc=z["test_acc"],
      cost=z["cost"],
      ids=z["ids"],
      index=z["index"],
      meta=json.loads(str(z["meta"])),
    )


@dataclasses.dataclass(frozen=True)
class Column:
  """Per-run values of one table column, as the source stores them.

  Attributes:
    values: float64 [M], one value per run, in the source's unit.
    cell: int64 [M], the table row each run belongs to.
    name: the field as the source names it, for messages (e.g. "column 'valid_acc_108ep'").
    where: run m -> where it is in the source (e.g. 'line 7', 'record 12 at byte offset 3456').
  """

  values: np.ndarray
  cell: np.ndarray
  name: str
  where: Callable[[int], str]

  @classmethod
  def per_cell(cls, values: Any, name: str, where: Callable[[int], str]) -> Column:
    """A column with exactly one run per cell: values float [N], run k is cell k."""
    values = np.asarray(values, np.float64).reshape(-1)
    return cls(values, np.arange(len(values), dtype=np.int64), name, where)


def _check_values(source: str, col: Column, lo: float, hi: float) -> None:
  """Raises a ValueError naming the first run whose value is not finite or outside [lo, hi]."""
  v = np.asarray(col.values, np.float64)
  bad = ~np.isfinite(v) | (v < lo) | (v > hi)
  if bad.any():
    m = int(np.argmax(bad))
    finite = math.isfinite(v[m])
    what = f"outside [{float(lo)}, {float(hi)}]" if finite else "is not a finite number"
    raise ValueError(f"{source}: {col.where(m)}: {col.name} = {float(v[m])!r} {what}")


def _means(
  source: str,
  col: Column,
  n: int,
  required: bool,
  ids: np.ndarray,
  cell_where: Callable[[int], str],
) -> tuple[np.ndarray, np.ndarray]:
  """(mean over runs float64 [N] (NaN without runs), runs per cell int64 [N])."""
  cell = np.asarray(col.cell, np.int64)
  if cell.shape != np.shape(col.values):
    raise ValueError(
      f"{source}: {col.name}: {cell.shape} cell numbers for {np.shape(col.values)} values"
    )
  counts = np.bincount(cell, minlength=n)
  if required and (counts == 0).any():
    k = int(np.argmin(counts))
    raise ValueError(f"{source}: cell {ids[k]} ({cell_where(k)}): no {col.name}")
  sums = np.bincount(cell, weights=np.asarray(col.values, np.float64), minlength=n)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), counts


def _first_duplicate(keys: np.ndarray) -> tuple[int, int] | None:
  seen: dict[Any, int] = {}
  for k, key in enumerate(keys.tolist()):
    j = seen.setdefault(key, k)
    if j != k:
      return j, k
  return None


def build_table(
  space: str,
  source: str,
  *,
  adjacency: np.ndarray,
  ops: np.ndarray,
  ids: Any,
  index: Any,
  valid: Column,
  test: Column | None,
  cost: Column | None,
  acc_scale: float,
  cell_where: Callable[[int], str],
  same_runs: bool = False,
  allow_subset: bool = False,
  meta: dict[str, Any] | None = None,
) -> BenchmarkTable:
  """Checks the numbers of a source and builds its table (the one validation every reader uses).

  Args:
    space: 'nb101', 'nb201' or 'darts'.
    source: the file (or folder) name used in messages.
    adjacency: int8 [N, n, n]; ops: int8 [N, n, d] (as `BenchmarkTable`).
    ids: str [N] cell identifiers; index: int [N] benchmark indexes.
    valid: the reward's per-run values (every cell needs at least one run).
    test: per-run test accuracies, or None (unknown: NaN); cells without runs get NaN.
    cost: per-run costs in seconds, or None (unknown: NaN); cells without runs get NaN.
    acc_scale: 1.0 if the source stores fractions, 100.0 for percent; accuracies
      must lie in [0, acc_scale] and are stored divided by it.
    cell_where: row k -> where cell k is in the source (for messages).
    same_runs: every cell must have as many `valid` runs as the others (NB101:
      a cell averaged over fewer runs than the rest is a truncated file).
    allow_subset: accept fewer cells than `SPACE_SIZES[space]` (logged, and
      recorded as meta['subset']); otherwise that is an error.
    meta: the table's meta; 'num_runs' (and 'subset') are added.

  Returns:
    The BenchmarkTable; accuracies are means over runs as fractions, costs means over runs.

  Raises:
    ValueError: naming the source and the run or cell, for a value that is not
      finite or out of range, a cell without runs, a cell with another number of
      runs (same_runs), a cell or index present twice, or a table of the wrong size.
  """
  ids = np.asarray(ids, dtype=str)
  index = np.asarray(index, np.int64)
  n = len(ids)
  if n == 0:
    raise ValueError(f"{source}: no cells")
  for col, hi in ((valid, acc_scale), (test, acc_scale), (cost, math.inf)):
    if col is not None:
      _check_values(source, col, 0.0, hi)
  valid_acc, runs = _means(source, valid, n, True, ids, cell_where)
  nan = np.full(n, np.nan)
  test_acc = nan if test is None else _means(source, test, n, False, ids, cell_where)[0]
  costs = nan if cost is None else _means(source, cost, n, False, ids, cell_where)[0]
  if same_runs and (runs != runs[0]).any():
    common, count = collections.Counter(runs.tolist()).most_common(1)[0]
    k = int(np.argmax(runs != common))
    raise ValueError(
      f"{source}: cell {ids[k]} ({cell_where(k)}) has {runs[k]} run(s), but {count} "
      f"of the {n} cells have {common}: a truncated or incomplete file?"
    )
  for keys, what in ((ids, "cell"), (index, "index")):
    dup = _first_duplicate(keys)
    if dup is not None:
      j, k = dup
      raise ValueError(
        f"{source}: {what} {keys[k]} appears twice: {cell_where(j)} and {cell_where(k)}"
      )
  meta = dict(meta or {})
  same = bool((runs == runs[0]).all())
  meta["num_runs"] = int(runs[0]) if same else {"min": int(runs.min()), "max": int(runs.max())}
  expected = SPACE_SIZES.get(space)
  if expected is not None and n != expected:
    if n > expected or not allow_subset:
      hint = "; a truncated or partial file? (pass allow_subset=True to read a subset)"
      raise ValueError(
        f"{source}: {n} cells, but {space} has {expected}" + (hint if n < expected else "")
      )
    meta["subset"] = {"cells": n, "of": expected}
    _LOG.warning(
      "%s: a subset of %s: %d of its %d cells (allow_subset=True)", source, space, n, expected
    )
  return BenchmarkTable(
    space=space,
    adjacency=adjacency,
    ops=ops,
    valid_acc=valid_acc / acc_scale,
    test_acc=test_acc / acc_scale,
    cost=costs,
    ids=ids,
    index=index,
    meta=meta,
  )
