"""Bayesian linear regression from features to accuracy, precisions by evidence maximisation (pure JAX).

Model (Bishop, PRML §3.3, §3.5): y = w^T phi(x) + noise, w ~ N(0, I / alpha),
noise ~ N(0, 1 / beta), phi(x) = [standardised x, 1]. Posterior
A = alpha I + beta Phi^T Phi, m = beta A^-1 Phi^T y; predictive mean m^T phi,
variance 1 / beta + phi^T A^-1 phi. alpha and beta maximise the evidence by
MacKay's fixed-point updates (PRML eq. 3.92, 3.95) on the eigenvalues of
Phi^T Phi, run for a fixed number of iterations inside `lax.fori_loop`.
Targets are standardised on the training set and predictions mapped back.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["BLRModel", "blr_fit", "blr_log_evidence", "blr_predict", "standardizer"]


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
  """log p(y | alpha, beta) (PRML eq. 3.86) for design phi [N, M] and targets y [N]."""
  n, m = phi.shape
  alpha, beta = jnp.exp(log_alpha), jnp.exp(log_beta)
  a = alpha * jnp.eye(m) + beta * phi.T @ phi
  mean = beta * jnp.linalg.solve(a, phi.T @ y)
  e = 0.5 * beta * jnp.sum(jnp.square(y - phi @ mean)) + 0.5 * alpha * jnp.sum(jnp.square(mean))
  _, logdet = jnp.linalg.slogdet(a)
  return 0.5 * m * log_alpha + 0.5 * n * log_beta - e - 0.5 * logdet - 0.5 * n * jnp.log(2 * jnp.pi)


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


def _numpy_posterior(x: np.ndarray, y: np.ndarray, alpha: float, beta: float):
  """Reference posterior (mean, cov) in NumPy float64 on the standardised problem (tests)."""
  x_mean, x_std = x.mean(0), np.where(x.std(0) > 1e-8, x.std(0), 1.0)
  phi = np.concatenate([(x - x_mean) / x_std, np.ones((len(x), 1))], axis=1)
  t = (y - y.mean()) / max(y.std(), 1e-8)
  a = alpha * np.eye(phi.shape[1]) + beta * phi.T @ phi
  cov = np.linalg.inv(a)
  return beta * cov @ phi.T @ t, cov
