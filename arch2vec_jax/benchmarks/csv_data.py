"""Readers for the shared benchmark CSVs (`shared/data/*.csv`) into BenchmarkTable.

`nb201_accuracies.csv`: all 15,625 NAS-Bench-201 cells in benchmark order,
accuracies in percent (converted to fractions here). The file has no training
times, so `cost` is NaN; use a fixed cost per query, or a `.pth` / `.pickle.pbz2`
for the benchmark's simulated training time.

`nb101_subset.csv`: 30,001 NAS-Bench-101 cells, ONE training run each (the
official per-cell number is a mean of three), validation accuracy as a
fraction at 4/12/36/108 epochs, training time at 108 epochs, no test accuracy
(`test_acc` is NaN). Every row's hash is checked against the space's own
NAS-Bench-101 hash of its (adjacency, operations).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterator

import numpy as np

from arch2vec_jax.benchmarks import tfrecord
from arch2vec_jax.benchmarks.table import BenchmarkTable, Column, build_table
from arch2vec_jax.spaces import nb101, nb201

__all__ = [
  "ANALYSIS_SPACES",
  "NB201_CSV_DATASETS",
  "SHARED_CSV",
  "csv_kind",
  "nb201_csv_prefix",
  "read_analysis_table",
  "read_nb101_csv",
  "read_nb201_csv",
]

# The shared CSV of each space, relative to the repository root (../shared/data/README.md).
SHARED_CSV = {
  "nb201": "../shared/data/nb201_accuracies.csv",
  "nb101": "../shared/data/nb101_subset.csv",
}

# Dataset name -> column prefix in nb201_accuracies.csv.
NB201_CSV_DATASETS = {
  "cifar10": "cifar10",
  "cifar10-valid": "cifar10",
  "cifar100": "cifar100",
  "imagenet16": "imagenet16",
  "imagenet16-120": "imagenet16",
}


def nb201_csv_prefix(dataset: str) -> str:
  """Column prefix of a dataset: 'cifar10' | 'cifar100' | 'imagenet16' (NB201 names accepted)."""
  try:
    return NB201_CSV_DATASETS[str(dataset).lower()]
  except KeyError:
    raise ValueError(
      f"unknown dataset {dataset!r}; expected cifar10, cifar100 or imagenet16"
    ) from None


def _rows(path: str, required: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
  """(line number, {column: text}) per data row; checks the header and field counts."""
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.reader(f)
    try:
      header = next(reader)
    except StopIteration:
      raise ValueError(f"{path}: empty file (no header)") from None
    missing = [c for c in required if c not in header]
    if missing:
      raise ValueError(f"{path}: missing column(s) {missing}; header has {header}")
    cols = {c: header.index(c) for c in required}
    try:
      for row in reader:
        if not row:
          continue
        if len(row) != len(header):
          raise ValueError(
            f"{path}: line {reader.line_num}: {len(row)} fields, header has {len(header)}"
          )
        yield reader.line_num, {c: row[i] for c, i in cols.items()}
    except csv.Error as e:
      raise ValueError(f"{path}: line {reader.line_num}: {e}") from None


def _number(path: str, line: int, column: str, text: str) -> float:
  """The field as a float (ranges are checked by `table.build_table`)."""
  try:
    return float(text)
  except ValueError:
    raise ValueError(f"{path}: line {line}: column {column!r} is {text!r}, not a number") from None


def _line(lines: list[int]) -> Callable[[int], str]:
  return lambda k: f"line {lines[k]}"


def csv_kind(path: str | os.PathLike) -> str:
  """'nb201' or 'nb101' from the header of a shared CSV."""
  path = os.fspath(path)
  with open(path, newline="", encoding="utf-8") as f:
    header = next(csv.reader(f), [])
  if "arch_str" in header:
    return "nb201"
  if "hash" in header and "adjacency" in header:
    return "nb101"
  raise ValueError(f"{path}: not a shared benchmark CSV (header {header})")


def read_nb201_csv(
  path: str | os.PathLike,
  dataset: str = "cifar10",
  reward: str = "valid_12ep",
  report: str = "test_200ep",
  allow_subset: bool = False,
) -> BenchmarkTable:
  """Reads `nb201_accuracies.csv` for one dataset.

  Args:
    path: the CSV.
    dataset: 'cifar10' (reward from the cifar10-valid split, report on cifar10
      train+valid), 'cifar100' or 'imagenet16'.
    reward: column suffix for `valid_acc` ('valid_12ep' in the paper protocol).
    report: column suffix for `test_acc` ('test_200ep'; or 'test_12ep').
    allow_subset: accept fewer than the 15,625 cells (the count is logged).

  Returns:
    BenchmarkTable(space='nb201'), one row per CSV row: valid_acc / test_acc as
    fractions, cost NaN (the CSV has no training times), ids the arch strings,
    index the benchmark index.

  Raises:
    ValueError: naming the file (and line), for a missing column, a bad field
      count or number, an accuracy outside [0, 100], an arch string that is not
      at its benchmark index, a cell twice, or fewer than 15,625 cells
      without `allow_subset` (see `table.build_table`).
  """
  path = os.fspath(path)
  prefix = nb201_csv_prefix(dataset)
  vcol, tcol = f"{prefix}_{reward}", f"{prefix}_{report}"
  lines, index, ids, valid, test = [], [], [], [], []
  for line, row in _rows(path, ["index", "arch_str", vcol, tcol]):
    try:
      i = int(row["index"])
    except ValueError:
      raise ValueError(f"{path}: line {line}: index {row['index']!r} is not an integer") from None
    arch = row["arch_str"]
    try:
      j = nb201.index_of(arch)
    except ValueError as e:
      raise ValueError(f"{path}: line {line}: {e}") from None
    if i != j:
      raise ValueError(f"{path}: line {line}: index {i} but {arch!r} is cell {j} of NAS-Bench-201")
    lines.append(line)
    index.append(i)
    ids.append(arch)
    valid.append(_number(path, line, vcol, row[vcol]))
    test.append(_number(path, line, tcol, row[tcol]))
  if not ids:
    raise ValueError(f"{path}: no data rows")
  adjacency, ops = nb201.encode_batch(ids)
  where = _line(lines)
  return build_table(
    "nb201",
    path,
    adjacency=adjacency,
    ops=ops,
    ids=ids,
    index=index,
    valid=Column.per_cell(valid, f"column {vcol!r}", where),
    test=Column.per_cell(test, f"column {tcol!r}", where),
    cost=None,
    acc_scale=100.0,
    cell_where=where,
    allow_subset=allow_subset,
    meta={
      "source": os.path.abspath(path),
      "format": "nb201-csv",
      "dataset": prefix,
      "reward": vcol,
      "test": tcol,
      "cost": "none (NaN): the CSV has no training times",
      "units": "fractions (CSV percent / 100)",
    },
  )


def read_nb101_csv(
  path: str | os.PathLike, epochs: int = 108, verify_hash: bool = True, allow_subset: bool = False
) -> BenchmarkTable:
  """Reads `nb101_subset.csv`.

  Args:
    path: the CSV.
    epochs: which `valid_acc_{epochs}ep` column is the reward (4, 12, 36, 108).
    verify_hash: check every row's hash with the space's NAS-Bench-101 hash.
    allow_subset: accept fewer than the 423,624 cells of NAS-Bench-101 (needed
      for `nb101_subset.csv`, 30,001 cells; the count is logged).

  Returns:
    BenchmarkTable(space='nb101'): valid_acc the single run's validation
    accuracy, test_acc NaN (not in the file), cost `training_time_108ep` (NaN
    for other epochs), ids the hashes, index the row number (0-based).

  Raises:
    ValueError: naming the file and line, for missing columns, malformed rows,
      an accuracy outside [0, 1], a negative training time, a hash that does not
      match the row's graph, a cell twice, or a subset without `allow_subset`.
  """
  path = os.fspath(path)
  vcol = f"valid_acc_{int(epochs)}ep"
  tcol = "training_time_108ep"
  lines, ids, adjs, ops, valid, cost = [], [], [], [], [], []
  for line, row in _rows(path, ["hash", "num_vertices", "adjacency", "operations", vcol, tcol]):
    try:
      v = int(row["num_vertices"])
    except ValueError:
      raise ValueError(
        f"{path}: line {line}: num_vertices {row['num_vertices']!r} is not an integer"
      ) from None
    if len(row["adjacency"]) != v * v:
      raise ValueError(
        f"{path}: line {line}: adjacency of length {len(row['adjacency'])} for {v} vertices"
      )
    lines.append(line)
    ids.append(row["hash"])
    adjs.append(row["adjacency"])
    ops.append(row["operations"].split("|"))
    valid.append(_number(path, line, vcol, row[vcol]))
    if int(epochs) == 108:
      cost.append(_number(path, line, tcol, row[tcol]))
  if not ids:
    raise ValueError(f"{path}: no data rows")
  try:
    adjacency, onehot = tfrecord.encode_nb101_raw(adjs, ops)
  except tfrecord.CellError as e:
    raise ValueError(f"{path}: line {lines[e.cell]}: {e.reason}") from None
  hashes = np.asarray(ids, dtype=str)
  if verify_hash:
    computed = np.asarray(nb101.hash_batch(adjacency, onehot), dtype=str)
    for k in np.flatnonzero(computed != hashes):
      raise ValueError(
        f"{path}: line {lines[k]}: hash {hashes[k]} != {computed[k] or '(invalid cell)'}, "
        "the NAS-Bench-101 hash of its adjacency and operations"
      )
  where = _line(lines)
  return build_table(
    "nb101",
    path,
    adjacency=adjacency,
    ops=onehot,
    ids=hashes,
    index=np.arange(len(ids), dtype=np.int64),
    valid=Column.per_cell(valid, f"column {vcol!r}", where),
    test=None,
    cost=Column.per_cell(cost, f"column {tcol!r}", where) if cost else None,
    acc_scale=1.0,
    cell_where=where,
    allow_subset=allow_subset,
    meta={
      "source": os.path.abspath(path),
      "format": "nb101-csv",
      "dataset": "cifar10",
      "epochs": int(epochs),
      "reward": vcol,
      "test": "none (NaN): the CSV has no test accuracy",
      "cost": tcol if int(epochs) == 108 else "none (NaN): training time only at 108 epochs",
      "hash_verified": bool(verify_hash),
    },
  )


# How the analyses read each space's shared CSV: NB201 one dataset's table (all 15,625
# cells); NB101 the 30,001-cell subset as shipped (its hashes not checked again).
_ANALYSIS_READERS: dict[str, Callable[[str | os.PathLike, str], BenchmarkTable]] = {
  "nb201": lambda path, dataset: read_nb201_csv(path, dataset),
  "nb101": lambda path, dataset: read_nb101_csv(path, verify_hash=False, allow_subset=True),
}
# The spaces whose shared CSV `read_analysis_table` reads.
ANALYSIS_SPACES: tuple[str, ...] = tuple(_ANALYSIS_READERS)


def read_analysis_table(
  path: str | os.PathLike, space: str, dataset: str = "cifar10"
) -> BenchmarkTable:
  """The table of a space's shared CSV as the analyses read it.

  Args:
    path: the CSV (`nb201_accuracies.csv`, `nb101_subset.csv` or a head of it).
    space: one of `ANALYSIS_SPACES`.
    dataset: NB201: 'cifar10', 'cifar100' or 'imagenet16'; NB101: unused (CIFAR-10).

  Raises:
    ValueError: for another space, or from the reader (naming the file).
  """
  if space not in _ANALYSIS_READERS:
    raise ValueError(f"no shared CSV reader for space {space!r} ({', '.join(ANALYSIS_SPACES)})")
  return _ANALYSIS_READERS[space](path, dataset)
