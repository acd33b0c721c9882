"""Predictive performance: regress validation accuracy on an encoding, score on held-out cells.

For each training-set size and random split, the first `size` cells of a
permutation train a Bayesian linear regression (`blr`) and a Gaussian process
(`gp`); every other cell is held out and scored with RMSE, Pearson, Spearman
and Kendall tau-b (`metrics`). Encodings: the pre-trained arch2vec embeddings,
the supervised embedding of that split (`supervised`) and the flat one-hot
adjacency + operations (`onehot_features`).
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from arch2vec_jax.analysis import metrics as metrics_lib
from arch2vec_jax.analysis.gp import gp_fit, gp_predict
from arch2vec_jax.search.blr import blr_fit, blr_predict

__all__ = ["MODELS", "evaluate_split", "make_splits", "onehot_features", "summarize"]

MODELS = ("blr", "gp")


def onehot_features(adjacency: np.ndarray, ops: np.ndarray) -> np.ndarray:
  """float32 [N, n(n-1)/2 + n d]: the strict-upper adjacency entries and the flattened one-hot ops."""
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  n = ops.shape[1]
  iu = np.triu_indices(n, 1)
  return np.concatenate([adjacency[:, iu[0], iu[1]], ops.reshape(len(ops), -1)], axis=1).astype(
    np.float32
  )


def make_splits(num_cells: int, size: int, num_splits: int, seed: int) -> np.ndarray:
  """int64 [num_splits, num_cells]: one permutation per split; its first `size` cells train."""
  if not 0 < size < num_cells:
    raise ValueError(f"training size {size} must be in (0, {num_cells})")
  rng = np.random.default_rng([seed, size])
  return np.stack([rng.permutation(num_cells) for _ in range(num_splits)])


def evaluate_split(
  features: np.ndarray,
  y: np.ndarray,
  perm: np.ndarray,
  size: int,
  key: jax.Array,
  models=MODELS,
  gp_kwargs: dict[str, Any] | None = None,
) -> dict[str, dict[str, float]]:
  """Fits each model on perm[:size] and scores it on perm[size:].

  Args:
    features: [N, D]; y: [N] accuracies (percent); perm: [N] a permutation.
    size: training cells; key: PRNG key (GP hyperparameter subset).
    models: subset of ('blr', 'gp').
    gp_kwargs: keyword arguments of `gp.gp_fit`.

  Returns:
    model -> metrics dict (+ 'fit_s' seconds).
  """
  tr, te = perm[:size], perm[size:]
  x_tr, y_tr, x_te, y_te = features[tr], y[tr], features[te], y[te]
  out = {}
  for m in models:
    t0 = time.perf_counter()
    if m == "blr":
      pred = np.asarray(blr_predict(blr_fit(x_tr, y_tr), x_te)[0])
    elif m == "gp":
      pred = np.asarray(gp_predict(gp_fit(x_tr, y_tr, key, **(gp_kwargs or {})), x_te)[0])
    else:
      raise ValueError(f"unknown model {m!r}; expected one of {MODELS}")
    out[m] = {**metrics_lib.regression_metrics(y_te, pred), "fit_s": time.perf_counter() - t0}
  return out


def summarize(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Mean and std over splits per (dataset, encoding, model, train_size).

  records: one per (dataset, encoding, model, train_size, split) with the metric keys.
  """
  groups: dict[tuple, list[dict[str, Any]]] = {}
  for r in records:
    groups.setdefault((r["dataset"], r["encoding"], r["model"], r["train_size"]), []).append(r)
  rows = []
  for (ds, enc, mod, size), rs in groups.items():
    row = {"dataset": ds, "encoding": enc, "model": mod, "train_size": size, "splits": len(rs)}
    for k in ("rmse", "pearson", "spearman", "kendall"):
      v = np.asarray([r[k] for r in rs], np.float64)
      row[f"{k}_mean"], row[f"{k}_std"] = float(np.nanmean(v)), float(np.nanstd(v))
    rows.append(row)
  return rows
