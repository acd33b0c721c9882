"""Any search method (RS, RE, arch2vec-RL, -BO, -GD) on a benchmark table, through ask/tell.

The search runs in a plain Python loop: `ask` proposes cells, the "evaluation"
(here a lookup in the benchmark table; in your own project a training run)
gives their values, `tell` hands them back. The same method compiled into one
program (`runner.make_search` -> `lax.scan` over the same ask -> lookup -> tell)
gives the same trace, which the script checks at the end.

  python examples/search_table_ask_tell.py --method rl \\
      --benchmark ../shared/data/nb201_accuracies.csv --dataset cifar10 \\
      --embeddings workdir/nb201/embeddings.npz --queries 100 --seed 0

Flags for a short run: --queries, --batch_size (cells per ask, evaluated "in
parallel"), --time_budget with --cost_per_query (the CSV has no training
times). --checkpoint PATH saves the search state after every tell (atomic);
with --resume an interrupted run continues from it with the same proposals
(--stop_after N stops after N evaluations, to try it).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import numpy as np

from arch2vec_jax.search import ask_tell, experiment, runner
from arch2vec_jax.search import env as env_lib

FIELDS = env_lib.Trace._fields


def parse_args(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--method", default="rl", choices=runner.METHODS)
  p.add_argument("--space", default="nb201", choices=("nb201", "nb101"))
  p.add_argument("--benchmark", default="../shared/data/nb201_accuracies.csv")
  p.add_argument("--dataset", default="cifar10")
  p.add_argument("--embeddings", default=None, help="embeddings.npz of pre-training (rl)")
  p.add_argument("--queries", type=int, default=100)
  p.add_argument("--time_budget", type=float, default=None, help="simulated seconds")
  p.add_argument("--cost_per_query", type=float, default=None, help="seconds per evaluation")
  p.add_argument("--batch_size", type=int, default=1, help="cells per ask")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--print_every", type=int, default=10)
  p.add_argument("--checkpoint", default=None, help="search-state file, saved after every tell")
  p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
  p.add_argument("--stop_after", type=int, default=None, help="stop after this many evaluations")
  p.add_argument("--trace", default=None, help="write the trace (.npz)")
  p.add_argument("--no_check", action="store_true", help="skip the compiled run")
  return p.parse_args(argv)


def main(argv=None) -> dict:
  args = parse_args(argv)
  problem = experiment.load_problem(
    args.space,
    args.benchmark,
    args.dataset,
    args.embeddings,
    methods=[args.method],
    cost_per_query=args.cost_per_query,
  )
  budget = experiment.make_budget(problem, args.queries, args.time_budget)
  env = problem.env
  # What the search may see: the candidate cells (embeddings, mutation neighbours) ...
  candidates = ask_tell.make_candidates(
    np.asarray(env.embeddings), np.asarray(env.available), problem.neighbours
  )
  # ... and what it may not: the table, read only by the evaluation.
  reward, report, cost = (np.asarray(a) for a in (env.reward, env.report, env.cost))

  def evaluate(cell: int) -> tuple[float, float]:
    """(value, cost) of one cell: the stand-in for a training run."""
    return float(reward[cell]), float(cost[cell])

  config = runner.default_config(args.method, args.space)
  search = ask_tell.jit_search(runner.make_ask_tell(args.method, config, args.batch_size, budget))
  key = jax.random.PRNGKey(args.seed)
  state = search.init(key, candidates)
  rows = {f: [] for f in FIELDS}
  if args.resume and args.checkpoint and os.path.exists(args.checkpoint):
    state, rows = ask_tell.restore_state(args.checkpoint, state, with_extra=True)
    print(f"resumed from {args.checkpoint} after {len(rows['cell'])} evaluations")

  # Host-side budget in float32, summed in query order as the compiled search does.
  made, spent = len(rows["cell"]), np.float32(rows["cost"][-1] if rows["cost"] else 0.0)
  best = (rows["best_valid"][-1], rows["best_test"][-1]) if rows["cell"] else (-np.inf, np.nan)
  max_cost = np.float32(budget.max_cost)
  start = time.perf_counter()
  while made < budget.max_queries and spent < max_cost:
    if args.stop_after is not None and made >= args.stop_after:
      print(f"stopped after {made} evaluations (--stop_after)")
      break
    cells, state = search.ask(state)
    cells = np.asarray(cells)
    values = np.full(len(cells), np.nan, np.float32)
    costs = np.zeros(len(cells), np.float32)
    for j, cell in enumerate(cells.tolist()):
      if cell < 0 or not (made < budget.max_queries and spent < max_cost):
        continue  # no candidate left, or past the budget: not evaluated
      values[j], costs[j] = evaluate(cell)
      made, spent = made + 1, np.float32(spent + costs[j])
      if values[j] > best[0]:
        best = (values[j], report[cell])
      row = (best[0], best[1], spent, made, cell, values[j], True)
      for f, v in zip(FIELDS, row):
        rows[f].append(v.item() if hasattr(v, "item") else v)
      if made % args.print_every == 0:
        print(
          f"{args.method} query {made:4d}: cell {cell:6d} value {values[j]:.4f}  "
          f"best {best[0]:.4f} (report {best[1]:.4f})  cost {spent:.0f} s"
        )
    state = search.tell(state, cells, values, costs)
    if args.checkpoint:
      ask_tell.save_state(args.checkpoint, state, extra=rows)
    if (cells < 0).all():
      break
  wall = time.perf_counter() - start
  print(
    f"{args.method}: {made} evaluations in {wall:.2f} s (with the first calls' compiles), "
    f"best value {best[0]:.4f}, its report {best[1]:.4f}"
  )
  trace = {f: np.asarray(rows[f]) for f in FIELDS}
  if args.trace:
    experiment.save_trace(
      args.trace,
      env_lib.Trace(**{f: v[None] for f, v in trace.items()}),
      np.asarray(key)[None],
      meta={"method": args.method, "ask_tell": True},
    )
  out = {"trace": trace, "made": made, "best": best, "wall_s": wall}
  if not args.no_check and args.stop_after is None:
    # The compiled search: the harness's program for one cell per ask (what launch/search.py
    # runs), else the same scan over this batch size.
    if args.batch_size == 1:
      compiled = runner.make_search(args.method, config, env, budget, problem.neighbours)
      ref = jax.tree.map(lambda a: np.asarray(a)[0], runner.run_seeds(compiled, key[None]))
    else:
      compiled = ask_tell.table_search(
        runner.make_ask_tell(args.method, config, args.batch_size, budget), env, budget, candidates
      )
      ref = jax.tree.map(np.asarray, jax.jit(compiled)(key))
    n = int(ref.mask.sum())
    out["matches_compiled"] = n == made and all(
      np.array_equal(getattr(ref, f)[:n], trace[f].astype(getattr(ref, f).dtype), equal_nan=True)
      for f in FIELDS
    )
    print(f"the compiled run ({n} queries) gives the same trace: {out['matches_compiled']}")
  return out


if __name__ == "__main__":
  result = main()
  sys.exit(0 if result.get("matches_compiled", True) else 1)
