"""Tests of the DARTS search space (arch2vec_jax/spaces/darts.py, darts_flops.py)."""

import re

import numpy as np
import pytest

from arch2vec_jax.spaces import darts, darts_flops, graph_hash

# DARTS_V2 as written in quark0/darts cnn/genotypes.py.
DARTS_V2_TEXT = (
  "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
  "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
  "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), "
  "('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), "
  "('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])"
)


def _uniform(op, inputs=(0, 1, 0, 1, 0, 1, 0, 1)):
  return tuple((op, i) for i in inputs)


# ---------------------------------------------------------------- multiply-adds


def test_darts_v2_madds_and_params():
  # conv + linear multiply-adds of NetworkImageNet(48, 1000, 14) with DARTS_V2 as published.
  assert (
    darts_flops.network_madds(darts_flops.DARTS_V2_NORMAL, darts_flops.DARTS_V2_REDUCE)
    == 529_911_552
  )
  # The parameter count confirms the network walk: the paper's 4.7M.
  assert (
    darts_flops.network_params(darts_flops.DARTS_V2_NORMAL, darts_flops.DARTS_V2_REDUCE)
    == 4_718_752
  )
  # arch2vec's convention: the normal cell also as the reduction cell.
  assert darts_flops.network_madds(darts_flops.DARTS_V2_NORMAL) == 579_670_464


def test_madds_ordering_and_extremes():
  sep5 = darts_flops.network_madds(_uniform("sep_conv_5x5"))
  sep3 = darts_flops.network_madds(_uniform("sep_conv_3x3"))
  none = darts_flops.network_madds(_uniform("none"))
  skip_from_blocks = darts_flops.network_madds(
    [("none", 0), ("none", 1), ("skip_connect", 2), ("max_pool_3x3", 0)]
    + [("skip_connect", i) for i in (2, 3, 3, 4)]
  )
  skip_from_inputs = darts_flops.network_madds(_uniform("skip_connect"))
  pools = darts_flops.network_madds(_uniform("max_pool_3x3"))
  base, _ = darts_flops.madds_table()
  assert none == pools == skip_from_blocks == base == 265_396_224
  # Strided skips in the 2 reduction cells are FactorizedReduce(C, C): two 1x1 convs C -> C/2.
  assert skip_from_inputs - none == 8 * (14 * 14 * 96 * 96 + 7 * 7 * 192 * 192)
  assert sep5 > sep3 > 600e6 > none
  assert sep5 == 786_674_688


def test_madds_batch_matches_network_walk():
  op_idx, inputs = darts.sample_genotypes(7, 200)
  batch = darts_flops.madds_batch(op_idx, inputs)
  walk = [darts_flops.network_madds(darts.arrays_to_genotype(o, i)) for o, i in zip(op_idx, inputs)]
  np.testing.assert_array_equal(batch, walk)
  # Also for another network size (CIFAR-like input): the table is not tied to the defaults.
  small = {"channels": 16, "layers": 8, "image_size": 64, "num_classes": 10}
  np.testing.assert_array_equal(
    darts_flops.madds_batch(op_idx[:20], inputs[:20], **small),
    [
      darts_flops.network_madds(darts.arrays_to_genotype(o, i), **small)
      for o, i in zip(op_idx[:20], inputs[:20])
    ],
  )


# ---------------------------------------------------------------- genotypes and cells


def test_darts_v2_cell_encoding():
  adj, ops = darts.genotype_to_cell(darts.DARTS_V2)
  assert adj.shape == (11, 11) and ops.shape == (11, 11) and adj.dtype == np.int8
  expected = np.zeros((11, 11), dtype=int)
  expected[2:10, 10] = 1
  # block 0: (sep3, 0), (sep3, 1); block 1: (sep3, 0), (sep3, 1);
  # block 2: (sep3, 1), (skip, 0); block 3: (skip, 0), (dil3, 2 = block 0).
  for src, dst in [(0, 2), (1, 3), (0, 4), (1, 5), (1, 6), (0, 7), (0, 8), (2, 9), (3, 9)]:
    expected[src, dst] = 1
  np.testing.assert_array_equal(adj, expected)
  labels = [darts.OPS[k] for k in ops.argmax(-1)]
  assert labels == [
    "c_k-2",
    "c_k-1",
    *["sep_conv_3x3"] * 5,
    "skip_connect",
    "skip_connect",
    "dil_conv_3x3",
    "output",
  ]
  assert darts.cell_to_genotype(adj, ops) == darts.DARTS_V2


