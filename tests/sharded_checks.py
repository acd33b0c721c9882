"""Runs in a subprocess with 8 forced CPU devices (tests/test_sharding.py); prints one JSON line of results.

  XLA_FLAGS=--xla_force_host_platform_device_count=8 python tests/sharded_checks.py train|pretrain|search|distributed
  python tests/sharded_checks.py gather PORT PROCESS_ID DELAY_S  # one of a 2-process job

Each check computes the same thing on one device and sharded over several
devices of this process and reports the largest differences (and the values
the parent test asserts on); the parent process keeps its single CPU device.
'distributed PORT' first calls `jax.distributed.initialize` with a localhost
coordinator (one process) and pre-trains over the global mesh. 'gather PORT
PROCESS_ID DELAY_S' is one process of a 2-process localhost job: process 1
reaches `parallel.to_host` DELAY_S seconds after process 0.
"""

import json
import os
import sys
import tempfile
import time

from arch2vec_jax import parallel  # first: the package sets its XLA defaults on import

if __name__ == "__main__" and sys.argv[1] == "distributed":
  parallel.initialize_distributed(f"localhost:{sys.argv[2]}", num_processes=1, process_id=0)
if __name__ == "__main__" and sys.argv[1] == "gather":
  parallel.initialize_distributed(
    f"localhost:{sys.argv[2]}", num_processes=2, process_id=int(sys.argv[3])
  )

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import model as model_lib
from arch2vec_jax import train
from arch2vec_jax.spaces import nb201

TINY = model_lib.ModelConfig(hidden=16, latent=4, layers=2)


def _cells(num, seed=0):
  adj, ops = nb201.all_cells()
  idx = np.random.default_rng(seed).choice(len(ops), num, replace=False)
  return adj[idx], ops[idx]


def _max_rel(a, b):
  """max |a - b| / (max |b| + 1e-30) over the leaves of two pytrees (each leaf scaled by its own max)."""
  out = 0.0
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    out = max(out, float(np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-30)))
  return out


def _max_abs(a, b):
  return max(
    float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))
  )


def _is_pre_bn_bias(path) -> bool:
  """The biases of the GIN MLP's two Linear layers, each followed by a BatchNorm that subtracts its batch mean.

  Their true gradient is exactly 0; what backprop gives is float rounding
  noise (~1e-8), which Adam scales to steps of up to lr, with a sign that
  depends on the order of the float additions. They are the only parameters
  that do not agree to float tolerance between differently partitioned runs
  (and they do not change the training loss).
  """
  keys = [getattr(k, "key", None) for k in path]
  return (
    len(keys) >= 3
    and str(keys[0]).startswith("gin_")
    and keys[1] in ("mlp_0", "mlp_1")
    and keys[2] == "bias"
  )


def _compare_params(a, b):
  """{'rel': max per-leaf relative difference over every parameter but the pre-BN biases, 'pre_bn_bias_abs'}."""
  rel, bias = 0.0, 0.0
  for (path, x), y in zip(jax.tree_util.tree_leaves_with_path(a), jax.tree.leaves(b)):
    if _is_pre_bn_bias(path):
      bias = max(bias, _max_abs(x, y))
    else:
      rel = max(rel, _max_rel(x, y))
  return {"rel": rel, "pre_bn_bias_abs": bias}


def _compare_bn(a, b):
  """{'var_rel', 'mean_abs'} of BatchNorm running statistics (the running means carry the pre-BN biases)."""
  pick = lambda t, name: [
    x for p, x in jax.tree_util.tree_leaves_with_path(t) if getattr(p[-1], "key", None) == name
  ]
  return {
    "var_rel": _max_rel(pick(a, "var"), pick(b, "var")),
    "mean_abs": _max_abs(pick(a, "mean"), pick(b, "mean")),
  }


