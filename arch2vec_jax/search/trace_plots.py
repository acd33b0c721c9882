"""Pictures of search traces: accuracy and regret curves per method, mean with a band over seeds.

  plot_curves         accuracy (left) and regret (right, log) +- standard error (`trace_stats.curve`)
  plot_regret_curves  regret with a 95% confidence band (`trace_stats.regret_curve`)

PNGs via matplotlib's Agg backend, written atomically (`plotting.save_png`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from arch2vec_jax import plotting

__all__ = ["LABELS", "plot_curves", "plot_regret_curves"]

# Legend labels of the search methods.
LABELS = {
  "rl": "arch2vec-RL",
  "bo": "arch2vec-BO",
  "rs": "random search",
  "re": "regularized evolution",
  "gd": "arch2vec-GD",
  "sbo": "supervised-BO",
  "srl": "supervised-RL",
}


def _stderr_band(c):
  m, se = np.asarray(c["mean"]), np.asarray(c["stderr"])
  return m - se, m + se


def _regret_band(c):
  r, se = np.asarray(c["regret_mean"]), np.asarray(c["regret_stderr"])
  return np.maximum(r - se, 1e-4), r + se


def plot_curves(
  path: str | os.PathLike,
  curves: dict[str, dict[str, list[float]]],
  title: str,
  xlabel: str,
  ylabel: str,
  optimum: float | None = None,
  oracle: float | None = None,
  log_x: bool = False,
) -> None:
  """Accuracy (left) and regret (right, log scale) curves of several methods, mean +- standard error band (PNG, atomic).

  Args:
    path: the PNG.
    curves: method -> `trace_stats.curve(...)` output (with regret if `optimum` is given).
    title, xlabel, ylabel: labels (ylabel of the accuracy panel).
    optimum: the table's best (percent), drawn as a line; enables the regret panel.
    oracle: the test accuracy of the best-validation cell (percent), drawn dashed.
    log_x: log-scaled x axis (time budgets).
  """
  plt = plotting.pyplot()
  panels = 2 if optimum is not None else 1
  fig, axes = plt.subplots(1, panels, figsize=(6.0 * panels, 4.2), squeeze=False)
  ax = axes[0, 0]
  plotting.band_lines(ax, curves, band=_stderr_band, labels=LABELS)
  if optimum is not None:
    ax.axhline(optimum, color="k", lw=0.8, ls=":", label=f"table best {optimum:.2f}")
  if oracle is not None and np.isfinite(oracle):
    ax.axhline(oracle, color="k", lw=0.8, ls="--", label=f"best-validation cell {oracle:.2f}")
  means = [v for c in curves.values() for v in c["mean"] if np.isfinite(v)]
  if means:  # zoom on the interesting part: from the median of the curves' starts to the top
    lo = float(
      np.nanmedian(
        [c["mean"][min(len(c["mean"]) - 1, len(c["mean"]) // 10)] for c in curves.values()]
      )
    )
    hi = max(means + ([optimum] if optimum is not None else []))
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9))
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  ax.set_title(title, fontsize=10)
  ax.legend(fontsize=8, loc="lower right")
  ax.grid(alpha=0.3)
  if log_x:
    ax.set_xscale("log")
  if panels == 2:
    ax = axes[0, 1]
    plotting.band_lines(ax, curves, y="regret_mean", band=_regret_band, labels=LABELS)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("regret (table best - value), % points")
    ax.set_title("regret, mean +- standard error over seeds", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    if log_x:
      ax.set_xscale("log")
    ax.legend(fontsize=8, loc="upper right")
  fig.tight_layout()
  plotting.save_png(fig, path, dpi=120, tight=False)


def plot_regret_curves(
  path: str | os.PathLike,
  curves: dict[str, dict[str, Sequence[float]]],
  title: str,
  xlabel: str = "queries",
  log_y: bool = True,
) -> None:
  """Mean regret per x with a 95% confidence band (mean +- 1.96 standard errors), one line per method.

  curves: method -> {'x', 'mean', 'lo', 'hi'} (`trace_stats.regret_curve`).
  """
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4.2))
  plotting.band_lines(ax, curves)
  if log_y and all(np.all(np.asarray(c["mean"]) > 0) for c in curves.values()):
    ax.set_yscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel("regret (%)")
  ax.set_title(title, fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  plotting.save_png(fig, path)
