"""The NAS-Bench-101 graph hash, one graph at a time and vectorised over a batch.

The hash (Ying et al. 2019, `nasbench/lib/graph_util.py: hash_module`) is a
Weisfeiler-Lehman style fingerprint built from MD5 digests:

  1. every node v starts as md5(str((out_degree(v), in_degree(v), label(v))));
  2. V times (V = number of nodes), every node is re-hashed at once as
     md5(''.join(sorted(in-neighbour hashes)) + '|' +
         ''.join(sorted(out-neighbour hashes)) + '|' + own hash);
  3. the graph hash is md5(str(sorted(node hashes))), i.e. of the Python list
     repr "['<hex>', '<hex>', ...]".

All digests are the 32-character lower-case hex strings. The hash is invariant
under node relabelling, so isomorphic labelled graphs hash alike.

`hash_graph` is the plain reference; `hash_batch` (and `digest_batch`, the raw
digests) computes the same strings for many padded graphs with NumPy:
  * graphs are processed in chunks of about `_CHUNK_NODES` nodes, all rounds of
    a chunk at once, so every array stays small (cache-sized, no large
    temporaries);
  * during a round a node's current hash is an integer id into a table of the
    chunk's distinct hex strings sorted lexicographically (so sorting ids sorts
    the strings); the round's key of a node is the integer row (sorted
    in-neighbour ids, sorted out-neighbour ids, own id); while many nodes
    share a state, MD5 runs once per distinct key of the chunk, not once per
    node;
  * MD5 itself is vectorised across messages (`_md5_pass`, RFC 1321 in uint32
    NumPy arithmetic) over messages laid out directly in their padded form.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import hashlib
import multiprocessing
import os
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["default_workers", "digest_batch", "digests_to_hex", "hash_batch", "hash_graph"]

_SEP = ord("|")


def _md5_hex(text: str | bytes) -> str:
  if isinstance(text, str):
    text = text.encode("utf-8")
  return hashlib.md5(text).hexdigest()


def _label_text(label) -> str:
  """The text of a label inside str((out, in, label)) (its repr, like a tuple's str)."""
  if isinstance(label, (bool, np.bool_)):
    return repr(bool(label))
  if isinstance(label, (int, np.integer)):
    return repr(int(label))
  if isinstance(label, (float, np.floating)):
    return repr(float(label))
  if isinstance(label, np.ndarray):
    label = label.tolist()
  return repr(label)


def hash_graph(matrix: np.ndarray, labels: Sequence) -> str:
  """The NAS-Bench-101 hash of one labelled graph (reference implementation).

  Args:
    matrix: [V, V] adjacency, nonzero entry (w, v) = edge w -> v. Any square
      matrix is accepted (NB101 cells are strictly upper triangular).
    labels: V node labels; ints (NB101: -1 input, -2 output, 0..2 the inner
      ops) or any value whose repr is the label text (e.g. a one-hot list).

  Returns:
    The 32-character hex MD5 fingerprint.

  Raises:
    ValueError: if the matrix is not square or the label count differs.
  """
  matrix = np.asarray(matrix)
  if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
    raise ValueError(f"matrix must be square, got shape {matrix.shape}")
  num_vertices = matrix.shape[0]
  if len(labels) != num_vertices:
    raise ValueError(f"{len(labels)} labels for a {num_vertices}-node matrix")
  edges = matrix != 0
  in_degree = edges.sum(axis=0).tolist()
  out_degree = edges.sum(axis=1).tolist()
  hashes = [
    _md5_hex(f"({out_degree[v]}, {in_degree[v]}, {_label_text(labels[v])})")
    for v in range(num_vertices)
  ]
  for _ in range(num_vertices):
    new_hashes = []
    for v in range(num_vertices):
      in_neighbours = sorted(hashes[w] for w in range(num_vertices) if edges[w, v])
      out_neighbours = sorted(hashes[w] for w in range(num_vertices) if edges[v, w])
      new_hashes.append(
        _md5_hex("".join(in_neighbours) + "|" + "".join(out_neighbours) + "|" + hashes[v])
      )
    hashes = new_hashes
  return _md5_hex(str(sorted(hashes)))


# ------------------------------------------------------------------------ MD5 over many messages

# MD5 (RFC 1321) constants: per-step left-rotation, additive constant and
# message word index.
_MD5_SHIFT = np.array(
  [7, 12, 17, 22] * 4 + [5, 9, 14, 20] * 4 + [4, 11, 16, 23] * 4 + [6, 10, 15, 21] * 4, np.uint32
)
_MD5_CONST = np.floor(np.abs(np.sin(np.arange(1, 65))) * 2**32).astype(np.uint32)
_MD5_WORD = np.array(
  [
    i if i < 16 else (5 * i + 1) % 16 if i < 32 else (3 * i + 5) % 16 if i < 48 else (7 * i) % 16
    for i in range(64)
  ]
)
_MD5_INIT = np.array([0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476], np.uint32)
_MD5_PASS = 32768  # messages per vectorised pass (keeps the working set in cache)
_MD5_MIN_VECTORISED = 2048  # below this many messages hashlib is faster
# The two lower-case hex characters of every byte value, as one little-endian uint16.
_HEX_PAIRS = np.array(
  [int.from_bytes(f"{i:02x}".encode("ascii"), "little") for i in range(256)], np.uint16
)
_CHUNK_NODES = 1 << 16  # nodes hashed together (all rounds) in `_hash_chunk`
_DEDUPE_BELOW = 0.9  # de-duplicate a round's keys while distinct states < this fraction of nodes


def _to_hex(raw: np.ndarray) -> np.ndarray:
  """uint8 [K, 16] digests -> uint8 [K, 32] lower-case ASCII hex."""
  return np.take(_HEX_PAIRS, raw).view(np.uint8).reshape(len(raw), 32)


def _num_blocks(length: int) -> int:
  """MD5 blocks of a `length`-byte message (with the 0x80 byte and 8-byte length)."""
  return (length + 8) // 64 + 1


def _pad(rows: np.ndarray, length: int) -> None:
  """Writes the MD5 padding of `length`-byte messages into zeroed rows uint8 [n, 64 B], in place."""
  rows[:, length] = 0x80
  rows[:, -8:] = np.frombuffer(np.array([8 * length], "<u8").tobytes(), np.uint8)


def _md5_pass(words: np.ndarray) -> np.ndarray:
  """MD5 of n padded messages at once: words uint32 [B, 16, n] -> state uint32 [4, n]."""
  n = words.shape[2]
  state = np.repeat(_MD5_INIT[:, None], n, axis=1)
  work = np.empty_like(state)
  f = np.empty(n, np.uint32)
  t = np.empty(n, np.uint32)
  for block in words:
    work[:] = state
    a, b, c, d = work
    for i in range(64):
      if i < 16:
        np.bitwise_xor(c, d, out=f), np.bitwise_and(f, b, out=f), np.bitwise_xor(f, d, out=f)
      elif i < 32:
        np.bitwise_xor(b, c, out=f), np.bitwise_and(f, d, out=f), np.bitwise_xor(f, c, out=f)
      elif i < 48:
        np.bitwise_xor(b, c, out=f), np.bitwise_xor(f, d, out=f)
      else:
        np.invert(d, out=f), np.bitwise_or(f, b, out=f), np.bitwise_xor(f, c, out=f)
      a += f
      a += block[_MD5_WORD[i]]
      a += _MD5_CONST[i]
      np.left_shift(a, _MD5_SHIFT[i], out=t)
      a >>= np.uint32(32) - _MD5_SHIFT[i]
      a |= t
      a += b
      a, b, c, d = d, a, b, c
    state += work
  return state


def _md5_padded(padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """MD5 of messages that already carry their MD5 padding.

  Args:
    padded: uint8 [n, 64 B], C-contiguous; row i is message i (lengths[i]
      bytes) followed by its padding (see `_pad`), all B blocks long.
    lengths: int [n], the message lengths (used when hashlib is faster).

  Returns:
    uint8 [n, 16] raw digests.
  """
  n, width = padded.shape
  if n < _MD5_MIN_VECTORISED:
    data = padded.tobytes()
    md5 = hashlib.md5
    digests = b"".join(
      [
        md5(data[i * width : i * width + length]).digest()
        for i, length in enumerate(lengths.tolist())
      ]
    )
    return np.frombuffer(digests, np.uint8).reshape(n, 16)
  words = padded.view("<u4").reshape(n, width // 4)
  out = np.empty((n, 4), "<u4")
  for lo in range(0, n, _MD5_PASS):
    part = words[lo : lo + _MD5_PASS]
    # Word-major copy [B * 16, m], transposed in cache-sized slabs (a plain
    # strided transpose is several times slower).
    columns = np.empty(part.shape[::-1], np.uint32)
    for k in range(0, len(part), 1024):
      columns[:, k : k + 1024] = part[k : k + 1024].T
    out[lo : lo + _MD5_PASS] = _md5_pass(columns.reshape(width // 64, 16, -1)).T
  return out.view(np.uint8)


def _md5_rows(rows: np.ndarray) -> np.ndarray:
  """MD5 of every row of a uint8 [K, L] array: uint8 [K, 16]."""
  num_rows, length = rows.shape
  padded = np.zeros((num_rows, 64 * _num_blocks(length)), np.uint8)
  padded[:, :length] = rows
  _pad(padded, length)
  return _md5_padded(padded, np.full(num_rows, length))


# ----------------------------------------------------------------------------- batched hash


def _fingerprint_multipliers(num_cols: int) -> np.ndarray:
  """Fixed random odd uint64 [num_cols], the coefficients of the row fingerprint."""
  return np.random.default_rng(num_cols).integers(
    1, 2**63, size=num_cols, dtype=np.uint64
  ) | np.uint64(1)


def _unique_rows(rows: np.ndarray, prefix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Unique rows of an int array, exactly, ordered by a small prefix code.

  Rows are grouped by a 64-bit code: `prefix` in the high bits, a
  fingerprint (a fixed random linear form mod 2^64) in the rest; the grouping
  is then checked row by row, and a fingerprint collision falls back to the
  exact `np.unique(axis=0)`.

  Args:
    rows: int [M, k] (int32 with even k is fastest).
    prefix: int [M], >= 0, a function of the row (equal rows, equal prefix).

  Returns:
    (first, inverse): first int [U] the index of one row per group, groups in
    ascending order of prefix; inverse int [M] the group of every row
    (rows[first[inverse]] == rows).
  """
  num_rows, num_cols = rows.shape
  if num_rows == 0:
    return np.zeros(0, np.int64), np.zeros(0, np.int64)
  if rows.dtype == np.int32 and num_cols % 2 == 0 and rows.flags.c_contiguous:
    words = rows.view(np.uint64)  # two ids per word: half the multiply-adds
  else:
    words = rows.astype(np.int64).view(np.uint64)
  multipliers = _fingerprint_multipliers(words.shape[1])
  code = words[:, 0] * multipliers[0]  # wraps mod 2^64
  term = np.empty(num_rows, np.uint64)
  for c in range(1, words.shape[1]):
    code += np.multiply(words[:, c], multipliers[c], out=term)
  bits = int(prefix.max()).bit_length()
  if bits:
    code >>= np.uint64(bits)
    code |= prefix.astype(np.uint64) << np.uint64(64 - bits)
  order = np.argsort(code)
  sorted_code = code[order]
  is_new = np.empty(num_rows, bool)
  is_new[0] = True
  np.not_equal(sorted_code[1:], sorted_code[:-1], out=is_new[1:])
  inverse = np.empty(num_rows, np.int64)
  inverse[order] = np.cumsum(is_new) - 1
  first = order[is_new]
  if np.array_equal(rows, np.take(rows, np.take(first, inverse), axis=0)):
    return first, inverse
  _, first, inverse = np.unique(np.c_[prefix, rows], axis=0, return_index=True, return_inverse=True)
  return first, inverse.reshape(-1)


def _rank_digests(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Sorted unique table of MD5 digests as hex, and each digest's rank in it.

  Args:
    raw: uint8 [K, 16] MD5 digests.

  Returns:
    (table, rank): table uint8 [U, 32] the unique hex strings in lexicographic
    (= byte) order, rank int32 [K] the row of every digest in `table`.
  """
  halves = np.ascontiguousarray(raw).view(">u8")  # (high, low) numeric order = hex order
  high, low = halves[:, 0].astype(np.uint64), halves[:, 1].astype(np.uint64)
  order = np.argsort(high)
  sorted_high = high[order]
  tie = sorted_high[1:] == sorted_high[:-1]
  if tie.any():
    sorted_low = low[order]
    if np.any(sorted_low[1:][tie] != sorted_low[:-1][tie]):  # equal leading 8 bytes only
      order = np.lexsort((low, high))
      sorted_high, sorted_low = high[order], low[order]
      tie = (sorted_high[1:] == sorted_high[:-1]) & (sorted_low[1:] == sorted_low[:-1])
  is_new = np.ones(len(order), dtype=bool)
  is_new[1:] = ~tie
  rank = np.empty(len(order), dtype=np.int32)
  rank[order] = np.cumsum(is_new, dtype=np.int32) - 1
  return _to_hex(np.take(raw, order[is_new], axis=0)), rank


def _passes(runs: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
  """Cuts runs (lo, hi, a, b) into passes of at most _MD5_PASS rows in total."""
  passes: list[list[tuple[int, int, int, int]]] = [[]]
  room = _MD5_PASS
  for lo, hi, a, b in runs:
    while lo < hi:
      if not room:
        passes.append([])
        room = _MD5_PASS
      take = min(hi - lo, room)
      passes[-1].append((lo, lo + take, a, b))
      lo, room = lo + take, room - take
  return passes


def _write_messages(text: np.ndarray, keys: np.ndarray, a: int, b: int, hexes: np.ndarray) -> int:
  """Writes in-hashes + '|' + out-hashes + '|' + own hash, padded, into zeroed rows.

  Args:
    text: uint8 [n, 64 B] zeroed rows (written in place).
    keys: int32 [n, 2v+1 or 2v+2] keys whose nodes all have in-degree a, out-degree b.
    a, b: the degrees.
    hexes: uint64 [T, 4], the hex table (32 bytes a row).

  Returns:
    The message length 32 (a + b + 1) + 2.
  """
  n, v = len(keys), (keys.shape[1] - 1) // 2
  length = 32 * (a + b + 1) + 2
  columns = np.r_[0:a, v : v + b, 2 * v]  # the a in-ids, the b out-ids, the own id
  gathered = np.take(hexes, keys[:, columns], axis=0).view(np.uint8).reshape(n, 32 * (a + b + 1))
  text[:, : 32 * a] = gathered[:, : 32 * a]
  text[:, 32 * a] = _SEP
  text[:, 32 * a + 1 : 32 * (a + b) + 1] = gathered[:, 32 * a : 32 * (a + b)]
  text[:, 32 * (a + b) + 1] = _SEP
  text[:, length - 32 : length] = gathered[:, 32 * (a + b) :]
  _pad(text, length)
  return length


def _round_digests(
  keys: np.ndarray, in_degree: np.ndarray, out_degree: np.ndarray, table: np.ndarray
) -> np.ndarray:
  """MD5 of in-hashes + '|' + out-hashes + '|' + own hash for every key.

  Each run of keys with the same (in-degree, out-degree) has one fixed text
  layout, built with row gathers; runs with the same MD5 block count are
  hashed together, in passes of at most _MD5_PASS messages.

  Args:
    keys: int32 [K, 2v+1 or 2v+2] (sorted in-neighbour ids, padding, sorted
      out-neighbour ids, padding, own id[, 0]), ids index `table`; sorted so that
      equal (in-degree, out-degree) pairs are contiguous.
    in_degree, out_degree: int [K].
    table: uint8 [T, 32] hex strings.

  Returns:
    uint8 [K, 16] digests.
  """
  hexes = np.ascontiguousarray(table).view(np.uint64)
  starts = np.flatnonzero(
    np.r_[True, (in_degree[1:] != in_degree[:-1]) | (out_degree[1:] != out_degree[:-1])]
  )
  bounds = starts.tolist() + [len(keys)]
  by_blocks: dict[int, list[tuple[int, int, int, int]]] = {}  # block count -> runs (lo, hi, a, b)
  for lo, hi, a, b in zip(
    bounds[:-1], bounds[1:], in_degree[starts].tolist(), out_degree[starts].tolist()
  ):
    by_blocks.setdefault(_num_blocks(32 * (a + b + 1) + 2), []).append((lo, hi, a, b))
  digests = np.empty((len(keys), 16), np.uint8)
  for blocks, runs in by_blocks.items():
    for batch in _passes(runs):
      padded = np.zeros((sum(hi - lo for lo, hi, _, _ in batch), 64 * blocks), np.uint8)
      lengths = np.empty(len(padded), np.int64)
      pos = 0
      for lo, hi, a, b in batch:
        lengths[pos : pos + hi - lo] = _write_messages(
          padded[pos : pos + hi - lo], keys[lo:hi], a, b, hexes
        )
        pos += hi - lo
      rows = np.concatenate([np.arange(lo, hi) for lo, hi, _, _ in batch])
      digests[rows] = _md5_padded(padded, lengths)
  return digests


def _final_digests(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
  """MD5 of "['h0', 'h1', ...]" over each graph's sorted node hashes.

  Args:
    ids: int32 [G, v] node hash ids into `table`, v >= 1.
    table: uint8 [T, 32] hex strings.

  Returns:
    uint8 [G, 16] digests.
  """
  num_graphs, v = ids.shape
  length = 36 * v  # "['" + v hex + (v-1) "', '" + "']"
  padded = np.zeros((num_graphs, 64 * _num_blocks(length)), np.uint8)
  padded[:, :2] = np.frombuffer(b"['", np.uint8)
  blocks = padded[:, 2 : 2 + 36 * v].reshape(num_graphs, v, 36)
  blocks[:, :, :32] = np.take(
    np.ascontiguousarray(table).view(np.uint64), np.sort(ids, axis=1), axis=0
  ).view(np.uint8)
  blocks[:, :, 32:] = np.frombuffer(b"', '", np.uint8)
  padded[:, length - 2 : length + 2] = np.frombuffer(b"']\0\0", np.uint8)
  _pad(padded, length)
  return _md5_padded(padded, np.full(num_graphs, length))


def _initial_ids(
  edges: np.ndarray, labels: np.ndarray, label_repr: Callable[[int], str] | None
) -> tuple[np.ndarray, np.ndarray]:
  """Round 0: md5(str((out-degree, in-degree, label))) of every node.

  The few distinct triples are hashed one by one with hashlib.

  Args:
    edges: bool [G, V, V].
    labels: int [G, V].
    label_repr: label -> text inside the tuple string, or None (repr of int).

  Returns:
    (ids int32 [G, V], table uint8 [T, 32]): each node's hash as an id into
    the sorted table of the distinct hex strings.
  """
  num_graphs, v = labels.shape
  label_values, label_index = np.unique(labels, return_inverse=True)
  code = (label_index.reshape(num_graphs, v) * (v + 1) + edges.sum(axis=2)) * (v + 1) + edges.sum(
    axis=1
  )
  codes, inverse = np.unique(code, return_inverse=True)
  text = label_repr or (lambda x: repr(int(x)))
  triples = zip(
    (codes // (v + 1) % (v + 1)).tolist(),
    (codes % (v + 1)).tolist(),
    label_values[codes // (v + 1) ** 2].tolist(),
  )
  digests = b"".join(
    hashlib.md5(f"({o}, {i}, {text(lab)})".encode()).digest() for o, i, lab in triples
  )
  table, rank = _rank_digests(np.frombuffer(digests, np.uint8).reshape(-1, 16))
  return rank[inverse.reshape(-1)].reshape(num_graphs, v), table


def _hash_chunk(
  edges: np.ndarray, labels: np.ndarray, label_repr: Callable[[int], str] | None
) -> np.ndarray:
  """The hashes of G graphs with V >= 1 nodes each: round 0, V rounds, final.

  Node states are ids into a table of hex strings sorted lexicographically, so
  sorting ids sorts the strings. While many nodes share a state, MD5 runs once
  per distinct (sorted in-ids, sorted out-ids, own id) key of the chunk, not
  once per node.

  Args:
    edges: bool [G, V, V].
    labels: int [G, V].
    label_repr: as `_initial_ids`.

  Returns:
    uint8 [G, 16] raw graph digests.
  """
  ids, table = _initial_ids(edges, labels, label_repr)
  num_graphs, v = ids.shape
  in_edges = np.ascontiguousarray(edges.transpose(0, 2, 1))  # [g, x, w]: edge w -> x
  in_degree = in_edges.sum(axis=2).reshape(-1)
  out_degree = edges.sum(axis=2).reshape(-1)
  degree_code = out_degree * (v + 1) + in_degree
  # Width 2V+2 (a last zero column) so that pairs of ids form uint64 words.
  keys = np.zeros((num_graphs, v, 2 * v + 2), np.int32)
  flat_keys = keys.reshape(-1, 2 * v + 2)
  by_degree = None
  for _ in range(v):
    sentinel = np.int32(len(table))  # sorts after every real id; marks 'no neighbour'
    for part, adjacent in ((slice(0, v), in_edges), (slice(v, 2 * v), edges)):
      neighbours = np.where(adjacent, ids[:, None, :], sentinel)
      neighbours.sort(axis=2)
      keys[:, :, part] = neighbours
    keys[:, :, 2 * v] = ids
    if len(table) < _DEDUPE_BELOW * len(flat_keys):
      first, inverse = _unique_rows(flat_keys, degree_code)
    else:
      # Nearly every state is distinct already: hashing every node costs less
      # than finding the few repeats (equal keys give equal digests, merged by
      # the ranking). Nodes in degree order, as `_round_digests` wants them.
      if by_degree is None:
        by_degree = np.argsort(degree_code, kind="stable")
        in_order = np.argsort(by_degree)
      first, inverse = by_degree, in_order
    keys_first = np.take(flat_keys, first, axis=0)
    table, rank = _rank_digests(
      _round_digests(keys_first, in_degree[first], out_degree[first], table)
    )
    ids = rank[inverse].reshape(num_graphs, v)
  return _final_digests(ids, table)


def _hash_group(
  edges: np.ndarray, labels: np.ndarray, label_repr: Callable[[int], str] | None
) -> np.ndarray:
  """Raw digests of G graphs that all have V nodes, in chunks of about _CHUNK_NODES nodes.

  Args:
    edges: bool [G, V, V].
    labels: int [G, V].
    label_repr: as `_initial_ids`.

  Returns:
    uint8 [G, 16].
  """
  num_graphs, v = labels.shape
  if v == 0:
    return np.tile(np.frombuffer(hashlib.md5(b"[]").digest(), np.uint8), (num_graphs, 1))
  result = np.empty((num_graphs, 16), np.uint8)
  step = max(1, _CHUNK_NODES // v)
  for lo in range(0, num_graphs, step):
    result[lo : lo + step] = _hash_chunk(edges[lo : lo + step], labels[lo : lo + step], label_repr)
  return result


_POOLS: dict[int, concurrent.futures.ProcessPoolExecutor] = {}
_MIN_PARALLEL = 8192  # graphs below which a batch is hashed in this process


def default_workers() -> int:
  """Processes for large hash batches (NB101 enumeration, DARTS sampling).

  $ARCH2VEC_WORKERS if set, else the CPUs this process may use.
  """
  value = os.environ.get("ARCH2VEC_WORKERS")
  if value is not None:
    if not value.isdigit() or int(value) < 1:
      raise ValueError(f"ARCH2VEC_WORKERS must be a positive integer, got {value!r}")
    return int(value)
  return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _pool(workers: int) -> concurrent.futures.ProcessPoolExecutor:
  """A process pool kept for the session (spawned: JAX's threads are never forked)."""
  if workers not in _POOLS:
    if not _POOLS:
      atexit.register(_shutdown_pools)
    _POOLS[workers] = concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn")
    )
  return _POOLS[workers]


def _shutdown_pools() -> None:
  while _POOLS:
    _POOLS.popitem()[1].shutdown()


def digest_batch(
  adjacency: np.ndarray,
  labels: np.ndarray,
  num_nodes: np.ndarray | None = None,
  label_repr: Callable[[int], str] | None = None,
  workers: int = 1,
) -> np.ndarray:
  """The raw 16-byte MD5 digests behind `hash_batch` (byte order = hex order).

  Args and raises: as `hash_batch`.

  Returns:
    uint8 [N, 16]; `bytes(d).hex()` of row i is `hash_batch(...)[i]`.
  """
  adjacency = np.asarray(adjacency)
  labels = np.asarray(labels)
  if adjacency.ndim != 3 or adjacency.shape[1] != adjacency.shape[2]:
    raise ValueError(f"adjacency must be [N, n, n], got shape {adjacency.shape}")
  n_graphs, n = adjacency.shape[:2]
  if labels.shape != (n_graphs, n):
    raise ValueError(f"labels must be [N, n] = {(n_graphs, n)}, got shape {labels.shape}")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
  if num_nodes is None:
    num_nodes = np.full(n_graphs, n, dtype=np.int64)
  num_nodes = np.asarray(num_nodes).astype(np.int64).reshape(-1)
  if num_nodes.shape != (n_graphs,):
    raise ValueError(f"num_nodes must be [N] = [{n_graphs}], got shape {num_nodes.shape}")
  if n_graphs and (num_nodes.min() < 0 or num_nodes.max() > n):
    raise ValueError(
      f"num_nodes must lie in [0, {n}], got range [{num_nodes.min()}, {num_nodes.max()}]"
    )
  if workers > 1 and n_graphs >= _MIN_PARALLEL:
    # A graph's digest does not depend on its batch: hash `workers` slices at once.
    parts = np.array_split(np.arange(n_graphs), workers)
    jobs = [(adjacency[p], labels[p], num_nodes[p], label_repr) for p in parts]
    return np.concatenate(list(_pool(workers).map(digest_batch, *zip(*jobs))))
  result = np.empty((n_graphs, 16), np.uint8)
  for v in np.unique(num_nodes).tolist():
    idx = np.flatnonzero(num_nodes == v)
    every = len(idx) == n_graphs
    edges = (adjacency if every else adjacency[idx])[:, :v, :v] != 0
    result[idx] = _hash_group(edges, (labels if every else labels[idx])[:, :v], label_repr)
  return result


def hash_batch(
  adjacency: np.ndarray,
  labels: np.ndarray,
  num_nodes: np.ndarray | None = None,
  label_repr: Callable[[int], str] | None = None,
  workers: int = 1,
) -> np.ndarray:
  """The NAS-Bench-101 hash of every graph of a padded batch (vectorised).

  Equals `hash_graph(adjacency[i, :k, :k], labels[i, :k])` with
  k = num_nodes[i] for every i, string for string.

  Args:
    adjacency: int or bool [N, n, n]; nonzero (w, v) = edge w -> v. Entries
      of padding nodes are ignored.
    labels: int [N, n] node labels (padding entries ignored).
    num_nodes: int [N], the real node count of each graph (nodes >= it are
      padding); default n for all.
    label_repr: optional map from an int label to the text that stands in
      the initial string "(out, in, <text>)"; default repr(int(label)). Lets
      non-integer labels (e.g. one-hot lists) be hashed through int codes;
      picklable when workers > 1.
    workers: processes to spread a batch of >= 8,192 graphs over (spawned
      once and kept; the result does not depend on it).

  Returns:
    numpy str array [N] ('<U32') of hex hashes.

  Raises:
    ValueError: on inconsistent shapes or node counts outside [0, n].
  """
  return digests_to_hex(digest_batch(adjacency, labels, num_nodes, label_repr, workers))


def digests_to_hex(digests: np.ndarray) -> np.ndarray:
  """Raw MD5 digests uint8 [N, 16] -> their hex strings, str array [N] ('<U32')."""
  digests = np.asarray(digests, np.uint8)
  return _to_hex(digests.reshape(-1, 16)).view("S32").reshape(-1).astype("<U32")
