"""Validity and uniqueness of hand-made decodes (arch2vec_jax.metrics.validity_uniqueness)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import metrics
from arch2vec_jax import model as model_lib
from arch2vec_jax.spaces import darts, nb101


def _decode(edges, inner="conv3x3-bn-relu"):
  """A 7-node decode (argmax decodes have 7 real rows): input, 5 x `inner`, output; edges (w, v)."""
  adjacency = np.zeros((7, 7), np.int8)
  for w, v in edges:
    adjacency[w, v] = 1
  ops = np.eye(5, dtype=np.int8)[[0] + [nb101.OPS.index(inner)] * 5 + [4]]
  return adjacency, ops


def test_nb101_uniqueness_counts_cells_and_raw_counts_decoded_graphs():
  cell = _decode([(0, 1), (1, 6)])
  dangling = _decode([(0, 1), (1, 6), (0, 2)])  # node 2 cannot reach the output: pruned to `cell`
  other = _decode([(0, 1), (1, 6)], inner="maxpool3x3")
  invalid = _decode([(0, 1)])  # the input does not reach the output
  adjacency, ops = (np.stack(a) for a in zip(cell, dangling, cell, other, invalid))
  out = metrics.validity_uniqueness(nb101.SPACE, adjacency, ops)
  assert out["num_samples"] == 5 and out["num_valid"] == 4 and out["validity"] == 0.8
  assert out["num_unique"] == 2 and out["uniqueness"] == 0.5  # {cell, other}
  assert (
    out["num_unique_raw"] == 3 and out["uniqueness_raw"] == 0.75
  )  # the dangling decode is another graph


def test_nb101_raw_uniqueness_is_the_release_fingerprint_count():
  rng = np.random.default_rng(0)
  adjacency = np.triu(rng.random((3000, 7, 7)) < 0.3, 1).astype(np.int8)
  codes = rng.integers(1, 4, (3000, 7))
  codes[:, 0], codes[:, 6] = 0, 4
  codes[rng.random(3000) < 0.2, 3] = 4  # some inner 'output': invalid when kept
  ops = np.eye(5, dtype=np.int8)[codes]
  out = metrics.validity_uniqueness(nb101.SPACE, adjacency, ops)
  valid = nb101.is_valid_batch(adjacency, ops)
  assert out["num_valid"] == valid.sum() > 100
  assert out["num_unique_raw"] == len(
    set(nb101.release_hash_batch(adjacency[valid], ops[valid]).tolist())
  )
  assert out["num_unique"] == len(set(nb101.hash_batch(adjacency[valid], ops[valid]).tolist()))
  assert out["num_unique"] < out["num_unique_raw"]


def test_darts_validity_parts_are_fractions_of_the_decodes():
  adj, ops = darts.genotype_to_cell(darts.DARTS_V2)
  orphan, out_op = adj.copy(), ops.copy()
  orphan[:, 2] = 0  # node 2 has no input
  out_op[3] = np.eye(11, dtype=np.int8)[10]  # op node 3 decoded as 'output'
  adjacency = np.stack([adj, adj, orphan, adj])
  op_rows = np.stack([ops, ops, ops, out_op])
  out = metrics.validity_uniqueness(darts.SPACE, adjacency, op_rows)
  assert out["validity"] == 0.5 and out["num_unique"] == 1
  assert out["validity_parts"] == {
    "fixed_nodes": 1.0,
    "op_nodes": 0.75,
    "in_edges": 0.75,
    "no_later_inputs": 1.0,
  }
  cell = _decode([(0, 1), (1, 6)])
  assert "validity_parts" not in metrics.validity_uniqueness(
    nb101.SPACE, cell[0][None], cell[1][None]
  )


def _nb101_cell(edges, inner):
  """An NB101 cell on len(inner) + 2 nodes padded to 7 slots: (adjacency [7, 7], one-hot ops [7, 5], n_node)."""
  num = len(inner) + 2
  adjacency = np.zeros((7, 7), np.int8)
  for w, v in edges:
    adjacency[w, v] = 1
  codes = [0] + [nb101.OPS.index(op) for op in inner] + [4]
  ops = np.zeros((7, 5), np.int8)
  ops[np.arange(num), codes] = 1
  return adjacency, ops, num


def test_wl_colours_and_the_reconstruction_ceiling():
  conv3, conv1 = "conv3x3-bn-relu", "conv1x1-bn-relu"
  diamond = _nb101_cell([(0, 1), (0, 2), (1, 3), (2, 3)], [conv3, conv3])  # nodes 1, 2 look alike
  mixed = _nb101_cell([(0, 1), (0, 2), (1, 3), (2, 3)], [conv3, conv1])  # told apart by their ops
  fan = _nb101_cell(
    [(0, 1), (0, 2), (0, 3), (1, 4), (2, 4), (3, 4)], [conv3] * 3
  )  # 3 alike: 3 pairs
  chain = _nb101_cell(
    [(0, 1), (1, 2), (2, 3)], [conv3, conv3]
  )  # the input/output labels tell 1 from 2
  adjacency, ops, n_node = (np.stack(x) for x in zip(diamond, mixed, fan, chain))
  colors = metrics.wl_colors(adjacency, ops, n_node, rounds=4)
  assert (
    colors[0, 1] == colors[0, 2] and colors[1, 1] != colors[1, 2] and colors[3, 1] != colors[3, 2]
  )
  assert colors[2, 1] == colors[2, 2] == colors[2, 3]
  assert np.all(colors[0, 4:] == -1)  # padding slots
  assert metrics.wl_colors(adjacency, ops, n_node, rounds=0)[3, 1] == nb101.OPS.index(
    conv3
  )  # the op label
  out = metrics.reconstruction_ceiling(adjacency, ops, n_node, rounds=4)
  assert out["forced_errors"] == 1 + 3
  assert out["exact_acc_max"] == 0.5
  assert out["adj_acc_max"] == pytest.approx(1 - 4 / (4 * 21))
  assert (
    metrics.reconstruction_ceiling(adjacency[[1, 3]], ops[[1, 3]], n_node[[1, 3]], 4)[
      "exact_acc_max"
    ]
    == 1.0
  )


def test_nodes_with_one_colour_get_one_mu_and_a_decoded_edge():
  """The premise of the ceiling: any weights give the two look-alike nodes equal mu, and their pair an edge."""
  conv3 = "conv3x3-bn-relu"
  adjacency, ops, num = _nb101_cell([(0, 1), (0, 2), (1, 3), (2, 3)], [conv3, conv3])
  model = model_lib.Arch2Vec(5)
  graph = model_lib.cells_to_graphs(
    jnp.asarray(adjacency[None]), jnp.asarray(ops[None]), jnp.asarray([num])
  )
  for seed in range(3):
    variables = model.init(jax.random.PRNGKey(seed), graph, train=False)
    out = model.apply(variables, graph, train=False)
    mu = np.asarray(out["mu"][0])
    np.testing.assert_array_equal(mu[1], mu[2])
    assert (
      np.linalg.norm(mu[1]) > 0 and float(out["adj_logits"][0, 1, 2]) > 0
    )  # sigmoid > 0.5: an edge 1 -> 2
