"""Compiled training: jit == no-jit, no retracing, learning, overfitting, resume, embeddings."""

import dataclasses
import json
import os
import pathlib

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from arch2vec_jax import checkpoint as ckpt_lib
from arch2vec_jax import configs, train
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import workdir as workdir_lib
from arch2vec_jax.spaces import nb201

TINY = configs.TINY_MODEL  # the tiny variant's model


def _cells(num, seed=0):
  adj, ops = nb201.all_cells()
  idx = np.random.default_rng(seed).choice(len(ops), num, replace=False)
  return adj[idx], ops[idx]


def _setup(batch_size=8, model_config=TINY, lr=1e-3):
  config = train.TrainConfig(space="nb201", batch_size=batch_size, lr=lr, model=model_config)
  model = train.create_model(len(nb201.OPS), config.model)
  tx = train.create_optimizer(config)
  state = train.create_train_state(model, tx, jax.random.PRNGKey(0), nb201.NUM_NODES)
  return config, model, tx, state


def _batch(adj, ops):
  b = len(ops)
  return (
    jnp.asarray(adj),
    jnp.asarray(ops),
    jnp.asarray(model_lib.count_nodes(ops)),
    jnp.ones((b,), bool),
  )


def test_step_jit_equals_no_jit_and_params_finite():
  _, model, tx, state = _setup()
  adj, ops, n_node, mask = _batch(*_cells(8))
  graph = model_lib.cells_to_graphs(adj, ops, n_node)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  rngs = {"noise": jax.random.PRNGKey(1), "dropout": jax.random.PRNGKey(2)}

  def loss(variables):
    out, _ = model.apply(variables, graph, train=True, rngs=rngs, mutable=["batch_stats"])
    return model_lib.vae_loss(out, adj, ops)[0]

  jitted = jax.jit(loss)(variables)
  with jax.disable_jit():
    eager = loss(variables)
  np.testing.assert_allclose(float(jitted), float(eager), rtol=1e-5)
  # One compiled training step.
  step = train.make_train_step(model, tx)
  new_state, stats = jax.jit(step)(state, adj, ops, n_node, mask)
  assert np.isfinite(float(stats["loss"])) and float(stats["grad_norm"]) > 0
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(new_state.params))
  assert int(new_state.step) == 1
  # Parameters moved (Adam's first step is at most lr per entry) and BN statistics updated.
  delta = max(
    jax.tree.leaves(
      jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params, new_state.params)
    )
  )
  assert 0 < delta <= 1.01e-3
  assert not np.allclose(
    np.asarray(jax.tree.leaves(new_state.batch_stats)[0]),
    np.asarray(jax.tree.leaves(state.batch_stats)[0]),
  )


def test_epoch_is_traced_once_and_loss_decreases():
  _, model, tx, state = _setup(batch_size=16, lr=3e-3)
  adj, ops = _cells(64)
  data = train.Dataset(*jax.device_put((adj, ops, model_lib.count_nodes(ops).astype(np.int32))))
  epoch_fn = chex.assert_max_traces(
    train.make_train_epoch(model, tx, batch_size=16, num_train=64), n=1
  )
  jitted = jax.jit(epoch_fn)
  losses = []
  for epoch in range(6):
    state, stats = jitted(state, data, jnp.int32(epoch))
    assert stats["loss"].shape == (4,)
    losses.append(float(np.mean(stats["loss"])))
  assert int(state.step) == 24
  assert losses[-1] < 0.8 * losses[0], losses


