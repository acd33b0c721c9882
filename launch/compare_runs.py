"""Two experiments of launch/search.py, method by method: e.g. the release's behaviours against the defaults.

  python launch/compare_runs.py --run_a results/search/release_flags/nb201/cifar10 \
      --run_b results/search/release_flags/nb201/cifar10_default \
      --compare_out results/search/release_flags/nb201/comparison.json

For every method in both folders (`traces/<method>.npz`; seed i of both uses key
i of the same root seed, so seeds are paired), or for the pairs of methods
`--pairs a_method:b_method` (e.g. `srl:rl,sbo:bo`: the supervised searches of
folder a against arch2vec's of folder b), at the final query and at 50
queries: mean, std and standard error over seeds of the reported value (percent),
and a minus b on the seeds both ran (mean, std, standard error). Also per method
and folder: queries of a cell that was already queried in that seed (the
release's revisiting pays for those), distinct cells per seed. Writes the JSON
and a markdown table beside it (.md).
"""

import json
import os

import numpy as np
from absl import app, flags

from arch2vec_jax import cli, fileio
from arch2vec_jax.search import experiment, runner

__all__ = ["compare", "markdown", "stats"]

FLAGS = flags.FLAGS
# Not `required=True`: the tests import this module, and a required flag would then be
# required of every other launcher parsed in the same process.
flags.DEFINE_string("run_a", None, "Experiment folder a (e.g. the release's behaviours); needed.")
flags.DEFINE_string("run_b", None, "Experiment folder b (e.g. the defaults); needed.")
flags.DEFINE_string("compare_out", None, "Output JSON (a .md table is written beside it); needed.")
flags.DEFINE_list("compare_queries", ["50", "100"], "Query budgets to compare.")
flags.DEFINE_list(
  "compare_times",
  [],
  "Simulated-time budgets (s) to compare as well (time-budget experiments, e.g. 1000000 on NB101).",
)
flags.DEFINE_list(
  "pairs",
  [],
  "Method pairs a_method:b_method to compare (default: every method in both folders, by name).",
)


