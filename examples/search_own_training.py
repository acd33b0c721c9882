"""arch2vec-BO and arch2vec-RL driven through ask/tell by a real training run per cell.

There is no table here: each cell the search proposes is trained. The
objective is an NB201-style cell network (a conv stem, one NB201 cell, a
linear classifier on the cell's output map; Flax) trained for a short schedule on
scikit-learn's digits images (8x8 pixels, 10 classes, shipped with
scikit-learn, no download); the value told to the search is its validation
accuracy. The candidates are `--pool` random NB201 cells embedded by the
shipped NB201 encoder (`arch2vec_jax.pretrained.load("nb201")`).

  python examples/search_own_training.py --method bo,rl --budget 30 --pool 200 --search_seeds 0,1,2,3,4 --exhaustive

One network definition serves every cell (each edge computes its five ops,
weighted by the cell's one-hot choice), so training compiles once; a cell's
training key is fixed, so its value is the same whenever it is trained on one
machine. `--exhaustive` also trains every cell of the pool once, which gives
the best value the search could have found. The trace (one row per trained
cell) is rewritten atomically as JSON after every `tell` to `--out`.
"""

from __future__ import annotations

import argparse
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from arch2vec_jax import fileio, machine, pretrained
from arch2vec_jax.search import ask_tell, runner
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.spaces import nb201

EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # arch-string order: (source, target)


class CellNet(nn.Module):
  """Stem conv -> one NB201 cell (edge ops mixed by a one-hot [6, 5]) -> linear on its 8x8 map."""

  channels: int = 4

  @nn.compact
  def __call__(self, x, choice):  # x [B, 8, 8, 1], choice float32 [6, 5] (rows: edges)
    c = self.channels
    nodes = [nn.relu(nn.Conv(c, (3, 3))(x))]
    for target in (1, 2, 3):
      total = 0.0
      for e, (src, dst) in enumerate(EDGES):
        if dst != target:
          continue
        h = nodes[src]
        ops = [  # in nb201.EDGE_OPS order: none, skip, conv 1x1, conv 3x3, avg pool 3x3
          jnp.zeros_like(h),
          h,
          nn.LayerNorm()(nn.Conv(c, (1, 1))(nn.relu(h))),
          nn.LayerNorm()(nn.Conv(c, (3, 3))(nn.relu(h))),
          nn.avg_pool(h, (3, 3), strides=(1, 1), padding="SAME"),
        ]
        total = total + sum(choice[e, i] * op for i, op in enumerate(ops))
      nodes.append(total)
    return nn.Dense(10)(nodes[3].reshape(x.shape[0], -1))


def digits(seed: int = 0):
  """scikit-learn's digits: (train x [1437, 8, 8, 1], train y, valid x [360, ...], valid y)."""
  from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel

  data = load_digits()
  x = (data.images / 16.0).astype(np.float32)[..., None]
  order = np.random.default_rng(seed).permutation(len(x))
  cut = int(0.8 * len(x))
  tr, va = order[:cut], order[cut:]
  return x[tr], data.target[tr], x[va], data.target[va]


def make_objective(steps: int, channels: int, batch: int = 32, lr: float = 3e-3):
  """`evaluate(arch_str) -> validation accuracy`: trains a fresh `CellNet` for `steps` Adam steps."""
  xtr, ytr, xva, yva = (jnp.asarray(a) for a in digits())
  model, opt = CellNet(channels), optax.adam(lr)

  @jax.jit
  def train_and_score(choice):
    key = jax.random.PRNGKey(0)  # the same initialisation and batches for every cell
    params = model.init(key, xtr[:1], choice)
    idx = jax.random.randint(jax.random.fold_in(key, 1), (steps, batch), 0, len(xtr))

    def loss(p, b):
      logits = model.apply(p, xtr[b], choice)
      return optax.softmax_cross_entropy_with_integer_labels(logits, ytr[b]).mean()

    def step(carry, b):
      p, s = carry
      updates, s = opt.update(jax.grad(loss)(p, b), s, p)
      return (optax.apply_updates(p, updates), s), None

    (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), idx)
    return jnp.mean(jnp.argmax(model.apply(params, xva, choice), -1) == yva)

  def evaluate(arch_str: str) -> float:
    ops = nb201.parse_arch(arch_str)
    choice = np.zeros((6, 5), np.float32)
    choice[np.arange(6), [nb201.EDGE_OPS.index(op) for op in ops]] = 1.0
    return float(train_and_score(jnp.asarray(choice)))

  return evaluate


def expected_best_of_random(values: np.ndarray, k: int) -> float:
  """E[max of k cells drawn without replacement from `values`]: random search's expected best."""
  v, n = np.sort(np.asarray(values, np.float64)), len(values)
  k = min(k, n)
  # P(the max is the j-th smallest) = C(j-1, k-1) / C(n, k), j = k..n, as a running product.
  p = np.zeros(n)
  p[k - 1] = np.exp(sum(np.log(np.arange(1, k + 1))) - sum(np.log(np.arange(n - k + 1, n + 1))))
  for j in range(k, n):
    p[j] = p[j - 1] * j / (j - k + 1)
  return float(np.dot(p, v))


