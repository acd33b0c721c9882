"""What the searches and analyses of NAS-Bench-101 tables know of the space (`nb101.SPACE`'s fields).

The dataset and the methods' search defaults, the cell form ((matrix, ops)
specs), regularized evolution's mutation neighbours within a table and the
edit-distance codes of the smoothness analysis. It builds on the codec,
`nb101_cells`; `nb101` joins the two in `SPACE`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from arch2vec_jax.spaces import nb101_cells as nb101
from arch2vec_jax.spaces.base import NativeCells

__all__ = [
  "CELL_FORM",
  "DATASETS",
  "NATIVE",
  "SEARCH_DEFAULTS",
  "edit_codes",
  "mutation_neighbours",
]

CELL_FORM = "a NAS-Bench-101 (matrix, ops) spec"
# NAS-Bench-101 has one table: CIFAR-10.
DATASETS: tuple[str, ...] = ("cifar10",)
# What the NB101 searches change in the methods' defaults (`SearchSpace.search_defaults`):
# REINFORCE baseline 0.95, BO five cells per round and target 0.95, regularized evolution's
# population 50 / tournament 10 (`search.baselines` module doc), GD BO's five cells per
# round (the runs there are ~400 queries).
SEARCH_DEFAULTS = {
  "rl": {"baseline": 0.95},
  "bo": {"top_k": 5, "target": 0.95},
  "re": {"population_size": 50, "sample_size": 10},
  "gd": {"top_k": 5},
}


def edit_codes(ids: Any, adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`SearchSpace.edit_codes`: (codes int32 [N, n(n-1)/2 + n], group int32 [N]); `ids` unused.

  codes: the strict-upper adjacency entries then the op index per node (-1 on
  padding rows); group: the number of real nodes (only same-size cells are compared).
  The Hamming distance of two codes is the number of differing adjacency entries
  plus differing operations in the stored node order (an upper bound of the graph
  edit distance).
  """
  del ids
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  n = ops.shape[1]
  iu = np.triu_indices(n, 1)
  real = ops.any(-1)
  op_idx = np.where(real, ops.argmax(-1), -1)
  codes = np.concatenate([adjacency[:, iu[0], iu[1]], op_idx], axis=1).astype(np.int32)
  return codes, real.sum(-1).astype(np.int32)


def _pad_lists(lists: list[np.ndarray]) -> np.ndarray:
  width = max([len(x) for x in lists] + [1])
  out = np.full((len(lists), width), -1, np.int32)
  for i, x in enumerate(lists):
    out[i, : len(x)] = x
  return out


def mutation_neighbours(ids: Any, adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """Mutation neighbours within a table: the table's cells one mutation away.

  A mutation flips one edge of the stored V-node matrix (upper triangle) or
  changes one inner op to another; a neighbour is a result that is valid and whose
  NAS-Bench-101 hash is in the table (the parent's own hash excluded; duplicates
  merged).

  Args:
    ids: [N] the cells' NAS-Bench-101 hashes.
    adjacency: int8 [N, 7, 7], the table's cells (arch2vec encoding, padding last).
    ops: int8 [N, 7, 5] one-hot over `nb101.OPS`.

  Returns:
    int32 [N, K], row indices into the table, -1 padded (K the largest neighbour
    count; 0 neighbours is possible).
  """
  adjacency = np.asarray(adjacency, np.int8)
  ops = np.asarray(ops, np.int8)
  ids = np.asarray(ids).astype(str)
  n, v_max = adjacency.shape[:2]
  num_nodes = ops.sum(axis=2).astype(bool).sum(axis=1)  # V per cell
  lookup = {h: i for i, h in enumerate(ids)}
  parents, mut_adj, mut_ops = [], [], []
  iu, ju = np.triu_indices(v_max, k=1)
  for i_, j_ in zip(iu, ju):  # edge flips inside the stored V-node matrix
    sel = np.flatnonzero(j_ < num_nodes)
    a = adjacency[sel].copy()
    a[:, i_, j_] = 1 - a[:, i_, j_]
    parents.append(sel), mut_adj.append(a), mut_ops.append(ops[sel])
  inner = [nb101.OPS.index(op) for op in nb101.LABEL_OPS]
  for node in range(1, v_max - 1):  # op changes of inner nodes
    sel_node = np.flatnonzero(node < num_nodes - 1)
    cur = ops[sel_node, node].argmax(axis=1)
    for new in inner:
      sel = sel_node[cur != new]
      o = ops[sel].copy()
      o[:, node, :] = 0
      o[:, node, new] = 1
      parents.append(sel), mut_adj.append(adjacency[sel]), mut_ops.append(o)
  parents = np.concatenate(parents)
  hashes = nb101.hash_batch(np.concatenate(mut_adj), np.concatenate(mut_ops))
  found = np.array([lookup.get(h, -1) for h in hashes], np.int64)
  keep = (found >= 0) & (found != parents)
  lists: list[set] = [set() for _ in range(n)]
  for p, c in zip(parents[keep], found[keep]):
    lists[p].add(int(c))
  return _pad_lists([np.array(sorted(s), np.int32) for s in lists])


def _parse_cell(cell: Any) -> tuple[np.ndarray, np.ndarray]:
  """`NativeCells.parse`: `nb101.encode` of a (matrix, ops) pair or an object with `.matrix` / `.ops`."""
  if hasattr(cell, "matrix") and hasattr(cell, "ops"):
    matrix, labels = cell.matrix, cell.ops
  elif isinstance(cell, (tuple, list)) and len(cell) == 2 and not isinstance(cell[1], str):
    matrix, labels = cell
  else:
    raise TypeError(f"expected {CELL_FORM}, got {type(cell).__name__}")
  return nb101.encode(np.asarray(matrix), list(labels))


def _stack_cells(parsed: list) -> tuple[np.ndarray, np.ndarray]:
  """`NativeCells.to_cells`: the encoded cells stacked, (int8 [N, 7, 7], int8 [N, 7, 5])."""
  adjacency, onehot = zip(*parsed)
  return np.stack(adjacency), np.stack(onehot)


def _pruned_specs(adjacency: np.ndarray, ops: np.ndarray) -> list:
  """`NativeCells.from_cells`: each cell's pruned (matrix int8 [V, V], op names) spec."""
  return [nb101.prune(*nb101.decode(a, o)) for a, o in zip(adjacency, ops)]


# (matrix, ops) specs <-> cells (`nb101.encode`, pruned `nb101.decode`).
NATIVE = NativeCells(CELL_FORM, _parse_cell, _stack_cells, _pruned_specs)
