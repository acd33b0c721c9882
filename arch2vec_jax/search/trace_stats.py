"""Statistics over search traces: values at query counts and at costs, mean / std / stderr per budget, regret.

A trace holds [S, T] arrays (seeds x query slots; `env.Trace` or the dict of a
`traces/<method>.npz` file): best_valid, best_test, cost (cumulative seconds),
num_queries (cumulative), mask (slot within the budget), ...

  value_at_queries / values_at_queries  `field` after the first q queries: [S] / [S, G]
  value_at_cost                         `field` after the last query within a time: [S]
  carried_values                        `field` per slot, carried past the budget: [S, T]
  summarize                             mean +- std (and regret) at reported budgets
  curve                                 the mean curve over seeds, +- standard error
  regret_curve, final_regret            regret per slot (95% band) and per seed at the end
  query_points, cost_points             the budgets a summary reports

Every statistic over seeds leaves out the seeds without a value (NaN: a time
before the seed's first query).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from arch2vec_jax.search import env as env_lib

__all__ = [
  "carried_values",
  "cost_points",
  "curve",
  "final_regret",
  "mean_std",
  "query_points",
  "regret_curve",
  "seed_stats",
  "summarize",
  "summarize_final",
  "value_at_cost",
  "value_at_queries",
  "values_at_queries",
]


def query_points(budget: env_lib.Budget) -> list[int]:
  """Query counts to report: 10, 25, 50, 75 and 100% of the budget's queries."""
  t = int(budget.max_queries)
  return sorted({max(1, round(t * f)) for f in (0.1, 0.25, 0.5, 0.75, 1.0)})


def cost_points(budget: env_lib.Budget) -> list[float]:
  """Time budgets to report (seconds): 10, 25, 50, 75 and 100% of a time budget; none for a query budget."""
  if not budget.is_time:
    return []
  return [float(budget.max_cost) * f for f in (0.1, 0.25, 0.5, 0.75, 1.0)]


def value_at_queries(trace: env_lib.Trace, queries: int, field: str = "best_test") -> np.ndarray:
  """Per seed, `field` after the first `queries` queries (or after the last one made): [S]."""
  made = np.asarray(trace.num_queries)  # [S, T], non-decreasing
  vals = np.asarray(getattr(trace, field))
  idx = np.argmax(made >= queries, axis=1)
  idx = np.where(made[:, -1] >= queries, idx, made.shape[1] - 1)
  return vals[np.arange(len(vals)), idx]


def values_at_queries(trace: env_lib.Trace, grid: Sequence[int], field: str) -> np.ndarray:
  """[S, G]: `field` after the first q queries for each q of `grid` (after the last query if fewer were made)."""
  made = np.asarray(trace.num_queries)
  vals = np.asarray(getattr(trace, field))
  q = np.asarray(grid, np.int64)
  out = np.empty((made.shape[0], len(q)), vals.dtype)
  for s in range(made.shape[0]):
    idx = np.minimum(np.searchsorted(made[s], q, side="left"), made.shape[1] - 1)
    out[s] = vals[s, idx]
  return out


def value_at_cost(trace: env_lib.Trace, max_cost: float, field: str = "best_test") -> np.ndarray:
  """Per seed, `field` after the last query whose cumulative cost is <= `max_cost`: [S].

  NaN for a seed whose first query already costs more than `max_cost`.
  """
  mask = np.asarray(trace.mask)
  done = mask & (np.asarray(trace.cost) <= max_cost)
  vals = np.asarray(getattr(trace, field), np.float64)
  last = np.where(done.any(axis=1), done.shape[1] - 1 - np.argmax(done[:, ::-1], axis=1), -1)
  return np.where(last >= 0, vals[np.arange(len(vals)), np.maximum(last, 0)], np.nan)


def carried_values(trace: dict[str, np.ndarray], field: str) -> np.ndarray:
  """[S, T] float64 values of `field`, the last in-budget value carried past the budget (mask False).

  Args:
    trace: a dict with `field` and 'mask', [S, T] each (a run that stopped keeps its best).
  """
  v = np.asarray(trace[field], np.float64)
  mask = np.asarray(trace["mask"], bool)
  v = np.where(mask, v, np.nan)
  idx = np.where(mask, np.arange(v.shape[1])[None, :], 0)
  np.maximum.accumulate(idx, axis=1, out=idx)
  return np.take_along_axis(v, idx, axis=1)


def mean_std(x: np.ndarray, scale: float = 1.0) -> dict[str, float]:
  """{'mean', 'std', 'n'} of the finite values of x [S] times `scale` (NaN mean and std without any)."""
  x = np.asarray(x, np.float64) * scale
  ok = np.isfinite(x)
  return {
    "mean": float(np.mean(x[ok])) if ok.any() else math.nan,
    "std": float(np.std(x[ok])) if ok.any() else math.nan,
    "n": int(ok.sum()),
  }


