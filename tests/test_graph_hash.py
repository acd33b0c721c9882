"""Tests of the NAS-Bench-101 graph hash (arch2vec_jax/spaces/graph_hash.py)."""

import hashlib

import numpy as np
import pytest

from arch2vec_jax.spaces import graph_hash


def _official_hash(matrix, labels):
  """nasbench/lib/graph_util.py hash_module, typed out (the specification)."""
  vertices = np.shape(matrix)[0]
  in_edges = np.sum(matrix, axis=0).tolist()
  out_edges = np.sum(matrix, axis=1).tolist()
  hashes = [
    hashlib.md5(str(h).encode("utf-8")).hexdigest() for h in zip(out_edges, in_edges, labels)
  ]
  for _ in range(vertices):
    new_hashes = []
    for v in range(vertices):
      in_neighbors = [hashes[w] for w in range(vertices) if matrix[w, v]]
      out_neighbors = [hashes[w] for w in range(vertices) if matrix[v, w]]
      new_hashes.append(
        hashlib.md5(
          (
            "".join(sorted(in_neighbors)) + "|" + "".join(sorted(out_neighbors)) + "|" + hashes[v]
          ).encode("utf-8")
        ).hexdigest()
      )
    hashes = new_hashes
  return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def _random_dags(rng, count, v, p=0.4):
  return np.triu(rng.random((count, v, v)) < p, 1).astype(np.int8)


def test_hash_graph_matches_the_official_code():
  rng = np.random.default_rng(0)
  for v in range(8):
    for matrix in _random_dags(rng, 20, v):
      labels = rng.integers(-2, 3, v).tolist()
      assert graph_hash.hash_graph(matrix, labels) == _official_hash(matrix, labels)


def test_hash_graph_known_cell():
  # A NAS-Bench-101 cell and its hash from the official data (nb101_subset.csv, row 1).
  bits = "0100110001000000010010000010000001000000010000000"
  matrix = np.array([int(c) for c in bits]).reshape(7, 7)
  labels = [-1, 0, 2, 0, 0, 1, -2]  # input conv3x3 maxpool conv3x3 conv3x3 conv1x1 output
  assert graph_hash.hash_graph(matrix, labels) == "00005c142e6f48ac74fdcf73e3439874"


@pytest.mark.parametrize("v", [0, 1, 2, 3, 5, 7, 9, 11])
def test_hash_batch_matches_hash_graph(v):
  rng = np.random.default_rng(v)
  adjacency = _random_dags(rng, 3000, v)
  labels = rng.integers(-2, 4, (3000, v))
  hashes = graph_hash.hash_batch(adjacency, labels)
  assert hashes.dtype == np.dtype("<U32") and hashes.shape == (3000,)
  for i in range(0, 3000, 37):
    assert hashes[i] == _official_hash(adjacency[i], labels[i].tolist())


def test_hash_batch_padding_mixed_sizes_and_non_dags():
  rng = np.random.default_rng(1)
  adjacency = (rng.random((2000, 6, 6)) < 0.3).astype(np.int8)  # any square matrix, cycles included
  labels = rng.integers(0, 4, (2000, 6))
  num_nodes = rng.integers(0, 7, 2000)
  hashes = graph_hash.hash_batch(adjacency, labels, num_nodes)
  for i in range(0, 2000, 11):
    k = num_nodes[i]
    assert hashes[i] == graph_hash.hash_graph(adjacency[i, :k, :k], labels[i, :k].tolist())
  # Entries of padding nodes are ignored.
  noisy = adjacency.copy()
  noisy[np.arange(6)[None, :] >= num_nodes[:, None]] = 1
  assert np.array_equal(graph_hash.hash_batch(noisy, labels, num_nodes), hashes)


def test_hash_batch_chunks_and_duplicates(monkeypatch):
  """Many chunks (tiny chunk size) and many identical graphs give the same hashes."""
  rng = np.random.default_rng(2)
  adjacency = _random_dags(rng, 400, 7)
  labels = rng.integers(0, 3, (400, 7))
  adjacency, labels = np.concatenate([adjacency] * 3), np.concatenate([labels] * 3)
  expected = graph_hash.hash_batch(adjacency, labels)
  monkeypatch.setattr(graph_hash, "_CHUNK_NODES", 7 * 37)
  monkeypatch.setattr(graph_hash, "_MD5_PASS", 100)
  assert np.array_equal(graph_hash.hash_batch(adjacency, labels), expected)
  assert np.array_equal(expected[:400], expected[800:])
  for dedupe_below in (0.0, 2.0):  # never / always de-duplicate a round's keys
    monkeypatch.setattr(graph_hash, "_DEDUPE_BELOW", dedupe_below)
    assert np.array_equal(graph_hash.hash_batch(adjacency, labels), expected)


def test_hash_batch_is_invariant_under_relabelling():
  rng = np.random.default_rng(3)
  adjacency = _random_dags(rng, 500, 7)
  labels = rng.integers(0, 3, (500, 7))
  perm = np.stack([rng.permutation(7) for _ in range(500)])
  rows = np.arange(500)[:, None]
  permuted = adjacency[rows[:, :, None], perm[:, :, None], perm[:, None, :]]
  assert np.array_equal(
    graph_hash.hash_batch(permuted, labels[rows, perm]), graph_hash.hash_batch(adjacency, labels)
  )


