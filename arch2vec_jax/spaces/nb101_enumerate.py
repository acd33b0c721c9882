"""The whole NAS-Bench-101 space (423,624 cells) enumerated by code, without the benchmark file.

`enumerate_space` builds every cell with at most V nodes (isomorphism classes of the
DAGs, then the inner labellings up to automorphism, de-duplicated by the official
hash) and caches it as an `.npz` under `fileio.cache_dir()` (written atomically,
checked when read).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import warnings

import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.spaces import graph_hash as graph_hash_lib
from arch2vec_jax.spaces.nb101_cells import (
  _INPUT,
  _LABEL_TO_ONEHOT,
  _OUTPUT,
  CUMULATIVE_COUNTS,
  INPUT_LABEL,
  LABEL_OPS,
  MAX_EDGES,
  NUM_NODES,
  NUM_OPS,
  OUTPUT_LABEL,
)

__all__ = ["cache_path", "count_unique", "enumerate_space", "space_cells"]

_CACHE_VERSION = 2


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
