"""NAS-Bench-201 cells as 8-node graphs (arch2vec's edge-to-node encoding): the codec.

Re-exported by `spaces.nb201`, which adds the space's `SPACE`.

A NAS-Bench-201 cell has 4 nodes and 6 edges, each edge one of `EDGE_OPS`; its
arch string is `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (the edges into cell node
1, 2 and 3; the number after `~` is the source node). arch2vec turns the six
edges into graph nodes: node 0 is the input, nodes 1..6 are the six edge ops in
arch-string order, node 7 is the output, and every cell shares one adjacency
(`ADJACENCY`): an edge-node u -> v feeds every edge-node leaving v:

  0 -> {1, 2, 4}   (edges leaving cell node 0: 0->1, 0->2, 0->3)
  1 -> {3, 5}      (edge 0->1 feeds the edges leaving cell node 1)
  2 -> 6, 3 -> 6   (edges into cell node 2 feed edge 2->3)
  {4, 5, 6} -> 7   (edges into cell node 3, the cell output)

Node operations are one-hot over `OPS` (arch2vec's order, d = 7). The index of
a cell is its position in the benchmark's list of arch strings, which
`arch_strings()` regenerates by code (NAS-Bench-201's `gen_all` enumeration
shuffled with `random.seed(88)`).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections.abc import Iterable, Sequence

import numpy as np

from arch2vec_jax.spaces import graph_hash
from arch2vec_jax.spaces.base import check_batch_shapes, one_hot_labels

__all__ = [
  "ADJACENCY",
  "EDGE_OPS",
  "EDGE_SOURCES",
  "EDGE_TARGETS",
  "NUM_CELLS",
  "NUM_EDGES",
  "NUM_NODES",
  "OPS",
  "all_cells",
  "arch_strings",
  "code_number",
  "decode",
  "decode_batch",
  "encode",
  "encode_batch",
  "hash_batch",
  "index_of",
  "is_valid_batch",
  "parse_arch",
  "to_arch_str",
]

# The benchmark's op list, in the order its `gen_all` enumerates them.
EDGE_OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# arch2vec's one-hot vocabulary (input dimension 7).
OPS: tuple[str, ...] = (
  "input",
  "nor_conv_1x1",
  "nor_conv_3x3",
  "avg_pool_3x3",
  "skip_connect",
  "none",
  "output",
)
NUM_NODES = 8
NUM_EDGES = 6
NUM_CELLS = len(EDGE_OPS) ** NUM_EDGES  # 15,625
# Cell-node source and target of the six edges, in arch-string order.
EDGE_SOURCES: tuple[int, ...] = (0, 0, 1, 0, 1, 2)
EDGE_TARGETS: tuple[int, ...] = (1, 2, 2, 3, 3, 3)

_INPUT = OPS.index("input")
_OUTPUT = OPS.index("output")
_EDGE_OP_TO_ONEHOT = np.array([OPS.index(op) for op in EDGE_OPS], dtype=np.int64)  # [5]
_ONEHOT_TO_EDGE_OP = np.full(len(OPS), -1, dtype=np.int64)  # [7], -1 for input/output
_ONEHOT_TO_EDGE_OP[_EDGE_OP_TO_ONEHOT] = np.arange(len(EDGE_OPS))
_EDGE_OP_INDEX = {op: i for i, op in enumerate(EDGE_OPS)}


def _fixed_adjacency() -> np.ndarray:
  """The shared 8x8 adjacency, derived from the cell's edge list."""
  adj = np.zeros((NUM_NODES, NUM_NODES), dtype=np.int8)
  for e, (src, dst) in enumerate(zip(EDGE_SOURCES, EDGE_TARGETS)):
    node = e + 1
    if src == 0:
      adj[0, node] = 1
    for f, src2 in enumerate(EDGE_SOURCES):
      if src2 == dst:
        adj[node, f + 1] = 1
    if dst == 3:
      adj[node, NUM_NODES - 1] = 1
  return adj