def test_label_repr():
  rng = np.random.default_rng(4)
  adjacency = _random_dags(rng, 300, 5)
  codes = rng.integers(0, 3, (300, 5))
  onehot = {c: [float(c == j) for j in range(3)] for c in range(3)}
  hashes = graph_hash.hash_batch(adjacency, codes, label_repr=lambda c: repr(onehot[c]))
  for i in range(0, 300, 13):
    assert hashes[i] == _official_hash(adjacency[i], [onehot[c] for c in codes[i]])


def test_digest_batch_and_hex():
  rng = np.random.default_rng(5)
  adjacency = _random_dags(rng, 50, 4)
  labels = rng.integers(0, 3, (50, 4))
  digests = graph_hash.digest_batch(adjacency, labels)
  assert digests.dtype == np.uint8 and digests.shape == (50, 16)
  hashes = graph_hash.hash_batch(adjacency, labels)
  assert [bytes(d).hex() for d in digests] == hashes.tolist()
  assert np.array_equal(graph_hash.digests_to_hex(digests), hashes)


@pytest.mark.parametrize("count", [5, 3000])  # hashlib path and vectorised path
def test_md5_kernel_matches_hashlib(count):
  rng = np.random.default_rng(count)
  for length in (0, 1, 55, 56, 63, 64, 65, 119, 120, 130, 252, 300):
    rows = rng.integers(0, 256, (count, length), dtype=np.uint8)
    digests = graph_hash._md5_rows(rows)
    for i in range(0, count, 97):
      assert bytes(digests[i]) == hashlib.md5(rows[i].tobytes()).digest(), length


def test_unique_rows_fingerprint_collision_falls_back(monkeypatch):
  rows = np.array([[1, 2], [2, 1], [1, 2], [3, 0], [0, 3], [2, 1]], np.int32)
  # Multipliers all 1: the fingerprint is the row sum, so every row collides.
  monkeypatch.setattr(graph_hash, "_fingerprint_multipliers", lambda k: np.ones(k, np.uint64))
  first, inverse = graph_hash._unique_rows(rows, np.zeros(len(rows), np.int64))
  assert np.array_equal(rows[first[inverse]], rows)
  assert len(first) == 4 and len(set(inverse.tolist())) == 4


def test_unique_rows_orders_groups_by_prefix():
  rng = np.random.default_rng(6)
  rows = rng.integers(0, 5, (1000, 3)).astype(np.int32)
  prefix = rows[:, 0] * 2 + (rows[:, 1] > 2)
  first, inverse = graph_hash._unique_rows(rows, prefix)
  assert np.array_equal(rows[first[inverse]], rows)
  assert len(first) == len(np.unique(rows, axis=0))
  assert np.all(np.diff(prefix[first]) >= 0)


def test_input_errors():
  with pytest.raises(ValueError, match="square"):
    graph_hash.hash_graph(np.zeros((2, 3)), [0, 0])
  with pytest.raises(ValueError, match="labels"):
    graph_hash.hash_graph(np.zeros((2, 2)), [0])
  with pytest.raises(ValueError, match=r"\[N, n, n\]"):
    graph_hash.hash_batch(np.zeros((4, 2, 3)), np.zeros((4, 2), int))
  with pytest.raises(ValueError, match="labels must be"):
    graph_hash.hash_batch(np.zeros((4, 3, 3)), np.zeros((4, 2), int))
  with pytest.raises(ValueError, match="integers"):
    graph_hash.hash_batch(np.zeros((4, 3, 3)), np.zeros((4, 3)))
  with pytest.raises(ValueError, match="num_nodes"):
    graph_hash.hash_batch(np.zeros((4, 3, 3)), np.zeros((4, 3), int), [1, 2, 3, 4])


def test_rank_digests_ties():
  # Identical digests share a rank; equal leading 8 bytes with different tails are ordered.
  raw = np.array(
    [[1] * 8 + [5] * 8, [1] * 8 + [3] * 8, [0] * 16, [1] * 8 + [5] * 8, [0] * 16, [2] * 16],
    np.uint8,
  )
  table, rank = graph_hash._rank_digests(raw)
  assert rank.tolist() == [2, 1, 0, 2, 0, 3]
  assert [bytes(row).decode() for row in table] == [bytes(r).hex() for r in raw[[2, 1, 0, 5]]]
  table, rank = graph_hash._rank_digests(raw[[0, 2, 3]])  # ties of identical digests only
  assert rank.tolist() == [1, 0, 1] and len(table) == 2


def test_hash_batch_in_worker_processes_equals_one_process(monkeypatch):
  rng = np.random.default_rng(8)
  sizes = rng.integers(1, 7, 9000)
  adjacency = _random_dags(rng, 9000, 6)
  labels = rng.integers(-2, 3, (9000, 6))
  serial = graph_hash.digest_batch(adjacency, labels, sizes)
  assert np.array_equal(graph_hash.digest_batch(adjacency, labels, sizes, workers=2), serial)
  monkeypatch.setenv("ARCH2VEC_WORKERS", "3")
  assert graph_hash.default_workers() == 3
  monkeypatch.setenv("ARCH2VEC_WORKERS", "0")
  with pytest.raises(ValueError, match="ARCH2VEC_WORKERS.*'0'"):
    graph_hash.default_workers()