def _decisions(model, variables, cells=None, z=None):
  """Decoder logits of held-out cells (eval mode, z = mu) or of latents z: (ops [B, n, d], adj [B, n, n])."""
  if z is None:
    adj, ops = cells
    out = model.apply(
      variables, model_lib.cells_to_graphs(adj, ops, model_lib.count_nodes(ops)), train=False
    )
    return np.asarray(out["ops_logits"], np.float64), np.asarray(out["adj_logits"], np.float64)
  ops_l, adj_l = model.apply(variables, z, train=False, method=model_lib.Arch2Vec.decode)
  return np.asarray(ops_l, np.float64), np.asarray(adj_l, np.float64)


def _flips(ref, other, n_node=None, slack=1e-4):
  """Which decoded decisions of `other` differ from `ref`, and which of `ref` a logit change could flip.

  A decision (argmax of a node's op logits, or an upper-triangle adjacency
  logit > 0) can change between two models whose logits differ by at most
  delta only where `ref`'s margin is within 2 delta (ops: top-1 minus top-2
  logit) or delta (adjacency: |logit|); `slack` covers the rounding of other
  compiled programs (the evaluator's) on the same logits.

  Returns per cell / sample [B] bools: 'changed' (a decision differs),
  'unstable' (a decision is within the bound), and per-decision counts.
  """
  (ops_r, adj_r), (ops_o, adj_o) = ref, other
  b, n, _ = ops_r.shape
  real = np.ones((b, n), bool) if n_node is None else np.arange(n)[None] < n_node[:, None]
  upper = np.triu(np.ones((n, n), bool), 1)[None]
  delta_ops = float(np.max(np.abs(ops_o - ops_r))) + slack
  delta_adj = float(np.max(np.abs(adj_o - adj_r) * upper)) + slack
  top2 = np.sort(ops_r, -1)[..., -2:]
  ops_unstable = (top2[..., 1] - top2[..., 0] <= 2 * delta_ops) & real
  adj_unstable = (np.abs(adj_r) <= delta_adj) & upper
  ops_changed = (ops_r.argmax(-1) != ops_o.argmax(-1)) & real
  adj_changed = ((adj_r > 0) != (adj_o > 0)) & upper
  return {
    "changed": ops_changed.any(-1) | adj_changed.any((-1, -2)),
    "unstable": ops_unstable.any(-1) | adj_unstable.any((-1, -2)),
    "changed_outside_bound": int(
      (ops_changed & ~ops_unstable).sum() + (adj_changed & ~adj_unstable).sum()
    ),
    "ops_unstable": int(ops_unstable.sum()),
    "ops_total": int(real.sum()),
    "adj_unstable": int(adj_unstable.sum()),
    "adj_total": int(b * upper.sum()),
    "delta": [delta_ops, delta_adj],
  }


def _discrete_bounds(base, cells, runs):
  """How far the final epoch's discrete metrics of two runs may differ, from run 1's decision margins.

  Held-out reconstruction (the last `1 - train_fraction` of `cells`, z = mu)
  and the prior decodes (the last epoch's samples, each run with its own
  latent mean / std, the same key) of both final models are recomputed here;
  a decision may differ only where run 1's margin is within the measured logit
  difference (`_flips`), which bounds the accuracies and the valid / unique counts.
  """
  one = runs[0]
  model = train.create_model(len(nb201.OPS), base["model"])
  variables = [
    {
      "params": jax.device_get(parallel.local_value(r["state"].params)),
      "batch_stats": jax.device_get(parallel.local_value(r["state"].batch_stats)),
    }
    for r in runs
  ]
  _, val = train.split_cells(*cells, train.TrainConfig(**base).train_fraction)
  recon = _flips(*[_decisions(model, v, cells=val[:2]) for v in variables], n_node=val[2])
  _, _, prior_key = train.run_keys(jax.device_get(one["state"].key))
  key = jax.random.fold_in(prior_key, one["epochs"][-1]["epoch"])
  mean, _ = one["prior"]
  eps = np.asarray(jax.random.normal(key, (base["num_prior_samples"], *mean.shape), jnp.float32))
  prior = _flips(
    *[
      _decisions(model, v, z=jnp.asarray(r["prior"][0] + r["prior"][1] * eps))
      for v, r in zip(variables, runs)
    ]
  )
  return {
    "recon_changed_outside_bound": recon["changed_outside_bound"],
    "prior_changed_outside_bound": prior["changed_outside_bound"],
    "ops_acc": recon["ops_unstable"] / recon["ops_total"],
    "adj_acc": recon["adj_unstable"] / recon["adj_total"],
    "exact_acc": float(recon["unstable"].mean()),
    "num_valid": int(prior["unstable"].sum()),
    "num_unique": int(prior["unstable"].sum()),
    "delta": {"recon": recon["delta"], "prior": prior["delta"]},
    "final": [
      {
        k: r["epochs"][-1][k]
        for k in ("ops_acc", "adj_acc", "exact_acc", "num_valid", "num_unique")
      }
      for r in runs
    ],
  }