ADJACENCY: np.ndarray = _fixed_adjacency()
ADJACENCY.flags.writeable = False


def to_arch_str(ops6: Sequence[str]) -> str:
  """Formats six edge ops (arch-string order) as a NAS-Bench-201 arch string.

  Args:
    ops6: six names from `EDGE_OPS`, for edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3.

  Returns:
    The arch string, e.g. `|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...|`.

  Raises:
    ValueError: if there are not six ops or one is not in `EDGE_OPS`.
  """
  ops6 = tuple(ops6)
  if len(ops6) != NUM_EDGES:
    raise ValueError(f"expected {NUM_EDGES} edge ops, got {len(ops6)}: {ops6!r}")
  for op in ops6:
    if op not in _EDGE_OP_INDEX:
      raise ValueError(f"unknown NAS-Bench-201 op {op!r} in {ops6!r}; expected one of {EDGE_OPS}")
  parts = []
  e = 0
  for target in (1, 2, 3):
    entries = []
    for src in range(target):
      entries.append(f"{ops6[e]}~{src}")
      e += 1
    parts.append("|" + "|".join(entries) + "|")
  return "+".join(parts)


def parse_arch(arch_str: str) -> tuple[str, ...]:
  """Parses a NAS-Bench-201 arch string into its six edge ops.

  Args:
    arch_str: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.

  Returns:
    The six op names in arch-string order (edges 0->1, 0->2, 1->2, 0->3, 1->3, 2->3).

  Raises:
    ValueError: naming the string, if it does not have three nodes with 1, 2 and 3
      edges, an entry is not `op~k`, a source index is not the expected one, or an
      op is not in `EDGE_OPS`.
  """
  if not isinstance(arch_str, str):
    raise TypeError(f"arch string must be a str, got {type(arch_str).__name__}: {arch_str!r}")
  nodes = arch_str.split("+")
  if len(nodes) != 3:
    raise ValueError(
      f"arch string {arch_str!r}: expected 3 nodes separated by '+', got {len(nodes)}"
    )
  ops: list[str] = []
  for i, node in enumerate(nodes):
    target = i + 1
    if len(node) < 2 or not node.startswith("|") or not node.endswith("|"):
      raise ValueError(
        f"arch string {arch_str!r}: node {target} {node!r} is not of the form '|...|'"
      )
    entries = node[1:-1].split("|")
    if len(entries) != target:
      raise ValueError(
        f"arch string {arch_str!r}: node {target} must have {target} input edge(s), "
        f"got {len(entries)}"
      )
    for src, entry in enumerate(entries):
      pieces = entry.split("~")
      if len(pieces) != 2:
        raise ValueError(f"arch string {arch_str!r}: edge {entry!r} is not of the form 'op~source'")
      op, idx = pieces
      if idx != str(src):
        raise ValueError(
          f"arch string {arch_str!r}: edge {entry!r} into node {target} must come from node {src}"
        )
      if op not in _EDGE_OP_INDEX:
        raise ValueError(f"arch string {arch_str!r}: unknown op {op!r}; expected one of {EDGE_OPS}")
      ops.append(op)
  return tuple(ops)


@functools.lru_cache(maxsize=1)
def _benchmark_order() -> tuple[tuple[str, ...], np.ndarray, dict[str, int]]:
  """(arch strings, op indices [15625, 6] into EDGE_OPS, arch string -> index)."""
  # NAS-Bench-201's gen_all enumerates node by node, and within a node edge by edge,
  # with the first op slowest: exactly itertools.product over the six edges.
  combos = list(itertools.product(range(len(EDGE_OPS)), repeat=NUM_EDGES))
  # generate_meta_info then shuffles the list with random.seed(88).
  random.Random(88).shuffle(combos)
  codes = np.asarray(combos, dtype=np.int8)
  codes.flags.writeable = False
  strings = tuple(_product_order_strings()[code_number(codes)])
  return strings, codes, {s: i for i, s in enumerate(strings)}


