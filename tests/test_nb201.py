"""Tests of the NAS-Bench-201 search space (arch2vec_jax/spaces/nb201.py)."""

import csv
import re

import numpy as np
import pytest

from arch2vec_jax.spaces import graph_hash, nb201

# The adjacency of arch2vec's preprocessing/nasbench201_json.py, typed out.
RELEASE_ADJACENCY = np.array(
  [
    [0, 1, 1, 0, 1, 0, 0, 0],
    [0, 0, 0, 1, 0, 1, 0, 0],
    [0, 0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0, 0],
  ]
)
ARCH = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"


def test_constants():
  assert nb201.NUM_CELLS == 15_625 and nb201.NUM_NODES == 8 and len(nb201.OPS) == 7
  np.testing.assert_array_equal(nb201.ADJACENCY, RELEASE_ADJACENCY)
  assert nb201.SPACE.name == "nb201" and nb201.SPACE.num_nodes == 8 and nb201.SPACE.num_ops == 7
  assert nb201.SPACE.ops == (
    "input",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "none",
    "output",
  )


def test_benchmark_order_known_indices():
  # The checks NAS-Bench-201's generate_meta_info asserts after its shuffle.
  archs = nb201.arch_strings()
  assert len(archs) == 15_625 and len(set(archs)) == 15_625
  assert archs[0] == (
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
  )
  assert archs[9] == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
  assert (
    archs[123]
    == "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
  )


def test_benchmark_order_matches_csv(shared_data):
  with open(shared_data / "nb201_accuracies.csv", newline="") as f:
    rows = list(csv.DictReader(f))
  assert [int(r["index"]) for r in rows] == list(range(15_625))
  assert nb201.arch_strings() == [r["arch_str"] for r in rows]


def test_parse_and_format():
  ops = nb201.parse_arch(ARCH)
  assert ops == (
    "nor_conv_3x3",
    "none",
    "skip_connect",
    "avg_pool_3x3",
    "nor_conv_1x1",
    "nor_conv_3x3",
  )
  assert nb201.to_arch_str(ops) == ARCH
  for s in nb201.arch_strings()[:200]:
    assert nb201.to_arch_str(nb201.parse_arch(s)) == s


@pytest.mark.parametrize(
  "bad, reason",
  [
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|", "3 nodes"),
    ("|nor_conv_3x3~0|+|none~0|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|", "2 input edge"),
    ("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|", "3 input edge"),
    (
      "|nor_conv_3x3~1|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
      "from node 0",
    ),
    (
      "|nor_conv_3x3~0|+|none~1|skip_connect~0|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
      "from node 0",
    ),
    (
      "|conv_5x5~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
      "unknown op",
    ),
    (
      "|nor_conv_3x3|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
      "op~source",
    ),
    (
      "nor_conv_3x3~0+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
      "form",
    ),
    ("", "3 nodes"),
  ],
)
def test_parse_errors_name_the_string(bad, reason):
  with pytest.raises(ValueError, match=re.escape(repr(bad))) as info:
    nb201.parse_arch(bad)
  assert reason in str(info.value)
  with pytest.raises(ValueError, match=re.escape(repr(bad))):
    nb201.index_of(bad)
  with pytest.raises(ValueError, match=re.escape(repr(bad))):
    nb201.encode(bad)


def test_index_of():
  archs = nb201.arch_strings()
  for i in (0, 1, 9, 123, 15_624):
    assert nb201.index_of(archs[i]) == i


def test_encode_one():
  adj, ops = nb201.encode(ARCH)
  assert adj.dtype == np.int8 and ops.dtype == np.int8
  np.testing.assert_array_equal(adj, RELEASE_ADJACENCY)
  names = [nb201.OPS[k] for k in ops.argmax(-1)]
  assert names == [
    "input",
    "nor_conv_3x3",
    "none",
    "skip_connect",
    "avg_pool_3x3",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "output",
  ]
  np.testing.assert_array_equal(ops.sum(-1), np.ones(8))


def test_round_trip_all_cells():
  archs = nb201.arch_strings()
  adj, ops = nb201.encode_batch(archs)
  assert adj.shape == (15_625, 8, 8) and ops.shape == (15_625, 8, 7)
  all_adj, all_ops = nb201.all_cells()
  np.testing.assert_array_equal(adj, all_adj)
  np.testing.assert_array_equal(ops, all_ops)
  assert nb201.decode_batch(adj, ops) == archs
  assert [nb201.decode(adj[i], ops[i]) for i in range(0, 15_625, 97)] == archs[::97]
  assert len({o.tobytes() for o in ops}) == 15_625
  # SPACE.cells gives the same arrays, in benchmark order.
  space_adj, space_ops = nb201.SPACE.cells()
  np.testing.assert_array_equal(space_adj, adj)
  np.testing.assert_array_equal(space_ops, ops)


