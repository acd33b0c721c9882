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
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["NativeCells", "SearchSpace", "check_batch_shapes", "one_hot_labels"]


@dataclasses.dataclass(frozen=True)
class NativeCells:
  """A space's own way to write one cell (NB101 spec, NB201 arch string, DARTS genotype).

  Attributes:
    form: what that form is, for messages (e.g. 'a NAS-Bench-201 arch string').
    parse: `parse(cell) -> parsed`, one cell in that form checked and read;
      TypeError for an object that is not of the form, ValueError (naming the
      fault) for a malformed one.
    to_cells: `to_cells(parsed) -> (adjacency int8 [N, n, n], ops int8 [N, n, d])`
      of a non-empty list of N `parse` results (vectorised where the space can).
    from_cells: `from_cells(adjacency [N, n, n], ops [N, n, d]) -> list` of N
      cells in the form; defined for strictly valid cells (`is_valid(strict=True)`
      where the space has it).
  """

  form: str
  parse: Callable[[Any], Any]
  to_cells: Callable[[list], tuple[np.ndarray, np.ndarray]]
  from_cells: Callable[[np.ndarray, np.ndarray], list]

  def encode(self, cells: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(adjacency int8 [N, n, n], ops int8 [N, n, d]) of N >= 1 cells in the form."""
    return self.to_cells([self.parse(c) for c in cells])


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
    native: how one cell is written in the space's own form (`NativeCells`), None
      where it has none.
    ids_are_cells: True where the identifiers of valid cells (`hash`) are the
      cells in that form (NB201 arch strings): `native.encode(ids)` gives the
      cells of a table back from its ids alone.
    datasets: the datasets of the space's benchmark tables, the default first
      (NB201 'cifar10', 'cifar100', 'imagenet16'; NB101 'cifar10'); () for a space
      without tables (DARTS).
    search_defaults: method -> {config field: value}, what the space's searches
      change in a method's defaults (`search.runner.default_config` builds the
      configs from it; the supervised variants take BO's top_k and RL's config);
      {} for a space that is not searched (DARTS).
    neighbours: optional `neighbours(ids [N], adjacency [N,n,n], ops [N,n,d]) ->
      int32 [N, K]`, each table cell's mutation neighbours as row indices into the
      table, -1 padded (regularized evolution's moves); None: no mutation.
    edit_codes: optional `edit_codes(ids [N], adjacency, ops) -> (codes int32 [N, C],
      group int32 [N] or None)`: integer codes whose Hamming distance is the edit
      distance of two cells of the same group (None: all one group), for the
      smoothness analysis.
    table_rows: optional `table_rows(ids [N]) -> row`, `row(adjacency [n, n],
      ops [n, d]) -> int32 []` a jittable (jax) map of one decoded cell to its
      row among `ids`, -1 when it is none of them (the gradient search's decoder
      mapping); None: not available.
  """

  name: str
  num_nodes: int
  ops: tuple[str, ...]
  cells: Callable[..., tuple[np.ndarray, np.ndarray]]
  is_valid: Callable[[np.ndarray, np.ndarray], np.ndarray]
  hash: Callable[[np.ndarray, np.ndarray], np.ndarray]
  validity_parts: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]] | None = None
  sampled: bool = False
  native: NativeCells | None = None
  ids_are_cells: bool = False
  datasets: tuple[str, ...] = ()
  search_defaults: Mapping[str, Mapping[str, Any]] = dataclasses.field(
    default_factory=dict, hash=False
  )
  neighbours: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None
  edit_codes: Callable[..., tuple[np.ndarray, np.ndarray | None]] | None = None
  table_rows: Callable[[Sequence[str]], Callable[..., Any]] | None = None

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


def one_hot_labels(ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(labels int [N, n] = argmax, is_one_hot bool [N, n]) of a batch of ops rows [N, n, d]."""
  ops = np.asarray(ops)
  one_hot = np.all((ops == 0) | (ops == 1), axis=-1) & (ops.sum(axis=-1) == 1)
  return ops.argmax(axis=-1), one_hot


def check_batch_shapes(
  adjacency: np.ndarray, ops: np.ndarray, num_nodes: int, num_ops: int
) -> tuple[np.ndarray, np.ndarray]:
  """(adjacency, ops) as arrays, checked to be [N, n, n] and [N, n, d] (n = num_nodes, d = num_ops).

  Raises:
    ValueError: naming the array whose shape is wrong and the shape expected.
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  if adjacency.ndim != 3 or adjacency.shape[1:] != (num_nodes, num_nodes):
    raise ValueError(f"adjacency must be [N, {num_nodes}, {num_nodes}], got {adjacency.shape}")
  if ops.shape != (adjacency.shape[0], num_nodes, num_ops):
    raise ValueError(
      f"ops must be [N, {num_nodes}, {num_ops}] with N={adjacency.shape[0]}, got {ops.shape}"
    )
  return adjacency, ops
