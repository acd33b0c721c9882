"""Times the search-space builders and writes the numbers as JSON.

  python launch/benchmark_spaces.py --out=results/benchmarks/spaces.json
  python launch/benchmark_spaces.py --parts=nb101 --out=/tmp/nb101.json

Measures, each once and in this process:
  nb101_enumeration  `nb101.enumerate_space()` from scratch (a fresh temporary
                     cache folder), including writing the cache file;
  nb101_cache_load   the same call again, which loads that cache file;
  nb201_arch_strings `nb201.arch_strings()` with its in-memory caches cleared;
  darts_sampling     `darts.sample_space(--darts_cells)` (no cache).
Hashing runs in `graph_hash.default_workers()` processes ($ARCH2VEC_WORKERS,
default the usable CPUs); the CPU seconds are this process's only, without
those workers. Wall and CPU seconds of each are printed as a table and written (atomically)
with the command line, the machine and the load average at start and end:
timings on a shared machine depend on its load. A calibration probe (a fixed
NumPy sort, timed 40 times before and after) gives the machine's slowdown
while the benchmark ran: mean time / best time (about 1 on an idle machine).
"""

import os
import tempfile
import time

import numpy as np
from absl import app, flags

from arch2vec_jax import cli, fileio
from arch2vec_jax.spaces import graph_hash

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "results/benchmarks/spaces.json", "Where to write the JSON results.")
flags.DEFINE_integer("darts_cells", 600_000, "How many unique DARTS cells to sample.")
flags.DEFINE_integer("darts_seed", 0, "DARTS sampling seed.")
flags.DEFINE_list("parts", ["nb101", "nb201", "darts"], "Which spaces to time.")

_PARTS = ("nb101", "nb201", "darts")


def _timed(function):
  """(result, wall seconds, CPU seconds of this process) of function()."""
  wall, cpu = time.perf_counter(), time.process_time()
  result = function()
  return result, time.perf_counter() - wall, time.process_time() - cpu


def _calibration() -> dict:
  """Times a fixed NumPy workload 40 times: best, median and mean milliseconds, and mean / best."""
  data = np.random.default_rng(0).random(200_000)
  times = []
  for _ in range(40):
    start = time.perf_counter()
    np.sort(data)
    times.append(1e3 * (time.perf_counter() - start))
  best = min(times)
  return {
    "workload": "np.sort of 200,000 float64",
    "best_ms": best,
    "median_ms": float(np.median(times)),
    "mean_ms": float(np.mean(times)),
    "slowdown": float(np.mean(times)) / best,
  }


def _nb101() -> list[dict]:
  from arch2vec_jax.spaces import nb101  # pylint: disable=import-outside-toplevel

  previous = os.environ.get("ARCH2VEC_CACHE")
  with tempfile.TemporaryDirectory(prefix="nb101_bench_") as cache:
    os.environ["ARCH2VEC_CACHE"] = cache
    try:
      (_, _, hashes), wall, cpu = _timed(nb101.enumerate_space)
      enumerated = {
        "name": "nb101_enumeration",
        "wall_s": wall,
        "cpu_s": cpu,
        "count": len(hashes),
        "cache_bytes": os.path.getsize(nb101.cache_path()),
      }
      (_, _, loaded), wall, cpu = _timed(nb101.enumerate_space)
      if not np.array_equal(loaded, hashes):
        raise RuntimeError("the cache file does not give the enumerated space back")
      load = {"name": "nb101_cache_load", "wall_s": wall, "cpu_s": cpu, "count": len(loaded)}
    finally:
      if previous is None:
        os.environ.pop("ARCH2VEC_CACHE", None)
      else:
        os.environ["ARCH2VEC_CACHE"] = previous
  return [enumerated, load]


def _nb201() -> list[dict]:
  from arch2vec_jax.spaces import nb201  # pylint: disable=import-outside-toplevel

  for name in ("_benchmark_order", "_product_order_strings"):  # time a cold generation
    getattr(getattr(nb201, name, None), "cache_clear", lambda: None)()
  strings, wall, cpu = _timed(nb201.arch_strings)
  return [{"name": "nb201_arch_strings", "wall_s": wall, "cpu_s": cpu, "count": len(strings)}]


def _darts() -> list[dict]:
  from arch2vec_jax.spaces import darts  # pylint: disable=import-outside-toplevel

  (_, _, ids), wall, cpu = _timed(lambda: darts.sample_space(FLAGS.darts_cells, FLAGS.darts_seed))
  return [
    {
      "name": "darts_sampling",
      "wall_s": wall,
      "cpu_s": cpu,
      "count": len(ids),
      "seed": FLAGS.darts_seed,
    }
  ]


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.parts) - set(_PARTS))
  if unknown:
    raise app.UsageError(f"unknown --parts {unknown}; choose from {list(_PARTS)}")
  report = {
    "command": cli.command_line("launch/benchmark_spaces.py"),
    "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    "machine": cli.machine_info(),
    "hash_workers": graph_hash.default_workers(),
    "load_average_start": list(os.getloadavg()),
    "calibration_start": _calibration(),
    "results": [],
  }
  runners = {"nb101": _nb101, "nb201": _nb201, "darts": _darts}
  for part in _PARTS:
    if part in FLAGS.parts:
      report["results"] += runners[part]()
      print(f"{part} done, load average {os.getloadavg()[0]:.2f}", flush=True)
  report["load_average_end"] = list(os.getloadavg())
  report["calibration_end"] = _calibration()
  print(f"\n{'measurement':<22}{'count':>10}{'wall s':>10}{'cpu s':>10}")
  for row in report["results"]:
    print(f"{row['name']:<22}{row['count']:>10}{row['wall_s']:>10.2f}{row['cpu_s']:>10.2f}")
  print(
    f"load average at start {report['load_average_start']}, at end {report['load_average_end']}"
    f" ({report['machine']['cpu_count']} CPUs, {report['hash_workers']} hashing processes)"
  )
  print(
    f"calibration slowdown (mean / best of a fixed NumPy sort): start "
    f"{report['calibration_start']['slowdown']:.1f}, "
    f"end {report['calibration_end']['slowdown']:.1f}"
  )
  fileio.atomic_write_json(FLAGS.out, report)
  print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
  cli.run(main)
