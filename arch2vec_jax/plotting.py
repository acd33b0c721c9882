"""matplotlib on the Agg backend, PNGs written atomically, and mean +- band curves.

plt = pyplot()
fig, ax = plt.subplots()
band_lines(ax, {"rs": {"x": [...], "mean": [...], "lo": [...], "hi": [...]}})
save_png(fig, "curves.png")
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from arch2vec_jax import fileio

__all__ = ["band_lines", "pyplot", "save_png"]


def pyplot():
  """matplotlib.pyplot on the Agg backend (imported on first use: matplotlib is slow to import)."""
  import matplotlib  # pylint: disable=import-outside-toplevel

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

  return plt


def save_png(fig, path: str | os.PathLike, dpi: int = 110, tight: bool = True) -> None:
  """Writes the figure as a PNG (atomic: `fileio.atomic_write_bytes`) and closes it."""
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
  pyplot().close(fig)
  fileio.atomic_write_bytes(path, buf.getvalue())


def band_lines(
  ax,
  curves: Mapping[str, Mapping[str, Sequence[float]]],
  y: str = "mean",
  band: Callable[[Mapping[str, Any]], tuple[np.ndarray, np.ndarray]] | None = None,
  labels: Mapping[str, str] | None = None,
) -> None:
  """One line per curve, `c[y]` against `c['x']`, with a shaded band in the line's colour.

  Args:
    ax: the matplotlib axes.
    curves: name -> {'x' [G], y [G], ...}.
    y: the key of the line's values.
    band: c -> (low [G], high [G]); default (c['lo'], c['hi']).
    labels: name -> legend label (default the name).
  """
  for name, c in curves.items():
    xs, m = np.asarray(c["x"]), np.asarray(c[y])
    (line,) = ax.plot(xs, m, label=(labels or {}).get(name, name), lw=1.5)
    lo, hi = band(c) if band is not None else (np.asarray(c["lo"]), np.asarray(c["hi"]))
    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