def test_partial_last_batch_sees_every_cell_once():
  """With 20 cells and batch 8 the epoch has 3 steps, and the latent sums are over the 20 cells
  exactly (eval mode and a zero learning rate: every step sees the same parameters)."""
  _, model, _, state = _setup(batch_size=8)
  tx = optax.sgd(0.0)
  state = state._replace(opt_state=tx.init(state.params))
  adj, ops = _cells(20)
  n_node = model_lib.count_nodes(ops).astype(np.int32)
  data = train.Dataset(*jax.device_put((adj, ops, n_node)))
  epoch_fn = jax.jit(train.make_train_epoch(model, tx, batch_size=8, num_train=20, train=False))
  _, stats = epoch_fn(state, data, jnp.int32(0))
  assert stats["loss"].shape == (3,)
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  mu = np.asarray(
    model.apply(variables, model_lib.cells_to_graphs(adj, ops, n_node), train=False)["mu"]
  )
  got = np.asarray(stats["mu_sum"]).sum(0)  # [n, latent]
  np.testing.assert_allclose(got, mu.sum(0), rtol=1e-4, atol=1e-4)
  # One padding slot counted as a cell would add a whole cell's mu: far outside that tolerance.
  assert np.abs(mu).sum(axis=(1, 2)).min() > 1e-1
  np.testing.assert_allclose(
    np.asarray(stats["mu_sq_sum"]).sum(0), (mu * mu).sum(0), rtol=1e-4, atol=1e-4
  )


def test_shuffle_once_repeats_the_order_of_epoch_0():
  """With a zero learning rate in eval mode a step's loss depends only on its batch: compare epochs' orders."""
  _, model, _, state = _setup(batch_size=8)
  tx = optax.sgd(0.0)
  state = state._replace(opt_state=tx.init(state.params))
  adj, ops = _cells(40)
  data = train.Dataset(*jax.device_put((adj, ops, model_lib.count_nodes(ops).astype(np.int32))))
  losses = {}
  for once in (False, True):
    fn = jax.jit(
      train.make_train_epoch(model, tx, batch_size=8, num_train=40, train=False, shuffle_once=once)
    )
    losses[once] = [np.asarray(fn(state, data, jnp.int32(e))[1]["loss"]) for e in range(3)]
  np.testing.assert_array_equal(losses[True][0], losses[True][1])
  np.testing.assert_array_equal(losses[True][0], losses[True][2])
  np.testing.assert_array_equal(
    losses[True][0], losses[False][0]
  )  # epoch 0 is the same permutation
  assert not np.array_equal(losses[False][0], losses[False][1])


def test_tiny_model_overfits_a_handful_of_cells():
  adj, ops = _cells(8, seed=1)
  config = train.TrainConfig(
    space="nb201",
    epochs=60,
    batch_size=8,
    lr=5e-3,
    num_prior_samples=0,
    model=model_lib.ModelConfig(hidden=64, latent=16, layers=2, dropout=0.0),
    train_fraction=64 / 72,
    release_eval_mode=False,
  )
  # 8 cells 8 times for training, then the same 8 held out: their reconstruction is measured.
  cells = (np.concatenate([adj] * 9), np.concatenate([ops] * 9))
  result = train.pretrain(config, None, log=None, cells=cells, save_embeddings=False)
  last = result["epochs"][-1]
  assert last["exact_acc"] == 1.0, last
  assert last["ops_acc"] == 1.0 and last["adj_acc"] == 1.0
  assert result["epochs"][0]["exact_acc"] < 1.0


def _run(workdir, epochs=3, fail_after=None, resume=False, release=False):
  config = dataclasses.replace(  # the tiny variant's batch, model and checkpoints kept
    configs.pretrain_config("nb201", "tiny"),
    epochs=epochs,
    num_prior_samples=300,
    seed=3,
    release_eval_mode=release,
  )

  def log(line):
    if fail_after is not None and line.startswith(f"epoch {fail_after:3d}"):
      raise KeyboardInterrupt("simulated interruption")

  return train.pretrain(config, workdir, resume=resume, log=log, cells=_cells(80, seed=2))


def _strip_times(history):
  return [{k: v for k, v in e.items() if k != "time"} for e in history]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("full")
  return workdir, _run(workdir)


