"""What the searches and analyses of NAS-Bench-201 tables know of the space (`nb201.SPACE`'s fields).

The datasets and the methods' search defaults, the cell form (arch strings: a
table's ids are its cells), regularized evolution's mutation neighbours, the
edit-distance codes of the smoothness analysis, and the gradient search's map
of a decoded cell to its table row. It builds on the codec, `nb201_cells`; `nb201`
joins the two in `SPACE`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from arch2vec_jax.spaces import nb201_cells as nb201
from arch2vec_jax.spaces.base import NativeCells

__all__ = [
  "CELL_FORM",
  "DATASETS",
  "NATIVE",
  "SEARCH_DEFAULTS",
  "edge_op_codes",
  "edit_codes",
  "mutation_neighbours",
  "table_rows",
]

CELL_FORM = "a NAS-Bench-201 arch string"
# The benchmark's datasets (the search and analysis protocol of `benchmarks.loader`).
DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
# What the NB201 searches change in the methods' defaults (`SearchSpace.search_defaults`):
# REINFORCE baseline 0.4, BO one cell per round and target 1.0, regularized evolution's
# population 10 / tournament 3 (`search.baselines` module doc), GD's own defaults.
SEARCH_DEFAULTS = {
  "rl": {"baseline": 0.4},
  "bo": {"top_k": 1, "target": 1.0},
  "re": {"population_size": 10, "sample_size": 3},
  "gd": {},
}


def edge_op_codes(arch_strings: Iterable[str]) -> np.ndarray:
  """int32 [N, 6]: the index in `nb201.EDGE_OPS` of each edge's operation (arch-string order)."""
  index = {op: i for i, op in enumerate(nb201.EDGE_OPS)}
  return np.asarray(
    [[index[op] for op in nb201.parse_arch(str(a))] for a in arch_strings], np.int32
  ).reshape(-1, nb201.NUM_EDGES)


def edit_codes(
  ids: Iterable[str], adjacency: Any = None, ops: Any = None
) -> tuple[np.ndarray, None]:
  """`SearchSpace.edit_codes`: (`edge_op_codes(ids)` int32 [N, 6], None); the arrays are unused.

  The edit distance of two cells is the number of edges whose operation differs (0..6).
  """
  del adjacency, ops
  return edge_op_codes(ids), None


def mutation_neighbours(ids: Iterable[str], adjacency: Any = None, ops: Any = None) -> np.ndarray:
  """Mutation neighbours: the cells differing in exactly one of the 6 edge ops.

  The NB201 script's `mutate_arch`: a random edge, a different op.

  Args:
    ids: [N] arch strings (a table's cells, any order / subset).
    adjacency, ops: unused (the arch strings say it all).

  Returns:
    int32 [N, 24]: row indices into `ids`, -1 where the neighbour is not among them.
  """
  del adjacency, ops
  ids = list(ids)
  n_ops, n_edges = len(nb201.EDGE_OPS), nb201.NUM_EDGES
  codes = edge_op_codes(ids).astype(np.int64)  # [N, 6]
  weights = n_ops ** np.arange(n_edges - 1, -1, -1)
  number = codes @ weights
  lookup = np.full(n_ops**n_edges, -1, np.int64)
  lookup[number] = np.arange(len(ids))
  out = []
  for e in range(n_edges):
    for delta in range(1, n_ops):
      new_op = (codes[:, e] + delta) % n_ops
      out.append(lookup[number + (new_op - codes[:, e]) * weights[e]])
  return np.stack(out, axis=1).astype(np.int32)


def table_rows(ids: Iterable[str]) -> Callable[[Any, Any], Any]:
  """`SearchSpace.table_rows`: a jittable map of one decoded cell to its row among `ids`.

  Args:
    ids: N arch strings (a table's cells, in table order).

  Returns:
    `row(adjacency [8, 8], ops [8, 7]) -> int32 []` (jax arrays; the argmax of
    each ops row is its op): the row of the cell when its adjacency is
    `nb201.ADJACENCY` and its ops are input, six edge ops, output; else -1.
  """
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

  n_ops, n_edges = len(nb201.EDGE_OPS), nb201.NUM_EDGES
  codes = nb201.code_number(edge_op_codes(ids))  # product-order code -> table row
  lookup = np.full(n_ops**n_edges, -1, np.int32)
  lookup[codes] = np.arange(len(codes), dtype=np.int32)
  onehot_to_edge = np.full(len(nb201.OPS), -1, np.int32)
  for i, op in enumerate(nb201.EDGE_OPS):
    onehot_to_edge[nb201.OPS.index(op)] = i
  fixed = jnp.asarray(nb201.ADJACENCY, jnp.int8)
  lookup_d, o2e = jnp.asarray(lookup), jnp.asarray(onehot_to_edge)
  inp, out = nb201.OPS.index("input"), nb201.OPS.index("output")
  weights = jnp.asarray(n_ops ** np.arange(n_edges - 1, -1, -1), jnp.int32)

  def row(adjacency: Any, ops: Any) -> Any:
    labels = jnp.argmax(ops, axis=-1)
    edges = o2e[labels[1:-1]]
    ok = (
      jnp.all(adjacency == fixed) & (labels[0] == inp) & (labels[-1] == out) & jnp.all(edges >= 0)
    )
    return jnp.where(ok, lookup_d[jnp.sum(jnp.maximum(edges, 0) * weights)], -1)

  return row


def _parse_cell(cell: Any) -> str:
  """`NativeCells.parse`: an arch string, checked (TypeError / ValueError as `nb201.index_of`)."""
  if not isinstance(cell, str):
    raise TypeError(f"expected {CELL_FORM}, got {type(cell).__name__}")
  nb201.index_of(cell)
  return cell


# Arch strings <-> cells (`nb201.encode_batch`, `nb201.decode_batch`).
NATIVE = NativeCells(CELL_FORM, _parse_cell, nb201.encode_batch, nb201.decode_batch)
