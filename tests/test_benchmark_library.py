"""launch/benchmark_library.py's ask/tell part runs and reports what it measured (no timing asserted)."""

import pathlib

import repo_scripts

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_ask_tell_overhead_part_runs(shared_data):
  module = repo_scripts.load("launch/benchmark_library.py", "benchmark_library", cache=False)
  out = module.bench_ask_tell(str(shared_data / "nb201_accuracies.csv"), steps_at=20, window=3)
  for method in ("rl", "bo"):
    r = out[method]
    assert r["told_cells"] == 20 and r["eager_step_ms"] > 0 and r["compiled_step_ms"] > 0
    assert abs(r["overhead_ms"] - (r["eager_step_ms"] - r["compiled_step_ms"])) < 1e-9
