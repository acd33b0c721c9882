"""One table type for every benchmark: cells, accuracies, costs, identifiers."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from arch2vec_jax import fileio

__all__ = ["BenchmarkTable"]

_FORMAT_VERSION = 1


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
      raise ValueError(f"ops must be [N, n, d] matching adjacency {self.adjacency.shape}, got {self.ops.shape}")
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
  def load(cls, path: str | os.PathLike) -> "BenchmarkTable":
    """Loads a table written by `save`; raises ValueError naming the file if it is not one."""
    z = fileio.load_npz(path)
    missing = {"format_version", "space", "adjacency", "ops", "valid_acc", "test_acc", "cost", "ids", "index", "meta"} - set(z)
    if missing:
      raise ValueError(f"{os.fspath(path)}: not a BenchmarkTable cache (missing {sorted(missing)})")
    if int(z["format_version"]) != _FORMAT_VERSION:
      raise ValueError(f"{os.fspath(path)}: table format {int(z['format_version'])}, expected {_FORMAT_VERSION}")
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
