"""Regret curves and final-regret distributions from search traces (`search.experiment.save_trace` files).

A trace file `traces/<method>.npz` holds [S, T] arrays (seeds x query slots):
best_valid, best_test, cost, num_queries, cell, reward, mask. Regret after
query t = optimum - best_<field>[:, t] (percent).
"""

from __future__ import annotations

import glob
import os
from typing import Any

import numpy as np

from arch2vec_jax.search import experiment

__all__ = ["final_regret", "load_traces", "regret_curve"]


def load_traces(folder: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
  """method -> {field: [S, T] array} for every trace in `<folder>/traces/*.npz` (or `<folder>/*.npz`).

  Files are read with `search.experiment.load_trace`; other `.npz` files are skipped.
  """
  folder = os.fspath(folder)
  paths = sorted(glob.glob(os.path.join(folder, "traces", "*.npz"))) or sorted(
    glob.glob(os.path.join(folder, "*.npz"))
  )
  out = {}
  for p in paths:
    try:
      trace, _ = experiment.load_trace(p)
    except ValueError:  # not a search trace
      continue
    out[os.path.splitext(os.path.basename(p))[0]] = {
      k: np.asarray(v) for k, v in trace._asdict().items()
    }
  return out


def _values(trace: dict[str, np.ndarray], field: str) -> np.ndarray:
  """[S, T] float64 values of `field`, carried forward past the budget (mask False)."""
  v = np.asarray(trace[field], np.float64)
  mask = np.asarray(trace["mask"], bool)
  v = np.where(mask, v, np.nan)
  # Forward-fill the last in-budget value (a run that stopped keeps its best).
  idx = np.where(mask, np.arange(v.shape[1])[None, :], 0)
  np.maximum.accumulate(idx, axis=1, out=idx)
  return np.take_along_axis(v, idx, axis=1)


def regret_curve(
  trace: dict[str, np.ndarray], optimum: float, field: str = "best_test", scale: float = 100.0
) -> dict[str, list[float]]:
  """Mean regret per query (1..T) over seeds with a 95% normal confidence band.

  Args:
    trace: [S, T] fields; optimum: the best value of `field`'s kind (fraction).
    field: 'best_test' or 'best_valid'; scale: 100 for percent.

  Returns:
    {'x', 'mean', 'lo', 'hi', 'n'} lists of length T.
  """
  r = (optimum - _values(trace, field)) * scale
  n = np.isfinite(r).sum(0)
  with np.errstate(invalid="ignore"):
    mean = np.nanmean(r, 0)
    se = np.nanstd(r, 0) / np.sqrt(np.maximum(n, 1))
  return {
    "x": list(range(1, r.shape[1] + 1)),
    "mean": mean.tolist(),
    "lo": (mean - 1.96 * se).tolist(),
    "hi": (mean + 1.96 * se).tolist(),
    "n": n.tolist(),
  }


def final_regret(
  trace: dict[str, np.ndarray], optimum: float, field: str = "best_test", scale: float = 100.0
) -> np.ndarray:
  """[S] regret of each seed at its last in-budget query (percent)."""
  v = _values(trace, field)[:, -1]
  return (optimum - v) * scale


def summarize_final(final: dict[str, np.ndarray]) -> dict[str, Any]:
  """method -> {'mean', 'std', 'median', 'n'} of the final regrets."""
  return {
    m: {
      "mean": float(np.mean(r)),
      "std": float(np.std(r)),
      "median": float(np.median(r)),
      "n": len(r),
    }
    for m, r in final.items()
  }


__all__.append("summarize_final")
