"""Tests of the NAS-Bench-101 search space (arch2vec_jax/spaces/nb101.py).

The whole space is enumerated once per test session (`space` fixture), into a
temporary cache folder, so the first call really enumerates and the second
loads the cache file.
"""

import csv
import os
import pathlib
import time
import warnings

import numpy as np
import pytest

from arch2vec_jax import fileio
from arch2vec_jax.spaces import graph_hash, nb101, nb101_enumerate

CONV3, CONV1, POOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
COUNTS = {2: 1, 3: 7, 4: 91, 5: 2_532, 6: 64_542, 7: 423_624}


@pytest.fixture(scope="session")
def space(tmp_path_factory):
  """(adjacency, ops, hashes) of the enumerated space, made from scratch in a temporary cache."""
  cache = tmp_path_factory.mktemp("nb101_cache")
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("ARCH2VEC_CACHE", str(cache))
    path = nb101.cache_path()
    assert path.startswith(str(cache)) and not os.path.exists(path)
    start = time.perf_counter()
    built = nb101.enumerate_space()
    print(f"\nNB101 enumeration: {time.perf_counter() - start:.1f} s")
    assert os.path.exists(path)
    # The second call must load the cache, not enumerate again.
    with pytest.MonkeyPatch.context() as no_build:
      no_build.setattr(nb101_enumerate, "_build_space", lambda *args: pytest.fail("cache not used"))
      start = time.perf_counter()
      loaded = nb101.enumerate_space()
      print(f"NB101 cache load: {time.perf_counter() - start:.1f} s")
    for a, b in zip(built, loaded):
      assert np.array_equal(a, b)
    yield built


@pytest.fixture(scope="session")
def subset(shared_data):
  """The 30,001 real NB101 cells: (adjacency [N,7,7], ops [N,7,5], matrices, op lists, hashes)."""
  matrices, op_lists, hashes = [], [], []
  with open(shared_data / "nb101_subset.csv", newline="") as f:
    for row in csv.DictReader(f):
      v = int(row["num_vertices"])
      matrices.append(np.frombuffer(row["adjacency"].encode(), np.uint8).reshape(v, v) - ord("0"))
      op_lists.append(row["operations"].split("|"))
      hashes.append(row["hash"])
  adjacency, ops = nb101.encode_batch(zip(matrices, op_lists))
  return adjacency, ops, matrices, op_lists, np.array(hashes)


def _chain(*ops):
  """input -> ops... -> output, a chain."""
  names = ["input", *ops, "output"]
  return np.eye(len(names), k=1, dtype=np.int8), names


# ----------------------------------------------------------------------------- the whole space


@pytest.mark.slow
def test_space_counts_order_and_shapes(space):
  adjacency, ops, hashes = space
  assert adjacency.shape == (423_624, 7, 7) and adjacency.dtype == np.int8
  assert ops.shape == (423_624, 7, 5) and ops.dtype == np.int8
  assert hashes.shape == (423_624,) and nb101.NUM_CELLS == 423_624
  assert np.all(hashes[1:] > hashes[:-1])  # sorted and unique
  for max_nodes, count in COUNTS.items():
    assert nb101.count_unique(max_nodes) == count  # from the cached space
  assert nb101.CUMULATIVE_COUNTS == COUNTS


@pytest.mark.parametrize("max_nodes", [2, 3, 4, 5])
def test_small_spaces_from_scratch(max_nodes):
  adjacency, ops, hashes = nb101.enumerate_space(max_nodes, cache=False)
  assert len(hashes) == COUNTS[max_nodes] and np.all(hashes[1:] > hashes[:-1])
  assert adjacency.shape == (COUNTS[max_nodes], 7, 7) and ops.shape == (COUNTS[max_nodes], 7, 5)
  assert np.array_equal(nb101.hash_batch(adjacency, ops), hashes)


