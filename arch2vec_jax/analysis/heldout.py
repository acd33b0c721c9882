"""Held-out cells: the cells an evaluation may use when some encoding was trained on labels.

An encoding fitted to the accuracies of `train_idx` (the supervised GIN) has seen
those cells' labels, so every comparison that scores it, and the encodings compared
with it, runs on the other cells only: `heldout_cells` gives them, and
`check_heldout` is the guard each evaluation calls on the cells it is about to use.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_heldout", "heldout_cells"]


def heldout_cells(num_cells: int, train_idx: np.ndarray | None) -> np.ndarray:
  """int64 [num_cells - len(train_idx)]: the sorted cells 0..num_cells-1 not in `train_idx` (all if None).

  Raises:
    ValueError: if `train_idx` has an index outside [0, num_cells) or leaves no cell.
  """
  if train_idx is None:
    return np.arange(num_cells, dtype=np.int64)
  train_idx = np.asarray(train_idx, np.int64).reshape(-1)
  if train_idx.size and (train_idx.min() < 0 or train_idx.max() >= num_cells):
    raise ValueError(
      f"training cells must be in [0, {num_cells}), got [{train_idx.min()}, {train_idx.max()}]"
    )
  keep = np.ones(num_cells, bool)
  keep[train_idx] = False
  if not keep.any():
    raise ValueError(f"all {num_cells} cells are training cells: nothing is held out")
  return np.flatnonzero(keep)


def check_heldout(
  eval_idx: np.ndarray, train_idx: np.ndarray | None, what: str = "evaluation"
) -> None:
  """Raises ValueError naming `what` and the first offending cell if any of `eval_idx` is in `train_idx`."""
  if train_idx is None:
    return
  both = np.intersect1d(np.asarray(eval_idx, np.int64), np.asarray(train_idx, np.int64))
  if both.size:
    raise ValueError(
      f"{what}: {both.size} evaluation cells are training cells of the supervised encoder "
      f"(first: cell {int(both[0])})"
    )
