"""t-SNE of embeddings (the paper's Figure 4) with scikit-learn, an optional dependency.

  pip install -e .[analysis]      # scikit-learn

`tsne_2d` returns the 2-D t-SNE map of [N, D] points (scikit-learn's
`sklearn.manifold.TSNE`: Barnes-Hut, perplexity 30, PCA initialisation, learning
rate 'auto', inputs standardised per feature so that embeddings of different
scales get the same treatment). Without scikit-learn, `available()` is False and
`tsne_2d` raises `MissingDependency` (an ImportError) with the install line;
`launch/analyze.py` then skips the t-SNE pictures and says so in its log and JSON.
"""

from __future__ import annotations

import importlib.util

import numpy as np

__all__ = ["MissingDependency", "available", "tsne_2d"]

INSTALL = "pip install -e '.[analysis]' (or pip install scikit-learn)"


class MissingDependency(ImportError):
  """scikit-learn is not installed."""


def available() -> bool:
  """Whether scikit-learn can be imported."""
  return importlib.util.find_spec("sklearn") is not None


def tsne_2d(x: np.ndarray, *, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
  """float64 [N, 2]: t-SNE of x [N, D] (features standardised; constant features left at 0).

  Raises:
    MissingDependency: without scikit-learn.
    ValueError: for x that is not [N, D] with N > perplexity * 3 or has non-finite values.
  """
  if not available():
    raise MissingDependency(f"t-SNE needs scikit-learn, which is not installed: {INSTALL}")
  from sklearn.manifold import TSNE  # pylint: disable=import-outside-toplevel

  x = np.asarray(x, np.float64)
  if x.ndim != 2 or len(x) <= 3 * perplexity:
    raise ValueError(f"t-SNE needs [N, D] with N > {3 * perplexity:g}, got shape {x.shape}")
  if not np.all(np.isfinite(x)):
    raise ValueError("t-SNE input has non-finite values")
  sd = x.std(0)
  xs = (x - x.mean(0)) / np.where(sd > 1e-12, sd, 1.0)
  model = TSNE(2, perplexity=perplexity, init="pca", learning_rate="auto", random_state=seed)
  return np.asarray(model.fit_transform(xs), np.float64)