@pytest.mark.slow
def test_small_spaces_are_prefixes_by_size(space):
  real_nodes = space[1].any(axis=2).sum(axis=1)
  for max_nodes in (2, 3, 4, 5):
    hashes = nb101.enumerate_space(max_nodes, cache=False)[2]
    assert np.array_equal(hashes, space[2][real_nodes <= max_nodes])


@pytest.mark.slow
def test_space_cells_are_valid_and_hash_to_their_hash(space):
  adjacency, ops, hashes = space
  assert nb101.is_valid_batch(adjacency, ops).all()
  rng = np.random.default_rng(0)
  idx = rng.choice(len(hashes), 5000, replace=False)
  assert np.array_equal(nb101.hash_batch(adjacency[idx], ops[idx]), hashes[idx])
  for i in idx[:200]:
    matrix, names = nb101.decode(adjacency[i], ops[i])
    assert nb101.is_valid(matrix, names)
    assert nb101.prune(matrix, names)[1] == names  # enumerated cells are already pruned
    assert nb101.graph_hash(matrix, names) == hashes[i]
  # Padding after the output: the real nodes are a prefix.
  real = ops.any(axis=2)
  num_nodes = real.sum(axis=1)
  assert np.array_equal(real, np.arange(7)[None, :] < num_nodes[:, None])
  assert np.all(ops[np.arange(len(ops)), num_nodes - 1, nb101.OPS.index("output")] == 1)
  assert np.all(ops[:, 0, nb101.OPS.index("input")] == 1)
  assert np.array_equal(nb101.space_cells()[0], adjacency)


# ----------------------------------------------------------------------------- real benchmark cells


@pytest.mark.slow
def test_subset_hashes_vectorised(subset, space):
  adjacency, ops, _, _, hashes = subset
  assert len(hashes) == 30_001
  assert np.array_equal(nb101.hash_batch(adjacency, ops), hashes)
  assert nb101.is_valid_batch(adjacency, ops).all()
  assert np.all(np.isin(hashes, space[2]))


def test_subset_hashes_single(subset):
  _, _, matrices, op_lists, hashes = subset
  for i in range(0, len(hashes), 60):
    assert nb101.graph_hash(matrices[i], op_lists[i]) == hashes[i]
    assert nb101.is_valid(matrices[i], op_lists[i])


# ----------------------------------------------------------------------------- pruning and validity


def test_prune_dangling_node():
  # 0 -> 1 -> 3 and 0 -> 2, where 2 leads nowhere.
  matrix = np.zeros((4, 4), np.int8)
  matrix[0, 1] = matrix[1, 3] = matrix[0, 2] = 1
  pruned, names = nb101.prune(matrix, ["input", CONV3, POOL, "output"])
  assert names == ["input", CONV3, "output"]
  np.testing.assert_array_equal(pruned, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
  assert nb101.graph_hash(matrix, ["input", CONV3, POOL, "output"]) == nb101.graph_hash(
    *_chain(CONV3)
  )


def test_prune_unreachable_node():
  # 0 -> 1 -> 3 and 2 -> 3, where nothing reaches 2.
  matrix = np.zeros((4, 4), np.int8)
  matrix[0, 1] = matrix[1, 3] = matrix[2, 3] = 1
  pruned, names = nb101.prune(matrix, ["input", CONV1, CONV3, "output"])
  assert names == ["input", CONV1, "output"]
  np.testing.assert_array_equal(pruned, np.eye(3, k=1))
  assert nb101.is_valid(matrix, ["input", CONV1, CONV3, "output"])


def test_prune_disconnected():
  # 0 -> 1 and 2 -> 3: the input does not reach the output.
  matrix = np.zeros((4, 4), np.int8)
  matrix[0, 1] = matrix[2, 3] = 1
  names = ["input", CONV1, CONV3, "output"]
  assert nb101.prune(matrix, names) is None
  assert not nb101.is_valid(matrix, names)
  with pytest.raises(ValueError, match="disconnected"):
    nb101.graph_hash(matrix, names)
  adjacency, ops = nb101.encode(matrix, names)
  assert not nb101.is_valid_batch(adjacency[None], ops[None])[0]
  assert nb101.hash_batch(adjacency[None], ops[None])[0] == ""


def test_edge_limit():
  # A 7-node DAG with 10 edges, every node on an input -> output path.
  matrix = np.zeros((7, 7), np.int8)
  for u, v in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (0, 2), (0, 3), (0, 4), (0, 6)]:
    matrix[u, v] = 1
  names = ["input", CONV3, CONV1, POOL, CONV3, CONV1, "output"]
  assert matrix.sum() == 10 and not nb101.is_valid(matrix, names)
  adjacency, ops = nb101.encode(matrix, names)
  assert not nb101.is_valid_batch(adjacency[None], ops[None])[0]
  matrix[0, 6] = 0  # 9 edges
  assert nb101.is_valid(matrix, names)
  # Edges of pruned nodes do not count: 9 kept edges plus one into a dangling node.
  matrix[0, 5], matrix[5, 6] = 1, 0
  matrix[4, 6] = 1
  assert matrix.sum() == 10 and nb101.prune(matrix, names)[0].sum() == 8
  assert nb101.is_valid(matrix, names)


