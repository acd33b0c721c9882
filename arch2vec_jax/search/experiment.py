"""Search experiments end to end: a benchmark table and embeddings in, traces, a summary and a plot out.

  problem = load_problem("nb201", "../shared/data/nb201_accuracies.csv", "cifar10",
                         embeddings="workdir/nb201/embeddings.npz")
  summary = run_experiment(problem, ("rl", "bo", "rs", "re"), num_seeds=500,
                           budget=make_budget(problem, queries=100), workdir="results/search/nb201/cifar10")

`run_experiment` runs every method over all seeds in one compiled call each
(`runner.batched_run`, compiled ahead of time so that compile and run seconds
are measured apart: `timed`) and writes into `workdir`:

  traces/<method>.npz   the per-seed traces ([S, T] arrays, `trace_io.save_trace`)
  summary.json          per method: mean +- std over seeds at several budgets,
                        regret, timings, config; the command and the machine (`report`)
  curves.png            accuracy and regret curves of the methods (`trace_plots.plot_curves`)

The parts live in their own modules and are re-exported here: `problem`
(`load_problem`, `make_budget`, ...), `timed` (`timed_run_seeds`), `trace_io`
(`save_trace`, `load_trace`), `trace_stats` (`curve`, `query_points`, ...),
`trace_plots` (`plot_curves`) and `report` (`format_summary`, merging).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from typing import Any

import jax
import numpy as np

from arch2vec_jax import fileio, parallel, pretrained
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search import gd, report, runner, supervised
from arch2vec_jax.search.problem import (
  DATASETS,
  NEEDS_EMBEDDINGS,
  SPACES,
  SearchProblem,
  check_dataset,
  is_encoder_source,
  is_shipped_name,
  load_problem,
  make_budget,
  parse_methods,
)
from arch2vec_jax.search.report import PAPER, PAPER_NB201, format_summary
from arch2vec_jax.search.timed import compile_seeds, timed_run_seeds
from arch2vec_jax.search.trace_io import load_trace, save_trace
from arch2vec_jax.search.trace_plots import plot_curves
from arch2vec_jax.search.trace_stats import cost_points, curve, query_points

__all__ = [
  "DATASETS",
  "NEEDS_EMBEDDINGS",
  "PAPER",
  "PAPER_NB201",
  "SPACES",
  "SearchProblem",
  "check_dataset",
  "compile_seeds",
  "cost_points",
  "curve",
  "format_summary",
  "is_encoder_source",
  "is_shipped_name",
  "load_problem",
  "load_trace",
  "make_budget",
  "merge_runs",
  "parse_methods",
  "plot_curves",
  "query_points",
  "run_experiment",
  "save_trace",
  "timed_run_seeds",
]


def run_experiment(
  problem: SearchProblem,
  methods: Iterable[str],
  num_seeds: int,
  budget: env_lib.Budget,
  workdir: str | os.PathLike,
  seed: int = 0,
  configs: dict[str, Any] | None = None,
  command: str | None = None,
  log: Callable[[str], None] = print,
  merge: bool = False,
) -> dict[str, Any]:
  """Runs every method over all seeds (one compiled call each) and writes traces, summary and plot.

  Args:
    problem: from `load_problem` (loaded for at least these methods).
    methods: method names (`runner.METHODS`).
    num_seeds: seeds per method (a vmap axis).
    budget: from `make_budget`.
    workdir: output folder (traces/<method>.npz, summary.json, curves.png).
    seed: the root seed; seed i of every method uses key i of
      `jax.random.split(PRNGKey(seed), num_seeds)`.
    configs: optional method -> config overrides (default `runner.default_config`).
    command: the command line to record.
    log: where progress lines go.
    merge: add these methods to the experiment already in `workdir` (its
      summary.json and traces are kept; a method run again is replaced), e.g.
      an expensive method with fewer seeds (each method records its own seed
      count). The space, dataset, reward, budget and root seed must match.

  Returns:
    The summary (also written to summary.json).

  Raises:
    ValueError: on bad arguments, or with `merge` when the experiment in
      `workdir` is a different one (naming the field that differs).
  """
  methods = parse_methods(methods)
  if num_seeds < 1:
    raise ValueError(f"num_seeds must be >= 1, got {num_seeds}")
  for m in methods:
    if m in NEEDS_EMBEDDINGS and problem.env.embeddings.shape[1] < 2:
      raise ValueError(f"method {m!r} needs embeddings, but the problem was loaded without them")
    if m == "re" and problem.neighbours is None:
      raise ValueError(
        "method 're' needs the mutation neighbours: load the problem with 're' in its methods"
      )
  workdir = os.fspath(workdir)
  # Several processes (multi-host): every process runs its share of the seeds; process 0 writes.
  write = parallel.is_main_process()
  if write:
    os.makedirs(os.path.join(workdir, "traces"), exist_ok=True)
  at_q, at_c = query_points(budget), cost_points(budget)
  keys = jax.random.split(jax.random.PRNGKey(seed), int(num_seeds))
  scale = 100.0
  summary = report.new_summary(problem, budget, num_seeds, seed, command, scale)
  curves = {}
  x_kind = "cost" if budget.is_time else "queries"
  old_path = os.path.join(workdir, "summary.json")
  if merge and os.path.exists(old_path):
    with open(old_path, encoding="utf-8") as f:
      old = json.load(f)
    for m in report.merge_previous(summary, old, methods, where=old_path):
      trace, _ = load_trace(os.path.join(workdir, "traces", f"{m}.npz"))
      curves[m] = curve(trace, problem.field, x=x_kind, optimum=problem.optimum, scale=scale)
  paper = PAPER.get(problem.space, {})
  if paper:
    summary.setdefault("paper", {}).update(
      {m: paper[m][problem.dataset] for m in methods if m in paper}
    )
  for m in methods:
    config = (configs or {}).get(m, runner.default_config(m, problem.space))
    run = _make_run(m, config, problem, budget)
    log(
      f"[{m}] {num_seeds} seeds x {budget.max_queries} query slots"
      + (f" (time budget {budget.max_cost:g} s)" if budget.is_time else "")
      + ": compiling ..."
    )
    trace, times = timed_run_seeds(run, keys)
    if write:
      save_trace(
        os.path.join(workdir, "traces", f"{m}.npz"),
        trace,
        keys,
        {
          "method": m,
          "config": report.config_dict(config),
          "space": problem.space,
          "dataset": problem.dataset,
          "budget": summary["budget"],
          "seed": int(seed),
          "field": problem.field,
        },
      )
    s = runner.summarize(
      trace,
      at_queries=at_q,
      at_cost=at_c,
      field=problem.field,
      optimum=problem.optimum,
      scale=scale,
    )
    s["config"] = report.config_dict(config)
    s["time"] = {**times, "load_average": list(os.getloadavg())}
    summary["methods"][m] = s
    curves[m] = curve(trace, problem.field, x=x_kind, optimum=problem.optimum, scale=scale)
    at = s["cost"][f"{at_c[-1]:g}"] if at_c else s["queries"][str(at_q[-1])]
    log(
      f"[{m}] compile {times['compile_s']:.1f} s, run {times['run_s']:.1f} s; "
      f"{'test' if problem.field == 'best_test' else 'validation'} accuracy "
      f"{report.format_entry(at)} %, regret {at['regret_mean']:.3f} % (mean over {num_seeds} seeds)"
    )
    # Written after every method, so that an interrupted run keeps what is done.
    summary["machine"]["load_average_at_end"] = list(os.getloadavg())
    if write:
      fileio.atomic_write_json(os.path.join(workdir, "summary.json"), summary)
      _plot(os.path.join(workdir, "curves.png"), curves, summary)
  log(format_summary(summary))
  return summary


def _make_run(
  method: str, config: Any, problem: SearchProblem, budget: env_lib.Budget
) -> Callable[[jax.Array], env_lib.Trace]:
  """`runner.make_search` with what the method needs from the problem (GD's decoder, the cells' graphs)."""
  decoder = None
  if method == "gd" and config.mapping == "decoder":
    if not gd.has_table_decoder(problem.space):
      raise ValueError(
        f"gd mapping='decoder' needs a space whose decoded cells map to table rows "
        f"(`SearchSpace.table_rows`, e.g. nb201); {problem.space} has none"
      )
    decoder = gd.table_decoder(pretrained.load(config.decoder), problem.table.ids)
  graphs = None
  if method in (
    "sbo",
    "srl",
  ):  # the supervised searches train their own encoder on the cells' graphs
    graphs = supervised.graph_candidates(
      problem.table.adjacency, problem.table.ops, np.asarray(problem.env.available)
    )
  return runner.make_search(
    method, config, problem.env, budget, problem.neighbours, decoder=decoder, graphs=graphs
  )


def _plot(path: str, curves: dict[str, Any], summary: dict[str, Any]) -> None:
  """curves.png of the methods so far (`plot_curves`), labelled from the summary."""
  what = (
    "test accuracy of the best-validation cell"
    if summary["field"] == "best_test"
    else "best validation accuracy"
  )
  is_time = summary["budget"]["time_s"] is not None
  plot_curves(
    path,
    curves,
    title=f"{summary['space'].upper()} {summary['dataset']}: {what}, "
    f"{'/'.join(sorted({str(e['seeds']) for e in summary['methods'].values()}))} seeds",
    xlabel="simulated training time (s)" if is_time else "queries",
    ylabel=f"{what} (%)",
    optimum=summary["optimum"],
    oracle=summary["oracle_best_valid_cell"],
    log_x=is_time,
  )


def merge_runs(
  source: str | os.PathLike,
  workdir: str | os.PathLike,
  command: str | None = None,
  log: Callable[[str], None] = print,
) -> dict[str, Any]:
  """Adds the methods of the experiment in `source` to the one in `workdir`, as `--merge` would have.

  E.g. the supervised searches, run in a folder of their own, beside arch2vec's
  in the folder of the shipped encoder: the traces of `source`'s methods are
  copied into `workdir/traces` (replacing a method of the same name), the
  summary gets them (and `source`'s commands), curves.png is redrawn with every
  method. Both must be the same experiment (`report.MERGE_FIELDS`).

  Returns:
    The merged summary (also written to `workdir/summary.json`).

  Raises:
    ValueError: the experiments differ in a field of `report.MERGE_FIELDS`, or
      their latent-space methods searched different embedding rows.
  """
  source, workdir = os.fspath(source), os.fspath(workdir)
  summaries = []
  for d in (source, workdir):
    with open(os.path.join(d, "summary.json"), encoding="utf-8") as f:
      summaries.append(json.load(f))
  src, dst = summaries
  # The source's methods record the machine they ran on; the header keeps the workdir's.
  methods = {m: {**e, "machine": src["machine"]} for m, e in src["methods"].items()}
  summary = {**src, "machine": dst["machine"], "methods": methods}
  kept = report.merge_previous(
    summary, dst, list(src["methods"]), where=os.path.join(workdir, "summary.json")
  )
  summary["commands"] = dst.get("commands", [dst.get("command")]) + src.get(
    "commands", [src.get("command")]
  )
  if command:
    summary["commands"].append(command)
  x_kind = "cost" if summary["budget"]["time_s"] is not None else "queries"
  optimum, curves = summary["optimum"] / 100.0, {}
  for m in list(summary["methods"]):
    path = os.path.join(source if m not in kept else workdir, "traces", f"{m}.npz")
    trace, _ = load_trace(path)
    if m not in kept:  # the source's trace file, byte for byte
      with open(path, "rb") as f:
        fileio.atomic_write_bytes(os.path.join(workdir, "traces", f"{m}.npz"), f.read())
    curves[m] = curve(trace, summary["field"], x=x_kind, optimum=optimum, scale=100.0)
  fileio.atomic_write_json(os.path.join(workdir, "summary.json"), summary)
  _plot(os.path.join(workdir, "curves.png"), curves, summary)
  log(f"merged {', '.join(src['methods'])} of {source} into {workdir}")
  log(format_summary(summary))
  return summary