def check_train():
  """Two compiled epochs (40 cells, batch 16: 3 steps, the last padded) on 1, 2 and 8 devices; one step too."""
  config = train.TrainConfig(space="nb201", batch_size=16, model=TINY)
  model = train.create_model(len(nb201.OPS), config.model)
  tx = train.create_optimizer(config)
  adj, ops = _cells(40)
  host = train.Dataset(adj, ops, model_lib.count_nodes(ops).astype(np.int32))

  def run(mesh):
    state = train.create_train_state(model, tx, jax.random.PRNGKey(0), nb201.NUM_NODES)
    data = (
      train.Dataset(*jax.device_put(tuple(host)))
      if mesh is None
      else parallel.replicate(host, mesh)
    )
    if mesh is not None:
      state = parallel.replicate(state, mesh)
    fn = train.jit_train_epoch(
      train.make_train_epoch(model, tx, batch_size=16, num_train=40, mesh=mesh), mesh
    )
    all_stats = []
    for e in range(2):
      state, stats = fn(state, data, jnp.int32(e))
      all_stats.append(stats)
    shardings = {
      str(x.sharding.spec) if hasattr(x.sharding, "spec") else "single"
      for x in jax.tree.leaves(state.params)
    }
    return (
      jax.device_get(parallel.local_value(state)),
      jax.device_get(parallel.local_value(all_stats)),
      shardings,
    )

  ref_state, ref_stats, _ = run(None)
  out = {"num_devices": jax.device_count(), "epochs": {}}
  for n in (2, 8):
    state, stats, shardings = run(parallel.data_mesh(n))
    out["epochs"][str(n)] = {
      "params": _compare_params(state.params, ref_state.params),
      "batch_stats": _compare_bn(state.batch_stats, ref_state.batch_stats),
      "opt_state_rel": _max_rel(state.opt_state, ref_state.opt_state),
      "loss_rel": _max_rel([s["loss"] for s in stats], [s["loss"] for s in ref_stats]),
      "mu_sum_rel": _max_rel([s["mu_sum"] for s in stats], [s["mu_sum"] for s in ref_stats]),
      "step": int(state.step),
      "param_shardings": sorted(shardings),
      "moved": _max_abs(
        state.params,
        train.create_train_state(model, tx, jax.random.PRNGKey(0), nb201.NUM_NODES).params,
      ),
    }
  # One step jitted with the batch sharded by `in_shardings` (no constraints inside the step).
  mesh = parallel.data_mesh(8)
  step = train.make_train_step(model, tx)
  state0 = train.create_train_state(model, tx, jax.random.PRNGKey(1), nb201.NUM_NODES)
  batch = (adj[:16], ops[:16], model_lib.count_nodes(ops[:16]).astype(np.int32), np.ones(16, bool))
  ref = jax.device_get(jax.jit(step)(state0, *batch))
  rep, bat = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  sharded = jax.jit(step, in_shardings=(rep, bat, bat, bat, bat), out_shardings=rep)(state0, *batch)
  sharded = jax.device_get(parallel.local_value(sharded))
  out["step"] = {
    "params": _compare_params(sharded[0].params, ref[0].params),
    "batch_stats": _compare_bn(sharded[0].batch_stats, ref[0].batch_stats),
    "loss_rel": _max_rel(sharded[1]["loss"], ref[1]["loss"]),
  }
  return out


