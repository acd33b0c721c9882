"""search.trace_stats (values at budgets, curves, regret) and search.report (summary merging, the table)."""

import numpy as np
import pytest

from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search import report, trace_stats


def _trace(seeds=5, slots=12, seed=0, repeats=False):
  """An [S, T] trace; with `repeats`, some slots are free repeats (num_queries does not grow)."""
  rng = np.random.default_rng(seed)
  best = np.maximum.accumulate(rng.uniform(0.8, 0.94, (seeds, slots)), axis=1)
  step = rng.integers(0, 2, (seeds, slots)) if repeats else np.ones((seeds, slots), np.int64)
  step[:, 0] = 1
  fields = {
    "best_valid": best,
    "best_test": best - 0.01,
    "num_queries": np.cumsum(step, 1).astype(np.int32),
    "cost": np.cumsum(rng.uniform(1.0, 3.0, (seeds, slots)), 1),
    "mask": np.ones((seeds, slots), bool),
  }
  rest = {f: np.zeros((seeds, slots)) for f in env_lib.Trace._fields if f not in fields}
  return env_lib.Trace(**fields, **rest)


def test_values_at_queries_is_value_at_queries_per_point():
  trace = _trace(repeats=True)
  grid = [1, 2, 5, 9, 12, 40]
  got = trace_stats.values_at_queries(trace, grid, "best_test")
  for j, q in enumerate(grid):
    np.testing.assert_array_equal(got[:, j], trace_stats.value_at_queries(trace, q, "best_test"))


def test_value_at_cost_before_the_first_query_is_nan():
  trace = _trace()
  first = np.asarray(trace.cost)[:, 0]
  v = trace_stats.value_at_cost(trace, float(first.min()) - 1e-3, "best_valid")
  assert np.all(np.isnan(v))
  v = trace_stats.value_at_cost(trace, float(np.asarray(trace.cost).max()), "best_valid")
  np.testing.assert_array_equal(v, np.asarray(trace.best_valid)[:, -1])


def test_seed_stats_leave_out_missing_values():
  vals = np.array([[1.0, np.nan], [3.0, 2.0], [np.nan, np.nan]])
  mean, std, stderr, n = trace_stats.seed_stats(vals)
  np.testing.assert_array_equal(n, [2, 1])
  np.testing.assert_allclose(mean, [2.0, 2.0])
  np.testing.assert_allclose(std, [1.0, 0.0])
  np.testing.assert_allclose(stderr, [1.0 / np.sqrt(2.0), 0.0])
  assert trace_stats.mean_std(np.array([np.nan]), 100.0)["n"] == 0


def test_curve_and_regret_curve_agree_when_every_slot_is_a_query():
  trace = _trace()
  c = trace_stats.curve(trace, "best_test", optimum=0.95)
  r = trace_stats.regret_curve(trace._asdict(), 0.95, "best_test")
  np.testing.assert_allclose(c["regret_mean"], r["mean"], atol=1e-9)
  np.testing.assert_allclose(
    np.asarray(r["hi"]) - np.asarray(r["mean"]), 1.96 * np.asarray(c["stderr"]), atol=1e-9
  )
  final = trace_stats.final_regret(trace._asdict(), 0.95)
  s = trace_stats.summarize(trace, at_queries=[12], optimum=0.95)
  assert s["final"]["regret_mean"] == pytest.approx(float(np.mean(final)))
  assert s["queries"]["12"]["mean"] == pytest.approx(c["mean"][-1])


def test_budget_points():
  assert trace_stats.query_points(env_lib.Budget(100)) == [10, 25, 50, 75, 100]
  assert trace_stats.cost_points(env_lib.Budget(100)) == []
  assert trace_stats.cost_points(env_lib.Budget(50, 1000.0)) == [100.0, 250.0, 500.0, 750.0, 1000.0]


def _summary(**changes):
  s = {
    "command": "new",
    "space": "nb201",
    "dataset": "cifar10",
    "field": "best_test",
    "budget": {"queries": 10, "time_s": None},
    "seed": 0,
    "optimum": 94.37,
    "seeds": 4,
    "methods": {},
  }
  s.update(changes)
  return s


def test_merge_previous_keeps_other_methods_and_names_a_mismatch():
  old = _summary(
    command="old", paper={"rs": 93.7}, methods={"rs": {"seeds": 4}, "bo": {"seeds": 2}}
  )
  new = _summary()
  kept = report.merge_previous(new, old, ("bo",))
  assert kept == ["rs"] and new["methods"] == {"rs": {"seeds": 4}}
  assert new["commands"] == ["old", "new"] and new["paper"] == {"rs": 93.7}
  with pytest.raises(ValueError, match="its seed is 0, this run's is 1"):
    report.merge_previous(_summary(seed=1), old, ("bo",), where="x/summary.json")


def test_format_summary_lists_every_method():
  entry = {"mean": 93.5, "std": 0.25, "n": 4}
  s = _summary(
    methods={
      m: {"queries": {"10": entry}, "time": {"compile_s": 1.0, "run_s": 0.5}, "seeds": 4}
      for m in ("rs", "re")
    },
    paper={"rs": 93.7},
    oracle_best_valid_cell=94.37,
  )
  text = report.format_summary(s)
  assert "93.50 +- 0.25" in text and "93.70" in text and text.count("\n") == 4
