"""Bayesian linear regression with evidence-maximised precisions, and expected improvement.

The model (Bishop, PRML §3.3-3.5; DNGO, Snoek et al. 2015; pybnn's
`BayesianLinearRegression`): y = phi(x)^T w + noise, w ~ N(0, I / alpha),
noise ~ N(0, 1 / beta). Given the design matrix Phi [n, H] of the queried cells:

  A = alpha I + beta Phi^T Phi,  m = beta A^-1 Phi^T y,
  predictive mean m^T phi, variance 1 / beta + phi^T A^-1 phi,
  log p(y | alpha, beta) = H/2 log alpha + n/2 log beta - n/2 log 2 pi
      - beta/2 ||y - Phi m||^2 - alpha/2 m^T m - 1/2 log |A|.

Everything is computed from one symmetric eigendecomposition, in float32
without cancellation-prone sums for the evidence:

- `dual` (n_rows <= H, the usual DNGO case with a buffer of at most 100 cells
  and H = 128): eigh of the Gram matrix Phi Phi^T [B, B] (padded rows are zero);
  with c = U^T y, ||y - Phi m||^2 = sum_i c_i^2 (alpha / (alpha + beta l_i))^2,
  m^T m = sum_i c_i^2 beta^2 l_i / (alpha + beta l_i)^2,
  log |A| = H log alpha + sum_i log1p(beta l_i / alpha). The row space of Phi
  gets the orthonormal basis v_i = Phi^T u_i / sqrt(l_i) (l_i above a rank
  tolerance; the other rows are zero).
- `primal` (n_rows > H, e.g. BLR on the 16-d embeddings): eigh of Phi^T Phi
  [H, H]; the residual outside the column space of Phi is computed once as a
  vector; the eigenvectors are a complete basis.

Predictive variance without cancellation: with the orthonormal rows V [R, H],
phi^T A^-1 phi = sum_r (v_r . phi)^2 / (alpha + beta l_r)
+ ||phi - V^T V phi||^2 / alpha (the second term is the part of phi outside
the row space, computed as a residual vector, not as ||phi||^2 - ||V phi||^2).
`variance_upper_bound` drops all but the best-determined rows of the sum
written from the prior side (module doc of that function): an upper bound for
the cost of a few projections (used to prune the acquisition sweep).

alpha and beta maximise the evidence over log alpha, log beta in [-10, 10] (the
box pybnn's DNGO allows), by a 21 x 21 grid followed by zooming 9 x 9 grids
(final resolution 1/64 in log space): derivative-free, deterministic and cheap
(each evaluation is O(B)). `pybnn_mll=True` evaluates pybnn's DNGO evidence
instead, which has the residual norm where its square belongs (release
behaviour; the release optimises it with Nelder-Mead from a random start).

Acquisitions (maximisation): `log_expected_improvement` is log EI over the
incumbent, evaluated stably for very negative z (EI underflows in float32 once
z < -13; its log does not, and it ranks the same where EI is representable).
The release's variant uses the variance where the standard deviation belongs
and a fixed target (0.95 NB101, 1.0 NB201): `log_expected_improvement(mean,
scale=var, best=target)`.

The analysis' predictor (`blr_fit`, `blr_predict`: standardised features plus a
bias, standardised targets, alpha and beta by MacKay's fixed-point updates
instead of the grid) is the last section; its evidence is `log_marginal_likelihood`.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

__all__ = [
  "LOG_BOUNDS",
  "BLRModel",
  "BLRPosterior",
  "Spectrum",
  "blr_fit",
  "blr_log_evidence",
  "blr_predict",
  "expected_improvement",
  "fit",
  "log_expected_improvement",
  "log_marginal_likelihood",
  "optimize_hypers",
  "posterior",
  "predict",
  "spectrum",
  "standardizer",
  "variance_upper_bound",
]

# pybnn's DNGO returns -inf outside theta in [-10, 10]^2 (theta = log alpha, log 1/beta).
LOG_BOUNDS = (-10.0, 10.0)
_LOG_2PI = math.log(2.0 * math.pi)


class Spectrum(NamedTuple):
  """Everything the evidence and the posterior need, from one eigendecomposition.

  Attributes:
    lam: float32 [R], eigenvalues (>= 0) of Phi Phi^T (dual, R = B) or Phi^T Phi
      (primal, R = H).
    c2: float32 [R], squared coordinates of y along the eigenvectors (dual:
      (U^T y)^2; primal: (v^T Phi^T y)^2 / l, 0 where l is numerically zero).
    resid_perp: float32 [], squared norm of y outside the eigenvectors' span
      (dual: 0; primal: the part of y outside the column space of Phi).
    n: float32 [], the number of data points (mask sum).
    basis: float32 [R, H], dual: U^T Phi; primal: V^T.
    proj_y: float32 [R], dual: U^T y; primal: V^T Phi^T y.
    dim: float32 [], H, the number of basis functions.
  """

  lam: jax.Array
  c2: jax.Array
  resid_perp: jax.Array
  n: jax.Array
  basis: jax.Array
  proj_y: jax.Array
  dim: jax.Array


class BLRPosterior(NamedTuple):
  """A fitted BLR (see module doc for the variance).

  Attributes:
    mean_w: float32 [H], posterior mean of the weights.
    basis: float32 [R, H], orthonormal rows V (zero rows are ignored).
    row_var: float32 [R], 1 / (alpha + beta l_r) along each row.
    prior_var: float32 [], 1 / alpha (the variance outside the row space).
    noise: float32 [], 1 / beta.
    log_alpha, log_beta: float32 [], the hyperparameters.
  """

  mean_w: jax.Array
  basis: jax.Array
  row_var: jax.Array
  prior_var: jax.Array
  noise: jax.Array
  log_alpha: jax.Array
  log_beta: jax.Array


def spectrum(phi: jax.Array, y: jax.Array, mask: jax.Array | None = None) -> Spectrum:
  """Eigendecomposition of the design: dual (Gram) if B <= H else primal.

  Args:
    phi: float32 [B, H], basis functions of the data rows.
    y: float32 [B], targets.
    mask: bool [B], real rows (others are ignored); default all.

  Returns:
    The `Spectrum`.
  """
  chex.assert_rank([phi, y], [2, 1])
  b, h = phi.shape
  if mask is None:
    mask = jnp.ones((b,), bool)
  w = mask.astype(phi.dtype)
  phi = phi * w[:, None]
  y = y * w
  n = jnp.sum(w)
  hp = jax.lax.Precision.HIGHEST
  if b <= h:
    lam, u = jnp.linalg.eigh(jnp.dot(phi, phi.T, precision=hp))
    lam = jnp.maximum(lam, 0.0)
    proj_y = jnp.dot(u.T, y, precision=hp)
    return Spectrum(
      lam,
      proj_y**2,
      jnp.zeros((), phi.dtype),
      n,
      jnp.dot(u.T, phi, precision=hp),
      proj_y,
      jnp.asarray(h, phi.dtype),
    )
  lam, v = jnp.linalg.eigh(jnp.dot(phi.T, phi, precision=hp))
  lam = jnp.maximum(lam, 0.0)
  tol = h * jnp.finfo(phi.dtype).eps * jnp.max(lam)
  keep = lam > tol
  q = jnp.dot(phi, v, precision=hp)  # [B, H]: columns orthogonal, norms sqrt(lam)
  d = jnp.dot(q.T, y, precision=hp)  # V^T Phi^T y
  inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
  y_par = jnp.dot(q, d * inv, precision=hp)
  resid_perp = jnp.sum((y - y_par) ** 2)
  return Spectrum(lam, d**2 * inv, resid_perp, n, v.T, d, jnp.asarray(h, phi.dtype))


def _terms(spec: Spectrum, log_alpha, log_beta):
  alpha, beta = jnp.exp(log_alpha), jnp.exp(log_beta)
  denom = alpha + beta * spec.lam
  resid = spec.resid_perp + jnp.sum(spec.c2 * (alpha / denom) ** 2)
  mtm = jnp.sum(spec.c2 * beta**2 * spec.lam / denom**2)
  logdet = spec.dim * log_alpha + jnp.sum(jnp.log1p(beta * spec.lam / alpha))
  return resid, mtm, logdet


def log_marginal_likelihood(
  spec: Spectrum, log_alpha: jax.Array, log_beta: jax.Array, pybnn_mll: bool = False
) -> jax.Array:
  """log p(y | alpha, beta) of the BLR (Bishop eq. 3.86).

  Args:
    spec: from `spectrum`.
    log_alpha, log_beta: float32 [] (or broadcastable batches).
    pybnn_mll: use pybnn's DNGO expression, which has beta/2 ||y - Phi m|| (the
      norm, not its square).

  Returns:
    float32, the log evidence.
  """
  fn = lambda la, lb: _single_lml(spec, la, lb, pybnn_mll)
  la, lb = jnp.broadcast_arrays(
    jnp.asarray(log_alpha, jnp.float32), jnp.asarray(log_beta, jnp.float32)
  )
  flat = jax.vmap(fn)(la.reshape(-1), lb.reshape(-1))
  return flat.reshape(la.shape)


def _single_lml(spec: Spectrum, log_alpha, log_beta, pybnn_mll: bool):
  resid, mtm, logdet = _terms(spec, log_alpha, log_beta)
  beta, alpha = jnp.exp(log_beta), jnp.exp(log_alpha)
  fit = jnp.sqrt(resid) if pybnn_mll else resid
  return (
    0.5 * spec.dim * log_alpha
    + 0.5 * spec.n * log_beta
    - 0.5 * spec.n * _LOG_2PI
    - 0.5 * beta * fit
    - 0.5 * alpha * mtm
    - 0.5 * logdet
  )


def optimize_hypers(
  spec: Spectrum, pybnn_mll: bool = False, bounds: tuple[float, float] = LOG_BOUNDS, levels: int = 3
) -> tuple[jax.Array, jax.Array]:
  """(log alpha, log beta) maximising the evidence in the box `bounds`^2.

  A 21 x 21 grid over the box, then `levels` zooms, each a 9 x 9 grid of a
  quarter of the previous step around the best point (clipped to the box).

  Args:
    spec: from `spectrum`.
    pybnn_mll: optimise pybnn's evidence (see `log_marginal_likelihood`).
    bounds: (low, high) for both log alpha and log beta.
    levels: zoom levels after the coarse grid (resolution (hi - lo) / 20 / 4^levels).

  Returns:
    (log_alpha, log_beta), float32 [] each.
  """
  lo, hi = bounds
  fn = jax.vmap(lambda la, lb: _single_lml(spec, la, lb, pybnn_mll))

  def best_of(la, lb):
    la, lb = jnp.clip(la, lo, hi), jnp.clip(lb, lo, hi)
    v = fn(la, lb)
    v = jnp.where(jnp.isnan(v), -jnp.inf, v)
    i = jnp.argmax(v)
    return la[i], lb[i]

  g = jnp.linspace(lo, hi, 21, dtype=jnp.float32)
  a, b = jnp.meshgrid(g, g, indexing="ij")
  la, lb = best_of(a.reshape(-1), b.reshape(-1))
  step = (hi - lo) / 20.0
  offsets = jnp.arange(-4, 5, dtype=jnp.float32)
  for _ in range(levels):
    step = step / 4.0
    a, b = jnp.meshgrid(la + offsets * step, lb + offsets * step, indexing="ij")
    la, lb = best_of(a.reshape(-1), b.reshape(-1))
  return la, lb


def posterior(
  spec: Spectrum, log_alpha: jax.Array, log_beta: jax.Array, dual: bool
) -> BLRPosterior:
  """The BLR posterior for given hyperparameters.

  Args:
    spec: from `spectrum`.
    log_alpha, log_beta: float32 [].
    dual: whether `spec` is the dual (Gram) form (static: B <= H).

  Returns:
    The `BLRPosterior`.
  """
  alpha, beta = jnp.exp(log_alpha), jnp.exp(log_beta)
  denom = alpha + beta * spec.lam
  hp = jax.lax.Precision.HIGHEST
  # dual: Phi^T U (beta c / denom); primal: V (beta d / denom).
  mean_w = jnp.dot(spec.basis.T, beta * spec.proj_y / denom, precision=hp)
  if dual:
    keep = spec.lam > spec.basis.shape[0] * jnp.finfo(spec.lam.dtype).eps * jnp.max(spec.lam)
    basis = (
      jnp.where(keep, jax.lax.rsqrt(jnp.where(keep, spec.lam, 1.0)), 0.0)[:, None] * spec.basis
    )
  else:
    basis = spec.basis
  return BLRPosterior(
    mean_w,
    basis,
    1.0 / denom,
    1.0 / alpha,
    1.0 / beta,
    jnp.asarray(log_alpha, jnp.float32),
    jnp.asarray(log_beta, jnp.float32),
  )


def fit(
  phi: jax.Array,
  y: jax.Array,
  mask: jax.Array | None = None,
  pybnn_mll: bool = False,
  log_alpha: jax.Array | None = None,
  log_beta: jax.Array | None = None,
) -> BLRPosterior:
  """Fits a BLR: evidence-maximised hyperparameters unless both are given.

  Args:
    phi: float32 [B, H] basis functions of the data.
    y: float32 [B] targets.
    mask: bool [B] real rows.
    pybnn_mll: see `log_marginal_likelihood`.
    log_alpha, log_beta: fixed hyperparameters (skip the optimisation).

  Returns:
    The `BLRPosterior`.
  """
  spec = spectrum(phi, y, mask)
  if log_alpha is None or log_beta is None:
    log_alpha, log_beta = optimize_hypers(spec, pybnn_mll)
  return posterior(
    spec,
    jnp.asarray(log_alpha, jnp.float32),
    jnp.asarray(log_beta, jnp.float32),
    phi.shape[0] <= phi.shape[1],
  )


def predict(
  post: BLRPosterior, phi: jax.Array, min_var: float = 1e-10
) -> tuple[jax.Array, jax.Array]:
  """Predictive mean and variance (module doc; no cancellation).

  Args:
    post: the posterior.
    phi: float32 [M, H] basis functions of the test points.
    min_var: variances are clipped below at this (pybnn clips at machine eps).

  Returns:
    (mean [M], var [M]).
  """
  hp = jax.lax.Precision.HIGHEST
  mean = jnp.dot(phi, post.mean_w, precision=hp)
  proj = jnp.dot(phi, post.basis.T, precision=hp)  # [M, R]
  outside = phi - jnp.dot(proj, post.basis, precision=hp)
  var = (
    post.noise
    + jnp.sum(proj * proj * post.row_var, axis=1)
    + post.prior_var * jnp.sum(outside * outside, axis=1)
  )
  return mean, jnp.maximum(var, min_var)


def variance_upper_bound(post: BLRPosterior, phi: jax.Array, rank: int = 16) -> jax.Array:
  """An upper bound of the predictive variance, cheaper than `predict`: [M] from phi [M, H].

  phi^T A^-1 phi = ||phi||^2 / alpha - sum_r (1 / alpha - row_var_r) (v_r . phi)^2,
  and every term of the sum is >= 0: keeping only the `rank` rows of smallest
  variance (the best-determined directions) bounds it from above. A margin of
  1e-6 ||phi||^2 / alpha covers float32 rounding.
  """
  sq = jnp.sum(phi * phi, axis=1)
  ub = post.noise + post.prior_var * sq * (1.0 + 1e-6)
  r = min(int(rank), post.basis.shape[0])
  if r == 0:
    return ub
  _, rows = jax.lax.top_k(-post.row_var, r)
  proj = jnp.dot(phi, post.basis[rows].T, precision=jax.lax.Precision.HIGHEST)  # [M, r]
  return ub - jnp.sum(proj * proj * (post.prior_var - post.row_var[rows]), axis=1)


def expected_improvement(mean: jax.Array, scale: jax.Array, best: jax.Array) -> jax.Array:
  """EI for maximisation: (mean - best) Phi(z) + scale phi(z), z = (mean - best) / scale.

  Args:
    mean: [M] predictive means.
    scale: [M] standard deviations (the release passes variances).
    best: [] the incumbent (or the release's fixed target).

  Returns:
    [M] expected improvement (underflows to 0 for z < -13 in float32; see
    `log_expected_improvement`).
  """
  z = (mean - best) / scale
  return scale * (z * jax.scipy.stats.norm.cdf(z) + jax.scipy.stats.norm.pdf(z))


def log_expected_improvement(mean: jax.Array, scale: jax.Array, best: jax.Array) -> jax.Array:
  """log EI, stable for very negative z (same ranking as EI where EI > 0 in float32).

  With h(z) = z Phi(z) + phi(z), EI = scale h(z). For z < -1, h(z) = phi(z) (1 - t R(t))
  with t = -z and Mills ratio R(t) = sqrt(pi/2) erfcx(t / sqrt 2); for t > 10,
  1 - t R(t) = t^-2 - 3 t^-4 + 15 t^-6 - 105 t^-8 + 945 t^-10 (relative error < 1e-5).

  Args:
    mean: [M]; scale: [M] > 0; best: [].

  Returns:
    [M] log EI.
  """
  z = (mean - best) / scale
  t = jnp.maximum(-z, 1.0)
  mills = math.sqrt(math.pi / 2) * jax.scipy.special.erfcx(t / math.sqrt(2.0))
  # 1 - t R(t) ~ 1/t^2 cancels in float32 for large t: use its asymptotic series there.
  u = 1.0 / jnp.maximum(t, 10.0) ** 2
  series = u * (1.0 - u * (3.0 - u * (15.0 - u * (105.0 - 945.0 * u))))
  factor = jnp.where(t > 10.0, series, 1.0 - t * mills)
  log_tail = -0.5 * z**2 - 0.5 * _LOG_2PI + jnp.log(jnp.maximum(factor, 1e-37))
  zc = jnp.maximum(z, -1.0)
  log_direct = jnp.log(zc * jax.scipy.stats.norm.cdf(zc) + jax.scipy.stats.norm.pdf(zc))
  return jnp.log(scale) + jnp.where(z < -1.0, log_tail, log_direct)


# ---------------------------------------------------------------------------
# BLR on standardised features with MacKay's evidence updates (the analysis' predictor).
#
# Model as above with phi(x) = [standardised x, 1] and standardised targets (PRML
# §3.3, §3.5). alpha and beta maximise the evidence by MacKay's fixed-point updates
# (PRML eq. 3.92, 3.95) on the eigenvalues of Phi^T Phi, run for a fixed number of
# iterations inside `lax.fori_loop`; predictions are mapped back to the targets' units.


class BLRModel(NamedTuple):
  """A fitted BLR (a pytree).

  Attributes:
    x_mean, x_std: float32 [D], feature standardisation of the training set.
    y_mean, y_std: float32 [], target standardisation.
    mean: float32 [D + 1], posterior mean m of the weights (last = bias).
    cov: float32 [D + 1, D + 1], posterior covariance A^-1.
    log_alpha, log_beta: float32 [], the evidence-maximising precisions.
  """

  x_mean: jax.Array
  x_std: jax.Array
  y_mean: jax.Array
  y_std: jax.Array
  mean: jax.Array
  cov: jax.Array
  log_alpha: jax.Array
  log_beta: jax.Array


def standardizer(x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(mean [D], std [D]) of x [N, D]; constant columns get std 1."""
  mean = jnp.mean(x, axis=0)
  std = jnp.std(x, axis=0)
  return mean, jnp.where(std > 1e-8, std, 1.0)


def _design(x: jax.Array, x_mean: jax.Array, x_std: jax.Array) -> jax.Array:
  """[N, D + 1]: standardised features and a bias column."""
  z = (x - x_mean) / x_std
  return jnp.concatenate([z, jnp.ones((x.shape[0], 1), z.dtype)], axis=1)


def blr_log_evidence(
  phi: jax.Array, y: jax.Array, log_alpha: jax.Array, log_beta: jax.Array
) -> jax.Array:
  """log p(y | alpha, beta) (PRML eq. 3.86) for design phi [N, M] and targets y [N] (`log_marginal_likelihood`)."""
  return log_marginal_likelihood(spectrum(phi, y), log_alpha, log_beta)


@functools.partial(jax.jit, static_argnames=("iterations",))
def blr_fit(x: jax.Array, y: jax.Array, iterations: int = 100) -> BLRModel:
  """Fits BLR with evidence-maximised precisions.

  Args:
    x: float [N, D] features; y: float [N] targets.
    iterations: MacKay fixed-point updates of (alpha, beta).

  Returns:
    `BLRModel`.
  """
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  n = x.shape[0]
  x_mean, x_std = standardizer(x)
  y_mean = jnp.mean(y)
  y_std = jnp.maximum(jnp.std(y), 1e-8)
  t = (y - y_mean) / y_std
  phi = _design(x, x_mean, x_std)
  m = phi.shape[1]
  gram = phi.T @ phi
  lam, vec = jnp.linalg.eigh(gram)
  lam = jnp.maximum(lam, 0.0)
  proj = vec.T @ (phi.T @ t)  # [M]: Phi^T t in the eigenbasis
  # Residual ||t - Phi m||^2 = ||t||^2 - 2 m^T Phi^T t + m^T Phi^T Phi m, in the eigenbasis.
  tt = jnp.sum(t * t)

  def stats(alpha, beta):
    coef = beta * proj / (alpha + beta * lam)  # m in the eigenbasis
    resid = jnp.maximum(tt - 2.0 * jnp.sum(coef * proj) + jnp.sum(coef * coef * lam), 1e-12)
    return coef, resid

  def body(_, ab):
    alpha, beta = ab
    coef, resid = stats(alpha, beta)
    gamma = jnp.sum(beta * lam / (alpha + beta * lam))
    alpha = jnp.clip(gamma / jnp.maximum(jnp.sum(coef * coef), 1e-12), 1e-6, 1e6)
    beta = jnp.clip(jnp.maximum(n - gamma, 1e-3) / resid, 1e-6, 1e6)
    return alpha, beta

  alpha, beta = jax.lax.fori_loop(0, iterations, body, (jnp.float32(1.0), jnp.float32(1.0)))
  coef, _ = stats(alpha, beta)
  mean = vec @ coef
  cov = (vec / (alpha + beta * lam)) @ vec.T
  del m
  return BLRModel(x_mean, x_std, y_mean, y_std, mean, cov, jnp.log(alpha), jnp.log(beta))


@jax.jit
def blr_predict(model: BLRModel, x: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Predictive mean and variance [N] in the targets' units, for x [N, D]."""
  phi = _design(jnp.asarray(x, jnp.float32), model.x_mean, model.x_std)
  mean = phi @ model.mean
  var = jnp.exp(-model.log_beta) + jnp.einsum("nm,mk,nk->n", phi, model.cov, phi)
  return mean * model.y_std + model.y_mean, var * model.y_std**2