def seed_stats(vals: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Per column of vals [S, G], over the seeds with a finite value: (mean, std, stderr, n), [G] each.

  NaN mean and std (and stderr) where no seed has a value.
  """
  vals = np.asarray(vals, np.float64)
  ok = np.isfinite(vals)
  n = ok.sum(axis=0)
  filled = np.where(ok, vals, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):  # NaN where no seed has a value
    mean = filled.sum(axis=0) / n
    std = np.sqrt((np.where(ok, vals - mean, 0.0) ** 2).sum(axis=0) / n)
  return mean, std, std / np.sqrt(np.maximum(n, 1)), n


def summarize(
  trace: env_lib.Trace,
  at_queries: Sequence[int] = (),
  at_cost: Sequence[float] = (),
  field: str = "best_test",
  optimum: float | None = None,
  scale: float = 100.0,
) -> dict[str, Any]:
  """Mean and std over seeds of `field` at several budgets (and its regret to `optimum`).

  Args:
    trace: [S, T] fields.
    at_queries: query budgets to report.
    at_cost: time budgets (seconds) to report (`value_at_cost`).
    field: 'best_test' (the test accuracy of the best-validation cell) or
      'best_valid'.
    optimum: the table's best value of `field`'s kind, for the regret.
    scale: 100 reports percent.

  Returns:
    {'field', 'seeds', 'queries': {q: {mean, std, n[, regret_mean, regret_std]}},
     'cost': {t: ...}, 'final': ..., 'queries_made': {mean, min, max}, 'cost_spent': ...}.
  """
  out: dict[str, Any] = {"field": field, "seeds": int(np.asarray(trace.mask).shape[0])}

  def entry(v):
    e = mean_std(v, scale)
    if optimum is not None:
      r = mean_std(optimum - np.asarray(v, np.float64), scale)
      e.update(regret_mean=r["mean"], regret_std=r["std"])
    return e

  out["queries"] = {str(int(q)): entry(value_at_queries(trace, int(q), field)) for q in at_queries}
  out["cost"] = {f"{float(t):g}": entry(value_at_cost(trace, float(t), field)) for t in at_cost}
  out["final"] = entry(np.asarray(getattr(trace, field))[:, -1])
  made = np.asarray(trace.num_queries)[:, -1]
  out["queries_made"] = {"mean": float(made.mean()), "min": int(made.min()), "max": int(made.max())}
  spent = np.asarray(trace.cost)[:, -1]
  out["cost_spent"] = {
    "mean": float(spent.mean()),
    "min": float(spent.min()),
    "max": float(spent.max()),
  }
  return out


def curve(
  trace: env_lib.Trace,
  field: str = "best_test",
  x: str = "queries",
  grid: Sequence[float] | None = None,
  optimum: float | None = None,
  scale: float = 100.0,
) -> dict[str, list[float]]:
  """The mean search curve over seeds: `field` after each query count (or time).

  Args:
    trace: [S, T] fields.
    field: 'best_test' or 'best_valid'.
    x: 'queries' (grid default 1..T) or 'cost' (grid default 100 log-spaced
      times between the cheapest first query and the largest spend).
    grid: the x values.
    optimum: if given, the regret (optimum - value) is added.
    scale: 100 for percent.

  Returns:
    {'x', 'mean', 'std', 'stderr', 'n'[, 'regret_mean', 'regret_stderr']}
    (lists; a time point before a seed's first query leaves that seed out).
  """
  if x == "queries":
    grid = list(range(1, np.asarray(trace.mask).shape[1] + 1)) if grid is None else list(grid)
    vals = values_at_queries(trace, grid, field)
  elif x == "cost":
    if grid is None:
      cost = np.asarray(trace.cost, np.float64)
      lo = float(np.min(np.where(np.asarray(trace.mask), cost, np.inf)))
      hi = float(np.max(cost))
      grid = np.geomspace(max(lo, 1e-9), max(hi, lo * 1.0001, 1e-9), 100).tolist()
    vals = np.stack([value_at_cost(trace, float(t), field) for t in grid], axis=1)
  else:
    raise ValueError(f"x must be 'queries' or 'cost', got {x!r}")
  mean, std, stderr, n = seed_stats(np.asarray(vals, np.float64) * scale)
  out = {
    "x": [float(g) for g in grid],
    "mean": mean.tolist(),
    "std": std.tolist(),
    "stderr": stderr.tolist(),
    "n": n.tolist(),
  }
  if optimum is not None:
    out["regret_mean"] = (optimum * scale - mean).tolist()
    out["regret_stderr"] = out["stderr"]
  return out


def regret_curve(
  trace: dict[str, np.ndarray], optimum: float, field: str = "best_test", scale: float = 100.0
) -> dict[str, list[float]]:
  """Mean regret per query slot (1..T) over seeds with a 95% normal confidence band.

  Args:
    trace: [S, T] fields (a dict, `carried_values`); optimum: the best value of
      `field`'s kind (fraction).
    field: 'best_test' or 'best_valid'; scale: 100 for percent.

  Returns:
    {'x', 'mean', 'lo', 'hi', 'n'} lists of length T.
  """
  r = (optimum - carried_values(trace, field)) * scale
  mean, _, se, n = seed_stats(r)
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
  """[S] regret of each seed at its last in-budget query (percent with `scale` 100)."""
  v = carried_values(trace, field)[:, -1]
  return (optimum - v) * scale


def summarize_final(final: dict[str, np.ndarray]) -> dict[str, Any]:
  """method -> {'mean', 'std', 'median', 'n'} of the final regrets (method -> [S])."""
  return {
    m: {
      "mean": float(np.mean(r)),
      "std": float(np.std(r)),
      "median": float(np.median(r)),
      "n": len(r),
    }
    for m, r in final.items()
  }
