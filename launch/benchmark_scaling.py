"""Throughput versus the number of devices: the CPU split into 1, 2, 4, 8 JAX devices (or real accelerators).

  python launch/benchmark_scaling.py                         # CPU: --devices 1,2,4,8
  python launch/benchmark_scaling.py --devices 1,2 --search_seeds 64 --search_methods rl

For each device count N, `launch/benchmark.py` runs in a fresh subprocess with
`--cpu_devices N` (JAX's `jax_num_cpu_devices`, the same as
`XLA_FLAGS=--xla_force_host_platform_device_count=N`; a device count is fixed
when JAX starts its backend, hence the subprocesses): data-parallel
pre-training at `--batch_sizes` (global batch) and RL/BO with the seeds
sharded over the N devices. On an accelerator host pass `--no_cpu` to use
`--num_devices N` of the real devices instead. Collects graphs/s and
seed-queries/s versus N into `results/benchmarks/scaling-<backend>.json`
(atomic) and prints a table. Forced CPU devices share the same cores: more of
them than cores cannot be faster; they show the partitioning's overhead.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from arch2vec_jax import cli, fileio

FLAGS = flags.FLAGS
flags.DEFINE_list("devices", ["1", "2", "4", "8"], "Device counts.")
flags.DEFINE_bool(
  "cpu", True, "Split the CPU (--cpu_devices N); --no_cpu: use N real devices (--num_devices N)."
)
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Global training batch sizes.")
flags.DEFINE_integer("epochs", 2, "Timed epochs per batch size.")
flags.DEFINE_list("search_methods", ["rl", "bo"], "Search methods.")
flags.DEFINE_list("search_seeds", ["64"], "Seed counts.")
flags.DEFINE_integer("search_queries", 100, "Queries per search.")
flags.DEFINE_integer("timeout_s", 1800, "Limit per subprocess.")
flags.DEFINE_string("out", None, "Output JSON (default results/benchmarks/scaling-<backend>.json).")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    counts = [int(x) for x in FLAGS.devices]
  except ValueError as e:
    raise app.UsageError(f"--devices: {e}") from e
  if not counts or min(counts) < 1:
    raise app.UsageError(f"--devices must be positive integers, got {FLAGS.devices}")
  runs = {}
  with tempfile.TemporaryDirectory() as tmp:
    for n in counts:
      out = os.path.join(tmp, f"{n}.json")
      cmd = [
        sys.executable,
        os.path.join(REPO, "launch", "benchmark.py"),
        "--parts=training,search",
        f"--batch_sizes={','.join(FLAGS.batch_sizes)}",
        f"--epochs={FLAGS.epochs}",
        f"--search_methods={','.join(FLAGS.search_methods)}",
        f"--search_seeds={','.join(FLAGS.search_seeds)}",
        f"--search_queries={FLAGS.search_queries}",
        f"--out={out}",
      ]
      cmd += [f"--cpu_devices={n}"] if FLAGS.cpu else [f"--num_devices={n}"]
      print(f"== {n} device(s): {' '.join(cmd[1:])}", flush=True)
      t0 = time.perf_counter()
      subprocess.run(cmd, cwd=REPO, check=True, timeout=FLAGS.timeout_s)
      with open(out) as f:
        runs[n] = json.load(f)
      runs[n]["wall_s"] = time.perf_counter() - t0
  first = runs[counts[0]]
  backend = first["machine"]["backend"]
  training = {
    b: {
      str(n): next(r for r in runs[n]["training"] if r["batch_size"] == int(b))["graphs_per_s"]
      for n in counts
    }
    for b in FLAGS.batch_sizes
  }
  search = {}
  for n in counts:
    for r in (runs[n].get("search") or {}).get("rows", []):
      if "skipped" in r:
        continue
      search.setdefault(f"{r['method']} {r['seeds']} seeds", {})[str(n)] = r["seed_queries_per_s"]
  result = {
    "command": cli.command_line("launch/benchmark_scaling.py"),
    "mode": "forced CPU devices (--cpu_devices)" if FLAGS.cpu else "real devices (--num_devices)",
    "machine": first["machine"],
    "devices": counts,
    "graphs_per_s": training,
    "seed_queries_per_s": search,
    "search_queries": FLAGS.search_queries,
    "search_embeddings": (first.get("search") or {}).get("embeddings"),
    "runs": {str(n): runs[n] for n in counts},
  }
  header = "| | " + " | ".join(f"{n} dev" for n in counts) + " |"
  lines = ["", header, "|---" * (len(counts) + 1) + "|"]
  for b, row in training.items():
    lines.append(
      f"| training graphs/s, batch {b} | "
      + " | ".join(f"{row[str(n)]:,.0f}" for n in counts)
      + " |"
    )
  for k, row in search.items():
    lines.append(
      f"| {k} seed-queries/s | "
      + " | ".join(f"{row.get(str(n), float('nan')):,.0f}" for n in counts)
      + " |"
    )
  print("\n".join(lines))
  out = FLAGS.out or os.path.join(REPO, "results", "benchmarks", f"scaling-{backend}.json")
  fileio.atomic_write_json(out, result)
  print(f"wrote {out}")


if __name__ == "__main__":
  cli.run(main)