def test_invalid_ops():
  matrix, names = _chain(CONV3, CONV1)
  assert nb101.is_valid(matrix, names)
  assert not nb101.is_valid(matrix, ["input", "output", CONV1, "output"])  # inner 'output'
  assert not nb101.is_valid(matrix, [CONV3, CONV3, CONV1, "output"])  # first op not 'input'
  assert not nb101.is_valid(matrix, ["input", CONV3, CONV1, POOL])  # last op not 'output'
  with pytest.raises(ValueError, match="'input'"):
    nb101.graph_hash(matrix, ["input", "input", CONV1, "output"])


@pytest.mark.parametrize("function", [nb101.prune, nb101.is_valid, nb101.graph_hash, nb101.encode])
def test_malformed_cells_raise(function):
  matrix, names = _chain(CONV3, CONV1)
  with pytest.raises(ValueError, match="conv5x5"):
    function(matrix, ["input", "conv5x5", CONV1, "output"])
  lower = matrix.copy()
  lower[2, 1] = 1  # a cycle 1 -> 2 -> 1, below the diagonal
  with pytest.raises(ValueError, match="2 -> 1"):
    function(lower, names)
  loop = matrix.copy()
  loop[1, 1] = 1
  with pytest.raises(ValueError, match="1 -> 1"):
    function(loop, names)
  with pytest.raises(ValueError, match="square"):
    function(np.zeros((4, 3)), names)
  with pytest.raises(ValueError, match="3 ops"):
    function(matrix, names[:3])
  with pytest.raises(ValueError, match="0/1"):
    function(matrix * 2, names)


def test_batch_functions_reject_bad_input():
  adjacency, ops = nb101.encode(*_chain(CONV3))
  for bad_adjacency, bad_ops in [
    (adjacency[None, :, :6], ops[None]),
    (adjacency[None], ops[None, :, :4]),
    (adjacency, ops),
  ]:
    for function in (nb101.is_valid_batch, nb101.hash_batch):
      with pytest.raises(ValueError, match="shapes"):
        function(bad_adjacency, bad_ops)
  lower = adjacency.copy()
  lower[3, 0] = 1
  with pytest.raises(ValueError, match="3 -> 0"):
    nb101.is_valid_batch(lower[None], ops[None])
  two_hot = ops.copy()
  two_hot[1, 0] = 1
  with pytest.raises(ValueError, match="one-hot"):
    nb101.hash_batch(adjacency[None], two_hot[None])


# ----------------------------------------------------------------------------- encoding


