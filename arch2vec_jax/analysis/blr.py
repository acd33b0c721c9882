"""Bayesian linear regression from features to accuracy: `search.blr`'s (one BLR module), re-exported.

`blr_fit` / `blr_predict`: phi(x) = [standardised x, 1], standardised targets,
alpha and beta by MacKay's fixed-point updates (PRML §3.3, §3.5); see
`search.blr`, whose grid-maximised BLR arch2vec-BO uses.
"""

from __future__ import annotations

import numpy as np

from arch2vec_jax.search.blr import (
  BLRModel,
  _design,  # noqa: F401  (tests build the design with it)
  blr_fit,
  blr_log_evidence,
  blr_predict,
  standardizer,
)

__all__ = ["BLRModel", "blr_fit", "blr_log_evidence", "blr_predict", "standardizer"]


def _numpy_posterior(x: np.ndarray, y: np.ndarray, alpha: float, beta: float):
  """Reference posterior (mean, cov) in NumPy float64 on the standardised problem (tests)."""
  x_mean, x_std = x.mean(0), np.where(x.std(0) > 1e-8, x.std(0), 1.0)
  phi = np.concatenate([(x - x_mean) / x_std, np.ones((len(x), 1))], axis=1)
  t = (y - y.mean()) / max(y.std(), 1e-8)
  a = alpha * np.eye(phi.shape[1]) + beta * phi.T @ phi
  cov = np.linalg.inv(a)
  return beta * cov @ phi.T @ t, cov