def stats(x) -> dict:
  """{'mean', 'std', 'se', 'n'} of a [S] sample (std with ddof 0 as the summaries; se = std(ddof 1) / sqrt(n))."""
  x = np.asarray(x, np.float64)
  n = len(x)
  return {
    "mean": float(x.mean()),
    "std": float(x.std()),
    "se": float(x.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
    "n": int(n),
  }


def _repeats(trace) -> dict:
  cells, mask = np.asarray(trace.cell), np.asarray(trace.mask)
  distinct = np.array([len(set(c[m].tolist())) for c, m in zip(cells, mask)])
  made = mask.sum(axis=1)
  rep = made - distinct
  return {
    "repeated_queries": stats(rep),
    "seeds_with_repeats": int((rep > 0).sum()),
    "distinct_cells": stats(distinct),
  }


def compare(a: str, b: str, queries=(50, 100), pairs=None, times=()) -> dict:
  """The comparison of folders a and b (module doc).

  Args:
    a, b: experiment folders of launch/search.py (same field and dataset).
    queries: the budgets compared; each at most both experiments' query budget.
    pairs: (method of a, method of b) pairs; None: the methods both folders ran.
    times: simulated-time budgets (s) also compared (key '<t> s'), each at most
      both experiments' time budget.

  Returns:
    {'a', 'b', 'field', 'commands', 'methods': {name: {'config_a', 'config_b', 'at':
    {q: {'a', 'b', 'a_minus_b'}}, 'revisits'}}}, name 'm' for a method of both or
    'ma vs mb' for a pair.
  """
  summaries = []
  for d in (a, b):
    with open(os.path.join(d, "summary.json"), encoding="utf-8") as f:
      summaries.append(json.load(f))
  sa, sb = summaries
  field = sa["field"]
  if sb["field"] != field or sa.get("dataset") != sb.get("dataset"):
    raise ValueError("the two experiments differ in field or dataset")
  short = [q for q in queries if q > min(sa["budget"]["queries"], sb["budget"]["queries"])]
  if short:
    raise ValueError(
      f"queries {short} exceed an experiment's budget ({sa['budget']}, {sb['budget']})"
    )
  limits = [s["budget"]["time_s"] for s in (sa, sb)]
  long = [t for t in times if None in limits or t > min(limits)]
  if long:
    raise ValueError(f"times {long} exceed an experiment's time budget ({limits[0]}, {limits[1]})")
  if pairs is None:
    pairs = [(m, m) for m in sorted(set(sa["methods"]) & set(sb["methods"]))]
  for ma, mb in pairs:
    if ma not in sa["methods"] or mb not in sb["methods"]:
      raise ValueError(
        f"pair {ma}:{mb}: {a} has {sorted(sa['methods'])}, {b} {sorted(sb['methods'])}"
      )
  out = {
    "a": a,
    "b": b,
    "field": field,
    "commands": {"a": sa["command"], "b": sb["command"]},
    "methods": {},
  }
  for ma, mb in pairs:
    ta, _ = experiment.load_trace(os.path.join(a, "traces", f"{ma}.npz"))
    tb, _ = experiment.load_trace(os.path.join(b, "traces", f"{mb}.npz"))
    entry = {
      "config_a": sa["methods"][ma]["config"],
      "config_b": sb["methods"][mb]["config"],
      "at": {},
    }
    n = min(len(ta.cell), len(tb.cell))
    at = [(str(q), lambda t, q=int(q): runner.value_at_queries(t, q, field)) for q in queries]
    at += [(f"{t:g} s", lambda tr, t=float(t): runner.value_at_cost(tr, t, field)) for t in times]
    for key, value in at:
      va, vb = 100.0 * value(ta), 100.0 * value(tb)
      entry["at"][key] = {"a": stats(va), "b": stats(vb), "a_minus_b": stats(va[:n] - vb[:n])}
    entry["revisits"] = {"a": _repeats(ta), "b": _repeats(tb)}
    out["methods"][ma if ma == mb else f"{ma} vs {mb}"] = entry
  return out


def markdown(result: dict) -> str:
  """A table: method, budget, a and b as mean +- std (se), a - b as mean +- se."""
  f = lambda s: f"{s['mean']:.2f} ± {s['std']:.2f} (SE {s['se']:.2f})"
  lines = [
    "| method | budget | a | b | a - b (paired) | repeated queries a / b (mean) |",
    "|---|---|---|---|---|---|",
  ]
  for m, e in result["methods"].items():
    for q, v in e["at"].items():
      d = v["a_minus_b"]
      r = e["revisits"]
      lines.append(
        f"| {m} | {q} | {f(v['a'])} | {f(v['b'])} | {d['mean']:+.3f} ± {d['se']:.3f} | "
        f"{r['a']['repeated_queries']['mean']:.2f} / {r['b']['repeated_queries']['mean']:.2f} |"
      )
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  missing = [f"--{n}" for n in ("run_a", "run_b", "compare_out") if not FLAGS[n].value]
  if missing:
    raise app.UsageError(f"{', '.join(missing)} must be given")
  bad = [p for p in FLAGS.pairs if p.count(":") != 1]
  if bad:
    raise app.UsageError(f"--pairs must be a_method:b_method, got {bad}")
  pairs = [tuple(p.split(":")) for p in FLAGS.pairs] or None
  queries, times = (
    [int(q) for q in FLAGS.compare_queries],
    [float(t) for t in FLAGS.compare_times],
  )
  result = compare(FLAGS.run_a, FLAGS.run_b, queries, pairs, times)
  result["command"] = cli.command_line("launch/compare_runs.py")
  fileio.atomic_write_json(FLAGS.compare_out, result)
  md = markdown(result)
  with open(os.path.splitext(FLAGS.compare_out)[0] + ".md", "w", encoding="utf-8") as f:
    f.write(md)
  print(md)


if __name__ == "__main__":
  cli.run(main)
