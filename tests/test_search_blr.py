"""BLR posterior, evidence and expected improvement against closed-form numpy (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

from arch2vec_jax.search import blr


def _data(rows, dim, n, seed=0):
  rng = np.random.default_rng(seed)
  phi = np.tanh(rng.normal(size=(rows, dim)))
  y = 0.8 + 0.1 * np.sin(phi @ rng.normal(size=dim)) + 0.01 * rng.normal(size=rows)
  mask = np.arange(rows) < n
  return phi, y, mask


def _numpy_posterior(phi, y, alpha, beta):
  """A = alpha I + beta Phi^T Phi; m = beta A^-1 Phi^T y (Bishop 3.53-3.54)."""
  a = alpha * np.eye(phi.shape[1]) + beta * phi.T @ phi
  a_inv = np.linalg.inv(a)
  return beta * a_inv @ phi.T @ y, a_inv


def _numpy_lml(phi, y, alpha, beta):
  """log N(y | 0, I / beta + Phi Phi^T / alpha): the marginal of y, computed directly."""
  n = len(y)
  cov = np.eye(n) / beta + phi @ phi.T / alpha
  _, logdet = np.linalg.slogdet(cov)
  return -0.5 * (n * np.log(2 * np.pi) + logdet + y @ np.linalg.solve(cov, y))


@jax.jit
def _lml(phi, y, mask, log_alpha, log_beta):
  return blr.log_marginal_likelihood(blr.spectrum(phi, y, mask), log_alpha, log_beta)


@jax.jit
def _fit_predict(phi, y, mask, log_alpha, log_beta, test):
  post = blr.fit(phi, y, mask, log_alpha=log_alpha, log_beta=log_beta)
  bounds = [blr.variance_upper_bound(post, test, rank) for rank in (0, 2, 64)]
  return post, blr.predict(post, test), bounds


# (buffer rows, basis size, real rows): dual form (rows <= H) and primal form (rows > H).
SHAPES = [(12, 16, 9), (12, 16, 12), (40, 6, 31)]


@pytest.mark.parametrize("rows, dim, n", SHAPES)
@pytest.mark.parametrize("log_alpha, log_beta", [(0.0, 2.0), (2.5, 7.0), (-3.0, 4.0)])
def test_log_marginal_likelihood_matches_numpy(rows, dim, n, log_alpha, log_beta):
  phi, y, mask = _data(rows, dim, n)
  got = float(
    _lml(
      jnp.asarray(phi, jnp.float32),
      jnp.asarray(y, jnp.float32),
      jnp.asarray(mask),
      log_alpha,
      log_beta,
    )
  )
  want = _numpy_lml(phi[:n], y[:n], np.exp(log_alpha), np.exp(log_beta))
  np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-2)


@pytest.mark.parametrize("rows, dim, n", SHAPES)
def test_posterior_and_predict_match_numpy(rows, dim, n):
  phi, y, mask = _data(rows, dim, n, seed=1)
  log_alpha, log_beta = 1.0, 5.0
  test = np.tanh(np.random.default_rng(2).normal(size=(25, dim)))
  post, (mean, var), bounds = _fit_predict(
    jnp.asarray(phi, jnp.float32),
    jnp.asarray(y, jnp.float32),
    jnp.asarray(mask),
    log_alpha,
    log_beta,
    jnp.asarray(test, jnp.float32),
  )
  m, a_inv = _numpy_posterior(phi[:n], y[:n], np.exp(log_alpha), np.exp(log_beta))
  np.testing.assert_allclose(post.mean_w, m, rtol=1e-3, atol=1e-4)
  np.testing.assert_allclose(mean, test @ m, rtol=1e-3, atol=1e-4)
  want_var = np.exp(-log_beta) + np.einsum("mh,hk,mk->m", test, a_inv, test)
  np.testing.assert_allclose(var, want_var, rtol=1e-3)
  # The pruning bound (ranks 0, 2, 64) is an upper bound, and tight with every row kept.
  for ub in bounds:
    assert np.all(np.asarray(ub) >= want_var * (1 - 1e-5))
  np.testing.assert_allclose(bounds[-1], want_var, rtol=1e-3)


def test_optimize_hypers_finds_the_evidence_maximum():
  phi, y, mask = _data(30, 8, 24, seed=3)
  spec = blr.spectrum(jnp.asarray(phi, jnp.float32), jnp.asarray(y, jnp.float32), jnp.asarray(mask))
  la, lb = jax.jit(blr.optimize_hypers)(spec)
  # Brute force in numpy on a fine grid of the same box.
  grid = np.linspace(-10, 10, 161)
  best = max(
    _numpy_lml(phi[:24], y[:24], np.exp(a), np.exp(b)) for a in grid[::4] for b in grid[::4]
  )
  got = _numpy_lml(phi[:24], y[:24], np.exp(float(la)), np.exp(float(lb)))
  assert got >= best - 1e-3
  # A local check: no neighbour on the final resolution is better.
  step = 20 / 20 / 4**3
  for da, db in [(step, 0), (-step, 0), (0, step), (0, -step)]:
    assert (
      got >= _numpy_lml(phi[:24], y[:24], np.exp(float(la) + da), np.exp(float(lb) + db)) - 1e-3
    )


def _numpy_ei(mean, scale, best):
  z = (mean - best) / scale
  return scale * (z * stats.norm.cdf(z) + stats.norm.pdf(z))


def _numpy_log_ei(mean, scale, best):
  """log EI in float64, stable for very negative z: h(z) = phi(z) (1 - t R(t)), t = -z."""
  z = (mean - best) / scale
  t = -z
  mills = np.sqrt(np.pi / 2) * special.erfcx(t / np.sqrt(2))
  tail = -0.5 * z**2 - 0.5 * np.log(2 * np.pi) + np.log1p(-t * mills)
  direct = np.log(np.maximum(z * stats.norm.cdf(z) + stats.norm.pdf(z), 1e-300))
  return np.log(scale) + np.where(z < -1, tail, direct)


def test_expected_improvement_matches_numpy():
  rng = np.random.default_rng(4)
  mean = rng.uniform(0.7, 1.0, 200)
  scale = rng.uniform(1e-3, 0.2, 200)
  best = 0.9
  got = jax.jit(blr.expected_improvement)(
    jnp.asarray(mean, jnp.float32), jnp.asarray(scale, jnp.float32), jnp.float32(best)
  )
  np.testing.assert_allclose(got, _numpy_ei(mean, scale, best), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("z_lo, z_hi", [(-3.0, 3.0), (-12.0, -1.0), (-40.0, -10.0)])
def test_log_expected_improvement_matches_numpy(z_lo, z_hi):
  z = np.linspace(z_lo, z_hi, 301)
  scale = np.full_like(z, 0.05)
  mean = 0.9 + z * scale
  got = jax.jit(blr.log_expected_improvement)(
    jnp.asarray(mean, jnp.float32), jnp.asarray(scale, jnp.float32), jnp.float32(0.9)
  )
  np.testing.assert_allclose(got, _numpy_log_ei(mean, scale, 0.9), rtol=2e-4, atol=2e-3)
  assert np.all(np.diff(np.asarray(got)) > 0)  # increasing in the mean: the ranking is kept