@functools.lru_cache(maxsize=1)
def _product_order_strings() -> np.ndarray:
  """Object array [15625]: arch string of the cell whose base-5 code number is i."""
  combos = itertools.product(EDGE_OPS, repeat=NUM_EDGES)
  return np.array([to_arch_str(c) for c in combos], dtype=object)


def code_number(codes: np.ndarray) -> np.ndarray:
  """Edge-op codes [N, 6] (indices into EDGE_OPS) -> int64 [N], the product-order (base 5)
  number, first edge most significant."""
  weights = len(EDGE_OPS) ** np.arange(NUM_EDGES - 1, -1, -1)
  return np.asarray(codes, dtype=np.int64) @ weights


def arch_strings() -> list[str]:
  """The 15,625 arch strings in the benchmark's own index order (generated, not read)."""
  return list(_benchmark_order()[0])


def index_of(arch_str: str) -> int:
  """The benchmark index of an arch string.

  Raises:
    ValueError: naming the string, if it is not a NAS-Bench-201 arch string.
  """
  try:
    return _benchmark_order()[2][arch_str]
  except (KeyError, TypeError):
    parse_arch(arch_str)  # raises with the specific reason
    raise ValueError(f"arch string {arch_str!r} is not in NAS-Bench-201") from None


def _codes_to_cells(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Edge-op codes [N, 6] (indices into EDGE_OPS) -> (adjacency [N,8,8], ops [N,8,7]) int8."""
  n = codes.shape[0]
  labels = np.empty((n, NUM_NODES), dtype=np.int64)
  labels[:, 0] = _INPUT
  labels[:, 1:-1] = _EDGE_OP_TO_ONEHOT[codes]
  labels[:, -1] = _OUTPUT
  ops = (labels[..., None] == np.arange(len(OPS))).astype(np.int8)
  adj = np.broadcast_to(ADJACENCY, (n, NUM_NODES, NUM_NODES)).copy()
  return adj, ops


def encode(arch_str: str) -> tuple[np.ndarray, np.ndarray]:
  """Encodes one arch string.

  Returns:
    adjacency: int8 [8, 8], always `ADJACENCY`.
    ops: int8 [8, 7], one-hot over `OPS`.

  Raises:
    ValueError: naming the string, if it does not parse.
  """
  adj, ops = encode_batch([arch_str])
  return adj[0], ops[0]


def encode_batch(arch_strs: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
  """Encodes many arch strings.

  Args:
    arch_strs: N arch strings.

  Returns:
    adjacency: int8 [N, 8, 8]; ops: int8 [N, 8, 7].

  Raises:
    ValueError: naming the first string that does not parse.
  """
  _, codes_all, lookup = _benchmark_order()
  arch_strs = list(arch_strs)
  idx = np.empty(len(arch_strs), dtype=np.int64)
  for i, s in enumerate(arch_strs):
    j = lookup.get(s) if isinstance(s, str) else None
    idx[i] = index_of(s) if j is None else j
  return _codes_to_cells(codes_all[idx])


@functools.lru_cache(maxsize=1)
def _all_cells_cached() -> tuple[np.ndarray, np.ndarray]:
  adj, ops = _codes_to_cells(_benchmark_order()[1])
  adj.flags.writeable = False
  ops.flags.writeable = False
  return adj, ops


def all_cells() -> tuple[np.ndarray, np.ndarray]:
  """Every cell in benchmark order (read-only arrays).

  Returns:
    adjacency int8 [15625, 8, 8], ops int8 [15625, 8, 7].
  """
  return _all_cells_cached()


def _check_shapes(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  return check_batch_shapes(adjacency, ops, NUM_NODES, len(OPS))


def _strict_valid(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """bool [N]: exactly a NAS-Bench-201 cell (fixed adjacency, input/6 edge ops/output)."""
  labels, one_hot = one_hot_labels(ops)
  ok = one_hot.all(axis=-1)
  ok &= labels[:, 0] == _INPUT
  ok &= labels[:, -1] == _OUTPUT
  ok &= np.all(_ONEHOT_TO_EDGE_OP[labels[:, 1:-1]] >= 0, axis=-1)
  ok &= np.all(adjacency == ADJACENCY, axis=(1, 2))
  return ok


def is_valid_batch(adjacency: np.ndarray, ops: np.ndarray, strict: bool = False) -> np.ndarray:
  """Which decoded cells count as valid NAS-Bench-201 cells.

  The default follows the arch2vec release (`utils.is_valid_nasbench201`), which
  produced the paper's validity numbers: node 0 is `input`, node 7 is `output` and
  nodes 2..6 are edge ops. The release does not look at the adjacency and, by an
  off-by-one (`range(2, ...)`), not at node 1 either. `strict=True` asks for a
  real NAS-Bench-201 cell: the fixed adjacency and nodes 1..6 all edge ops
  (exactly the cells `decode` accepts).

  Args:
    adjacency: 0/1 [N, 8, 8] (decoded edges; the release takes the strict upper triangle).
    ops: one-hot [N, 8, 7] over `OPS` (argmax of the decoded ops); a row that is not
      one-hot is invalid.
    strict: see above.

  Returns:
    bool [N].
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  if strict:
    return _strict_valid(adjacency, ops)
  labels, one_hot = one_hot_labels(ops)
  ok = one_hot.all(axis=-1)
  ok &= labels[:, 0] == _INPUT
  ok &= labels[:, -1] == _OUTPUT
  ok &= np.all(_ONEHOT_TO_EDGE_OP[labels[:, 2:-1]] >= 0, axis=-1)
  return ok


def decode(adjacency: np.ndarray, ops: np.ndarray) -> str:
  """The arch string of one encoded cell.

  Args:
    adjacency: 0/1 [8, 8]; must equal `ADJACENCY`.
    ops: one-hot [8, 7]: input, six edge ops, output.

  Raises:
    ValueError: if the pair is not a NAS-Bench-201 cell (says why).
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  if adjacency.shape != (NUM_NODES, NUM_NODES) or ops.shape != (NUM_NODES, len(OPS)):
    raise ValueError(
      f"expected adjacency [8, 8] and ops [8, 7], got {adjacency.shape} and {ops.shape}"
    )
  if not np.array_equal(adjacency, ADJACENCY):
    raise ValueError(
      f"not a NAS-Bench-201 cell: adjacency differs from the fixed one:\n{adjacency}"
    )
  labels, one_hot = one_hot_labels(ops)
  if not one_hot.all():
    raise ValueError(
      f"not a NAS-Bench-201 cell: ops rows {np.flatnonzero(~one_hot).tolist()} are not one-hot"
    )
  names = [OPS[k] for k in labels]
  if names[0] != "input" or names[-1] != "output":
    raise ValueError(
      f"not a NAS-Bench-201 cell: first/last node ops are {names[0]!r}/{names[-1]!r}"
    )
  bad = [i for i in range(1, NUM_NODES - 1) if _ONEHOT_TO_EDGE_OP[labels[i]] < 0]
  if bad:
    raise ValueError(f"not a NAS-Bench-201 cell: nodes {bad} have ops {[names[i] for i in bad]}")
  return to_arch_str(names[1:-1])


def decode_batch(adjacency: np.ndarray, ops: np.ndarray) -> list[str]:
  """Vectorised `decode`: the arch strings of N encoded cells.

  Args:
    adjacency: 0/1 [N, 8, 8]; ops: one-hot [N, 8, 7].

  Raises:
    ValueError: naming the first cell that is not a NAS-Bench-201 cell (and why).
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  ok = _strict_valid(adjacency, ops)
  if not ok.all():
    i = int(np.flatnonzero(~ok)[0])
    try:
      decode(adjacency[i], ops[i])
    except ValueError as e:
      raise ValueError(f"cell {i}: {e}") from None
  codes = _ONEHOT_TO_EDGE_OP[ops.argmax(-1)[:, 1:-1]]
  return _product_order_strings()[code_number(codes)].tolist()


@functools.lru_cache(maxsize=1)
def _relabellings() -> tuple[np.ndarray, np.ndarray]:
  """The node orders under which the fixed graph is still strictly upper triangular.

  Returns:
    perms: int [P, 8]; a cell whose adjacency equals `adjs[k]` is the fixed graph
      with its node i standing for fixed node perms[k, i] (0 and 7 stay put: the
      unique source and sink of an upper-triangular DAG are first and last).
    adjs: int8 [P, 8, 8], ADJACENCY relabelled by each perm. Row 0 is the identity.
  """
  perms, adjs = [], []
  for inner in itertools.permutations(range(1, NUM_NODES - 1)):
    perm = np.array((0, *inner, NUM_NODES - 1))
    relabelled = ADJACENCY[np.ix_(perm, perm)]
    if not np.tril(relabelled).any():
      perms.append(perm)
      adjs.append(relabelled)
  return np.stack(perms), np.stack(adjs).astype(np.int8)


def _edge_code(adjacency: np.ndarray) -> np.ndarray:
  """0/1 [N, 8, 8] -> uint64 [N], the 64 entries as bits."""
  bits = np.packbits(np.asarray(adjacency, dtype=bool).reshape(-1, NUM_NODES * NUM_NODES), axis=1)
  return bits.view(">u8").reshape(-1)


def hash_batch(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """Cell identifiers: the arch string for NAS-Bench-201 cells.

  For a strictly valid cell (see `is_valid_batch`) the arch string is a perfect
  identifier. Other decodes (the release counts some as valid) are identified as
  in the release, by the graph of (strict upper triangle of adjacency, argmax
  ops): a graph isomorphic to a real cell (the fixed graph with its inner nodes
  listed in another topological order, and proper ops) gets that cell's arch
  string; any other gets `'graph:' + ` its NAS-Bench-101 graph hash.

  Args:
    adjacency: 0/1 [N, 8, 8]; ops: one-hot [N, 8, 7].

  Returns:
    str array [N] (object dtype).
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  out = np.empty(adjacency.shape[0], dtype=object)
  labels = ops.argmax(-1)
  edges = np.triu(adjacency != 0, 1)
  one_hot = one_hot_labels(ops)[1].all(axis=-1)
  # Which relabelling of the fixed graph each cell is (-1: none); identity first.
  perms, adjs = _relabellings()
  match = _edge_code(edges)[:, None] == _edge_code(adjs)[None, :]  # [N, P]
  which = np.where(match.any(axis=1), match.argmax(axis=1), -1)
  # Ops of the fixed nodes 1..6: fixed node perms[k, i] carries the label of node i.
  fixed_labels = np.empty_like(labels)
  rows = np.arange(len(labels))[:, None]
  fixed_labels[rows, perms[np.maximum(which, 0)]] = labels
  real = (which >= 0) & one_hot
  real &= (fixed_labels[:, 0] == _INPUT) & (fixed_labels[:, -1] == _OUTPUT)
  real &= np.all(_ONEHOT_TO_EDGE_OP[fixed_labels[:, 1:-1]] >= 0, axis=-1)
  if real.any():
    codes = _ONEHOT_TO_EDGE_OP[fixed_labels[real, 1:-1]]
    out[real] = _product_order_strings()[code_number(codes)]
  if (~real).any():
    hashes = graph_hash.hash_batch(edges[~real].astype(np.int8), labels[~real])
    out[~real] = ["graph:" + str(h) for h in hashes]
  return out
