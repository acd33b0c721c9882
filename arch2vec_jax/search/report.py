"""The summary of a search experiment (summary.json): its header, merging with an earlier run, the text table.

summary = new_summary(problem, budget, num_seeds, seed, command)
summary = merge_previous(summary, old, methods)   # --merge: keep the other methods of `old`
print(format_summary(summary))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from arch2vec_jax import machine
from arch2vec_jax.search import env as env_lib

__all__ = [
  "EMBEDDING_KEYS",
  "MERGE_FIELDS",
  "PAPER",
  "PAPER_NB201",
  "config_dict",
  "format_entry",
  "format_summary",
  "merge_previous",
  "new_summary",
]

# The paper's NB201 test accuracies (%, mean over 500 seeds), Yan et al. 2020, Table 4.
PAPER_NB201 = {
  "rl": {"cifar10": 94.12, "cifar100": 73.15, "imagenet16": 46.16},
  "bo": {"cifar10": 94.18, "cifar100": 73.37, "imagenet16": 46.27},
  "re": {"cifar10": 93.92, "cifar100": 71.84, "imagenet16": 45.54},
  "rs": {"cifar10": 93.70, "cifar100": 71.04, "imagenet16": 44.57},
}
# The problem's record of the embeddings the latent-space methods searched (`problem.load_problem`).
EMBEDDING_KEYS = ("embeddings", "embeddings_sha256", "embedding_rows_sha256", "embedding_features")
# The paper's numbers per space: method -> dataset -> %, for the spaces that have them.
PAPER = {"nb201": PAPER_NB201}
# What must match for `merge_previous` to add methods to an earlier experiment.
MERGE_FIELDS = ("space", "dataset", "field", "budget", "seed", "optimum")


def config_dict(config: Any) -> Any:
  """A method's config as JSON-able data (a dataclass as a dict; None and dicts unchanged)."""
  return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config


def format_entry(entry: dict[str, float]) -> str:
  """'mean +- std' of a summary entry, two decimals."""
  return f"{entry['mean']:.2f} +- {entry['std']:.2f}"


def new_summary(
  problem: Any,
  budget: env_lib.Budget,
  num_seeds: int,
  seed: int,
  command: str | None,
  scale: float = 100.0,
) -> dict[str, Any]:
  """The summary's header for a `problem.SearchProblem` and an empty 'methods' (values times `scale`)."""
  return {
    "command": command,
    "space": problem.space,
    "dataset": problem.dataset,
    "problem": problem.meta,
    "field": problem.field,
    "optimum": problem.optimum * scale,
    "oracle_best_valid_cell": problem.oracle * scale if np.isfinite(problem.oracle) else None,
    "budget": {
      "queries": int(budget.max_queries),
      "time_s": budget.max_cost if budget.is_time else None,
    },
    "seeds": int(num_seeds),
    "seed": int(seed),
    "units": "percent",
    "machine": machine.machine_info(),
    "methods": {},
  }


def merge_previous(
  summary: dict[str, Any], old: dict[str, Any], methods: Sequence[str], where: str = "summary.json"
) -> list[str]:
  """Adds an earlier experiment's commands, paper numbers and other methods to `summary` (in place).

  Args:
    summary: this run's (`new_summary`); old: the earlier summary.json.
    methods: this run's methods (an earlier entry of one of them is replaced).
    where: the earlier file's name, for the error.

  Returns:
    The methods kept from `old` (their traces are the earlier ones).

  Raises:
    ValueError: `old` is a different experiment (naming the field of `MERGE_FIELDS` that differs).
  """
  for name in MERGE_FIELDS:
    if old.get(name) != summary[name]:
      raise ValueError(
        f"{where}: cannot merge: its {name} is {old.get(name)!r}, this run's is {summary[name]!r}"
      )
  rows = [s.get("problem", {}).get("embedding_rows_sha256") for s in (old, summary)]
  if None not in rows and rows[0] != rows[1]:
    raise ValueError(
      f"{where}: cannot merge: its methods searched other embedding rows (sha256 "
      f"{rows[0][:12]}...) than this run's ({rows[1][:12]}...): another encoder, features or machine"
    )
  # This run's methods searched no embeddings (rs, re, sbo, srl): keep the record of the others'.
  if "problem" in summary and summary["problem"].get("embeddings") is None:
    kept_meta = {k: v for k, v in old.get("problem", {}).items() if k in EMBEDDING_KEYS}
    summary["problem"] = {**summary["problem"], **kept_meta}
  summary["commands"] = old.get("commands", [old.get("command")]) + [summary["command"]]
  summary["paper"] = old.get("paper", {})
  kept = [m for m in old["methods"] if m not in methods]
  for m in kept:
    summary["methods"][m] = old["methods"][m]
  return kept


def format_summary(summary: dict[str, Any]) -> str:
  """A table of the summary: per method, the value at each reported budget, and the paper's number."""
  kind = "cost" if summary["budget"]["time_s"] else "queries"
  points = list(next(iter(summary["methods"].values()))[kind]) if summary["methods"] else []
  seeds = sorted({s.get("seeds", summary["seeds"]) for s in summary["methods"].values()}) or [
    summary["seeds"]
  ]
  head = (
    f"{summary['space']} {summary['dataset']} ({summary['field']}, %, mean +- std over "
    f"{'/'.join(map(str, seeds))} seeds)"
  )
  lines = [
    head,
    f"{'method':8s}"
    + "".join(f"{kind[:1] + '=' + p:>16s}" for p in points)
    + "   paper   compile/run s",
  ]
  for m, s in summary["methods"].items():
    paper = summary.get("paper", {}).get(m)
    lines.append(
      f"{m:8s}"
      + "".join(f"{format_entry(s[kind][p]):>16s}" for p in points)
      + (f"   {paper:5.2f}" if paper is not None else "        ")
      + f"   {s['time']['compile_s']:.1f}/{s['time']['run_s']:.1f}"
      + (f"   ({s['seeds']} seeds)" if len(seeds) > 1 else "")
    )
  lines.append(
    f"table best {summary['optimum']:.2f}"
    + (
      f", best-validation cell {summary['oracle_best_valid_cell']:.2f}"
      if summary.get("oracle_best_valid_cell") is not None
      else ""
    )
  )
  return "\n".join(lines)