def test_genotype_cell_round_trip():
  op_idx, inputs = darts.sample_genotypes(1, 5000)
  adj, ops = darts.genotypes_to_cells(op_idx, inputs)
  assert not np.tril(adj).any()
  back_op, back_in, valid = darts.cells_to_genotypes(adj, ops)
  assert valid.all()
  np.testing.assert_array_equal(back_op, op_idx)
  np.testing.assert_array_equal(back_in, inputs)
  for k in range(0, 5000, 250):
    g = darts.arrays_to_genotype(op_idx[k], inputs[k])
    a, o = darts.genotype_to_cell(g)
    np.testing.assert_array_equal(a, adj[k])
    assert darts.cell_to_genotype(a, o) == g
    assert darts.parse_genotype(darts.genotype_to_str(g)) == g


def test_sample_genotypes_distribution():
  op_idx, inputs = darts.sample_genotypes(0, 40_000)
  assert op_idx.shape == inputs.shape == (40_000, 8)
  # Inputs in range for their block and distinct within a block.
  assert np.all(inputs < np.array([2, 2, 3, 3, 4, 4, 5, 5]))
  assert np.all(inputs[:, 0::2] != inputs[:, 1::2])
  # Uniform ops (8 values) and uniform ordered input pairs: block 3 has 5 * 4 = 20 pairs.
  np.testing.assert_allclose(
    np.bincount(op_idx.ravel(), minlength=8) / op_idx.size, 1 / 8, atol=0.01
  )
  pairs = inputs[:, 6] * 5 + inputs[:, 7]
  counts = np.bincount(pairs, minlength=25).reshape(5, 5)
  assert np.all(np.diag(counts) == 0)
  np.testing.assert_allclose(counts[~np.eye(5, dtype=bool)] / 40_000, 1 / 20, atol=0.01)
  # Seeds: an int, a Generator, a raw JAX-style key.
  np.testing.assert_array_equal(darts.sample_genotypes(3, 10)[0], darts.sample_genotypes(3, 10)[0])
  assert not np.array_equal(darts.sample_genotypes(3, 10)[0], darts.sample_genotypes(4, 10)[0])
  key = np.array([0, 42], dtype=np.uint32)
  np.testing.assert_array_equal(
    darts.sample_genotypes(key, 10)[1], darts.sample_genotypes(key, 10)[1]
  )
  assert darts.sample_genotypes(np.random.default_rng(0), 10)[0].shape == (10, 8)


def test_parse_genotype():
  g = darts.parse_genotype(DARTS_V2_TEXT)
  assert g == darts.DARTS_V2 == darts_flops.DARTS_V2_NORMAL
  assert darts.parse_genotype(darts.genotype_to_str(g)) == g
  assert darts.genotype_to_str(g).startswith("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1),")


@pytest.mark.parametrize(
  "text, reason",
  [
    ("[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)]", "expected 8"),
    (
      darts.genotype_to_str(darts.DARTS_V2).replace("'dil_conv_3x3', 2", "'conv_7x1_1x7', 2"),
      "unknown op",
    ),
    (
      darts.genotype_to_str(darts.DARTS_V2).replace("'dil_conv_3x3', 2", "'dil_conv_3x3', 5"),
      "out of range",
    ),
    (
      darts.genotype_to_str(darts.DARTS_V2).replace(
        "('sep_conv_3x3', 1)", "('sep_conv_3x3', 0)", 1
      ),
      "same input",
    ),
    ("[('sep_conv_3x3', 0), ", "does not parse"),
    ("__import__('os').system('true')", "does not parse"),
  ],
)
def test_parse_genotype_errors_name_the_text(text, reason):
  with pytest.raises(ValueError, match=re.escape(repr(text))) as info:
    darts.parse_genotype(text)
  assert reason in str(info.value)


def test_cell_to_genotype_rejects_invalid():
  adj, ops = darts.genotype_to_cell(darts.DARTS_V2)
  no_out = adj.copy()
  no_out[5, 10] = 0
  half_block = adj.copy()
  half_block[3, 9] = 0  # input 'block 0' must come from both of its op nodes
  within = adj.copy()
  within[2, 3] = 1
  bad_ops = ops.copy()
  bad_ops[0] = np.eye(11, dtype=np.int8)[10]
  for a, o in [(no_out, ops), (half_block, ops), (within, ops), (adj, bad_ops)]:
    with pytest.raises(ValueError, match="not a DARTS cell"):
      darts.cell_to_genotype(a, o)


