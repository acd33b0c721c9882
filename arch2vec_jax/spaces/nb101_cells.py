"""NAS-Bench-101 cells: their encoding, hash and validity (the codec).

Re-exported by `spaces.nb101`, which adds the enumeration of the whole space
(`nb101_enumerate`) and `SPACE`.

A cell is a DAG of V <= 7 nodes given as an upper-triangular 0/1 matrix
(`matrix[u, v] = 1`: edge u -> v) and V op names, node 0 'input', node V-1
'output', inner nodes one of conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3; at
most 9 edges. Two cells are the same iff their official graph hashes agree
(`graph_hash`: prune, then `graph_hash.hash_graph` with the official labels).

Encoding (as arch2vec): adjacency int8 [7, 7] and one-hot ops int8 [7, 5] over
`OPS`, zero padding after the output node (rows/columns V..6).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from arch2vec_jax.spaces import graph_hash as graph_hash_lib

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
  "decode",
  "encode",
  "encode_batch",
  "graph_hash",
  "hash_batch",
  "is_valid",
  "is_valid_batch",
  "prune",
  "release_hash_batch",
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
