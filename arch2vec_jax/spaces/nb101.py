"""The NAS-Bench-101 search space: cells, their hash, validity and the whole space.

A cell is a DAG of V <= 7 nodes given as an upper-triangular 0/1 matrix
(`matrix[u, v] = 1`: edge u -> v) and V op names, node 0 'input', node V-1
'output', inner nodes one of conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3; at
most 9 edges. Two cells are the same iff their official graph hashes agree
(`graph_hash`: prune, then `graph_hash.hash_graph` with the official labels).

Encoding (as arch2vec): adjacency int8 [7, 7] and one-hot ops int8 [7, 5] over
`OPS`, zero padding after the output node (rows/columns V..6).

The whole space (423,624 cells) is enumerated by code, without the benchmark
file (`enumerate_space`), and cached as an `.npz` under `fileio.cache_dir()`.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings
from collections.abc import Iterable, Sequence

import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.spaces import graph_hash as graph_hash_lib
from arch2vec_jax.spaces import nb101_tables
from arch2vec_jax.spaces.base import SearchSpace

__all__ = [
  "CUMULATIVE_COUNTS",
  "INPUT_LABEL",
  "LABEL_OPS",
  "MAX_EDGES",
  "NUM_CELLS",
  "NUM_NODES",
  "NUM_OPS",
  "OPS",
  "OUTPUT_LABEL",
  "SPACE",
  "cache_path",
  "count_unique",
  "decode",
  "encode",
  "encode_batch",
  "enumerate_space",
  "graph_hash",
  "hash_batch",
  "is_valid",
  "is_valid_batch",
  "prune",
  "release_hash_batch",
  "space_cells",
]

# One-hot encoding order used by arch2vec (input dim 5).
OPS = ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
# The official label order of the inner ops (nasbench config['available_ops']).
LABEL_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
INPUT_LABEL = -1
OUTPUT_LABEL = -2
NUM_NODES = 7
NUM_OPS = len(OPS)
MAX_EDGES = 9
NUM_CELLS = 423_624
# Unique cells with at most V nodes, V = 2..7 (the official counts).
CUMULATIVE_COUNTS = {2: 1, 3: 7, 4: 91, 5: 2_532, 6: 64_542, 7: 423_624}

_INPUT, _OUTPUT = 0, len(OPS) - 1  # one-hot indices of 'input' and 'output'
_INNER = np.array([1, 2, 3])  # one-hot indices of the inner ops
# Official hash label of every one-hot index.
_ONEHOT_TO_LABEL = np.array(
  [INPUT_LABEL] + [LABEL_OPS.index(op) for op in OPS[1:-1]] + [OUTPUT_LABEL]
)
# One-hot index of every inner label 0..2.
_LABEL_TO_ONEHOT = np.array([OPS.index(op) for op in LABEL_OPS])
_CACHE_VERSION = 2


# ----------------------------------------------------------------------------- one cell


def _check_cell(matrix, ops) -> tuple[np.ndarray, list[str]]:
  """Validates one cell; returns (matrix int8 [V, V], ops list of V names).

  Raises:
    ValueError: naming the offending value, for an unknown op name, a
      non-square matrix, entries other than 0/1, an entry on or below the
      diagonal (not a DAG in topological order), or len(ops) != V.
  """
  matrix = np.asarray(matrix)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
    raise ValueError(f"matrix must be square, got shape {matrix.shape}")
  if isinstance(ops, str):
    # A ValueError like every other malformed cell here, so that callers catch one type.
    raise ValueError(f"ops must be a sequence of op names, got the string {ops!r}")  # noqa: TRY004
  ops = list(ops)
  for op in ops:
    if op not in OPS:
      raise ValueError(f"unknown op {op!r} (known: {list(OPS)})")
  if len(ops) != matrix.shape[0]:
    raise ValueError(f"{len(ops)} ops for a {matrix.shape[0]}x{matrix.shape[0]} matrix")
  if not np.isin(matrix, (0, 1)).all():
    raise ValueError(f"matrix entries must be 0/1, got values {np.unique(matrix).tolist()}")
  lower = np.argwhere(np.tril(matrix) != 0)
  if len(lower):
    u, v = lower[0].tolist()
    raise ValueError(
      f"matrix must be strictly upper triangular (a DAG in topological order), got edge {u} -> {v}"
    )
  return matrix.astype(np.int8), ops


def prune(matrix, ops: Sequence[str]) -> tuple[np.ndarray, list[str]] | None:
  """Removes the nodes that are not on an input-to-output path (ModelSpec pruning).

  A node is kept iff it is reachable from node 0 and reaches node V-1 (both
  counted as reaching themselves); the kept nodes keep their order.

  Args:
    matrix: [V, V] 0/1 strictly upper-triangular adjacency.
    ops: V op names.

  Returns:
    (matrix int8 [V', V'], ops list of V' names), or None if the input does
    not reach the output (the official 'invalid spec, graph is disconnected').

  Raises:
    ValueError: for malformed input (see `encode`).
  """
  matrix, ops = _check_cell(matrix, ops)
  kept, connected = _prune_mask(matrix[None].astype(bool), np.array([len(ops)]))
  if not connected[0]:
    return None
  keep = np.flatnonzero(kept[0])
  return matrix[np.ix_(keep, keep)], [ops[i] for i in keep]


def _labels(ops: Sequence[str]) -> list[int]:
  """Official hash labels of a pruned cell: -1, inner LABEL_OPS index, -2."""
  inner = []
  for op in ops[1:-1]:
    if op not in LABEL_OPS:
      raise ValueError(f"inner op {op!r} has no NAS-Bench-101 label (allowed: {list(LABEL_OPS)})")
    inner.append(LABEL_OPS.index(op))
  return [INPUT_LABEL] + inner + [OUTPUT_LABEL]


def graph_hash(matrix, ops: Sequence[str]) -> str:
  """The official NAS-Bench-101 hash of a cell (ModelSpec.hash_spec).

  Args:
    matrix: [V, V] 0/1 strictly upper-triangular adjacency.
    ops: V op names.

  Returns:
    The 32-character hex hash of the pruned cell (first node labelled -1,
    last -2, inner nodes by their index in `LABEL_OPS`).

  Raises:
    ValueError: for malformed input, if the input does not reach the output,
      or if a kept inner node is 'input' or 'output'.
  """
  pruned = prune(matrix, ops)
  if pruned is None:
    raise ValueError("input and output are disconnected; the cell has no hash")
  matrix, ops = pruned
  return graph_hash_lib.hash_graph(matrix, _labels(ops))


def is_valid(matrix, ops: Sequence[str]) -> bool:
  """Whether a cell is in NAS-Bench-101 (nasbench `api.NASBench.is_valid`).

  After pruning: the input reaches the output, at most 7 nodes, at most 9
  edges, first op 'input', last op 'output', inner ops in `LABEL_OPS`.
  Matrices larger than 7 nodes are allowed if pruning brings them to 7.

  Raises:
    ValueError: for malformed input (unknown op name, non-square or not
      strictly upper-triangular matrix, length mismatch).
  """
  pruned = prune(matrix, ops)
  if pruned is None:
    return False
  matrix, ops = pruned
  return (
    len(ops) <= NUM_NODES
    and int(matrix.sum()) <= MAX_EDGES
    and ops[0] == "input"
    and ops[-1] == "output"
    and all(op in LABEL_OPS for op in ops[1:-1])
  )


def encode(matrix, ops: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
  """The arch2vec encoding of one cell (no pruning; zero padding after the output).

  Args:
    matrix: [V, V] 0/1 strictly upper-triangular adjacency, V <= 7.
    ops: V op names from `OPS`.

  Returns:
    (adjacency int8 [7, 7], ops int8 [7, 5] one-hot over `OPS`); rows V..6
    are zero.

  Raises:
    ValueError: naming the value, for an unknown op, a non-square or not
      strictly upper-triangular matrix, len(ops) != V, or V > 7.
  """
  matrix, ops = _check_cell(matrix, ops)
  v = len(ops)
  if v > NUM_NODES:
    raise ValueError(f"cell has {v} nodes; NAS-Bench-101 cells have at most {NUM_NODES}")
  adjacency = np.zeros((NUM_NODES, NUM_NODES), np.int8)
  adjacency[:v, :v] = matrix
  onehot = np.zeros((NUM_NODES, NUM_OPS), np.int8)
  onehot[np.arange(v), [OPS.index(op) for op in ops]] = 1
  return adjacency, onehot


def encode_batch(
  cells: Iterable[tuple[np.ndarray, Sequence[str]]],
) -> tuple[np.ndarray, np.ndarray]:
  """`encode` over (matrix, ops) pairs: (adjacency int8 [N, 7, 7], ops int8 [N, 7, 5])."""
  encoded = [encode(matrix, ops) for matrix, ops in cells]
  if not encoded:
    return np.zeros((0, NUM_NODES, NUM_NODES), np.int8), np.zeros((0, NUM_NODES, NUM_OPS), np.int8)
  adjacency, onehot = zip(*encoded)
  return np.stack(adjacency), np.stack(onehot)


def decode(adjacency: np.ndarray, onehot: np.ndarray) -> tuple[np.ndarray, list[str]]:
  """The exact inverse of `encode`: drops the all-zero padding rows.

  Args:
    adjacency: int [7, 7] 0/1 strictly upper triangular.
    onehot: int [7, 5], one-hot rows then all-zero padding rows.

  Returns:
    (matrix int8 [V, V], ops list of V names).

  Raises:
    ValueError: on wrong shapes, a row that is neither one-hot nor zero, a
      padding row before a real one, or an edge touching a padding node.
  """
  adjacency, onehot = np.asarray(adjacency), np.asarray(onehot)
  if adjacency.shape != (NUM_NODES, NUM_NODES) or onehot.shape != (NUM_NODES, NUM_OPS):
    raise ValueError(f"expected shapes (7, 7) and (7, 5), got {adjacency.shape} and {onehot.shape}")
  node_codes, num_nodes = _node_codes(onehot[None])
  v = int(num_nodes[0])
  if v < 0:
    raise ValueError(f"padding rows must come after all real nodes, got ops rows {onehot.tolist()}")
  if np.any(adjacency[v:]) or np.any(adjacency[:, v:]):
    raise ValueError(f"edge touching a padding node (the cell has {v} nodes)")
  matrix, ops = _check_cell(adjacency[:v, :v], [OPS[c] for c in node_codes[0, :v]])
  return matrix, ops


# ----------------------------------------------------------------------------- batches


def _prune_mask(edges: np.ndarray, num_nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Vectorised ModelSpec pruning.

  Args:
    edges: bool [N, n, n] strictly upper triangular.
    num_nodes: int [N]; node num_nodes-1 is the output, nodes beyond are padding.

  Returns:
    (kept bool [N, n], connected bool [N]): kept = on an input->output path;
    connected = at least 2 nodes and the input reaches the output.
  """
  n_cells, n = edges.shape[:2]
  reach = edges.copy()
  # Transitive closure by repeated squaring: paths of length <= 2^k.
  for _ in range(max(1, int(np.ceil(np.log2(max(n, 2)))))):
    reach |= np.einsum("buw,bwv->buv", reach.astype(np.int32), reach.astype(np.int32)) > 0
  last = np.maximum(num_nodes - 1, 0)
  rows = np.arange(n_cells)
  node = np.arange(n)[None, :]
  from_input = reach[:, 0, :] | (node == 0)
  to_output = reach[rows, :, last] | (node == last[:, None])
  kept = from_input & to_output & (node < num_nodes[:, None])
  connected = (num_nodes >= 2) & reach[rows, 0, last]
  return kept & connected[:, None], connected


def _node_codes(onehot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Op index of every node and the node count of every cell.

  Args:
    onehot: int [N, n, d], one-hot or all-zero (padding) rows.

  Returns:
    (codes int [N, n] with -1 for padding rows, num_nodes int [N]); num_nodes
    is -1 for cells whose padding rows are not all after the real nodes.

  Raises:
    ValueError: if a row has an entry other than 0/1 or more than one 1.
  """
  if not np.isin(onehot, (0, 1)).all():
    raise ValueError(f"ops must be 0/1 one-hot rows, got values {np.unique(onehot).tolist()}")
  row_sum = onehot.sum(axis=-1)
  if np.any(row_sum > 1):
    cell, row = np.argwhere(row_sum > 1)[0].tolist()
    raise ValueError(f"ops row {row} of cell {cell} is not one-hot: {onehot[cell, row].tolist()}")
  real = row_sum == 1
  codes = np.where(real, onehot.argmax(axis=-1), -1)
  num_nodes = real.sum(axis=1)
  is_prefix = np.all(real == (np.arange(onehot.shape[1])[None, :] < num_nodes[:, None]), axis=1)
  return codes, np.where(is_prefix, num_nodes, -1)


def _check_batch(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  n_cells = adjacency.shape[0] if adjacency.ndim else 0
  if adjacency.shape != (n_cells, NUM_NODES, NUM_NODES) or ops.shape != (
    n_cells,
    NUM_NODES,
    NUM_OPS,
  ):
    raise ValueError(
      f"expected shapes [N, 7, 7] and [N, 7, 5], got {adjacency.shape} and {ops.shape}"
    )
  if not np.isin(adjacency, (0, 1)).all():
    raise ValueError(f"adjacency must be 0/1, got values {np.unique(adjacency).tolist()}")
  lower = np.argwhere(np.tril(adjacency) != 0)
  if len(lower):
    cell, u, v = lower[0].tolist()
    raise ValueError(
      f"adjacency must be strictly upper triangular; cell {cell} has edge {u} -> {v}"
    )
  return adjacency.astype(bool), ops


def _analyse_batch(adjacency: np.ndarray, ops: np.ndarray):
  """Shared work of is_valid_batch / hash_batch: (edges, codes, num_nodes, kept, valid)."""
  edges, ops = _check_batch(adjacency, ops)
  codes, num_nodes = _node_codes(ops)
  node = np.arange(NUM_NODES)[None, :]
  well_formed = num_nodes >= 0
  padding = node >= num_nodes[:, None]
  # Edges touching padding nodes make the encoding ill-formed.
  well_formed &= ~np.any(edges & (padding[:, :, None] | padding[:, None, :]), axis=(1, 2))
  kept, connected = _prune_mask(edges, np.maximum(num_nodes, 0))
  rows = np.arange(len(codes))
  last = np.maximum(num_nodes - 1, 0)
  inner = kept & (node > 0) & (node < last[:, None])
  num_edges = np.sum(edges & kept[:, :, None] & kept[:, None, :], axis=(1, 2))
  valid = (
    well_formed
    & connected
    & (codes[:, 0] == _INPUT)
    & (codes[rows, last] == _OUTPUT)
    & np.all(~inner | np.isin(codes, _INNER), axis=1)
    & (num_edges <= MAX_EDGES)
    & (kept.sum(axis=1) <= NUM_NODES)
  )
  return edges, codes, num_nodes, kept, valid


def is_valid_batch(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """Validity of decoded (or encoded) cells, vectorised.

  The semantics of the arch2vec release (models/pretraining_nasbench101.py):
  a decode is valid iff `nasbench.is_valid(ModelSpec(adjacency, argmax op
  names))`. Here, per cell:
    * all-zero ops rows are padding; they must all come after the real nodes
      and have no edges (argmax decodes have no padding: all 7 rows are real);
    * the real nodes are 0..V-1, node 0 the input, node V-1 the output;
    * pruning (ModelSpec) keeps the nodes on an input->output path; the input
      must reach the output;
    * after pruning: at most 7 nodes and at most 9 edges (edges of pruned
      nodes do not count), node 0 is 'input', node V-1 is 'output', every
      kept inner node is conv3x3-bn-relu, conv1x1-bn-relu or maxpool3x3 (an
      inner 'input'/'output' is invalid; ops of pruned nodes do not matter).

  Args:
    adjacency: int/bool [N, 7, 7], 0/1, strictly upper triangular (thresholded).
    ops: int [N, 7, 5], one-hot rows over `OPS` (or zero padding rows).

  Returns:
    bool [N].

  Raises:
    ValueError: on wrong shapes, non-0/1 entries, entries on or below the
      diagonal, or ops rows with several ones.
  """
  return _analyse_batch(adjacency, ops)[-1]


def hash_batch(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """Official NAS-Bench-101 hashes of decoded (or encoded) cells, vectorised.

  Each valid cell (see `is_valid_batch`) is pruned and hashed exactly as
  `graph_hash`; equal strings mean the same cell of the space, and they match
  `enumerate_space()` hashes. Invalid cells get ''.

  Args:
    adjacency: int/bool [N, 7, 7], 0/1, strictly upper triangular.
    ops: int [N, 7, 5] one-hot over `OPS` (zero rows = padding).

  Returns:
    str array [N] ('<U32').
  """
  edges, codes, _, kept, valid = _analyse_batch(adjacency, ops)
  result = np.full(len(valid), "", dtype="<U32")
  if not valid.any():
    return result
  edges, codes, kept = edges[valid], codes[valid], kept[valid]
  # Move the kept nodes to the front, in order (stable), and hash them.
  order = np.argsort(~kept, axis=1, kind="stable")
  rows = np.arange(len(order))[:, None]
  compact_edges = edges[rows[:, :, None], order[:, :, None], order[:, None, :]]
  compact_codes = codes[rows, order]
  labels = _ONEHOT_TO_LABEL[np.maximum(compact_codes, 0)]
  num_kept = kept.sum(axis=1)
  result[valid] = graph_hash_lib.hash_batch(compact_edges, labels, num_kept)
  return result


def release_hash_batch(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """The uniqueness fingerprint of the arch2vec release, vectorised.

  The release calls `graph_util.hash_module(adjacency, one_hot.tolist())` on
  the UNPRUNED 7 x 7 decode with the float one-hot rows as labels, so two
  decodes that differ only in pruned (dangling) nodes count as different.
  This reproduces those strings exactly (an all-zero padding row is the label
  [0.0, 0.0, 0.0, 0.0, 0.0]). Use `hash_batch` for cell identity.

  Args:
    adjacency: int/bool [N, 7, 7], 0/1, strictly upper triangular.
    ops: int [N, 7, 5] one-hot (or zero) rows.

  Returns:
    str array [N] ('<U32').
  """
  edges, ops = _check_batch(adjacency, ops)
  codes, _ = _node_codes(ops)
  texts = {c: repr([float(c == j) for j in range(NUM_OPS)]) for c in range(-1, NUM_OPS)}
  return graph_hash_lib.hash_batch(edges, codes, label_repr=texts.__getitem__)


# ----------------------------------------------------------------------------- enumeration


def _full_dags(v: int) -> np.ndarray:
  """All [v, v] upper-triangular 0/1 matrices with <= MAX_EDGES edges where every
  non-output node has an out-edge and every non-input node an in-edge.

  Built column by column (column j = the in-edges of node j, nonzero for
  j >= 1) with the edge budget pruned as it goes; deterministic order.

  Returns:
    int8 [K, v, v].
  """
  columns = np.zeros((1, 0), np.int8)  # the bits of columns 1..j, concatenated
  for j in range(1, v):
    choices = ((np.arange(1, 2**j)[:, None] >> np.arange(j)[None, :]) & 1).astype(np.int8)
    columns = np.concatenate(
      [np.repeat(columns, len(choices), axis=0), np.tile(choices, (len(columns), 1))], axis=1
    )
    columns = columns[columns.sum(axis=1) <= MAX_EDGES]
  matrices = np.zeros((len(columns), v, v), np.int8)
  offset = 0
  for j in range(1, v):
    matrices[:, :j, j] = columns[:, offset : offset + j]
    offset += j
  has_out_edge = np.all(matrices[:, : v - 1].sum(axis=2) > 0, axis=1)
  return matrices[has_out_edge]


def _unlabelled_representatives(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """One matrix per isomorphism class (the first in the given order), and its automorphisms.

  Input and output are the unique source and sink, so isomorphisms fix them
  and permute the v-2 inner nodes. The code of a matrix under a permutation p
  is the bit code sum 2^(p(u) v + p(w)) of its permuted edges (exact in
  float64: at most 9 distinct powers below 2^49); the canonical code is the
  smallest over all p, and p is an automorphism iff its code equals the
  identity's.

  Args:
    matrices: int8 [K, v, v].

  Returns:
    (representatives int8 [R, v, v], automorphisms int [A, 2]): the rows
    (representative r, permutation index into `_node_permutations(v)`) of the
    automorphisms other than the identity.
  """
  v = matrices.shape[1]
  src, dst = np.triu_indices(v, 1)
  perms = _node_permutations(v)
  weights = 2.0 ** (perms[:, src] * v + perms[:, dst])  # [P, E]
  codes = matrices[:, src, dst].astype(np.float64) @ weights.T  # [K, P]
  _, first = np.unique(codes.min(axis=1), return_index=True)
  first = np.sort(first)
  automorphisms = np.argwhere(codes[first, 1:] == codes[first, :1]) + [0, 1]
  return matrices[first], automorphisms


def _node_permutations(v: int) -> np.ndarray:
  """int [P, v]: the permutations of inner nodes 1..v-2 (input, output fixed), identity first."""
  return np.array([(0, *p, v - 1) for p in itertools.permutations(range(1, v - 1))]).reshape(-1, v)


def _enumerate_nodes(v: int) -> tuple[np.ndarray, np.ndarray]:
  """The (isomorphism representative x inner labelling) graphs with v nodes worth hashing.

  A labelling that an automorphism of its representative maps to a smaller
  labelling (an earlier one in itertools.product order) gives an isomorphic
  graph, so only the smallest of each orbit is kept: the same graphs as the
  first of each hash among all labellings, without hashing the others.

  Returns:
    (matrices int8 [M, v, v], labels int64 [M, v] official hash labels);
    order: representative, then labellings in itertools.product order over
    LABEL_OPS.
  """
  reps, automorphisms = _unlabelled_representatives(_full_dags(v))
  labellings = np.array(list(itertools.product(range(len(LABEL_OPS)), repeat=v - 2)), np.int64)
  labellings = labellings.reshape(len(LABEL_OPS) ** (v - 2), v - 2)
  number = labellings @ len(LABEL_OPS) ** np.arange(v - 3, -1, -1)  # rank in product order
  # The image of labelling l under automorphism p is l' with l'[p(i)] = l[i].
  inverse = np.argsort(_node_permutations(v)[automorphisms[:, 1]], axis=1)[:, 1:-1] - 1  # [A, v-2]
  images = np.einsum(
    "lak,k->al", labellings[:, inverse], len(LABEL_OPS) ** np.arange(v - 3, -1, -1)
  )
  smallest = np.tile(number, (len(reps), 1))
  np.minimum.at(smallest, automorphisms[:, 0], images)
  rep, lab = np.nonzero(smallest == number[None, :])
  labels = np.empty((len(rep), v), np.int64)
  labels[:, 0], labels[:, -1] = INPUT_LABEL, OUTPUT_LABEL
  labels[:, 1:-1] = labellings[lab]
  return reps[rep], labels


def _encode_padded(matrices: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Matrices [M, v, v] and hash labels [M, v] -> (adjacency int8 [M, 7, 7], ops int8 [M, 7, 5])."""
  count, v = labels.shape
  adjacency = np.zeros((count, NUM_NODES, NUM_NODES), np.int8)
  adjacency[:, :v, :v] = matrices
  codes = np.empty_like(labels)
  codes[:, 0], codes[:, -1] = _INPUT, _OUTPUT
  codes[:, 1:-1] = _LABEL_TO_ONEHOT[labels[:, 1:-1]]
  onehot = np.zeros((count, NUM_NODES, NUM_OPS), np.int8)
  onehot[np.arange(count)[:, None], np.arange(v)[None, :], codes] = 1
  return adjacency, onehot


def _build_space(max_nodes: int, workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The de-duplicated space: (adjacency int8 [C, 7, 7], ops int8 [C, 7, 5], digests [C, 16])."""
  parts = [_enumerate_nodes(v) for v in range(2, max_nodes + 1)]
  digests = np.concatenate(
    [graph_hash_lib.digest_batch(matrices, labels, workers=workers) for matrices, labels in parts]
  )
  # First graph of each hash in the enumeration order (stable sort), ordered by
  # hash: byte order of the digests = order of the hex strings.
  halves = digests.view(">u8").astype(np.uint64)
  order = np.lexsort((halves[:, 1], halves[:, 0]))
  sorted_halves = halves[order]
  is_new = np.ones(len(order), bool)
  is_new[1:] = np.any(sorted_halves[1:] != sorted_halves[:-1], axis=1)
  first = order[is_new]
  # Encode only the kept graphs, per node count.
  sizes = np.concatenate([np.full(len(labels), labels.shape[1]) for _, labels in parts])
  offsets = np.cumsum([0] + [len(labels) for _, labels in parts])
  out_adjacency = np.empty((len(first), NUM_NODES, NUM_NODES), np.int8)
  out_onehot = np.empty((len(first), NUM_NODES, NUM_OPS), np.int8)
  for offset, (matrices, labels) in zip(offsets, parts):
    rows = np.flatnonzero(sizes[first] == matrices.shape[1])
    local = first[rows] - offset
    out_adjacency[rows], out_onehot[rows] = _encode_padded(matrices[local], labels[local])
  return out_adjacency, out_onehot, digests[first]


def cache_path(max_nodes: int = NUM_NODES) -> str:
  """Where `enumerate_space(max_nodes)` caches: <cache_dir>/nb101_space.npz (7 nodes)."""
  name = "nb101_space.npz" if max_nodes == NUM_NODES else f"nb101_space_max{max_nodes}.npz"
  return os.path.join(fileio.cache_dir(), name)


_UPPER = np.triu_indices(NUM_NODES, 1)  # the 21 entries above the diagonal


def _checksum(*arrays: np.ndarray) -> str:
  digest = hashlib.md5()
  for array in arrays:
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def _save_cache(path: str, adjacency: np.ndarray, onehot: np.ndarray, digests: np.ndarray) -> None:
  """Writes the space compactly and atomically (26 bytes a cell, uncompressed: fast to read).

  Arrays: edges uint8 [C, 3] (the 21 upper-triangular bits, packed), codes
  int8 [C, 7] (op index into OPS, -1 for padding), digests uint8 [C, 16],
  version, checksum (MD5 of the three arrays).
  """
  edges = np.packbits(adjacency[:, _UPPER[0], _UPPER[1]], axis=1)
  codes = np.where(onehot.any(axis=2), onehot.argmax(axis=2), -1).astype(np.int8)
  fileio.atomic_save_npz(
    path,
    compressed=False,
    version=np.array(_CACHE_VERSION),
    edges=edges,
    codes=codes,
    digests=digests,
    checksum=np.array(_checksum(edges, codes, digests)),
  )


def _load_cache(path: str, max_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Loads and validates a cache file written by `_save_cache`.

  Returns:
    As `enumerate_space`.

  Raises:
    ValueError: saying why the file is not a correct cache.
  """
  data = fileio.load_npz(path)
  missing = {"version", "edges", "codes", "digests", "checksum"} - set(data)
  if missing:
    raise ValueError(f"missing arrays {sorted(missing)}")
  if int(data["version"]) != _CACHE_VERSION:
    raise ValueError(f"cache version {int(data['version'])}, expected {_CACHE_VERSION}")
  count = CUMULATIVE_COUNTS[max_nodes]
  expected = {
    "edges": ((count, 3), np.uint8),
    "codes": ((count, NUM_NODES), np.int8),
    "digests": ((count, 16), np.uint8),
  }
  for name, (shape, dtype) in expected.items():
    if data[name].shape != shape or data[name].dtype != dtype:
      raise ValueError(
        f"{name} is {data[name].dtype} {data[name].shape}, expected {np.dtype(dtype)} {shape}"
      )
  edges, codes, digests = data["edges"], data["codes"], data["digests"]
  if _checksum(edges, codes, digests) != str(data["checksum"]):
    raise ValueError("checksum mismatch (contents changed)")
  halves = digests.view(">u8")
  increasing = (halves[1:, 0] > halves[:-1, 0]) | (
    (halves[1:, 0] == halves[:-1, 0]) & (halves[1:, 1] > halves[:-1, 1])
  )
  if not increasing.all():
    raise ValueError("hashes are not strictly increasing")
  if codes.min(initial=0) < -1 or codes.max(initial=0) >= NUM_OPS:
    raise ValueError(f"op codes outside -1..{NUM_OPS - 1}")
  adjacency = np.zeros((count, NUM_NODES, NUM_NODES), np.int8)
  adjacency[:, _UPPER[0], _UPPER[1]] = np.unpackbits(edges, axis=1, count=len(_UPPER[0]))
  onehot = (codes[:, :, None] == np.arange(NUM_OPS, dtype=np.int8)).astype(np.int8)
  return adjacency, onehot, graph_hash_lib.digests_to_hex(digests)


def enumerate_space(
  max_nodes: int = NUM_NODES, cache: bool = True, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Every NAS-Bench-101 cell with at most `max_nodes` nodes, ordered by hash.

  Enumerates all upper-triangular matrices on 2..max_nodes nodes with <= 9
  edges in which every non-output node has an out-edge and every non-input
  node an in-edge (so every node is on an input->output path and nothing is
  pruned), keeps one matrix per isomorphism class, applies every inner
  labelling (skipping those an automorphism maps to an earlier one: they are
  isomorphic to it) and de-duplicates by the official hash
  (`graph_hash.digest_batch`), keeping the first representative in that
  deterministic order. Vectorised NumPy, the hashing spread over `workers`
  processes; 423,624 graphs are hashed.

  With `cache`, the result is read from / written to `cache_path(max_nodes)`
  (atomic write: a temporary file renamed into place, so an interrupted run
  leaves no partial file). A cache file that fails validation (unreadable
  archive, missing arrays, version, shapes, dtypes, checksum, order) is not an
  error: it triggers a RuntimeWarning naming the file and the reason, and the
  space is rebuilt and the file rewritten.

  Args:
    max_nodes: 2..7.
    cache: use the cache file.
    workers: processes that hash the graphs (default `graph_hash.default_workers()`:
      $ARCH2VEC_WORKERS or the usable CPUs); the result does not depend on it.

  Returns:
    (adjacency int8 [C, 7, 7], ops int8 [C, 7, 5], hashes '<U32' [C]) with
    C = CUMULATIVE_COUNTS[max_nodes] (423,624 for 7).

  Raises:
    ValueError: if max_nodes is outside 2..7.
  """
  if max_nodes not in CUMULATIVE_COUNTS:
    raise ValueError(f"max_nodes must be in 2..7, got {max_nodes!r}")
  path = cache_path(max_nodes) if cache else None
  if path is not None and os.path.exists(path):
    try:
      return _load_cache(path, max_nodes)
    except (ValueError, KeyError, OSError) as e:
      warnings.warn(
        f"{path}: invalid NAS-Bench-101 space cache ({e}); rebuilding it", RuntimeWarning
      )
  adjacency, onehot, digests = _build_space(
    max_nodes, graph_hash_lib.default_workers() if workers is None else workers
  )
  if len(digests) != CUMULATIVE_COUNTS[max_nodes]:
    raise RuntimeError(
      f"enumerated {len(digests)} cells with <= {max_nodes} nodes, "
      f"expected {CUMULATIVE_COUNTS[max_nodes]}"
    )
  if path is not None:
    _save_cache(path, adjacency, onehot, digests)
  return adjacency, onehot, graph_hash_lib.digests_to_hex(digests)


def count_unique(max_nodes: int, cache: bool = True) -> int:
  """Number of unique cells with at most `max_nodes` nodes, counted from the enumeration.

  Uses the cached full space when `cache` (cells with <= max_nodes real
  nodes), else enumerates up to max_nodes from scratch.
  """
  if max_nodes not in CUMULATIVE_COUNTS:
    raise ValueError(f"max_nodes must be in 2..7, got {max_nodes!r}")
  if cache:
    _, onehot, _ = enumerate_space(NUM_NODES, cache=True)
    return int(np.sum(onehot.any(axis=2).sum(axis=1) <= max_nodes))
  return len(enumerate_space(max_nodes, cache=False)[2])


def space_cells(cache: bool = True) -> tuple[np.ndarray, np.ndarray]:
  """The 423,624 cells as (adjacency int8 [C, 7, 7], ops int8 [C, 7, 5]), ordered by hash."""
  adjacency, onehot, _ = enumerate_space(NUM_NODES, cache=cache)
  return adjacency, onehot


SPACE = SearchSpace(
  name="nb101",
  num_nodes=NUM_NODES,
  ops=tuple(OPS),
  cells=space_cells,
  is_valid=is_valid_batch,
  hash=hash_batch,
  native=nb101_tables.NATIVE,
  datasets=nb101_tables.DATASETS,
  search_defaults=nb101_tables.SEARCH_DEFAULTS,
  neighbours=nb101_tables.mutation_neighbours,
  edit_codes=nb101_tables.edit_codes,
)