def check_pretrain():
  """`train.pretrain` with num_devices 8 vs 1 (2 epochs, metrics, embeddings), a resume across device counts, errors."""
  cells = _cells(96, seed=2)
  # Training mode every epoch: the runs agree to float tolerance. The default release schedule
  # (eval mode from epoch 1) is compared apart below: its frozen BatchNorm running means carry the
  # pre-BN biases' rounding noise (see `_is_pre_bn_bias`) into every later output.
  base = {
    "space": "nb201",
    "epochs": 2,
    "batch_size": 16,
    "num_prior_samples": 200,
    "seed": 3,
    "model": TINY,
    "release_eval_mode": False,
  }
  keys = (
    "loss",
    "loss_ops",
    "loss_adj",
    "kl",
  )  # continuous; the discrete metrics are bounded below
  out = {}
  with tempfile.TemporaryDirectory() as tmp:
    runs = {}
    for n in (1, 8):
      runs[n] = train.pretrain(
        train.TrainConfig(**base, num_devices=n), os.path.join(tmp, str(n)), log=None, cells=cells
      )
    one, eight = runs[1], runs[8]
    out["history"] = {
      k: [[e[k] for e in one["epochs"]], [e[k] for e in eight["epochs"]]] for k in keys
    }
    out["discrete"] = _discrete_bounds(base, cells, (one, eight))
    release = {**base, "release_eval_mode": True}
    rel = [
      train.pretrain(
        train.TrainConfig(**release, num_devices=n),
        None,
        log=None,
        cells=cells,
        save_embeddings=False,
      )
      for n in (1, 8)
    ]
    out["release_history"] = {k: [[e[k] for e in r["epochs"]] for r in rel] for k in keys}
    out["release_discrete"] = _discrete_bounds(release, cells, rel)
    out["params"] = _compare_params(
      jax.device_get(parallel.local_value(eight["state"].params)),
      jax.device_get(one["state"].params),
    )
    out["embeddings_abs"] = float(np.max(np.abs(eight["embeddings"] - one["embeddings"])))
    out["parallel"] = [one["parallel"], eight["parallel"]]
    out["state_devices"] = len(jax.tree.leaves(eight["state"].params)[0].sharding.device_set)
    with open(os.path.join(tmp, "8", "metrics.json")) as f:
      out["written_parallel"] = json.load(f)["parallel"]
    # Resume: epoch 0 on 8 devices (checkpointed), interrupted in epoch 1, which reruns on 4 devices.
    work = os.path.join(tmp, "resume")

    def stop_in_epoch_1(line):
      if line.startswith("epoch   1"):  # epoch 0 is checkpointed, epoch 1 is not
        raise KeyboardInterrupt

    try:
      train.pretrain(
        train.TrainConfig(**base, num_devices=8), work, log=stop_in_epoch_1, cells=cells
      )
    except KeyboardInterrupt:
      pass
    resumed = train.pretrain(
      train.TrainConfig(**base, num_devices=4), work, resume=True, log=None, cells=cells
    )
    out["resumed_at"] = resumed["timings"]["resumed_at_epoch"]
    out["resume_loss"] = [
      [e["loss"] for e in resumed["epochs"]],
      [e["loss"] for e in one["epochs"]],
    ]
    out["resume_params"] = _compare_params(
      jax.device_get(parallel.local_value(resumed["state"].params)),
      jax.device_get(one["state"].params),
    )
  errors = {}
  for name, kwargs in {
    "batch": dict(base, batch_size=12, num_devices=8),
    "too_many": dict(base, num_devices=9),
  }.items():
    try:
      train.pretrain(
        train.TrainConfig(**kwargs), None, log=None, cells=cells, save_embeddings=False
      )
      errors[name] = None
    except ValueError as e:
      errors[name] = str(e)
  out["errors"] = errors
  return out