def test_encode_decode_roundtrip():
  matrix, names = _chain(POOL, CONV1)  # 4 nodes
  adjacency, ops = nb101.encode(matrix, names)
  assert (
    adjacency.shape == (7, 7) and ops.shape == (7, 5) and adjacency.dtype == ops.dtype == np.int8
  )
  np.testing.assert_array_equal(adjacency[:4, :4], matrix)
  assert not adjacency[4:].any() and not adjacency[:, 4:].any() and not ops[4:].any()
  assert [nb101.OPS[i] for i in ops[:4].argmax(axis=1)] == names
  back_matrix, back_names = nb101.decode(adjacency, ops)
  np.testing.assert_array_equal(back_matrix, matrix)
  assert back_names == names
  # 2 and 7 nodes, and the batch encoder against the single one.
  cells = [(matrix, names), _chain(CONV3, CONV1, POOL, CONV3, CONV1), _chain()]
  adjacency, ops = nb101.encode_batch(cells)
  assert adjacency.shape == (3, 7, 7) and ops.shape == (3, 7, 5)
  for (m, n), a, o in zip(cells, adjacency, ops):
    single = nb101.encode(m, n)
    np.testing.assert_array_equal(single[0], a)
    np.testing.assert_array_equal(single[1], o)
    back_matrix, back_names = nb101.decode(a, o)
    np.testing.assert_array_equal(back_matrix, m)
    assert back_names == n


@pytest.mark.slow
def test_encode_decode_roundtrip_space(space):
  # Every cell of a sample of the space, and the batch encoder.
  cells = [nb101.decode(a, o) for a, o in zip(space[0][::997], space[1][::997])]
  adjacency, ops = nb101.encode_batch(cells)
  np.testing.assert_array_equal(adjacency, space[0][::997])
  np.testing.assert_array_equal(ops, space[1][::997])
  for (m, n), a, o in zip(cells, adjacency, ops):
    single = nb101.encode(m, n)
    np.testing.assert_array_equal(single[0], a)
    np.testing.assert_array_equal(single[1], o)
  assert nb101.encode_batch([])[0].shape == (0, 7, 7)


def test_encode_decode_errors():
  with pytest.raises(ValueError, match="at most 7"):
    nb101.encode(*_chain(CONV3, CONV3, CONV3, CONV3, CONV3, CONV3))
  adjacency, ops = nb101.encode(*_chain(CONV3))
  with pytest.raises(ValueError, match="shapes"):
    nb101.decode(adjacency[:6, :6], ops)
  gap = ops.copy()
  gap[1] = 0  # a padding row before real nodes
  with pytest.raises(ValueError, match="padding"):
    nb101.decode(adjacency, gap)
  stray = adjacency.copy()
  stray[2, 5] = 1  # an edge into a padding node
  with pytest.raises(ValueError, match="padding"):
    nb101.decode(stray, ops)


