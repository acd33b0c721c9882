"""Pictures of the analyses (PNG via matplotlib's Agg backend, written atomically).

  plot_projection         2-D PCA projection of embeddings coloured by accuracy
  plot_points             any 2-D map (the t-SNE of `tsne.tsne_2d`) coloured by accuracy
  plot_distance_vs_edit   mean latent distance (+- std band) per edit distance
  plot_regret_curves      mean regret per query with a 95% confidence band, per method
                          (`search.trace_plots`'s, re-exported)
  plot_regret_cdf         empirical CDF of the final regret over seeds
  plot_pretrain_curves    loss, validity and uniqueness per epoch (metrics.json)
  plot_predictive         held-out metric against training-set size, per encoding and model
  plot_protocol           the DNGO protocol's metrics against training size (all / filtered)
  plot_protocol_scatter   predicted against true accuracy of held-out cells

The PCA projection is an SVD in NumPy; the paper's t-SNE needs scikit-learn, an
optional dependency (`tsne`), and is drawn with `plot_points`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from arch2vec_jax import plotting
from arch2vec_jax.search.trace_plots import plot_regret_curves

__all__ = [
  "pca",
  "plot_distance_vs_edit",
  "plot_points",
  "plot_predictive",
  "plot_pretrain_curves",
  "plot_projection",
  "plot_protocol",
  "plot_protocol_scatter",
  "plot_regret_cdf",
  "plot_regret_curves",
]


_plt = plotting.pyplot


def _save(fig, path: str | os.PathLike) -> None:
  plotting.save_png(fig, path, dpi=110)


def pca(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
  """(projection [N, k], explained variance ratio [k]) of x [N, D] by SVD of the centred data."""
  x = np.asarray(x, np.float64)
  xc = x - x.mean(0)
  _, s, vt = np.linalg.svd(xc, full_matrices=False)
  var = s**2
  return xc @ vt[:k].T, var[:k] / max(var.sum(), 1e-300)


def plot_projection(
  path, embeddings: np.ndarray, accuracy: np.ndarray, title: str, vmin: float | None = None
) -> None:
  """Scatter of the 2-D PCA projection coloured by accuracy (percent); best cells drawn last."""
  plt = _plt()
  proj, ratio = pca(embeddings)
  order = np.argsort(accuracy)
  fig, ax = plt.subplots(figsize=(5.6, 4.8))
  sc = ax.scatter(
    proj[order, 0],
    proj[order, 1],
    c=np.asarray(accuracy)[order],
    s=2,
    cmap="viridis",
    vmin=vmin if vmin is not None else np.percentile(accuracy, 5),
    rasterized=True,
  )
  fig.colorbar(sc, ax=ax, label="validation accuracy (%)")
  ax.set_xlabel(f"PC1 ({100 * ratio[0]:.0f}% var.)")
  ax.set_ylabel(f"PC2 ({100 * ratio[1]:.0f}% var.)")
  ax.set_title(title, fontsize=10)
  _save(fig, path)


def plot_points(
  path,
  points: np.ndarray,
  accuracy: np.ndarray,
  title: str,
  xlabel: str,
  ylabel: str,
  vmin: float | None = None,
) -> None:
  """Scatter of a 2-D map points [N, 2] coloured by accuracy [N] (percent); best cells drawn last."""
  plt = _plt()
  points, accuracy = np.asarray(points), np.asarray(accuracy)
  order = np.argsort(accuracy)
  fig, ax = plt.subplots(figsize=(5.6, 4.8))
  sc = ax.scatter(
    points[order, 0],
    points[order, 1],
    c=accuracy[order],
    s=2,
    cmap="viridis",
    vmin=vmin if vmin is not None else np.percentile(accuracy, 5),
    rasterized=True,
  )
  fig.colorbar(sc, ax=ax, label="validation accuracy (%)")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  _save(fig, path)


def plot_distance_vs_edit(path, curves: dict[str, dict[str, Any]], title: str) -> None:
  """Mean L2 distance (+- std band) against edit distance, one line per embedding (`distance_by_edit` outputs).

  Each curve is normalised by its mean at the largest edit distance (embeddings have different
  scales); the raw means are in the JSON.
  """
  plt = _plt()
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for name, c in curves.items():
    e, m, s = np.asarray(c["edit"]), np.asarray(c["mean"]), np.asarray(c["std"])
    (line,) = axes[0].plot(e, m / m[-1], marker="o", label=name)
    axes[0].fill_between(
      e, (m - s) / m[-1], (m + s) / m[-1], color=line.get_color(), alpha=0.15, lw=0
    )
    if "gap_mean" in c:
      axes[1].plot(e, c["gap_mean"], marker="o", label=name, color=line.get_color())
  axes[0].set_xlabel("graph edit distance")
  axes[0].set_ylabel("mean L2 distance / its value at the largest edit distance")
  axes[1].set_xlabel("graph edit distance")
  axes[1].set_ylabel("mean |accuracy difference| (%)")
  for ax in axes:
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  _save(fig, path)


def plot_regret_cdf(path, final_regret: dict[str, np.ndarray], title: str) -> None:
  """Empirical CDF over seeds of the final regret (percent), one step line per method."""
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 4.2))
  for name, r in final_regret.items():
    r = np.sort(np.asarray(r, np.float64))
    ax.step(r, np.arange(1, len(r) + 1) / len(r), where="post", label=name)
  ax.set_xlabel("final regret (%)")
  ax.set_ylabel("fraction of seeds")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  _save(fig, path)


def plot_pretrain_curves(path, metrics: dict[str, Any], title: str) -> None:
  """Loss (left) and held-out reconstruction / validity / uniqueness in % (right) per epoch."""
  plt = _plt()
  epochs = metrics["epochs"]
  e = [r["epoch"] for r in epochs]
  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  axes[0].plot(e, [r["loss"] for r in epochs], marker="o", label="loss")
  axes[0].set_yscale("log")
  axes[0].set_ylabel("training loss")
  for key, label in (
    ("exact_acc", "reconstruction (exact)"),
    ("validity", "validity"),
    ("validity_strict", "validity (strict)"),
    ("uniqueness", "uniqueness"),
  ):
    if all(key in r for r in epochs):
      axes[1].plot(e, [100 * r[key] for r in epochs], marker="o", label=label)
  axes[1].set_ylabel("%")
  for ax in axes:
    ax.set_xlabel("epoch")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  fig.suptitle(title, fontsize=10)
  _save(fig, path)


def plot_predictive(path, rows: list[dict[str, Any]], metric: str, title: str) -> None:
  """Held-out `metric` (mean +- std over splits) against training-set size; one line per (encoding, model).

  rows: `predictive.summarize` rows with keys encoding, model, train_size, <metric>_mean, <metric>_std.
  """
  plt = _plt()
  fig, ax = plt.subplots(figsize=(6, 4.2))
  keys = sorted({(r["encoding"], r["model"]) for r in rows})
  for enc, mod in keys:
    rs = sorted(
      (r for r in rows if r["encoding"] == enc and r["model"] == mod), key=lambda r: r["train_size"]
    )
    x = [r["train_size"] for r in rs]
    ax.errorbar(
      x,
      [r[f"{metric}_mean"] for r in rs],
      yerr=[r[f"{metric}_std"] for r in rs],
      marker="o",
      capsize=3,
      ls="-" if mod == "gp" else "--",
      label=f"{enc} / {mod}",
    )
  ax.set_xscale("log")
  ax.set_xlabel("training cells")
  ax.set_ylabel(metric)
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  _save(fig, path)


def plot_protocol(path, rows: list[dict[str, Any]], title: str, threshold: float) -> None:
  """The DNGO protocol's held-out metrics (mean +- std over seeds) against training size.

  Top row: all held-out cells; bottom row: those above `threshold`. One line per
  (encoding, surrogate); rows are `dngo_predictive.summarize_protocol` output.
  """
  plt = _plt()
  metrics = ("rmse", "pearson", "spearman", "kendall")
  fig, axes = plt.subplots(2, 4, figsize=(16, 7))
  keys = sorted({(r["encoding"], r["surrogate"]) for r in rows})
  for col, m in enumerate(metrics):
    for row, suffix in enumerate(("", "_f")):
      ax = axes[row, col]
      for enc, sur in keys:
        rs = sorted(
          (r for r in rows if (r["encoding"], r["surrogate"]) == (enc, sur)),
          key=lambda r: r["train_size"],
        )
        ax.errorbar(
          [r["train_size"] for r in rs],
          [r[f"{m}{suffix}_mean"] for r in rs],
          yerr=[r[f"{m}{suffix}_std"] for r in rs],
          marker="o",
          capsize=3,
          ls="-" if sur in ("dngo", "joint") else "--",
          label=f"{enc} / {sur}",
        )
      ax.set_xscale("log")
      ax.set_xlabel("training cells")
      ax.set_ylabel(m + (f" (true acc > {threshold:g})" if suffix else " (all held-out)"))
      ax.grid(alpha=0.3)
  axes[0, 0].legend(fontsize=7)
  fig.suptitle(title, fontsize=10)
  _save(fig, path)


def plot_protocol_scatter(
  path, scatter: dict[str, dict[str, Sequence[float]]], title: str, threshold: float
) -> None:
  """Predicted against true accuracy (percent) of the held-out cells, one panel per entry of `scatter`.

  scatter: '<encoding>/<surrogate>' -> {'true' [M], 'pred' [M]} (fractions); cells at or below
  `threshold` are drawn grey (the paper plots only those above it).
  """
  plt = _plt()
  names = list(scatter)
  fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), squeeze=False)
  for ax, name in zip(axes[0], names):
    t, p = 100 * np.asarray(scatter[name]["true"]), 100 * np.asarray(scatter[name]["pred"])
    hi = t > 100 * threshold
    ax.scatter(t[~hi], p[~hi], s=1, c="0.75", rasterized=True)
    ax.scatter(t[hi], p[hi], s=1, c="tab:blue", rasterized=True)
    lo_lim = 100 * threshold - 5
    ax.plot([lo_lim, 100], [lo_lim, 100], "k--", lw=0.8)
    ax.set_xlim(lo_lim, max(t.max(), 100 * threshold) + 1)
    ax.set_ylim(lo_lim, max(t.max(), 100 * threshold) + 1)
    ax.set_xlabel("true accuracy (%)")
    ax.set_ylabel("predicted (%)")
    ax.set_title(name, fontsize=9)
    ax.grid(alpha=0.3)
  fig.suptitle(title, fontsize=10)
  _save(fig, path)
