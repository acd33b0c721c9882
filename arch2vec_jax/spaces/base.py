"""The common interface of the three search spaces.

A batch of cells is always two arrays:
  adjacency: int8 [N, n, n], 0/1, strictly upper triangular (DAG in topological
    order), zero rows/columns for padding nodes.
  ops: int8 [N, n, d], one-hot node operations over `SearchSpace.ops`; padding
    nodes are all-zero rows.
`n` and `d` are fixed per space (NB101 7 x 5, NB201 8 x 7, DARTS 11 x 11), so
batches have static shapes for `jit`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

__all__ = ["SearchSpace"]


@dataclasses.dataclass(frozen=True)
class SearchSpace:
  """A search space as the model, metrics and search see it.

  Attributes:
    name: 'nb101', 'nb201' or 'darts'.
    num_nodes: n, the padded node count of a cell.
    ops: the one-hot vocabulary (length d), in encoding order.
    cells: `cells(**kwargs) -> (adjacency [N,n,n] int8, ops [N,n,d] int8)`, every
      cell used for pre-training (NB101: the enumerated space ordered by hash;
      NB201: the 15,625 cells in benchmark order; DARTS: seeded sampling).
    is_valid: `is_valid(adjacency, ops) -> bool [N]` for decoded cells
      (adjacency 0/1 [N,n,n], ops one-hot [N,n,d]); vectorised.
    hash: `hash(adjacency, ops) -> array [N]` of hashable identifiers (str);
      two cells get the same value iff they are the same cell of the space.
      Defined for valid cells.
    validity_parts: optional `validity_parts(adjacency, ops) -> {check: bool [N]}`,
      the checks `is_valid` combines, to show which one decodes fail (None: the
      space does not break validity down).
    sampled: True: `cells(num_cells=, seed=)` samples the cells (DARTS); False:
      `cells()` lists the whole space in a fixed order (NB101, NB201).
  """

  name: str
  num_nodes: int
  ops: tuple[str, ...]
  cells: Callable[..., tuple[np.ndarray, np.ndarray]]
  is_valid: Callable[[np.ndarray, np.ndarray], np.ndarray]
  hash: Callable[[np.ndarray, np.ndarray], np.ndarray]
  validity_parts: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]] | None = None
  sampled: bool = False

  def pretraining_cells(
    self, num_cells: int | None = None, seed: int = 0
  ) -> tuple[np.ndarray, np.ndarray]:
    """The cells pre-training uses: (adjacency int8 [N, n, n], ops int8 [N, n, d]).

    Args:
      num_cells: a sampled space: N, the cells to sample (None: `cells`'
        default); a listed space: its first N cells (None: all).
      seed: the sampling seed of a sampled space (unused otherwise).
    """
    if self.sampled:
      sizes = {} if num_cells is None else {"num_cells": int(num_cells)}
      adjacency, ops = self.cells(seed=seed, **sizes)
    else:
      adjacency, ops = self.cells()
      adjacency, ops = adjacency[:num_cells], ops[:num_cells]
    return np.asarray(adjacency, np.int8), np.asarray(ops, np.int8)

  @property
  def num_ops(self) -> int:
    """d, the width of the one-hot operation encoding."""
    return len(self.ops)
