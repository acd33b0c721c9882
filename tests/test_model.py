"""The GIN VAE: graph construction, shapes, aggregation, masked BatchNorm, loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import model as model_lib
from arch2vec_jax.spaces import nb101, nb201

SMALL = model_lib.ModelConfig(hidden=16, latent=4, layers=2)


def _nb101_batch():
  """Three NB101 cells with 7, 5 and 3 nodes (padding after the output)."""
  cells = [
    (
      np.triu(np.ones((7, 7), int), 1) * (np.arange(7)[None, :] == np.arange(7)[:, None] + 1)
      + np.eye(7, k=6, dtype=int)
      + np.eye(7, k=2, dtype=int) * 0,
      [
        "input",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "maxpool3x3",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "output",
      ],
    ),
    (
      np.eye(5, k=1, dtype=int),
      ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"],
    ),
    (np.eye(3, k=1, dtype=int), ["input", "maxpool3x3", "output"]),
  ]
  return nb101.encode_batch(cells)


def test_cells_to_graphs_shapes_and_symmetric_edges():
  adj, ops = _nb101_batch()
  n_node = model_lib.count_nodes(ops)
  np.testing.assert_array_equal(n_node, [7, 5, 3])
  g = model_lib.cells_to_graphs(jnp.asarray(adj), jnp.asarray(ops), jnp.asarray(n_node))
  assert g.nodes.shape == (21, 5) and g.edges.shape == (3 * 49,)
  a_sym = np.asarray(g.edges).reshape(3, 7, 7)
  expected = adj + np.transpose(np.triu(adj, 1), (0, 2, 1))
  np.testing.assert_array_equal(a_sym, expected)
  np.testing.assert_array_equal(np.asarray(g.n_node), [7, 5, 3])


def test_count_nodes_rejects_padding_before_real_nodes():
  ops = np.zeros((1, 4, 3), np.int8)
  ops[0, 0, 0] = ops[0, 2, 1] = 1
  with pytest.raises(ValueError, match="cells \\[0\\]"):
    model_lib.count_nodes(ops)


def test_segment_sum_and_dense_aggregation_agree():
  adj, ops = _nb101_batch()
  n_node = jnp.asarray(model_lib.count_nodes(ops))
  x = jax.random.normal(jax.random.PRNGKey(0), (21, 6))
  dense = model_lib.aggregate_neighbours(model_lib.cells_to_graphs(adj, ops, n_node), x, "dense")
  seg = model_lib.aggregate_neighbours(
    model_lib.cells_to_graphs(adj, ops, n_node), x, "segment_sum"
  )
  edge_list = model_lib.cells_to_graphs(adj, ops, n_node, edge_layout="edge_list")
  seg2 = model_lib.aggregate_neighbours(edge_list, x, "segment_sum")
  a_sym = adj + np.transpose(np.triu(adj, 1), (0, 2, 1))
  manual = np.einsum("bij,bjf->bif", a_sym, np.asarray(x).reshape(3, 7, 6)).reshape(21, 6)
  for got in (dense, seg, seg2):
    np.testing.assert_allclose(np.asarray(got), manual, rtol=1e-5, atol=1e-5)


def test_model_outputs_shapes_and_both_aggregations_same_numbers():
  adj, ops = _nb101_batch()
  n_node = jnp.asarray(model_lib.count_nodes(ops))
  g = model_lib.cells_to_graphs(adj, ops, n_node)
  m_dense = model_lib.Arch2Vec(5, SMALL)
  m_seg = model_lib.Arch2Vec(
    5, model_lib.ModelConfig(hidden=16, latent=4, layers=2, aggregation="segment_sum")
  )
  variables = m_dense.init(jax.random.PRNGKey(0), g)
  out = m_dense.apply(variables, g)
  assert out["mu"].shape == (3, 7, 4) and out["log_sigma"].shape == (3, 7, 4)
  assert out["ops_logits"].shape == (3, 7, 5) and out["adj_logits"].shape == (3, 7, 7)
  out_seg = m_seg.apply(variables, g)
  for k in out:
    np.testing.assert_allclose(np.asarray(out[k]), np.asarray(out_seg[k]), rtol=1e-5, atol=1e-5)
  # Eval mode: z = mu and the adjacency logits are z z^T.
  np.testing.assert_allclose(
    np.asarray(out["adj_logits"]),
    np.einsum("bil,bjl->bij", out["mu"], out["mu"]),
    rtol=1e-5,
    atol=1e-5,
  )


def test_masked_batchnorm_ignores_padding_nodes():
  """Changing the features of padding slots must not change real nodes' outputs in train mode."""
  adj, ops = _nb101_batch()
  n_node = jnp.asarray(model_lib.count_nodes(ops))
  g = model_lib.cells_to_graphs(adj, ops, n_node)
  model = model_lib.Arch2Vec(5, SMALL)
  variables = model.init(jax.random.PRNGKey(0), g)
  rngs = {"noise": jax.random.PRNGKey(1), "dropout": jax.random.PRNGKey(2)}
  mu1 = model.apply(variables, g, train=True, rngs=rngs, mutable=["batch_stats"])[0]["mu"]
  pad = ~np.asarray(model_lib.node_mask(n_node, 7)).reshape(-1)
  nodes = np.asarray(g.nodes).copy()
  nodes[pad] = 3.0
  mu2 = model.apply(
    variables, g._replace(nodes=jnp.asarray(nodes)), train=True, rngs=rngs, mutable=["batch_stats"]
  )[0]["mu"]
  real = np.asarray(model_lib.node_mask(n_node, 7))
  np.testing.assert_allclose(np.asarray(mu1)[real], np.asarray(mu2)[real], rtol=1e-5, atol=1e-5)
  # The release's statistics over every slot do see the padding.
  rel = model_lib.Arch2Vec(
    5, model_lib.ModelConfig(hidden=16, latent=4, layers=2, bn_include_padding=True)
  )
  r1 = rel.apply(variables, g, train=True, rngs=rngs, mutable=["batch_stats"])[0]["mu"]
  r2 = rel.apply(
    variables, g._replace(nodes=jnp.asarray(nodes)), train=True, rngs=rngs, mutable=["batch_stats"]
  )[0]["mu"]
  assert not np.allclose(np.asarray(r1)[real], np.asarray(r2)[real])