def test_resume_equals_uninterrupted(tmp_path, full_run):
  full_dir, full = full_run
  with pytest.raises(KeyboardInterrupt):
    _run(tmp_path, fail_after=2)  # dies before epoch 2's checkpoint
  assert [e for e, _ in ckpt_lib.list_checkpoints(tmp_path / "checkpoints")] == [0, 1]
  resumed = _run(tmp_path, resume=True)
  assert resumed["timings"]["resumed_at_epoch"] == 2
  chex.assert_trees_all_equal(
    jax.device_get(full["state"].params), jax.device_get(resumed["state"].params)
  )
  assert _strip_times(full["epochs"]) == _strip_times(resumed["epochs"])
  np.testing.assert_array_equal(full["embeddings"], resumed["embeddings"])
  # keep_checkpoints=2: only the newest two remain.
  assert [e for e, _ in ckpt_lib.list_checkpoints(full_dir / "checkpoints")] == [1, 2]


def test_run_outputs_metrics_and_embeddings(full_run):
  full_dir, full = full_run
  metrics = json.loads((full_dir / "metrics.json").read_text())
  assert len(metrics["epochs"]) == 3 and metrics["num_traces"] == {"train": 1, "eval": 0}
  for e in metrics["epochs"]:
    assert (
      0 <= e["validity"] <= 1
      and 0 <= e["uniqueness"] <= 1
      and 0 <= e["validity_strict"] <= e["validity"]
    )
    assert 0 <= e["exact_acc"] <= min(e["ops_acc"], e["adj_acc"]) <= 1
    assert e["time"]["graphs_per_s"] > 0
  emb = embed_lib.load_embeddings(full_dir / "embeddings.npz")
  assert emb["embeddings"].shape == (80, 8)
  adj, ops = _cells(80, seed=2)
  # NB201 identifiers are arch strings in the cells' order.
  np.testing.assert_array_equal(emb["ids"], np.asarray(nb201.hash_batch(adj, ops), dtype=str))
  # `encode` (eval mode) equals the model's mean over nodes of mu.
  state = full["state"]
  enc = embed_lib.encode(
    state.params, state.batch_stats, adj, ops, model_config=TINY, chunk_size=32
  )
  model = train.create_model(len(nb201.OPS), TINY)
  out = model.apply(
    {"params": state.params, "batch_stats": state.batch_stats},
    model_lib.cells_to_graphs(adj, ops),
    train=False,
  )
  np.testing.assert_allclose(enc, np.asarray(out["mu"]).mean(1), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(enc, emb["embeddings"], rtol=1e-5, atol=1e-6)


def test_resume_rejects_a_different_config(full_run):
  full_dir, _ = full_run
  with pytest.raises(ValueError, match="config differs"):
    _run(full_dir, epochs=4, resume=True)


def test_release_eval_mode_freezes_batchnorm_after_epoch_0(full_run):
  _, full = full_run
  result = _run(None, epochs=3, release=True)
  assert [e["train_mode"] for e in result["epochs"]] == [True, False, False]
  assert result["num_traces"] == {"train": 1, "eval": 1}
  # Epoch 0 is the same in both modes; afterwards they differ.
  assert _strip_times(result["epochs"])[0] == _strip_times(full["epochs"])[0]
  assert not np.allclose(result["embeddings"], full["embeddings"])


def test_checkpoint_roundtrip_and_mismatch_error(tmp_path):
  _, _, _, state = _setup()
  path = ckpt_lib.save_checkpoint(tmp_path, state, 4, {"note": 1})
  assert os.path.basename(path) == "checkpoint_000004.msgpack"
  restored, epoch, extra = ckpt_lib.restore_checkpoint(path, state)
  assert epoch == 4 and extra == {"note": 1}
  chex.assert_trees_all_equal(jax.device_get(state), restored)
  _, _, _, other = _setup(model_config=model_lib.ModelConfig(hidden=8, latent=8, layers=3))
  with pytest.raises(ValueError, match="checkpoint_000004.msgpack"):
    ckpt_lib.restore_checkpoint(path, other)


def test_train_config_rejects_bad_values():
  with pytest.raises(ValueError, match="space"):
    train.TrainConfig(space="nb301")
  with pytest.raises(ValueError, match="batch_size"):
    train.TrainConfig(batch_size=0)


def test_resume_accepts_a_checkpoint_from_before_an_option(tmp_path, full_run):
  """A checkpoint whose config lacks a later option (here shuffle_once) resumes as that option's default."""
  _, full = full_run
  with pytest.raises(KeyboardInterrupt):
    _run(tmp_path, fail_after=2)
  epoch, path = ckpt_lib.list_checkpoints(tmp_path / "checkpoints")[-1]
  raw = ckpt_lib.load_raw(path)
  del raw["extra"]["config"]["shuffle_once"]
  ckpt_lib.save_checkpoint(tmp_path / "checkpoints", raw["state"], epoch, raw["extra"], keep=2)
  resumed = _run(tmp_path, resume=True)
  assert resumed["timings"]["resumed_at_epoch"] == 2
  assert _strip_times(full["epochs"]) == _strip_times(resumed["epochs"])


def test_default_is_the_release_schedule():
  """The default trains as the release (eval mode from epoch 1); the method as described is a flag."""
  assert train.TrainConfig().release_eval_mode
  assert train.TrainConfig(release_eval_mode=False).to_dict()["release_eval_mode"] is False


def test_pretrain_seeds_writes_mean_std_range(tmp_path):
  cells = _cells(48, seed=5)
  config = train.TrainConfig(
    space="nb201", epochs=1, batch_size=16, num_prior_samples=50, model=TINY
  )
  # One seed alone is exactly the same run as inside the sweep.
  alone = train.pretrain(
    dataclasses.replace(config, seed=4), None, log=None, cells=cells, save_embeddings=False
  )
  calls = []
  result = train.pretrain_seeds(config, [4, 9], tmp_path, log=calls.append, cells=cells)
  assert [r["seed"] for r in result["runs"]] == [4, 9]
  assert result["runs"][0]["summary"] == alone["summary"]
  assert result["runs"][0]["summary"] != result["runs"][1]["summary"]  # the seeds differ
  for r in result["runs"]:
    with open(os.path.join(r["workdir"], "metrics.json")) as f:
      written = json.load(f)
    assert written["config"]["seed"] == r["seed"] and written["summary"] == r["summary"]
  losses = [r["summary"]["loss"] for r in result["runs"]]
  stats = result["statistics"]["loss"]
  assert stats["mean"] == pytest.approx(np.mean(losses)) and stats["std"] == pytest.approx(
    np.std(losses, ddof=1)
  )
  assert (stats["min"], stats["max"], stats["n"]) == (min(losses), max(losses), 2)
  assert "total_s" in result["statistics"] and "seed" not in result["config"]
  with open(tmp_path / "seeds.json") as f:
    assert json.load(f)["statistics"]["loss"] == stats
  assert calls[-1].startswith("2 seeds: ")
  with pytest.raises(ValueError, match="each seed once"):
    train.pretrain_seeds(config, [1, 1], tmp_path, log=None, cells=cells)


def test_fresh_run_refuses_a_used_workdir_unless_resume_or_overwrite(tmp_path, full_run):
  work = tmp_path / "w"
  _run(work, epochs=2)
  with pytest.raises(
    ValueError, match=r"already holds a run \(metrics.json, embeddings.npz, checkpoints/\)"
  ):
    _run(work, epochs=2)
  assert (
    _run(work, epochs=2, resume=True)["timings"]["resumed_at_epoch"] == 2
  )  # resume: nothing left to do
  old = sorted(os.listdir(work / "checkpoints"))
  config = train.TrainConfig(
    space="nb201", epochs=1, batch_size=16, num_prior_samples=300, seed=5, model=TINY
  )
  fresh = train.pretrain(config, work, overwrite=True, log=None, cells=_cells(80, seed=2))
  assert old == ["checkpoint_000000.msgpack", "checkpoint_000001.msgpack"]
  assert sorted(os.listdir(work / "checkpoints")) == [
    "checkpoint_000000.msgpack"
  ]  # the old run's files are gone
  with open(work / "metrics.json") as f:
    assert json.load(f)["config"]["seed"] == 5 and len(fresh["epochs"]) == 1


def test_workdir_checked_before_any_work(tmp_path):
  (tmp_path / "afile").write_text("x")
  lines = []
  for bad, message in [
    (tmp_path / "afile", "is a file"),
    (tmp_path / "afile" / "sub", "cannot create"),
  ]:
    with pytest.raises(ValueError, match=message):
      train.pretrain(
        train.TrainConfig(space="nb201", epochs=1, model=TINY),
        bad,
        log=lines.append,
        cells=_cells(40),
      )
  assert lines == []  # nothing was loaded or trained


def test_second_process_on_the_same_workdir_stops(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  holder = subprocess.Popen(
    [
      sys.executable,
      "-c",
      (
        "import sys, time\nfrom arch2vec_jax import workdir\n"
        "with workdir.claim(sys.argv[1], resume=False):\n  print('held', flush=True)\n"
        "  time.sleep(60)\n"
      ),
      str(tmp_path),
    ],
    stdout=subprocess.PIPE,
    text=True,
  )
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(
      workdir_lib.WorkdirInUse, match=f"in use by another run \\(pid {holder.pid}\\)"
    ):
      train.pretrain(
        train.TrainConfig(space="nb201", epochs=1, model=TINY), tmp_path, log=None, cells=_cells(40)
      )
  finally:
    holder.kill()
    holder.wait()
  # The kernel released the lock with the process: the folder is free again.
  with workdir_lib.claim(tmp_path, resume=False):
    pass


@pytest.mark.parametrize("damage", ["truncate", "bitflip"])
def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, full_run, damage):
  import shutil  # pylint: disable=import-outside-toplevel

  full_dir, full = full_run
  work = tmp_path / "w"
  shutil.copytree(full_dir, work)
  newest = ckpt_lib.latest_checkpoint(work / "checkpoints")
  data = bytearray(pathlib.Path(newest).read_bytes())
  data = (
    data[: len(data) // 2]
    if damage == "truncate"
    else data[:100] + bytes([data[100] ^ 1]) + data[101:]
  )
  pathlib.Path(newest).write_bytes(bytes(data))
  with pytest.warns(UserWarning, match=os.path.basename(newest)):
    resumed = _run(work, resume=True)
  assert resumed["timings"]["resumed_at_epoch"] == 2  # from epoch 1's checkpoint
  assert _strip_times(full["epochs"]) == _strip_times(resumed["epochs"])
  chex.assert_trees_all_equal(
    jax.device_get(full["state"].params), jax.device_get(resumed["state"].params)
  )


def test_create_optimizer_is_clipped_adam_on_the_flat_vector():
  """The flat pre-training optimizer and the per-leaf `clipped_adam` (the supervised
  analysis's) are one algorithm: same updates to float tolerance, per-leaf moments only
  in the per-leaf one."""
  config, _, tx_flat, state = _setup(lr=1e-2)
  tx_leaf = train.clipped_adam(config)
  params = state.params
  grads = jax.tree.map(
    lambda p: 7.0 * jnp.sin(jnp.arange(p.size, dtype=p.dtype)).reshape(p.shape), params
  )
  flat_state, leaf_state = tx_flat.init(params), tx_leaf.init(params)
  for _ in range(3):
    up_flat, flat_state = tx_flat.update(grads, flat_state, params)
    up_leaf, leaf_state = tx_leaf.update(grads, leaf_state, params)
    chex.assert_trees_all_close(up_flat, up_leaf, rtol=1e-5, atol=1e-7)
  chex.assert_trees_all_equal_structs(leaf_state[1][0].mu, params)
  assert jax.tree.structure(flat_state) != jax.tree.structure(leaf_state)