def check_search():
  """Every method, 5 seeds (not a multiple of 8: padded), sharded over the devices vs the same per-device calls on one."""
  from tiny_search import CONFIGS, make_table  # pylint: disable=import-outside-toplevel

  from arch2vec_jax.search import env as env_lib  # pylint: disable=import-outside-toplevel
  from arch2vec_jax.search import runner  # pylint: disable=import-outside-toplevel

  env, neighbours = make_table()
  keys = jax.random.split(jax.random.PRNGKey(42), 5)
  # The reference runs, on one device, the program each device runs: the same number of seeds per call
  # (5 seeds padded to a multiple of the devices, then split evenly). A different batch shape may round
  # the float methods (RL, BO) differently and move a near-tie, which says nothing about the sharding.
  ndev = jax.device_count()
  padded = jnp.concatenate([keys, jnp.repeat(keys[-1:], -5 % ndev, axis=0)])
  per_device = padded.shape[0] // ndev
  out = {}
  for method, (config, queries) in CONFIGS.items():
    run = runner.make_search(method, config, env, env_lib.Budget(queries), neighbours)
    parts = [
      runner.run_seeds(run, padded[i : i + per_device], devices=jax.devices()[:1])
      for i in range(0, padded.shape[0], per_device)
    ]
    single = jax.device_get(jax.tree.map(lambda *a: jnp.concatenate(a)[:5], *parts))
    sharded_out = runner.run_seeds(
      run, keys
    )  # every device: 5 seeds padded to a multiple of the devices
    sharded = jax.device_get(sharded_out)
    out[method] = {
      "shape": list(np.asarray(sharded.cell).shape),
      "cells_equal": bool(np.array_equal(single.cell, sharded.cell)),
      "max_abs": {
        f: float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
        for f, a, b in zip(env_lib.Trace._fields, single, sharded)
      },
      "distinct_seeds": bool(len({tuple(c) for c in np.asarray(sharded.cell).tolist()}) == 5),
    }
  return out


def check_distributed(port):
  """After `jax.distributed.initialize` (one process, localhost coordinator): pre-training over the global mesh."""
  del port  # used at import, before any other JAX call
  cells = _cells(64, seed=4)
  config = train.TrainConfig(
    space="nb201", epochs=1, batch_size=16, num_prior_samples=100, model=TINY
  )
  with tempfile.TemporaryDirectory() as tmp:
    result = train.pretrain(config, tmp, log=None, cells=cells)
    written = sorted(os.listdir(tmp))
  ref = train.pretrain(
    train.TrainConfig(**{**config.__dict__, "num_devices": 1}), None, log=None, cells=cells
  )
  search = (
    check_search()
  )  # the seeds sharded over the global mesh (placed and gathered across processes)
  return {
    "process_count": jax.process_count(),
    "device_count": jax.device_count(),
    "search": search,
    "parallel": result["parallel"],
    "written": written,
    "loss": [result["epochs"][0]["loss"], ref["epochs"][0]["loss"]],
    "params": _compare_params(
      jax.device_get(parallel.local_value(result["state"].params)),
      jax.device_get(ref["state"].params),
    ),
  }


def check_gather(port, process_id, delay_s):
  """One process of two: a seed-like axis sharded over both, gathered after an unequal wait."""
  del port, process_id  # used at import, before any other JAX call
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("seeds",))
  x = parallel.shard_leading(np.arange(2 * jax.device_count(), dtype=np.float32), mesh)
  if jax.process_index() == 1:
    time.sleep(float(delay_s))  # the slower process's share of the work
  start = time.perf_counter()
  values = parallel.to_host({"x": x})["x"]
  return {
    "process": jax.process_index(),
    "values": values.tolist(),
    "waited_s": time.perf_counter() - start,
  }


CHECKS = {
  "train": check_train,
  "pretrain": check_pretrain,
  "search": check_search,
  "distributed": check_distributed,
  "gather": check_gather,
}

if __name__ == "__main__":
  print("RESULT " + json.dumps(CHECKS[sys.argv[1]](*sys.argv[2:])), flush=True)