def _release_is_valid_darts(adj, op_names):
  """arch2vec's utils.is_valid_darts, restated for one cell."""
  if op_names[0] != "c_k-2" or op_names[1] != "c_k-1" or op_names[-1] != "output":
    return False
  if any(op not in darts.PRIMITIVES for op in op_names[2:-1]):
    return False
  adj = np.asarray(adj)
  for lo in (2, 4, 6, 8):
    if adj[:lo, lo].sum() == 0 or adj[:lo, lo + 1].sum() == 0:
      return False
    if lo < 8 and (adj[lo + 2 :, lo].sum() > 0 or adj[lo + 2 :, lo + 1].sum() > 0):
      return False
  return True


def test_is_valid_hand_made_decodes():
  adj, ops = darts.genotype_to_cell(darts.DARTS_V2)
  eye = np.eye(11, dtype=np.int8)
  cases = []  # (adjacency, ops, release-valid, strict-valid, the release check it fails)
  cases.append((adj, ops, True, True, None))
  no_out = adj.copy()
  no_out[2:10, 10] = 0
  cases.append((no_out, ops, True, False, None))  # release ignores edges into the output
  both = adj.copy()
  both[1, 2] = 1  # node 2 fed by c_k-2 and c_k-1
  cases.append((both, ops, True, False, None))
  only_within = adj.copy()
  only_within[:, 5] = 0
  only_within[4, 5] = 1  # node 5 fed only by node 4 of its own block
  cases.append((only_within, ops, False, False, "in_edges"))
  orphan = adj.copy()
  orphan[:, 9] = 0  # node 9 has no input
  cases.append((orphan, ops, False, False, "in_edges"))
  backward = adj.copy()
  backward[4, 2] = 1  # an edge from block 1 into block 0 (lower triangle)
  cases.append((backward, ops, False, False, "no_later_inputs"))
  out_op = ops.copy()
  out_op[6] = eye[10]  # an op node decoded as 'output'
  cases.append((adj, out_op, False, False, "op_nodes"))
  swap_inputs = ops.copy()
  swap_inputs[[0, 1]] = ops[[1, 0]]
  cases.append((adj, swap_inputs, False, False, "fixed_nodes"))
  a = np.stack([c[0] for c in cases])
  o = np.stack([c[1] for c in cases])
  np.testing.assert_array_equal(darts.is_valid_batch(a, o), [c[2] for c in cases])
  np.testing.assert_array_equal(darts.is_valid_batch(a, o, strict=True), [c[3] for c in cases])
  for ca, co, release, *_ in cases:
    assert _release_is_valid_darts(ca, [darts.OPS[k] for k in co.argmax(-1)]) == release
  assert darts.SPACE.is_valid is darts.is_valid_batch
  parts = darts.validity_parts(a, o)
  assert set(parts) == {"fixed_nodes", "op_nodes", "in_edges", "no_later_inputs"}
  for name, passed in parts.items():  # each broken case fails exactly its own check
    np.testing.assert_array_equal(passed, [c[4] != name for c in cases], err_msg=name)
  assert darts.SPACE.validity_parts is darts.validity_parts


def test_is_valid_matches_release_on_random_decodes():
  rng = np.random.default_rng(0)
  n = 3000
  base_adj, base_ops = darts.genotypes_to_cells(*darts.sample_genotypes(5, n))
  # Flip a few adjacency entries (kept strictly upper) and a few op rows.
  flips = np.triu(rng.random((n, 11, 11)) < 0.04, 1)
  adj = (base_adj ^ flips).astype(np.int8)
  labels = np.where(rng.random((n, 11)) < 0.03, rng.integers(0, 11, (n, 11)), base_ops.argmax(-1))
  ops = np.eye(11, dtype=np.int8)[labels]
  got = darts.is_valid_batch(adj, ops)
  want = [_release_is_valid_darts(adj[i], [darts.OPS[k] for k in labels[i]]) for i in range(n)]
  np.testing.assert_array_equal(got, want)
  assert 0.05 < got.mean() < 0.95  # both outcomes exercised
  parts = darts.validity_parts(adj, ops)
  np.testing.assert_array_equal(np.logical_and.reduce(list(parts.values())), want)
  assert all(0.0 < v.mean() < 1.0 for k, v in parts.items() if k != "no_later_inputs")
  assert parts["no_later_inputs"].all()  # strictly upper-triangular decodes never fail it