def search(method, candidates, pool, evaluate, budget, batch_size, seed, log):
  """One ask/tell search, evaluation = training: its trace rows (dicts)."""
  config = runner.default_config(method, "nb201")
  s = ask_tell.jit_search(runner.make_ask_tell(method, config, batch_size, env_lib.Budget(budget)))
  state, rows, start = s.init(jax.random.PRNGKey(seed), candidates), [], time.perf_counter()
  while ask_tell.within_budget(state, env_lib.Budget(budget)):
    cells, state = s.ask(state)
    values = np.full(len(cells), np.nan, np.float32)
    for j, cell in enumerate(np.asarray(cells).tolist()):
      if cell < 0 or len(rows) >= budget:
        continue
      t = time.perf_counter()
      values[j] = evaluate(pool[cell])
      best = max(values[j], rows[-1]["best"] if rows else -np.inf)
      rows.append(
        {
          "method": method,
          "query": len(rows) + 1,
          "cell": cell,
          "arch": pool[cell],
          "value": float(values[j]),
          "best": float(best),
          "train_s": time.perf_counter() - t,
          "wall_s": time.perf_counter() - start,
        }
      )
      log(
        f"{method} {len(rows):3d}/{budget}: valid acc {values[j]:.4f}, best {best:.4f} "
        f"({rows[-1]['train_s']:.1f} s)"
      )
    state = s.tell(state, cells, values)
    if (np.asarray(cells) < 0).all():
      break
  return rows


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--method", default="bo,rl", help="comma list of bo, rl, rs, re, gd")
  p.add_argument("--budget", type=int, default=30, help="cells trained per search")
  p.add_argument("--pool", type=int, default=200, help="random NB201 cells to search over")
  p.add_argument(
    "--batch_size", type=int, default=1, help="cells per ask (trained one after another here)"
  )
  p.add_argument(
    "--steps", type=int, default=150, help="Adam steps (batches of 32) per training run"
  )
  p.add_argument("--channels", type=int, default=4)
  p.add_argument("--seed", type=int, default=0, help="the pool's seed")
  p.add_argument("--search_seeds", default="0", help="comma list: one search per seed and method")
  p.add_argument("--encoder", default="nb201", help="a shipped name or a pre-training --workdir")
  p.add_argument("--exhaustive", action="store_true", help="also train every pool cell once")
  p.add_argument("--out", default=None, help="the trace (JSON), rewritten after every tell")
  args = p.parse_args(argv)
  rng = np.random.default_rng(args.seed)
  pool = [nb201.arch_strings()[i] for i in rng.choice(nb201.NUM_CELLS, args.pool, replace=False)]
  encoder = pretrained.load(args.encoder)
  candidates = ask_tell.make_candidates(np.asarray(encoder.embed(pool)))
  evaluate = make_objective(args.steps, args.channels)
  command = " ".join(
    ["python", "examples/search_own_training.py", *(sys.argv[1:] if argv is None else argv)]
  )
  out = {"command": command, "machine": machine.machine_info(), "args": vars(args), "searches": {}}

  def save():
    if args.out:
      fileio.atomic_write_json(args.out, out, indent=1)

  seeds = [int(x) for x in args.search_seeds.split(",")]
  for method in args.method.split(","):
    runs = []
    for seed in seeds:
      rows = search(method, candidates, pool, evaluate, args.budget, args.batch_size, seed, print)
      runs.append(
        {"seed": seed, "rows": rows, "best": rows[-1]["best"], "wall_s": rows[-1]["wall_s"]}
      )
      print(
        f"{method} seed {seed}: {len(rows)} cells trained in {rows[-1]['wall_s']:.1f} s, "
        f"best valid acc {rows[-1]['best']:.4f}"
      )
    best = np.array([r["best"] for r in runs])
    out["searches"][method] = {
      "runs": runs,
      "best_mean": float(best.mean()),
      "best_std": float(best.std()),
    }
    save()
  if args.exhaustive:
    start = time.perf_counter()
    values = np.array([evaluate(a) for a in pool])
    out["pool"] = {
      "values": values.tolist(),
      "best": float(values.max()),
      "median": float(np.median(values)),
      "wall_s": time.perf_counter() - start,
      "random_search_best_expected": expected_best_of_random(values, args.budget),
    }
    for method, res in out["searches"].items():
      for run in res["runs"]:
        run["rank_of_best"] = int(np.sum(values > run["best"])) + 1  # 1 = the pool's best
        run["values_match_pool"] = all(
          values[r["cell"]] == np.float32(r["value"]) for r in run["rows"]
        )
      ranks = np.array([run["rank_of_best"] for run in res["runs"]])
      res.update(rank_mean=float(ranks.mean()), rank_std=float(ranks.std()))
      res["values_match_pool"] = all(run["values_match_pool"] for run in res["runs"])
      print(
        f"{method}: best {res['best_mean']:.4f} +- {res['best_std']:.4f}, rank {ranks.mean():.1f} "
        f"+- {ranks.std():.1f} of {len(pool)} over {len(ranks)} seeds (pool best {values.max():.4f}, "
        f"median {np.median(values):.4f})"
      )
    print(
      f"random search's expected best of {args.budget}: {out['pool']['random_search_best_expected']:.4f}"
    )
    save()
  return out


if __name__ == "__main__":
  main()
