"""The documented sweep that chose arch2vec-GD's defaults: NB201 CIFAR-10 only.

  python launch/gd_sweep.py --benchmark ../shared/data/nb201_accuracies.csv \
      --embeddings workdir/ship/nb201/embeddings.npz --seeds 100 \
      --workdir results/search/shipped/gd_sweep \
      --configs "base:;ucb:acquisition=ucb;mean:acquisition=mean"

Each entry of `--configs` is `name:field=value,field=value` over `gd.GDConfig()`
(the class defaults); every config runs `--seeds` seeds x `--budget` queries in
one compiled call (`gd.run_with_stats`, so that the decoder mapping's counts
come back) and the summary (test accuracy of the best-validation cell at 25, 50,
75 and 100 queries, mean, std and standard error over seeds; the decoder's
valid / new rates; the time) goes to `--workdir/summary.json`, merged with
earlier entries of the same workdir. CIFAR-100, ImageNet16-120 and NB101 are
held out: run nothing but CIFAR-10 here.
"""

import dataclasses
import json
import os
import time

import jax
import numpy as np
from absl import flags

from arch2vec_jax import cli, fileio, machine, pretrained
from arch2vec_jax.search import experiment, gd, runner

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "benchmark", None, "The NB201 CSV (../shared/data/nb201_accuracies.csv).", required=True
)
flags.DEFINE_string("embeddings", None, "embeddings.npz of the encoder searched in.", required=True)
flags.DEFINE_string("configs", "base:", "Semicolon list of name:field=value,... (over GDConfig()).")
flags.DEFINE_integer("seeds", 100, "Seeds per config.")
flags.DEFINE_integer("budget", 100, "Queries per search.")
flags.DEFINE_integer("seed", 0, "Root seed.")
flags.DEFINE_string("workdir", None, "Output folder (summary.json).", required=True)


def _value(field: dataclasses.Field, text: str):
  kind = type(field.default)
  if kind is bool:
    return text.lower() in ("1", "true", "yes")
  return kind(text)


def parse_configs(spec: str) -> dict[str, gd.GDConfig]:
  """'name:a=1,b=x;name2:' -> {name: GDConfig(a=1, b='x'), name2: GDConfig()}."""
  fields = {f.name: f for f in dataclasses.fields(gd.GDConfig)}
  out = {}
  for item in filter(None, (s.strip() for s in spec.split(";"))):
    name, _, rest = item.partition(":")
    changes = {}
    for kv in filter(None, (s.strip() for s in rest.split(","))):
      k, _, v = kv.partition("=")
      if k not in fields:
        raise ValueError(f"unknown GDConfig field {k!r} in {item!r}")
      changes[k] = _value(fields[k], v)
    out[name.strip()] = gd.GDConfig(**changes)
  return out


def main(argv):
  del argv
  command = cli.command_line("launch/gd_sweep.py")
  configs = parse_configs(FLAGS.configs)
  problem = experiment.load_problem("nb201", FLAGS.benchmark, "cifar10", FLAGS.embeddings, ("gd",))
  budget = experiment.make_budget(problem, FLAGS.budget)
  keys = jax.random.split(jax.random.PRNGKey(FLAGS.seed), FLAGS.seeds)
  path = os.path.join(FLAGS.workdir, "summary.json")
  os.makedirs(FLAGS.workdir, exist_ok=True)
  summary = {
    "space": "nb201",
    "dataset": "cifar10",
    "seeds": FLAGS.seeds,
    "budget": FLAGS.budget,
    "configs": {},
  }
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      summary = json.load(f)
  summary.update(
    problem=problem.meta, optimum=problem.optimum * 100, machine=machine.machine_info()
  )
  summary.setdefault("commands", []).append(command)
  decoder = None
  for name, config in configs.items():
    if config.mapping == "decoder" and decoder is None:
      decoder = gd.nb201_decoder(pretrained.load(config.decoder), problem.table.ids)
    run = gd.run_with_stats(
      config, problem.env, budget, decoder if config.mapping == "decoder" else None
    )
    t0 = time.perf_counter()
    trace, stats = jax.block_until_ready(runner.run_seeds(run, keys))
    wall = time.perf_counter() - t0
    entry = {
      "config": dataclasses.asdict(config),
      "seeds": FLAGS.seeds,
      "wall_s_with_compile": wall,
      "queries": {},
    }
    for q in (25, 50, 75, 100):
      v = runner.value_at_queries(trace, q, problem.field) * 100
      entry["queries"][str(q)] = {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "se": float(v.std() / np.sqrt(len(v))),
        "regret_mean": float(problem.optimum * 100 - v.mean()),
      }
    mapped = np.asarray(stats.mapped).sum()
    entry["mapping"] = {
      "mapped": int(mapped),
      "decoded_valid": int(np.asarray(stats.decoded_valid).sum()),
      "decoded_new": int(np.asarray(stats.decoded_new).sum()),
    }
    if config.mapping == "decoder" and mapped:
      entry["mapping"].update(
        valid_rate=entry["mapping"]["decoded_valid"] / mapped,
        new_rate=entry["mapping"]["decoded_new"] / mapped,
      )
    summary["configs"][name] = entry
    q = entry["queries"]
    print(
      f"[{name}] {wall:.1f} s: "
      + "  ".join(f"q{k}={v['mean']:.2f}+-{v['se']:.2f}" for k, v in q.items())
      + (
        f"  decoder valid {entry['mapping'].get('valid_rate', 0):.3f} new {entry['mapping'].get('new_rate', 0):.3f}"
        if config.mapping == "decoder"
        else ""
      ),
      flush=True,
    )
    fileio.atomic_write_json(path, summary)


if __name__ == "__main__":
  cli.run(main)
