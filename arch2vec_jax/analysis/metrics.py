"""Regression and rank metrics of predicted against true accuracies (NumPy, exact, no SciPy).

  rmse(y, p)            root mean squared error
  pearson(y, p)         Pearson's r
  spearman(y, p)        Spearman's rho: Pearson's r of the ranks, ties as average ranks
  kendall_tau_b(y, p)   Kendall's tau-b (ties in either variable corrected)

Inputs are 1-D arrays of equal length [N]; constant inputs give NaN correlations.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kendall_tau_b", "pearson", "rankdata", "regression_metrics", "rmse", "spearman"]


def _pair(y, p) -> tuple[np.ndarray, np.ndarray]:
  y, p = np.asarray(y, np.float64).reshape(-1), np.asarray(p, np.float64).reshape(-1)
  if y.shape != p.shape:
    raise ValueError(f"shape mismatch: {y.shape} vs {p.shape}")
  return y, p


def rmse(y, p) -> float:
  """sqrt(mean((y - p)^2)) over [N]."""
  y, p = _pair(y, p)
  return float(np.sqrt(np.mean(np.square(y - p)))) if len(y) else float("nan")


def pearson(y, p) -> float:
  """Pearson's r of [N] and [N]; NaN if either is constant."""
  y, p = _pair(y, p)
  dy, dp = y - y.mean(), p - p.mean()
  den = np.sqrt(np.sum(dy * dy) * np.sum(dp * dp))
  return float(np.sum(dy * dp) / den) if den > 0 else float("nan")


def rankdata(x) -> np.ndarray:
  """Ranks 1..N of [N] values, tied values sharing their average rank (float64 [N])."""
  x = np.asarray(x, np.float64).reshape(-1)
  order = np.argsort(x, kind="mergesort")
  xs = x[order]
  # Runs of equal values: each gets the mean of the positions it spans.
  starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
  ends = np.r_[starts[1:], len(xs)]
  avg = (starts + ends + 1) / 2.0  # mean of 1-based positions start+1 .. end
  ranks = np.empty(len(x), np.float64)
  ranks[order] = np.repeat(avg, ends - starts)
  return ranks


def spearman(y, p) -> float:
  """Spearman's rho: Pearson's r of the average ranks."""
  y, p = _pair(y, p)
  return pearson(rankdata(y), rankdata(p))


def _count_ties(sorted_x: np.ndarray) -> int:
  """Pairs tied in a sorted array: sum over runs of t (t - 1) / 2."""
  if len(sorted_x) == 0:
    return 0
  starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
  t = np.diff(np.r_[starts, len(sorted_x)])
  return int(np.sum(t * (t - 1) // 2))


def _count_inversions(a: np.ndarray) -> int:
  """Pairs i < j with a[i] > a[j] (strictly), vectorised by levels (O(N log^2 N)).

  A pair i < j is counted at the one level w (a power of two) where i and j lie
  in the same block of 2w positions, i in its left half and j in its right half.
  At each level one lexsort orders every block by value (left elements first
  among ties), and a right element's count is the left elements after it.
  """
  a = np.asarray(a, np.float64).reshape(-1)
  n = len(a)
  pos = np.arange(n)
  inv, w = 0, 1
  while w < n:
    block, is_left = pos // (2 * w), (pos // w) % 2 == 0
    order = np.lexsort((~is_left, a, block))  # block, then value, then left before right
    left_sorted = is_left[order].astype(np.int64)
    blk = block[order]
    # Left elements of the block at or before each position.
    cum = np.cumsum(left_sorted)
    first = np.searchsorted(blk, blk, side="left")
    before = cum - np.where(first > 0, cum[first - 1], 0)
    left_total = np.bincount(block, weights=is_left, minlength=block[-1] + 1).astype(np.int64)
    right = ~is_left[order]
    inv += int(np.sum(left_total[blk[right]] - before[right]))
    w *= 2
  return inv


def kendall_tau_b(y, p) -> float:
  """Kendall's tau-b = (C - D) / sqrt((n0 - n1)(n0 - n2)), O(N log N) (Knight's algorithm).

  n0 = N(N-1)/2, n1 / n2 the pairs tied in y / in p. NaN if either is constant.
  """
  y, p = _pair(y, p)
  n = len(y)
  if n < 2:
    return float("nan")
  order = np.lexsort((p, y))  # by y, then p
  ys, ps = y[order], p[order]
  n0 = n * (n - 1) // 2
  n1 = _count_ties(ys)
  # Pairs tied in both y and p.
  both = np.r_[True, (ys[1:] != ys[:-1]) | (ps[1:] != ps[:-1])]
  starts = np.flatnonzero(both)
  t = np.diff(np.r_[starts, n])
  n3 = int(np.sum(t * (t - 1) // 2))
  # Discordant pairs: inversions of p in (y, p) order (ties in y are sorted by p, so add none).
  swaps = _count_inversions(ps)
  n2 = _count_ties(np.sort(ps))
  concordant_minus_discordant = n0 - n1 - n2 + n3 - 2 * swaps
  den = np.sqrt(float(n0 - n1) * float(n0 - n2))
  return float(concordant_minus_discordant / den) if den > 0 else float("nan")


def regression_metrics(y, p) -> dict[str, float]:
  """{'rmse', 'pearson', 'spearman', 'kendall'} of predictions p [N] against truth y [N]."""
  return {
    "rmse": rmse(y, p),
    "pearson": pearson(y, p),
    "spearman": spearman(y, p),
    "kendall": kendall_tau_b(y, p),
  }
