"""Tests of arch2vec_jax.analysis: metrics, BLR and GP posteriors, edit distance, smoothness, plots."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax.analysis import blr, gp, metrics, plots, predictive, regret, smoothness

# ---------------------------------------------------------------------------
# Metrics.


def _brute_kendall_tau_b(y, p):
  c = d = ty = tp = 0
  for i, j in itertools.combinations(range(len(y)), 2):
    sy, sp = np.sign(y[i] - y[j]), np.sign(p[i] - p[j])
    if sy == 0 and sp == 0:
      continue
    if sy == 0:
      ty += 1
    elif sp == 0:
      tp += 1
    elif sy == sp:
      c += 1
    else:
      d += 1
  return (c - d) / np.sqrt((c + d + ty) * (c + d + tp))


def test_rmse_and_pearson_closed_forms():
  y = np.array([1.0, 2.0, 3.0, 4.0])
  assert metrics.rmse(y, y + 2.0) == pytest.approx(2.0)
  assert metrics.rmse(y, [1.0, 2.0, 3.0, 6.0]) == pytest.approx(1.0)  # sqrt(4 / 4)
  assert metrics.pearson(y, 3.0 * y - 1.0) == pytest.approx(1.0)
  assert metrics.pearson(y, -y) == pytest.approx(-1.0)
  assert np.isnan(metrics.pearson(y, np.ones(4)))


def test_ranks_average_ties():
  np.testing.assert_array_equal(metrics.rankdata([10, 20, 20, 5]), [2.0, 3.5, 3.5, 1.0])
  np.testing.assert_array_equal(metrics.rankdata([3, 3, 3]), [2.0, 2.0, 2.0])


def test_spearman_monotone_and_ties():
  x = np.arange(10.0)
  assert metrics.spearman(x, np.exp(x)) == pytest.approx(1.0)
  assert metrics.spearman(x, -(x**3)) == pytest.approx(-1.0)
  # Ties: ranks y = [1, 2.5, 2.5, 4], p = [1, 2, 3, 4]: Pearson of these ranks.
  ry, rp = np.array([1, 2.5, 2.5, 4]), np.array([1.0, 2, 3, 4])
  expected = np.corrcoef(ry, rp)[0, 1]
  assert metrics.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(expected)


def test_kendall_known_permutation():
  # (1 2 3 4) vs (2 1 4 3): 2 discordant of 6 pairs -> tau = (4 - 2) / 6.
  assert metrics.kendall_tau_b([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(1 / 3)
  assert metrics.kendall_tau_b([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)


def test_kendall_tau_b_ties_match_brute_force():
  rng = np.random.default_rng(0)
  for n in (2, 3, 7, 40, 65):
    y = rng.integers(0, 4, n).astype(float)
    p = rng.integers(0, 5, n).astype(float)
    if len(set(y)) < 2 or len(set(p)) < 2:
      continue
    assert metrics.kendall_tau_b(y, p) == pytest.approx(_brute_kendall_tau_b(y, p), abs=1e-12)


# ---------------------------------------------------------------------------
# BLR and GP against direct NumPy computations.


def _toy(n=120, d=3, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, d))
  y = x @ rng.normal(size=d) + np.sin(2 * x[:, 0]) + 0.2 * rng.normal(size=n) + 5.0
  return x, y


def test_blr_posterior_matches_numpy_and_maximises_evidence():
  x, y = _toy()
  model = blr.blr_fit(x, y)
  alpha, beta = float(np.exp(model.log_alpha)), float(np.exp(model.log_beta))
  mean, cov = blr._numpy_posterior(x, y, alpha, beta)
  np.testing.assert_allclose(np.asarray(model.mean), mean, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(np.asarray(model.cov), cov, rtol=1e-3, atol=1e-6)
  # The fixed point is a stationary point of the evidence.
  phi = blr._design(jnp.asarray(x, jnp.float32), model.x_mean, model.x_std)
  t = jnp.asarray((y - y.mean()) / y.std(), jnp.float32)
  ga, gb = jax.grad(blr.blr_log_evidence, argnums=(2, 3))(phi, t, model.log_alpha, model.log_beta)
  assert abs(float(ga)) < 1e-2 and abs(float(gb)) < 1e-2
  # Predictions: mean in target units, variance >= noise.
  pm, pv = blr.blr_predict(model, x[:5])
  phi_np = np.asarray(phi)[:5]
  np.testing.assert_allclose(np.asarray(pm), phi_np @ mean * y.std() + y.mean(), rtol=1e-4)
  assert np.all(np.asarray(pv) >= (1.0 / beta) * y.std() ** 2 * 0.999)


def test_gp_posterior_matches_numpy():
  x, y = _toy(n=80, seed=1)
  xt = np.random.default_rng(2).normal(size=(7, 3))
  model = gp.gp_fit(x, y, jax.random.PRNGKey(0), steps=30)
  h = model.hypers
  # Direct float64 computation with the fitted hyperparameters.
  xm, xs = x.mean(0), x.std(0)
  a, b = (x - xm) / xs, (xt - xm) / xs
  ls, sf2 = np.exp(np.asarray(h.log_lengthscale, np.float64)), np.exp(2 * float(h.log_signal))
  sn2 = np.exp(2 * float(h.log_noise)) + gp.JITTER

  def k(u, v):
    d = ((u[:, None, :] - v[None, :, :]) / ls) ** 2
    return sf2 * np.exp(-0.5 * d.sum(-1))

  t = (y - y.mean()) / y.std()
  kxx = k(a, a) + sn2 * np.eye(len(a))
  ks = k(b, a)
  mean = ks @ np.linalg.solve(kxx, t) * y.std() + y.mean()
  var = (sf2 + sn2 - np.einsum("ij,ji->i", ks, np.linalg.solve(kxx, ks.T))) * y.std() ** 2
  pm, pv = gp.gp_predict(model, xt)
  np.testing.assert_allclose(np.asarray(pm), mean, rtol=1e-3, atol=1e-3)
  np.testing.assert_allclose(np.asarray(pv), var, rtol=2e-2, atol=1e-3)
  # The log marginal likelihood against the NumPy value.
  lml = gp.gp_log_marginal_likelihood(h, jnp.asarray(a, jnp.float32), jnp.asarray(t, jnp.float32))
  _, logdet = np.linalg.slogdet(kxx)
  ref = -0.5 * t @ np.linalg.solve(kxx, t) - 0.5 * logdet - 0.5 * len(t) * np.log(2 * np.pi)
  assert float(lml) == pytest.approx(ref, rel=1e-3, abs=1e-2)
  # The CG path gives the same mean.
  cg = gp.gp_fit(x, y, jax.random.PRNGKey(0), steps=30, cholesky_max=10)
  np.testing.assert_allclose(
    np.asarray(gp.gp_predict(cg, xt)[0]), np.asarray(pm), rtol=1e-3, atol=1e-3
  )


def test_gp_hyperparameters_increase_likelihood():
  x, y = _toy(n=60, seed=3)
  xs = jnp.asarray((x - x.mean(0)) / x.std(0), jnp.float32)
  t = jnp.asarray((y - y.mean()) / y.std(), jnp.float32)
  _, lml = gp.gp_fit_hypers(xs, t, steps=30)
  assert float(lml[-1]) > float(lml[0])


def test_predictive_split_and_onehot():
  x, y = _toy(n=60, seed=4)
  perm = predictive.make_splits(60, 40, 2, seed=0)
  assert perm.shape == (2, 60) and all(sorted(p) == list(range(60)) for p in perm)
  res = predictive.evaluate_split(x, y, perm[0], 40, jax.random.PRNGKey(0), models=("blr",))
  assert set(res["blr"]) >= {"rmse", "pearson", "spearman", "kendall"}
  assert res["blr"]["pearson"] > 0.5
  adj = np.zeros((2, 3, 3), np.int8)
  adj[0, 0, 1] = 1
  ops = np.eye(3, dtype=np.int8)[None].repeat(2, 0)
  f = predictive.onehot_features(adj, ops)
  assert f.shape == (2, 3 + 9) and f[0, 0] == 1 and f[1, 0] == 0


# ---------------------------------------------------------------------------
# Edit distance and smoothness.

A = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
B = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|nor_conv_3x3~2|"
C = (
  "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
)


def test_nb201_edit_distance_hand_made():
  assert smoothness.nb201_edit_distance(A, A) == 0
  assert smoothness.nb201_edit_distance(A, B) == 2
  assert smoothness.nb201_edit_distance(A, C) == 6
  assert smoothness.nb201_edit_distance(B, C) == 6
  np.testing.assert_array_equal(smoothness.nb201_codes([B])[0], [1, 0, 0, 0, 0, 3])


def test_distance_by_edit_tiny_synthetic():
  # Codes on a line: cell i has code [i >= 1, i >= 2, i >= 3] and embedding i, so pairs at
  # edit distance k are at L2 distance k exactly.
  codes = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1]], np.int32)
  emb = np.arange(4, dtype=np.float32)[:, None] * np.array([[1.0, 0.0]], np.float32)
  acc = np.array([10.0, 20.0, 40.0, 80.0])
  r = smoothness.distance_by_edit(emb, codes, acc, chunk=3)
  assert r["edit"] == [1, 2, 3] and r["count"] == [3, 2, 1]
  np.testing.assert_allclose(r["mean"], [1.0, 2.0, 3.0], atol=1e-5)
  np.testing.assert_allclose(r["std"], [0.0, 0.0, 0.0], atol=1e-3)
  np.testing.assert_allclose(r["gap_mean"], [(10 + 20 + 40) / 3, (30 + 60) / 2, 70.0])
  assert smoothness.monotone_increasing(r["mean"])
  # Groups: pairs across groups are left out.
  r2 = smoothness.distance_by_edit(emb, codes, acc, group=np.array([0, 0, 1, 1]))
  assert r2["edit"] == [1] and r2["count"] == [2]
  nn = smoothness.nearest_neighbour_gap(emb, acc)
  # Nearest neighbours: 0->1, 1->0 or 2 (tie: argmin takes 0), 2->1 or 3 (1), 3->2.
  assert nn["nn_gap_mean"] == pytest.approx((10 + 10 + 20 + 40) / 4)


def test_nb101_codes_groups_by_size():
  adj = np.zeros((2, 4, 4), np.int8)
  adj[:, 0, 1] = 1
  ops = np.zeros((2, 4, 3), np.int8)
  ops[0, :4] = np.eye(3)[[0, 1, 1, 2]]
  ops[1, :3] = np.eye(3)[[0, 1, 2]]
  codes, group = smoothness.nb101_codes(adj, ops)
  assert codes.shape == (2, 6 + 4)
  np.testing.assert_array_equal(group, [4, 3])
  assert codes[1, -1] == -1


# ---------------------------------------------------------------------------
# Regret and plots.


def _synthetic_traces(seeds=6, t=12, seed=0):
  rng = np.random.default_rng(seed)
  vals = np.maximum.accumulate(rng.uniform(0.8, 0.94, (seeds, t)), axis=1)
  mask = np.ones((seeds, t), bool)
  mask[0, 9:] = False  # one run stops early
  return {
    "best_valid": vals,
    "best_test": vals - 0.01,
    "mask": mask,
    "cost": np.cumsum(np.ones((seeds, t)), 1),
  }


def test_regret_curve_and_final(tmp_path):
  tr = _synthetic_traces()
  c = regret.regret_curve(tr, 0.95)
  assert len(c["mean"]) == 12 and np.all(np.diff(c["mean"]) <= 1e-9)  # regret never grows
  f = regret.final_regret(tr, 0.95)
  assert f[0] == pytest.approx(
    (0.95 - tr["best_test"][0, 8]) * 100
  )  # carried from the last in-budget query
  folder = tmp_path / "traces"
  folder.mkdir()
  np.savez(
    folder / "rs.npz",
    **tr,
    reward=tr["best_valid"],
    cell=np.zeros((6, 12), np.int32),
    num_queries=np.ones((6, 12), np.int32),
  )
  np.savez(folder / "other.npz", x=np.zeros(3))  # not a trace: skipped
  loaded = regret.load_traces(tmp_path)
  assert list(loaded) == ["rs"]
  np.testing.assert_array_equal(loaded["rs"]["best_test"], tr["best_test"])


def test_plots_write_png(tmp_path):
  rng = np.random.default_rng(0)
  emb, acc = rng.normal(size=(200, 16)), rng.uniform(10, 90, 200)
  tr = _synthetic_traces()
  files = {
    "pca.png": lambda p: plots.plot_projection(p, emb, acc, "pca"),
    "edit.png": lambda p: plots.plot_distance_vs_edit(
      p, {"a": {"edit": [1, 2], "mean": [1.0, 2.0], "std": [0.1, 0.1], "gap_mean": [1.0, 2.0]}}, "t"
    ),
    "regret.png": lambda p: plots.plot_regret_curves(p, {"rs": regret.regret_curve(tr, 0.95)}, "t"),
    "cdf.png": lambda p: plots.plot_regret_cdf(p, {"rs": regret.final_regret(tr, 0.95)}, "t"),
    "pre.png": lambda p: plots.plot_pretrain_curves(
      p,
      {
        "epochs": [
          {"epoch": e, "loss": 1.0 / (e + 1), "validity": 0.5, "uniqueness": 0.9} for e in range(3)
        ]
      },
      "t",
    ),
    "pred.png": lambda p: plots.plot_predictive(
      p,
      [
        {"encoding": "a", "model": "gp", "train_size": s, "rmse_mean": 1.0, "rmse_std": 0.1}
        for s in (10, 100)
      ],
      "rmse",
      "t",
    ),
  }
  for name, fn in files.items():
    fn(tmp_path / name)
    data = (tmp_path / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", name
  proj, ratio = plots.pca(emb)
  assert proj.shape == (200, 2) and 0 < ratio[1] <= ratio[0] < 1


def test_search_plots_default_to_the_users_own_searches(tmp_path):
  """Without --search_results the analysis reads <workdir>/search (the user's runs), not the committed ones."""
  from arch2vec_jax.analysis import pipeline  # pylint: disable=import-outside-toplevel

  config = pipeline.AnalysisConfig(
    space="nb201",
    workdir=str(tmp_path),
    benchmark="unused",
    datasets=("cifar10",),
    out=str(tmp_path / "out"),
  )
  lines = []
  assert pipeline._search_plots(config, lines.append) == {}  # pylint: disable=protected-access
  assert lines == [
    f"[cifar10] no search traces in {tmp_path / 'search' / 'nb201' / 'cifar10'}: regret plots skipped"
  ]
  folder = tmp_path / "search" / "nb201" / "cifar10" / "traces"
  folder.mkdir(parents=True)
  tr = _synthetic_traces()
  np.savez(
    folder / "rs.npz",
    **tr,
    reward=tr["best_valid"],
    cell=np.zeros((6, 12), np.int32),
    num_queries=np.ones((6, 12), np.int32),
  )
  (tmp_path / "out").mkdir()
  out = pipeline._search_plots(config, lines.append)  # pylint: disable=protected-access
  assert list(out) == ["cifar10"] and (tmp_path / "out" / "regret_cifar10.png").exists()