def _random_decodes(rng, count):
  """Decoder-like cells: random upper-triangular edges, one-hot ops; some padded or ill-formed."""
  adjacency = np.triu(rng.random((count, 7, 7)) < 0.35, 1).astype(np.int8)
  codes = rng.integers(0, 5, (count, 7))
  last = rng.integers(1, 7, count)
  half = np.arange(count // 2)
  codes[half, 0], codes[half, last[half]] = 0, 4  # half start with 'input' and have an 'output'
  ops = np.eye(5, dtype=np.int8)[codes]
  cell = np.arange(count)
  # A third is padded after node `last`; edges touching padding are removed
  # except in every 17th cell (ill formed); every 23rd has a gap (ill formed).
  pad = (cell % 3 == 0)[:, None] & (np.arange(7)[None, :] > last[:, None])
  ops[pad] = 0
  adjacency[(pad[:, :, None] | pad[:, None, :]) & (cell % 17 != 0)[:, None, None]] = 0
  ops[cell % 23 == 0, 1] = 0
  return adjacency, ops


def test_batch_functions_agree_with_single_ones():
  rng = np.random.default_rng(1)
  adjacency, ops = _random_decodes(rng, 6000)
  valid = nb101.is_valid_batch(adjacency, ops)
  hashes = nb101.hash_batch(adjacency, ops)
  assert 0.05 < valid.mean() < 0.95  # both kinds are tested
  ill_formed = 0
  for i in range(len(valid)):
    try:
      matrix, names = nb101.decode(adjacency[i], ops[i])
    except ValueError:
      ill_formed += 1
      assert not valid[i] and hashes[i] == ""
      continue
    assert valid[i] == nb101.is_valid(matrix, names), i
    assert hashes[i] == (nb101.graph_hash(matrix, names) if valid[i] else ""), i
  assert ill_formed > 0


def test_release_hash_batch_is_the_unpruned_hash():
  rng = np.random.default_rng(2)
  adjacency, ops = _random_decodes(rng, 300)
  hashes = nb101.release_hash_batch(adjacency, ops)
  for i in range(0, 300, 7):
    labels = [[float(x) for x in row] for row in ops[i]]
    assert hashes[i] == graph_hash.hash_graph(adjacency[i], labels)


def test_space_object():
  assert nb101.SPACE.name == "nb101" and nb101.SPACE.num_nodes == 7 and nb101.SPACE.num_ops == 5
  assert (
    nb101.SPACE.ops
    == nb101.OPS
    == ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
  )


# ----------------------------------------------------------------------------- cache


@pytest.fixture
def small_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("ARCH2VEC_CACHE", str(tmp_path))
  return tmp_path


def test_cache_is_written_atomically(small_cache, monkeypatch):
  calls = []
  real = fileio.atomic_save_npz
  monkeypatch.setattr(
    fileio, "atomic_save_npz", lambda path, **kw: calls.append(path) or real(path, **kw)
  )
  cells = nb101.enumerate_space(4)
  assert calls == [nb101.cache_path(4)] and len(cells[2]) == 91
  assert sorted(os.listdir(small_cache)) == [
    os.path.basename(nb101.cache_path(4))
  ]  # no temporary left
  # An interrupted write leaves no file under the final name.
  os.remove(nb101.cache_path(4))
  for name in ("savez", "savez_compressed"):
    monkeypatch.setattr(np, name, lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
  with pytest.raises(KeyboardInterrupt):
    nb101.enumerate_space(4)
  assert os.listdir(small_cache) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "contents", "count", "version"])
def test_corrupt_cache_warns_and_is_rebuilt(small_cache, damage):
  """Decision: a cache failing validation gives a RuntimeWarning (file, reason) and is rebuilt."""
  expected = nb101.enumerate_space(4)
  path = nb101.cache_path(4)
  data = pathlib.Path(path).read_bytes()
  if damage == "garbage":
    pathlib.Path(path).write_bytes(b"not an npz file")
  elif damage == "truncated":
    pathlib.Path(path).write_bytes(data[: len(data) // 2])
  else:
    arrays = fileio.load_npz(path)
    if damage == "version":
      arrays["version"] = np.array(1)
    elif damage == "contents":
      arrays["edges"][3, 0] ^= 1  # checksum no longer matches
    else:
      arrays = {k: (v[:-1] if k in ("edges", "codes", "digests") else v) for k, v in arrays.items()}
    fileio.atomic_save_npz(path, **arrays)
  with pytest.warns(RuntimeWarning, match="nb101_space_max4.npz"):
    rebuilt = nb101.enumerate_space(4)
  for a, b in zip(expected, rebuilt):
    assert np.array_equal(a, b)
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    nb101.enumerate_space(4)  # the rewritten cache is valid


def test_enumerate_space_rejects_bad_sizes():
  for bad in (1, 8):
    with pytest.raises(ValueError, match="max_nodes"):
      nb101.enumerate_space(bad, cache=False)
    with pytest.raises(ValueError, match="max_nodes"):
      nb101.count_unique(bad)