def test_hash_identifies_isomorphic_cells():
  g = list(darts.DARTS_V2)
  swapped = list(g)
  swapped[0], swapped[1] = g[1], g[0]  # the two pairs of block 0 in the other order
  other = list(g)
  other[7] = ("dil_conv_5x5", 2)
  cells = [darts.genotype_to_cell(x) for x in (g, swapped, other)]
  adj = np.stack([c[0] for c in cells])
  ops = np.stack([c[1] for c in cells])
  assert not np.array_equal(adj[0], adj[1])
  ids = darts.hash_batch(adj, ops)
  assert ids[0] == ids[1] != ids[2]
  assert ids[0] == graph_hash.hash_graph(adj[0], ops[0].argmax(-1))
  assert darts.SPACE.hash is darts.hash_batch


# ---------------------------------------------------------------- sampling the pre-training set


@pytest.fixture(scope="module")
def sampled_seed0():
  return darts.sample_space(num_cells=300, seed=0)


def test_sample_space_unique_valid_under_budget(sampled_seed0):
  adj, ops, ids = sampled_seed0
  assert adj.shape == (300, 11, 11) and ops.shape == (300, 11, 11) and ids.shape == (300,)
  assert adj.dtype == np.int8 and ops.dtype == np.int8
  assert len(set(ids.tolist())) == 300
  np.testing.assert_array_equal(ids, darts.hash_batch(adj, ops))
  op_idx, inputs, valid = darts.cells_to_genotypes(adj, ops)
  assert valid.all() and darts.is_valid_batch(adj, ops).all()
  assert darts_flops.madds_batch(op_idx, inputs).max() < 600e6


def test_sample_space_deterministic_and_seeded(sampled_seed0):
  a1, o1, i1 = sampled_seed0
  a2, o2, i2 = darts.sample_space(num_cells=300, seed=0)
  np.testing.assert_array_equal(a1, a2)
  np.testing.assert_array_equal(o1, o2)
  np.testing.assert_array_equal(i1, i2)
  _, _, prefix = darts.sample_space(num_cells=120, seed=0)
  np.testing.assert_array_equal(prefix, i1[:120])
  _, _, other = darts.sample_space(num_cells=300, seed=1)
  assert len(set(other.tolist()) & set(i1.tolist())) < 5  # the space is huge: almost disjoint


def test_flops_filter_removes_cells_above_budget():
  op_idx, inputs = darts.sample_genotypes(
    np.random.default_rng(0), 1 << 16
  )  # the first chunk of seed 0
  madds = darts_flops.madds_batch(op_idx, inputs)
  over = madds >= 600e6
  assert 0.005 < over.mean() < 0.1  # the filter bites, but rarely (about 2%)
  stats = darts._sample(300, 0, 600e6)  # pylint: disable=protected-access
  assert stats["over_budget"] == int(over.sum())
  kept_ids = set(stats["ids"].tolist())
  over_cells = darts.genotypes_to_cells(op_idx[over][:200], inputs[over][:200])
  assert not kept_ids & set(darts.hash_batch(*over_cells).tolist())
  # A tighter budget keeps only cells under it.
  adj, ops, _ = darts.sample_space(num_cells=100, seed=0, max_madds=450e6)
  g_op, g_in, _ = darts.cells_to_genotypes(adj, ops)
  assert darts_flops.madds_batch(g_op, g_in).max() < 450e6


def test_cells_cache(tmp_path, monkeypatch):
  monkeypatch.setenv("ARCH2VEC_CACHE", str(tmp_path))
  adj, ops = darts.SPACE.cells(num_cells=64, seed=3)
  files = list(tmp_path.iterdir())
  assert len(files) == 1 and "n64_seed3" in files[0].name
  want_adj, want_ops, _ = darts.sample_space(num_cells=64, seed=3)
  np.testing.assert_array_equal(adj, want_adj)
  np.testing.assert_array_equal(ops, want_ops)

  # The second call reads the file instead of sampling.
  def fail(*args, **kwargs):
    raise AssertionError("sampled again instead of reading the cache")

  monkeypatch.setattr(darts, "sample_space", fail)
  adj2, ops2 = darts.cells(num_cells=64, seed=3)
  np.testing.assert_array_equal(adj2, adj)
  np.testing.assert_array_equal(ops2, ops)
  with pytest.raises(AssertionError, match="sampled again"):
    darts.cells(num_cells=64, seed=4)
