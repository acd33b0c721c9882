"""arch2vec-GD against RL, BO, RE and RS on the same embeddings: paired differences per budget.

  python launch/gd_compare.py --workdirs results/search/shipped/nb201/cifar10,... \
      --out results/search/shipped/comparison.json

Reads each workdir's `traces/<method>.npz` (written by launch/search.py; seed i
of every method uses the same key, so seeds are paired) and writes, per
workdir, method and budget (queries, or simulated seconds for a time budget),
the mean, std and standard error over seeds of the reported value (test
accuracy of the best-validation cell, or the validation regret where the table
has no test accuracies), and GD minus each other method on the seeds both ran
(mean, standard error of the paired difference, seeds). Also a markdown table
(`--out` with .md).
"""

import json
import os

import numpy as np
from absl import flags

from arch2vec_jax import cli, fileio
from arch2vec_jax.search import experiment, runner

FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "Experiment folders of launch/search.py.", required=True)
flags.DEFINE_string("out", None, "Output JSON (a .md table is written beside it).", required=True)
flags.DEFINE_list("queries", ["25", "50", "75", "100"], "Query budgets (query-budget experiments).")
flags.DEFINE_list(
  "times", ["100000", "300000", "1000000"], "Time budgets, s (time-budget experiments)."
)


def _values(trace, summary, point):
  field = summary["field"]
  if summary["budget"]["time_s"]:
    v = runner.value_at_cost(trace, float(point), field)
  else:
    v = runner.value_at_queries(trace, int(point), field)
  v = 100.0 * np.asarray(v, np.float64)
  return summary["optimum"] - v if field == "best_valid" else v


def main(argv):
  del argv
  out = {"command": cli.command_line("launch/gd_compare.py"), "experiments": {}}
  lines = []
  for wd in FLAGS.workdirs:
    with open(os.path.join(wd, "summary.json"), encoding="utf-8") as f:
      summary = json.load(f)
    timed = bool(summary["budget"]["time_s"])
    points = FLAGS.times if timed else FLAGS.queries
    kind = "validation regret (%)" if summary["field"] == "best_valid" else "test accuracy (%)"
    exp = {"kind": kind, "budget": "seconds" if timed else "queries", "methods": {}, "gd_minus": {}}
    values, keys = {}, {}
    for m in summary["methods"]:
      trace, _ = experiment.load_trace(os.path.join(wd, "traces", f"{m}.npz"))
      values[m] = {p: _values(trace, summary, p) for p in points}
      with np.load(os.path.join(wd, "traces", f"{m}.npz")) as z:
        keys[m] = np.asarray(z["seed_keys"])
      exp["methods"][m] = {
        p: {
          "mean": float(np.nanmean(v)),
          "std": float(np.nanstd(v)),
          "se": float(np.nanstd(v) / np.sqrt(np.isfinite(v).sum())),
          "seeds": int(np.isfinite(v).sum()),
        }
        for p, v in values[m].items()
      }
    if "gd" in values:
      for m in values:
        if m == "gd":
          continue
        exp["gd_minus"][m] = {}
        for p in points:
          n = min(len(values["gd"][p]), len(values[m][p]))
          if not np.array_equal(keys["gd"][:n], keys[m][:n]):
            raise ValueError(f"{wd}: the seeds of gd and {m} are not the same keys")
          d = values["gd"][p][:n] - values[m][p][:n]
          d = d[np.isfinite(d)]
          exp["gd_minus"][m][p] = {
            "mean": float(d.mean()),
            "se": float(d.std() / np.sqrt(len(d))),
            "seeds": len(d),
          }
    out["experiments"][wd] = exp
    lines.append(f"\n{wd}: {kind}, mean +- standard error (seeds)\n")
    lines.append("| method | " + " | ".join(f"{p} {exp['budget']}" for p in points) + " |")
    lines.append("|---|" + "---|" * len(points))
    for m, row in exp["methods"].items():
      lines.append(
        f"| {m} | "
        + " | ".join(
          f"{row[p]['mean']:.2f} +- {row[p]['se']:.2f} ({row[p]['seeds']})" for p in points
        )
        + " |"
      )
    for m, row in exp["gd_minus"].items():
      lines.append(
        f"| gd - {m} (paired) | "
        + " | ".join(
          f"{row[p]['mean']:+.2f} +- {row[p]['se']:.2f} ({row[p]['seeds']})" for p in points
        )
        + " |"
      )
  fileio.atomic_write_json(FLAGS.out, out)
  md = os.path.splitext(FLAGS.out)[0] + ".md"
  fileio.atomic_write_bytes(md, ("\n".join(lines) + "\n").encode())
  print("\n".join(lines))


if __name__ == "__main__":
  cli.run(main)
