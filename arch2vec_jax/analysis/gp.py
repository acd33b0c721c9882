"""Gaussian-process regression from features to accuracy (pure JAX, jitted).

Model (Rasmussen & Williams, GPML ch. 2, 5): standardised features x and
targets t; t = f(x) + noise, f ~ GP(0, k), k(x, x') = s_f^2 exp(-1/2 sum_d
(x_d - x'_d)^2 / l_d^2) (RBF with one length scale per dimension, ARD),
noise variance s_n^2 (+ 1e-4 jitter). The hyperparameters (log l [D], log s_f,
log s_n) maximise the log marginal likelihood

  log p(t | X) = -1/2 t^T K^-1 t - sum_i log L_ii - n/2 log 2 pi   (K = L L^T)

by Adam inside one `lax.scan` (one compiled call). On large training sets the
hyperparameters are fitted on a random subset (`hyper_subset` points; the
likelihood's O(n^3) Cholesky is the cost) and the posterior uses every point.
The posterior mean is K_*^T K^-1 t with K^-1 t from a Cholesky solve, or from
conjugate gradients when n > `cholesky_max` (CG needs only K @ v, which XLA:CPU
runs as a fast matrix product; its Cholesky is slow); the predictive variance
is computed on the Cholesky path only.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax.search.blr import standardizer

__all__ = [
  "GPHypers",
  "GPModel",
  "gp_fit",
  "gp_fit_hypers",
  "gp_log_marginal_likelihood",
  "gp_predict",
  "rbf_kernel",
]

JITTER = 1e-4


class GPHypers(NamedTuple):
  """Unconstrained GP hyperparameters: log_lengthscale [D], log_signal [], log_noise [] (log std)."""

  log_lengthscale: jax.Array
  log_signal: jax.Array
  log_noise: jax.Array


class GPModel(NamedTuple):
  """A fitted GP (a pytree): training inputs (standardised), weights K^-1 t and standardisation.

  Attributes:
    hypers: `GPHypers`.
    x_train: float32 [N, D] standardised training inputs.
    weights: float32 [N], K^-1 t.
    chol: float32 [N, N] Cholesky factor of K, or [0, 0] on the CG path.
    x_mean, x_std: float32 [D]; y_mean, y_std: float32 [].
  """

  hypers: GPHypers
  x_train: jax.Array
  weights: jax.Array
  chol: jax.Array
  x_mean: jax.Array
  x_std: jax.Array
  y_mean: jax.Array
  y_std: jax.Array


def rbf_kernel(x1: jax.Array, x2: jax.Array, hypers: GPHypers) -> jax.Array:
  """k(x1, x2): [N1, D] x [N2, D] -> [N1, N2] (squared distances as a matrix product)."""
  inv = jnp.exp(-hypers.log_lengthscale)
  a, b = x1 * inv, x2 * inv
  sq = jnp.sum(a * a, 1)[:, None] + jnp.sum(b * b, 1)[None, :] - 2.0 * a @ b.T
  return jnp.exp(2.0 * hypers.log_signal) * jnp.exp(-0.5 * jnp.maximum(sq, 0.0))


def _noise_var(hypers: GPHypers) -> jax.Array:
  return jnp.exp(2.0 * hypers.log_noise) + JITTER


def gp_log_marginal_likelihood(hypers: GPHypers, x: jax.Array, t: jax.Array) -> jax.Array:
  """log p(t | x, hypers) for x [N, D], t [N] (GPML eq. 2.30)."""
  n = x.shape[0]
  k = rbf_kernel(x, x, hypers) + _noise_var(hypers) * jnp.eye(n, dtype=x.dtype)
  chol = jnp.linalg.cholesky(k)
  alpha = jax.scipy.linalg.cho_solve((chol, True), t)
  return (
    -0.5 * jnp.dot(t, alpha) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * jnp.log(2.0 * jnp.pi)
  )


def _init_hypers(dim: int) -> GPHypers:
  # Standardised inputs: a length scale of sqrt(D) per dimension keeps typical distances O(1).
  return GPHypers(
    jnp.full((dim,), 0.5 * np.log(dim), jnp.float32),
    jnp.zeros((), jnp.float32),
    jnp.float32(np.log(0.3)),
  )


@functools.partial(jax.jit, static_argnames=("steps",))
def gp_fit_hypers(
  x: jax.Array, t: jax.Array, steps: int = 100, lr: float = 0.05
) -> tuple[GPHypers, jax.Array]:
  """Maximises the log marginal likelihood by Adam (one `lax.scan`).

  Args:
    x: float32 [N, D] standardised inputs; t: float32 [N] standardised targets.
    steps, lr: Adam steps and learning rate.

  Returns:
    (hypers, lml [steps]: the log marginal likelihood before each step).
  """
  import optax  # pylint: disable=import-outside-toplevel

  tx = optax.adam(lr)
  hypers = _init_hypers(x.shape[1])
  loss_grad = jax.value_and_grad(lambda h: -gp_log_marginal_likelihood(h, x, t))

  def body(carry, _):
    h, opt = carry
    loss, g = loss_grad(h)
    # A failed Cholesky (NaN) leaves the hyperparameters where they are.
    ok = jnp.isfinite(loss) & jnp.all(
      jnp.array([jnp.all(jnp.isfinite(v)) for v in jax.tree.leaves(g)])
    )
    g = jax.tree.map(lambda v: jnp.where(ok, v, 0.0), g)
    upd, opt = tx.update(g, opt, h)
    h = jax.tree.map(lambda p, u: jnp.clip(p + u, -7.0, 7.0), h, upd)
    return (h, opt), -loss

  (hypers, _), lml = jax.lax.scan(body, (hypers, tx.init(hypers)), None, length=steps)
  return hypers, lml


@functools.partial(jax.jit, static_argnames=("use_cholesky", "cg_iters"))
def _posterior(
  hypers: GPHypers, x: jax.Array, t: jax.Array, use_cholesky: bool, cg_iters: int = 1000
):
  n = x.shape[0]
  k = rbf_kernel(x, x, hypers) + _noise_var(hypers) * jnp.eye(n, dtype=x.dtype)
  if use_cholesky:
    chol = jnp.linalg.cholesky(k)
    return jax.scipy.linalg.cho_solve((chol, True), t), chol
  weights, _ = jax.scipy.sparse.linalg.cg(lambda v: k @ v, t, tol=1e-6, maxiter=cg_iters)
  return weights, jnp.zeros((0, 0), x.dtype)


def gp_fit(
  x,
  y,
  key: jax.Array,
  *,
  steps: int = 100,
  lr: float = 0.05,
  hyper_subset: int = 1000,
  cholesky_max: int = 2000,
) -> GPModel:
  """Fits a GP: hyperparameters on at most `hyper_subset` random points, posterior on all.

  Args:
    x: [N, D] features; y: [N] targets (any units).
    key: PRNG key for the hyperparameter subset.
    steps, lr: Adam on the log marginal likelihood.
    hyper_subset: points used to fit the hyperparameters.
    cholesky_max: above this many points the posterior weights come from CG.

  Returns:
    `GPModel`.
  """
  x = jnp.asarray(x, jnp.float32)
  y = jnp.asarray(y, jnp.float32)
  x_mean, x_std = standardizer(x)
  y_mean, y_std = jnp.mean(y), jnp.maximum(jnp.std(y), 1e-8)
  xs, t = (x - x_mean) / x_std, (y - y_mean) / y_std
  n = x.shape[0]
  if n > hyper_subset:
    sub = jax.random.choice(key, n, (hyper_subset,), replace=False)
    hypers, _ = gp_fit_hypers(xs[sub], t[sub], steps=steps, lr=lr)
  else:
    hypers, _ = gp_fit_hypers(xs, t, steps=steps, lr=lr)
  weights, chol = _posterior(hypers, xs, t, use_cholesky=n <= cholesky_max)
  return GPModel(hypers, xs, weights, chol, x_mean, x_std, y_mean, y_std)


@functools.partial(jax.jit, static_argnames=("chunk",))
def gp_predict(model: GPModel, x: jax.Array, chunk: int = 4096) -> tuple[jax.Array, jax.Array]:
  """Predictive mean [N] and variance [N] (variance NaN on the CG path), targets' units.

  The test points run in chunks of `chunk` rows (`lax.map`), bounding K_* to [chunk, N_train].
  """
  xs = (jnp.asarray(x, jnp.float32) - model.x_mean) / model.x_std
  n = xs.shape[0]
  pad = (-n) % chunk
  xs = jnp.concatenate([xs, jnp.zeros((pad, xs.shape[1]), xs.dtype)]).reshape(
    -1, chunk, xs.shape[1]
  )
  has_chol = model.chol.shape[0] > 0
  noise = _noise_var(model.hypers)
  signal = jnp.exp(2.0 * model.hypers.log_signal)

  def one(xc):
    ks = rbf_kernel(xc, model.x_train, model.hypers)  # [chunk, N_train]
    mean = ks @ model.weights
    if has_chol:
      v = jax.scipy.linalg.solve_triangular(model.chol, ks.T, lower=True)
      var = signal + noise - jnp.sum(v * v, axis=0)
    else:
      var = jnp.full((xc.shape[0],), jnp.nan, xc.dtype)
    return mean, var

  mean, var = jax.lax.map(one, xs)
  mean, var = mean.reshape(-1)[:n], var.reshape(-1)[:n]
  return mean * model.y_std + model.y_mean, var * model.y_std**2
