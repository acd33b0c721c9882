"""analysis.supervised: the supervised GIN embedding (pooling, chunked evaluation, training, compilation)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import embed, model
from arch2vec_jax.analysis import supervised
from arch2vec_jax.benchmarks import csv_data

SMALL = model.ModelConfig(hidden=16, latent=4, layers=2)


@pytest.fixture(scope="module")
def cells(shared_data, tmp_path_factory):
  """The first 300 NB201 cells: adjacency [300, 4, 4], ops [300, 4, d], valid accuracy [300]."""
  head = tmp_path_factory.mktemp("nb201") / "head.csv"
  with open(shared_data / "nb201_accuracies.csv") as f:
    head.write_text("".join(next(f) for _ in range(301)))
  table = csv_data.read_nb201_csv(head, "cifar10", allow_subset=True)
  return np.asarray(table.adjacency), np.asarray(table.ops), np.asarray(table.valid_acc)


def _init(ops, adjacency, config=SMALL):
  net = supervised.AccuracyRegressor(ops.shape[2], config, head_hidden=8)
  graph = model.cells_to_graphs(adjacency[:2], ops[:2], model.count_nodes(ops[:2]))
  return net, net.init(jax.random.PRNGKey(0), graph, train=False)


def test_embedding_is_the_masked_node_mean_of_the_encoder(cells):
  adjacency, ops, _ = cells
  net, variables = _init(ops, adjacency)
  emb, pred = supervised.supervised_embed(net, variables, adjacency[:40], ops[:40])
  assert emb.shape == (40, SMALL.latent) and pred.shape == (40,)
  assert emb.dtype == np.float32 and np.all(np.isfinite(pred))
  # The encoder alone (its own variables), then the mean over the real nodes in NumPy.
  enc_vars = {k: v["encoder"] for k, v in variables.items()}
  n_node = model.count_nodes(ops[:40])
  graph = model.cells_to_graphs(adjacency[:40], ops[:40], n_node)
  mu, _ = model.Arch2Vec(ops.shape[2], SMALL).apply(
    enc_vars, graph, train=False, method=model.Arch2Vec.encode
  )
  mu = np.asarray(mu)
  want = np.stack([mu[i, : n_node[i]].mean(0) for i in range(40)])
  np.testing.assert_allclose(emb, want, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
    np.asarray(embed.masked_node_mean(jnp.asarray(mu), jnp.asarray(n_node))), want, rtol=1e-6
  )


def test_chunked_evaluation_matches_one_chunk(cells):
  adjacency, ops, _ = cells
  net, variables = _init(ops, adjacency)
  whole = supervised.supervised_embed(net, variables, adjacency[:50], ops[:50], chunk=64)
  parts = supervised.supervised_embed(net, variables, adjacency[:50], ops[:50], chunk=16)
  for a, b in zip(whole, parts):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_map_chunks_pads_the_last_chunk_and_drops_the_padding():
  seen = []

  def fn(a, b):
    seen.append(a.shape[0])
    return {"sum": a + b, "first": a[:, 0]}

  a = np.arange(14, dtype=np.float32).reshape(7, 2)
  outs = embed.map_chunks(fn, (a, 10 * a), 3)
  assert seen == [3, 3, 3]  # one shape: one compilation for a jitted fn
  np.testing.assert_array_equal(np.concatenate([o["sum"] for o in outs]), 11 * a)
  np.testing.assert_array_equal(np.concatenate([o["first"] for o in outs]), a[:, 0])


def test_regression_step_lowers_the_training_loss(cells):
  adjacency, ops, y = cells
  net, variables = _init(ops, adjacency)
  tx = supervised.train_lib.clipped_adam(supervised.train_lib.TrainConfig(lr=1e-2))
  idx = np.arange(32)
  graph = model.cells_to_graphs(adjacency[idx], ops[idx], model.count_nodes(ops[idx]))
  target = jnp.asarray((y[idx] - y[idx].mean()) / y[idx].std(), jnp.float32)

  @jax.jit
  def fit(carry):
    return jax.lax.scan(
      lambda c, _: supervised.regression_step(net, tx, c, graph, target), carry, None, length=60
    )

  params = variables["params"]
  (params, _, _), losses = fit((params, variables["batch_stats"], tx.init(params)))
  losses = np.asarray(losses)
  assert np.all(np.isfinite(losses)) and losses[-5:].mean() < 0.5 * losses[:5].mean()
  assert all(np.all(np.isfinite(p)) for p in jax.tree.leaves(params))


def test_train_supervised_compiles_once_across_targets(cells):
  """A second dataset of the same cells and config reuses the compiled training (no cache of ours)."""
  adjacency, ops, y = cells
  cfg = supervised.SupervisedConfig(epochs=1, min_steps=3, max_steps=3, batch_size=8, model=SMALL)
  train = np.stack([np.arange(0, 40), np.arange(40, 80)])
  res = supervised.train_supervised(adjacency, ops, 100 * y, train, jax.random.PRNGKey(0), cfg)
  assert res["embeddings"].shape == (2, len(ops), SMALL.latent) and res["losses"].shape == (2, 3)
  size = supervised._train_splits._cache_size()
  res2 = supervised.train_supervised(adjacency, ops, 50 * y, train, jax.random.PRNGKey(0), cfg)
  assert supervised._train_splits._cache_size() == size
  assert np.all(np.isfinite(res2["embeddings"]))
  # The same call again gives the same embeddings (pure, seeded).
  res3 = supervised.train_supervised(adjacency, ops, 100 * y, train, jax.random.PRNGKey(0), cfg)
  np.testing.assert_array_equal(res["embeddings"], res3["embeddings"])
