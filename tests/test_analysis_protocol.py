"""Tests of the predictive protocol, per-node features, the joint supervised predictor and leakage.

Covers arch2vec_jax.analysis.{features, joint, dngo_predictive, heldout, tsne, supervised,
pipeline} (issues 16 and 17).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import pretrained
from arch2vec_jax.analysis import (
  dngo_predictive,
  features,
  heldout,
  joint,
  pipeline,
  plots,
  smoothness,
  supervised,
  tsne,
)
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import blr as search_blr
from arch2vec_jax.search import dngo


@pytest.fixture(scope="module")
def nb201(shared_data):
  table = csv_data.read_nb201_csv(shared_data / "nb201_accuracies.csv", "cifar10")
  return table


@pytest.fixture(scope="module")
def nb101(shared_data):
  return csv_data.read_nb101_csv(
    shared_data / "nb101_subset.csv", verify_hash=False, allow_subset=True
  )


# ---------------------------------------------------------------------------
# Per-node features.


def test_node_features_pool_to_the_search_embedding(nb201):
  enc = pretrained.load("nb201")
  adj, ops = np.asarray(nb201.adjacency[:300]), np.asarray(nb201.ops[:300])
  f = features.node_features(enc, adj, ops, chunk=128)
  assert f.shape == (300, 8 * 16)
  pooled = features.pooled_from_nodes(f, model_lib.count_nodes(ops), 16)
  np.testing.assert_allclose(pooled, enc.embed((adj, ops)), atol=2e-6)
  # Not the pooled vector repeated: node blocks differ.
  blocks = f.reshape(300, 8, 16)
  assert np.abs(blocks[:, 1] - blocks[:, 2]).max() > 1e-2


def test_node_features_zero_padding_slots_nb101(nb101):
  enc = pretrained.load("nb101")
  n_node = model_lib.count_nodes(np.asarray(nb101.ops))
  small = np.flatnonzero(n_node < 7)[:50]
  assert len(small) > 0
  adj, ops = np.asarray(nb101.adjacency)[small], np.asarray(nb101.ops)[small]
  f = features.node_features(enc, adj, ops).reshape(len(small), 7, 16)
  for i, k in enumerate(n_node[small]):
    assert np.all(f[i, k:] == 0.0)
    assert np.abs(f[i, :k]).sum() > 0
  pooled = features.pooled_from_nodes(f.reshape(len(small), -1), n_node[small], 16)
  np.testing.assert_allclose(pooled, enc.embed((adj, ops)), atol=2e-6)


def test_node_features_reject_other_space(nb101):
  enc = pretrained.load("nb201")
  with pytest.raises(ValueError, match="do not fit the nb201 encoder"):
    features.node_features(enc, np.asarray(nb101.adjacency[:4]), np.asarray(nb101.ops[:4]))


# ---------------------------------------------------------------------------
# Held-out cells.


def test_heldout_cells_and_guard():
  ev = heldout.heldout_cells(10, np.array([3, 7, 0]))
  np.testing.assert_array_equal(ev, [1, 2, 4, 5, 6, 8, 9])
  np.testing.assert_array_equal(heldout.heldout_cells(4, None), [0, 1, 2, 3])
  heldout.check_heldout(ev, [3, 7, 0])
  with pytest.raises(ValueError, match="first: cell 7"):
    heldout.check_heldout([1, 7], [3, 7, 0], "nn")
  with pytest.raises(ValueError, match=r"in \[0, 5\)"):
    heldout.heldout_cells(5, [5])
  with pytest.raises(ValueError, match="nothing is held out"):
    heldout.heldout_cells(2, [0, 1])


# ---------------------------------------------------------------------------
# The joint GIN + DNGO predictor and the supervised embedding: labels outside the
# training cells must not matter.


def _cells(table, n):
  return np.asarray(table.adjacency[:n]), np.asarray(table.ops[:n]), np.asarray(table.valid_acc[:n])


def test_joint_fits_only_its_training_labels(nb201):
  adj, ops, y = _cells(nb201, 160)
  train = np.arange(0, 160, 4)  # 40 cells: 4 minibatches of 10 per epoch
  cfg = joint.JointConfig(num_epochs=30)
  fit = joint.fit_joint(adj, ops, y, train, jax.random.PRNGKey(0), cfg)
  assert fit["losses"].shape == (30,)
  assert fit["losses"][-5:].mean() < 0.5 * fit["losses"][:3].mean()
  y2 = y.copy()
  others = np.setdiff1d(np.arange(160), train)
  y2[others] = np.random.default_rng(0).uniform(0, 1, len(others))
  y2[others[:5]] = np.nan  # unlabeled cells may have no label at all
  fit2 = joint.fit_joint(adj, ops, y2, train, jax.random.PRNGKey(0), cfg)
  p1, v1 = joint.joint_predict(fit, adj, ops)
  p2, v2 = joint.joint_predict(fit2, adj, ops)
  np.testing.assert_array_equal(p1, p2)
  np.testing.assert_array_equal(v1, v2)
  # The BLR on the basis is the search's BLR.
  phi = joint.joint_basis(fit["net"], fit["variables"], adj, ops)
  assert phi.shape == (160, 16) and np.all(np.abs(phi) <= 1.0)
  post = search_blr.fit(jnp.asarray(phi[train]), jnp.asarray(y[train], jnp.float32))
  np.testing.assert_allclose(
    p1, np.asarray(search_blr.predict(post, jnp.asarray(phi))[0]), rtol=1e-5, atol=1e-6
  )
  # It learns: training cells fit better than a constant.
  assert np.sqrt(np.mean((p1[train] - y[train]) ** 2)) < 0.8 * y[train].std()


def test_joint_rejects_bad_training_sets(nb201):
  adj, ops, y = _cells(nb201, 20)
  with pytest.raises(ValueError, match="repeats"):
    joint.fit_joint(adj, ops, y, np.array([1, 1, 2]), jax.random.PRNGKey(0))
  y = y.copy()
  y[3] = np.nan
  with pytest.raises(ValueError, match="no finite target"):
    joint.fit_joint(adj, ops, y, np.array([1, 3, 5]), jax.random.PRNGKey(0))


def test_supervised_embedding_ignores_labels_outside_training(nb201):
  adj, ops, y = _cells(nb201, 120)
  cfg = supervised.SupervisedConfig(epochs=1, min_steps=5, max_steps=5)
  train = np.stack([np.arange(0, 60), np.arange(60, 120)])
  res = supervised.train_supervised(adj, ops, 100 * y, train, jax.random.PRNGKey(1), cfg)
  assert res["embeddings"].shape == (2, 120, 16) and res["steps"] == 5
  assert res["losses"].shape == (2, 5)
  y2 = y.copy()
  y2[60:] = 0.5  # outside split 0's training cells
  res2 = supervised.train_supervised(adj, ops, 100 * y2, train, jax.random.PRNGKey(1), cfg)
  np.testing.assert_array_equal(res["embeddings"][0], res2["embeddings"][0])
  assert np.abs(res["embeddings"][1] - res2["embeddings"][1]).max() > 0  # split 1 trains on them


def test_supervised_num_steps_bounds():
  cfg = supervised.SupervisedConfig(epochs=20, min_steps=200, max_steps=1500, batch_size=32)
  assert cfg.num_steps(100) == 200  # 63 steps, raised to the minimum
  assert cfg.num_steps(1000) == 625
  assert cfg.num_steps(10000) == 1500


# ---------------------------------------------------------------------------
# The DNGO protocol.


def test_protocol_splits_hold_out_the_same_cells():
  cfg = dngo_predictive.ProtocolConfig(train_sizes=(16, 64), num_seeds=3)
  perms = dngo_predictive.protocol_splits(200, cfg)
  assert perms.shape == (3, 200)
  for p in perms:
    assert sorted(p) == list(range(200))
    assert not np.intersect1d(p[:64], p[64:]).size
  assert not np.array_equal(perms[0], perms[1])
  with pytest.raises(ValueError, match="below 64"):
    dngo_predictive.protocol_splits(64, cfg)
  with pytest.raises(ValueError, match="unknown encodings"):
    dngo_predictive.ProtocolConfig(encodings=("arch2vec", "pca"))
  with pytest.raises(ValueError, match="unknown surrogates"):
    dngo_predictive.ProtocolConfig(surrogates=("gp",))


def test_dngo_predict_is_the_search_surrogate():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(60, 5)).astype(np.float32)
  y = (0.9 + 0.02 * np.tanh(x[:, 0])).astype(np.float32)
  cfg = dngo.BOConfig(num_epochs=20)
  key = jax.random.PRNGKey(3)
  mean, var = dngo_predictive.dngo_predict(key, x[:40], y[:40], x[40:], cfg)
  k_init, k_fit = jax.random.split(key)
  sur, _ = dngo.fit_surrogate(
    k_fit,
    cfg,
    jnp.asarray(x[:40]),
    jnp.asarray(y[:40]),
    jnp.ones(40, bool),
    40,
    dngo.init_mlp(k_init, 5, cfg.hidden_dim),
  )
  m2, v2 = search_blr.predict(sur.post, sur.features(jnp.asarray(x[40:]), False))
  # jit vs eager: float32 rounding of 20 epochs of Adam apart.
  np.testing.assert_allclose(mean, np.asarray(m2), rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(var, np.asarray(v2), rtol=1e-2, atol=1e-7)
  assert dngo_predictive.surrogate_config(cfg, "dngo_norm").normalize_output
  assert dngo_predictive.surrogate_config(cfg, "blr").surrogate == "blr"


def test_run_protocol_records_and_filter(nb201):
  adj, ops, y = _cells(nb201, 300)
  x = np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32) + y[:, None]
  cfg = dngo_predictive.ProtocolConfig(
    train_sizes=(16, 32),
    num_seeds=2,
    encodings=("arch2vec", "supervised"),
    surrogates=("dngo", "blr"),
    bo=dngo.BOConfig(num_epochs=10),
    joint=joint.JointConfig(num_epochs=5),
  )
  res = dngo_predictive.run_protocol({"arch2vec": x}, adj, ops, y, cfg)
  # 2 seeds x 2 sizes x (2 surrogates on arch2vec + the joint predictor).
  assert len(res["records"]) == 12
  perms = dngo_predictive.protocol_splits(300, cfg)
  for r in res["records"]:
    held = y[perms[r["seed"], 32:]]
    assert r["num_test"] == 268
    assert r["num_test_f"] == int((held > 0.8).sum())
  keys = {(r["encoding"], r["surrogate"], r["train_size"]) for r in res["summary"]}
  assert ("supervised", "joint", 32) in keys and ("arch2vec", "blr", 16) in keys
  assert all(r["seeds"] == 2 for r in res["summary"])
  assert set(res["scatter"]) == {"arch2vec/dngo", "arch2vec/blr", "supervised/joint"}
  with pytest.raises(ValueError, match="no features for encoding 'arch2vec'"):
    dngo_predictive.run_protocol({}, adj, ops, y, cfg)


def test_protocol_plots_write_png(tmp_path):
  rows = [
    {
      "encoding": "arch2vec",
      "surrogate": "dngo",
      "train_size": s,
      **{
        f"{m}{f}_{k}": 1.0
        for m in ("rmse", "pearson", "spearman", "kendall")
        for f in ("", "_f")
        for k in ("mean", "std")
      },
    }
    for s in (16, 32)
  ]
  plots.plot_protocol(tmp_path / "m.png", rows, "t", 0.8)
  plots.plot_protocol_scatter(
    tmp_path / "s.png", {"a/dngo": {"true": [0.7, 0.85, 0.9], "pred": [0.8, 0.8, 0.9]}}, "t", 0.8
  )
  assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
  assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------------------
# t-SNE.


def test_tsne_separates_clusters():
  pytest.importorskip("sklearn")
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(0, 1, (100, 8)), rng.normal(8, 1, (100, 8))])
  proj = tsne.tsne_2d(x, seed=0)
  assert proj.shape == (200, 2)
  a, b = proj[:100].mean(0), proj[100:].mean(0)
  spread = max(proj[:100].std(0).max(), proj[100:].std(0).max())
  assert np.linalg.norm(a - b) > 3 * spread


def test_tsne_missing_dependency_is_clear(monkeypatch):
  monkeypatch.setattr(tsne, "available", lambda: False)
  with pytest.raises(tsne.MissingDependency, match="scikit-learn"):
    tsne.tsne_2d(np.zeros((200, 3)))


# ---------------------------------------------------------------------------
# The pipeline end to end: no supervised evaluation cell is a training cell.


def test_pipeline_neighbourhood_analyses_use_no_supervised_training_cell(
  nb201, shared_data, tmp_path, monkeypatch
):
  n = len(nb201.ids)
  rng = np.random.default_rng(0)
  a2v = rng.normal(size=(n, 16)).astype(np.float32)  # unique rows identify the cells
  workdir = tmp_path / "wd"
  workdir.mkdir()
  embed_lib.save_embeddings(workdir / "embeddings.npz", a2v, nb201.ids)
  row_of = {a2v[i].tobytes(): i for i in range(n)}
  seen: dict[str, list] = {"train": [], "nn": [], "smooth": [], "lengths": []}

  real_train, real_nn, real_smooth = (
    supervised.train_supervised,
    smoothness.nearest_neighbour_gap,
    smoothness.distance_by_edit,
  )

  def train_spy(adjacency, ops, targets, train_idx, key, config):
    seen["train"].append(np.asarray(train_idx))
    return real_train(adjacency, ops, targets, train_idx, key, config)

  def rows(e):
    return (
      np.asarray([row_of[r.tobytes()] for r in np.asarray(e, np.float32)])
      if e.shape[1] == 16
      else None
    )

  def nn_spy(e, acc, **kw):
    seen["lengths"].append(len(e))
    if e.shape[1] == 16 and np.asarray(e, np.float32)[0].tobytes() in row_of:
      seen["nn"].append(rows(e))
    return real_nn(e, acc, **kw)

  def smooth_spy(e, codes, acc=None, group=None, **kw):
    seen["lengths"].append(len(e))
    if e.shape[1] == 16 and np.asarray(e, np.float32)[0].tobytes() in row_of:
      seen["smooth"].append(rows(e))
      assert kw.get("max_cells") is not None
    return real_smooth(e, codes, acc, group, **kw)

  monkeypatch.setattr(supervised, "train_supervised", train_spy)
  monkeypatch.setattr(smoothness, "nearest_neighbour_gap", nn_spy)
  monkeypatch.setattr(smoothness, "distance_by_edit", smooth_spy)
  config = pipeline.AnalysisConfig(
    space="nb201",
    workdir=str(workdir),
    benchmark=str(shared_data / "nb201_accuracies.csv"),
    datasets=("cifar10",),
    out=str(tmp_path / "out"),
    train_sizes=(200, 400),
    num_splits=1,
    models=("blr",),
    encodings=("arch2vec", "supervised", "onehot"),
    supervised_sizes=(200, 400),
    smooth_cells=20000,
    search_results=str(tmp_path / "none"),
    tsne_datasets=(),
    supervised=supervised.SupervisedConfig(epochs=1, min_steps=2, max_steps=2),
  )
  out = pipeline.run_analysis(config, log=None)
  assert [t.shape for t in seen["train"]] == [(1, 200), (1, 400)]
  train = seen["train"][-1][0]  # the encoder the neighbourhood analyses use: largest size, split 0
  assert seen["nn"] and seen["smooth"]
  assert len(seen["lengths"]) == 5 and set(seen["lengths"]) == {
    n - 400
  }  # every encoding, held-out only
  for cells in seen["nn"] + seen["smooth"]:
    assert len(cells) == n - 400
    assert not np.intersect1d(cells, train).size, (
      "a supervised evaluation cell was in its training set"
    )
  info = out["datasets"]["cifar10"]["neighbourhood_cells"]
  assert info == {
    "cells": n - 400,
    "excluded_training_cells": 400,
    "supervised_train_size": 400,
    "split": 0,
  }
  assert (tmp_path / "out" / "pca_supervised_cifar10.png").exists()
  summary = {(r["encoding"], r["train_size"]) for r in out["datasets"]["cifar10"]["summary"]}
  assert ("supervised", 400) in summary and ("onehot", 200) in summary
  assert dataclasses.asdict(config)["tsne_datasets"] == ()