def _onehot(names):
  ops = np.zeros((8, 7), dtype=np.int8)
  ops[np.arange(8), [nb201.OPS.index(n) for n in names]] = 1
  return ops


def test_decode_rejects_invalid():
  adj, ops = nb201.encode(ARCH)
  bad_adj = adj.copy()
  bad_adj[0, 3] = 1
  with pytest.raises(ValueError, match="adjacency"):
    nb201.decode(bad_adj, ops)
  bad_ops = ops.copy()
  bad_ops[3] = 0
  bad_ops[3, nb201.OPS.index("output")] = 1
  with pytest.raises(ValueError, match="nodes \\[3\\]"):
    nb201.decode(adj, bad_ops)
  with pytest.raises(ValueError, match="not one-hot"):
    nb201.decode(adj, np.zeros((8, 7), dtype=np.int8))
  with pytest.raises(ValueError, match="cell 1: .*nodes \\[3\\]"):
    nb201.decode_batch(np.stack([adj, adj]), np.stack([ops, bad_ops]))


def test_is_valid_hand_made_decodes():
  good = [
    "input",
    "nor_conv_3x3",
    "none",
    "skip_connect",
    "avg_pool_3x3",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "output",
  ]
  cases = []  # (adjacency, op names, release-valid, strict-valid)
  cases.append((RELEASE_ADJACENCY, good, True, True))
  # The release does not check node 1 (range(2, ...)): 'input' there still counts.
  cases.append((RELEASE_ADJACENCY, ["input", "input", *good[2:]], True, False))
  cases.append((RELEASE_ADJACENCY, [*good[:3], "output", *good[4:]], False, False))
  cases.append((RELEASE_ADJACENCY, ["nor_conv_1x1", *good[1:]], False, False))
  cases.append((RELEASE_ADJACENCY, [*good[:-1], "none"], False, False))
  # The release ignores the adjacency altogether.
  extra = RELEASE_ADJACENCY.copy()
  extra[0, 7] = 1
  cases.append((extra, good, True, False))
  cases.append((np.zeros((8, 8), dtype=int), good, True, False))
  adj = np.stack([c[0] for c in cases])
  ops = np.stack([_onehot(c[1]) for c in cases])
  np.testing.assert_array_equal(nb201.is_valid_batch(adj, ops), [c[2] for c in cases])
  np.testing.assert_array_equal(nb201.is_valid_batch(adj, ops, strict=True), [c[3] for c in cases])
  assert nb201.SPACE.is_valid is nb201.is_valid_batch
  # A row that is not one-hot (e.g. two ops) is invalid.
  two = _onehot(good)
  two[4, 0] = 1
  assert not nb201.is_valid_batch(RELEASE_ADJACENCY[None], two[None])[0]
  # Every real cell is valid both ways.
  all_adj, all_ops = nb201.all_cells()
  assert (
    nb201.is_valid_batch(all_adj, all_ops).all()
    and nb201.is_valid_batch(all_adj, all_ops, strict=True).all()
  )


def test_hash_batch():
  all_adj, all_ops = nb201.all_cells()
  h = nb201.hash_batch(all_adj, all_ops)
  assert list(h) == nb201.arch_strings()
  # The same cell with its inner nodes listed in another topological order is the same cell.
  adj, ops = nb201.encode(ARCH)
  perm = np.array([0, 1, 4, 3, 2, 5, 6, 7])  # swap nodes 2 (edge 0->2) and 4 (edge 0->3)
  p_adj, p_ops = adj[np.ix_(perm, perm)], ops[perm]
  assert not np.array_equal(p_adj, adj) and not np.tril(p_adj).any()
  # A decode missing an edge is another graph, hashed as the release does.
  cut = adj.copy()
  cut[2, 6] = 0
  ids = nb201.hash_batch(np.stack([adj, p_adj, cut]), np.stack([ops, p_ops, ops]))
  assert ids[0] == ARCH and ids[1] == ARCH
  assert ids[2] == "graph:" + graph_hash.hash_graph(cut, ops.argmax(-1))
  assert nb201.SPACE.hash is nb201.hash_batch
