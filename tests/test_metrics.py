"""Validity and uniqueness of hand-made decodes (arch2vec_jax.metrics.validity_uniqueness)."""

import numpy as np

from arch2vec_jax import metrics
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
  assert out["num_unique_raw"] == 3 and out["uniqueness_raw"] == 0.75  # the dangling decode is another graph


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
  assert out["num_unique_raw"] == len(set(nb101.release_hash_batch(adjacency[valid], ops[valid]).tolist()))
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
  assert out["validity_parts"] == {"fixed_nodes": 1.0, "op_nodes": 0.75, "in_edges": 0.75, "no_later_inputs": 1.0}
  cell = _decode([(0, 1), (1, 6)])
  assert "validity_parts" not in metrics.validity_uniqueness(nb101.SPACE, cell[0][None], cell[1][None])