def test_masked_batchnorm_statistics_match_numpy():
  x = np.random.default_rng(0).normal(size=(6, 3)).astype(np.float32)
  mask = np.array([1, 1, 0, 1, 0, 1], np.float32)
  bn = model_lib.MaskedBatchNorm()
  variables = bn.init(jax.random.PRNGKey(0), x, mask, False)
  y, upd = bn.apply(variables, x, mask, False, mutable=["batch_stats"])
  real = x[mask > 0]
  expected = (x - real.mean(0)) / np.sqrt(real.var(0) + 1e-5)
  np.testing.assert_allclose(np.asarray(y), expected, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(np.asarray(upd["batch_stats"]["mean"]), 0.1 * real.mean(0), rtol=1e-5)
  np.testing.assert_allclose(
    np.asarray(upd["batch_stats"]["var"]), 0.9 + 0.1 * real.var(0, ddof=1), rtol=1e-5
  )


def test_vae_loss_matches_numpy_formula():
  rng = np.random.default_rng(0)
  b, n, d, l = 2, 8, 7, 4
  adj, ops = nb201.all_cells()
  adj, ops = adj[:b].astype(np.float32), ops[:b].astype(np.float32)
  out = {
    "ops_logits": rng.normal(size=(b, n, d)).astype(np.float32),
    "adj_logits": rng.normal(size=(b, n, n)).astype(np.float32),
    "mu": rng.normal(size=(b, n, l)).astype(np.float32),
    "log_sigma": 0.1 * rng.normal(size=(b, n, l)).astype(np.float32),
  }
  loss, terms = model_lib.vae_loss(
    {k: jnp.asarray(v) for k, v in out.items()}, jnp.asarray(adj), jnp.asarray(ops)
  )
  sig = lambda x: 1 / (1 + np.exp(-x))
  bce = lambda p, t: -(t * np.log(p) + (1 - t) * np.log(1 - p))
  ops_term = bce(sig(out["ops_logits"]), ops).mean()
  upper = np.triu(np.ones((n, n)), 1)
  p_adj = sig(out["adj_logits"]) * upper
  adj_t = adj * upper
  adj_term = np.where(upper > 0, bce(np.clip(p_adj, 1e-12, 1 - 1e-12), adj_t), 0.0).mean()
  s, mu = out["log_sigma"], out["mu"]
  kl = -0.5 / (b * n) * np.mean(np.sum(1 + 2 * s - mu**2 - np.exp(s) ** 2, -1))
  np.testing.assert_allclose(float(terms["loss_ops"]), ops_term, rtol=1e-5)
  np.testing.assert_allclose(float(terms["loss_adj"]), adj_term, rtol=1e-5)
  np.testing.assert_allclose(float(terms["kl"]), kl, rtol=1e-5)
  np.testing.assert_allclose(float(loss), ops_term + adj_term + kl, rtol=1e-5)


def test_model_config_rejects_bad_values():
  with pytest.raises(ValueError, match="aggregation"):
    model_lib.ModelConfig(aggregation="mean")
  with pytest.raises(ValueError, match="dropout"):
    model_lib.ModelConfig(dropout=1.5)
