"""Regret curves and final-regret distributions from search traces (`search.trace_io.save_trace` files).

A trace file `traces/<method>.npz` holds [S, T] arrays (seeds x query slots):
best_valid, best_test, cost, num_queries, cell, reward, mask. Regret after
query t = optimum - best_<field>[:, t] (percent). The statistics are
`search.trace_stats`'s (`regret_curve`, `final_regret`, `summarize_final`,
re-exported here); this module reads the folders.
"""

from __future__ import annotations

import glob
import os

import numpy as np

from arch2vec_jax.search import trace_io
from arch2vec_jax.search.trace_stats import final_regret, regret_curve, summarize_final

__all__ = ["final_regret", "load_traces", "regret_curve", "summarize_final"]


def load_traces(folder: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
  """method -> {field: [S, T] array} for every trace in `<folder>/traces/*.npz` (or `<folder>/*.npz`).

  Files are read with `search.trace_io.load_trace`; other `.npz` files are skipped.
  """
  folder = os.fspath(folder)
  paths = sorted(glob.glob(os.path.join(folder, "traces", "*.npz"))) or sorted(
    glob.glob(os.path.join(folder, "*.npz"))
  )
  out = {}
  for p in paths:
    try:
      trace, _ = trace_io.load_trace(p)
    except ValueError:  # not a search trace
      continue
    out[os.path.splitext(os.path.basename(p))[0]] = {
      k: np.asarray(v) for k, v in trace._asdict().items()
    }
  return out
