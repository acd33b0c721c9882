"""Pre-training of the arch2vec autoencoder: the run (docs/arch2vec.md §3, §4).

`pretrain` is a short driver of the run's parts, after google/flax examples/ogbg_molpcba's
`train_and_evaluate`: `setup` (cells, mesh, model, state, resume), `CompiledEpochs` (the
compiled epoch), `Evaluator` (per-epoch metrics), `Checkpointer`, `write_embeddings` and
`summarize`; `pretrain_seeds` runs it over seeds. The compiled core (`TrainState`,
`create_optimizer`, `make_train_step`, `make_train_epoch`: one epoch is one compiled
call; the modes and the randomness) is `arch2vec_jax.train_step`, re-exported here. The
configuration (`TrainConfig`, one per space and a tiny variant) lives in
`arch2vec_jax.configs`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arch2vec_jax import checkpoint as ckpt_lib
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio, machine, parallel
from arch2vec_jax import metrics as metrics_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import workdir as workdir_lib
from arch2vec_jax.configs import DEFAULT_EPOCHS, SPACES, TrainConfig
from arch2vec_jax.train_step import (
  Dataset,
  TrainState,
  clipped_adam,
  create_model,
  create_optimizer,
  create_train_state,
  get_space,
  jit_train_epoch,
  load_cells,
  make_train_epoch,
  make_train_step,
  run_keys,
  split_cells,
)

__all__ = [
  "DEFAULT_EPOCHS",
  "SPACES",
  "SUMMARY_KEYS",
  "Checkpointer",
  "CompiledEpochs",
  "Dataset",
  "Evaluator",
  "RunData",
  "Setup",
  "TrainConfig",
  "TrainState",
  "clipped_adam",
  "create_model",
  "create_optimizer",
  "create_train_state",
  "epoch_record",
  "get_space",
  "jit_train_epoch",
  "load_cells",
  "load_run_data",
  "make_train_epoch",
  "make_train_step",
  "pretrain",
  "pretrain_seeds",
  "seed_statistics",
  "setup",
  "split_cells",
  "summarize",
  "write_embeddings",
]

# The final epoch's metrics a run reports (`pretrain`'s "summary"; `pretrain_seeds` averages them).
SUMMARY_KEYS = (
  "loss",
  "ops_acc",
  "adj_acc",
  "exact_acc",
  "ops_acc_release",
  "validity",
  "validity_strict",
  "uniqueness",
  "uniqueness_raw",
)


# ---------------------------------------------------------------------------
# Evaluation.


class Evaluator:
  """Per-epoch metrics: held-out reconstruction and prior validity/uniqueness.

  The held-out cells are chunked and put on the device once; each call is one
  compiled reconstruction pass plus one compiled prior decode, then host-side
  validity and hashing by the space.
  """

  def __init__(
    self,
    model: model_lib.Arch2Vec,
    space: Any,
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    *,
    num_prior_samples: int,
    chunk_size: int,
  ):
    self.model = model
    self.space = space
    self.num_nodes = val[1].shape[1]
    self.num_val = len(val[1])
    chunk = max(1, min(chunk_size, self.num_val))
    self._val = jax.device_put(metrics_lib.chunk_cells(*val, chunk)) if self.num_val else None
    self._recon = metrics_lib.make_reconstruction_fn(model, chunk)
    self.num_prior_samples = num_prior_samples
    self._prior = (
      metrics_lib.make_prior_decoder(model, num_prior_samples) if num_prior_samples else None
    )

  def __call__(
    self, variables: Any, mean: np.ndarray, std: np.ndarray, key: jax.Array
  ) -> dict[str, Any]:
    """Metrics dict (see `metrics`), with timings under 'time'."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if self._val is not None:
      counts = jax.device_get(self._recon(variables, *self._val))
      out.update(metrics_lib.reconstruction_accuracy(counts, self.num_nodes))
    t1 = time.perf_counter()
    if self._prior is not None:
      adj, ops = jax.device_get(self._prior(variables, jnp.asarray(mean), jnp.asarray(std), key))
      t2 = time.perf_counter()
      out.update(metrics_lib.validity_uniqueness(self.space, adj, ops))
    else:
      t2 = time.perf_counter()
    t3 = time.perf_counter()
    out["time"] = {"recon_s": t1 - t0, "prior_decode_s": t2 - t1, "prior_judge_s": t3 - t2}
    return out


# ---------------------------------------------------------------------------
# The run's parts: setup, the compiled epoch, the checkpointer, the embedding writer, the summary.


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _format_epoch(e: dict[str, Any]) -> str:
  parts = [f"epoch {e['epoch']:3d}", f"loss {e['loss']:.5f}"]
  if "ops_acc" in e:
    parts.append(
      f"recon ops {100 * e['ops_acc']:.2f} adj {100 * e['adj_acc']:.2f} exact {100 * e['exact_acc']:.2f}"
    )
  if "validity" in e:
    strict = f" (strict {100 * e['validity_strict']:.2f})" if "validity_strict" in e else ""
    checks = " ".join(f"{k} {100 * v:.1f}" for k, v in e.get("validity_parts", {}).items())
    parts.append(
      f"valid {100 * e['validity']:.2f}{strict}" + (f" [{checks}]" if checks else "") + " "
      f"unique {100 * e['uniqueness']:.2f} (raw {100 * e['uniqueness_raw']:.2f})"
    )
  t = e["time"]
  parts.append(
    f"{t['graphs_per_s']:,.0f} graphs/s ({t['train_s']:.2f}s train, {t['eval_s']:.2f}s metrics)"
  )
  return " | ".join(parts)


class RunData(NamedTuple):
  """A run's cells on the host.

  Attributes:
    space: the `SearchSpace`.
    adjacency, ops: every cell (embedded at the end): int8 [N, n, n], [N, n, d].
    train: the training cells (`split_cells`): a `Dataset` of NumPy arrays, n_node int32.
    val: the held-out cells (adjacency, ops, n_node).
    load_s: seconds spent loading the cells.
  """

  space: Any
  adjacency: np.ndarray
  ops: np.ndarray
  train: Dataset
  val: tuple[np.ndarray, np.ndarray, np.ndarray]
  load_s: float


class Setup(NamedTuple):
  """What `setup` prepares for the epochs.

  Attributes:
    data: the `RunData`.
    mesh: the 'data' mesh, or None on one device (and one process).
    model, tx: model and optimizer.
    state: the `TrainState` to continue from (fresh or restored), placed on the
      device(s), replicated over the mesh.
    train_data: `data.train` on the device(s).
    start_epoch: the first epoch to run (0, or one past the checkpoint's).
    history: the records of the epochs before `start_epoch` (from the checkpoint).
  """

  data: RunData
  mesh: jax.sharding.Mesh | None
  model: model_lib.Arch2Vec
  tx: optax.GradientTransformation
  state: TrainState
  train_data: Dataset
  start_epoch: int
  history: list[dict[str, Any]]


def _silent(_: str) -> None:
  pass


def load_run_data(
  config: TrainConfig, space: Any = None, cells: tuple[np.ndarray, np.ndarray] | None = None
) -> RunData:
  """The config's cells (`load_cells`; or `cells`, (adjacency, ops), for tests) split for training."""
  t0 = time.perf_counter()
  if cells is None:
    space, adjacency, ops = load_cells(config, space)
  else:
    space = get_space(config.space) if space is None else space
    adjacency, ops = (np.asarray(x, np.int8) for x in cells)
  load_s = time.perf_counter() - t0
  (tr_adj, tr_ops, tr_n), val = split_cells(adjacency, ops, config.train_fraction)
  if len(tr_ops) < 1:
    raise ValueError(
      f"no training cells ({len(ops)} cells, train_fraction {config.train_fraction})"
    )
  return RunData(space, adjacency, ops, Dataset(tr_adj, tr_ops, tr_n.astype(np.int32)), val, load_s)


def _describe(config: TrainConfig, data: RunData, mesh, num_devices: int) -> str:
  """The run's first log line."""
  num_cells, n, d = data.ops.shape
  devices = f", data parallel over {num_devices} devices ({jax.process_count()} process(es))"
  return (
    f"{config.space}: {num_cells:,} cells (n={n}, d={d}), {len(data.train.ops):,} train / "
    f"{len(data.val[1]):,} held out; {config.num_epochs} epochs, batch {config.batch_size}, "
    f"backend {jax.default_backend()}" + (devices if mesh else "")
  )


def setup(
  config: TrainConfig,
  checkpointer: Checkpointer | None = None,
  *,
  resume: bool = False,
  space: Any = None,
  cells: tuple[np.ndarray, np.ndarray] | None = None,
  log: Callable[[str], None] = _silent,
) -> Setup:
  """Cells, mesh, model, optimizer and state of a run, resumed from `checkpointer` if `resume`.

  Several devices (`config.num_devices`, default all) or processes: a 'data'
  mesh, the state and training cells replicated over it.
  """
  num_devices = parallel.resolve_num_devices(config.num_devices)
  parallel.check_batch_size(config.batch_size, num_devices)
  mesh = parallel.data_mesh(num_devices) if num_devices > 1 or jax.process_count() > 1 else None
  data = load_run_data(config, space, cells)
  log(_describe(config, data, mesh, num_devices))
  model = create_model(data.ops.shape[-1], config.model)
  tx = create_optimizer(config)
  state = create_train_state(model, tx, jax.random.PRNGKey(config.seed), data.ops.shape[1])
  start_epoch, history = 0, []
  if resume and checkpointer is not None:
    state, start_epoch, history = checkpointer.restore(state, log)
  if mesh is None:
    train_data = Dataset(*jax.device_put(tuple(data.train)))
  else:
    state, train_data = parallel.replicate((state, data.train), mesh)
  return Setup(data, mesh, model, tx, state, train_data, start_epoch, history)


class CompiledEpochs:
  """The compiled epoch of a run: `epochs(state, data, epoch) -> (state, stats)`.

  Compiles (ahead of time, on first use) one `make_train_epoch` per mode:
  training mode, and eval mode from epoch 1 on when `config.release_eval_mode`.
  `num_traces` counts the traces per mode ('train', 'eval'); `compile_s` the
  compile seconds.
  """

  def __init__(
    self,
    model: model_lib.Arch2Vec,
    tx: optax.GradientTransformation,
    config: TrainConfig,
    num_train: int,
    mesh: jax.sharding.Mesh | None = None,
  ):
    self.model, self.tx, self.config, self.num_train, self.mesh = model, tx, config, num_train, mesh
    self.num_traces = {"train": 0, "eval": 0}
    self.compile_s: dict[str, float] = {}
    self._compiled: dict[str, Callable] = {}

  def train_mode(self, epoch: int) -> bool:
    """Whether epoch `epoch` runs in training mode."""
    return not (self.config.release_eval_mode and epoch >= 1)

  def _traced(self, kind: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args):
      self.num_traces[kind] += 1  # runs only while tracing
      return fn(*args)

    return wrapper

  def compiled(self, epoch: int, state: TrainState, data: Dataset) -> Callable:
    """The compiled `(state, data, epoch) -> (state, stats)` of epoch `epoch`'s mode (compiled once)."""
    train_mode = self.train_mode(epoch)
    kind = "train" if train_mode else "eval"
    if kind not in self._compiled:
      c = self.config
      fn = make_train_epoch(
        self.model,
        self.tx,
        batch_size=c.batch_size,
        num_train=self.num_train,
        train=train_mode,
        mesh=self.mesh,
        shuffle_once=c.shuffle_once,
      )
      jitted = jit_train_epoch(self._traced(kind, fn), self.mesh)
      t0 = time.perf_counter()
      self._compiled[kind] = jitted.lower(state, data, jnp.int32(0)).compile()
      self.compile_s[kind] = time.perf_counter() - t0
    return self._compiled[kind]

  def __call__(self, state: TrainState, data: Dataset, epoch: int):
    """Runs epoch `epoch` (the state is donated): (state, stats stacked over the steps)."""
    return self.compiled(epoch, state, data)(state, data, jnp.int32(epoch))


def _comparable(config_dict: dict[str, Any]) -> dict[str, Any]:
  """A config as JSON stores it (checkpoints do), less the device count (a resume may change it)."""
  return {k: v for k, v in json.loads(json.dumps(config_dict)).items() if k != "num_devices"}


class Checkpointer:
  """A run's checkpoints in `<workdir>/checkpoints`: one per epoch, the newest `keep_checkpoints` kept.

  Each holds the state and, beside it, the config, the epoch records so far
  and the epoch's prior (latent mean and std). The files carry the run's id (a
  hash of its config), so pruning touches only this run's files. `write=False`
  (processes other than the first): restore only.
  """

  def __init__(self, workdir: str | os.PathLike, config: TrainConfig, *, write: bool = True):
    self.directory = os.path.join(os.fspath(workdir), "checkpoints")
    self.config_dict = config.to_dict()
    self.keep = config.keep_checkpoints
    self.write = write
    ours = json.dumps(_comparable(self.config_dict), sort_keys=True)
    self.run_id = hashlib.sha256(ours.encode()).hexdigest()[:16]

  def same_run(self, saved: dict[str, Any] | None) -> bool:
    """Whether a checkpoint's config is this run's (an option it lacks ran with its default)."""
    saved = {**TrainConfig().to_dict(), **(saved or {})}
    return _comparable(saved) == _comparable(self.config_dict)

  def restore(
    self, state: TrainState, log: Callable[[str], None] = _silent
  ) -> tuple[TrainState, int, list[dict[str, Any]]]:
    """(state, start epoch, history) from the newest intact checkpoint; `state`, 0, [] without one.

    A damaged newest checkpoint is named in a warning and skipped.

    Raises:
      ValueError: the checkpoint's config is another run's.
    """
    path = ckpt_lib.latest_checkpoint(self.directory, verify=True)
    if path is None:
      return state, 0, []
    state, last_epoch, extra = ckpt_lib.restore_checkpoint(path, state)
    if not self.same_run(extra.get("config")):
      raise ValueError(
        f"{path}: checkpoint config differs from this run's config; use another workdir"
      )
    log(f"resumed from {path} (epoch {last_epoch} done)")
    return state, last_epoch + 1, extra["history"]

  def save(self, state: TrainState, epoch: int, history: list[dict[str, Any]], prior) -> None:
    """Writes epoch `epoch`'s checkpoint (`state` on one device; prior: (mean, std) np [n, latent])."""
    if not self.write:
      return
    mean, std = prior
    extra = {
      "config": self.config_dict,
      "history": history,
      "prior": {"mean": mean.tolist(), "std": std.tolist()},
    }
    ckpt_lib.save_checkpoint(
      self.directory, state, epoch, extra, keep=self.keep, run_id=self.run_id
    )


def epoch_record(
  epoch: int,
  train_mode: bool,
  stats: dict[str, np.ndarray],
  metrics: dict[str, Any],
  *,
  num_train: int,
  train_s: float,
  eval_s: float,
) -> dict[str, Any]:
  """One epoch's record in metrics.json.

  Args:
    epoch, train_mode: the epoch and its mode.
    stats: the epoch's step stats (`make_train_epoch`; [steps] scalars).
    metrics: the `Evaluator`'s metrics, timings under 'time'.
    num_train: the training cells; train_s, eval_s: seconds of training and metrics.
  Returns:
    epoch, train_mode, steps, the step means of loss, loss_ops, loss_adj, kl and
    grad_norm, the metrics, and 'time'.
  """
  means = {k: float(np.mean(stats[k])) for k in ("loss", "loss_ops", "loss_adj", "kl", "grad_norm")}
  speed = {"train_s": train_s, "eval_s": eval_s, "graphs_per_s": num_train / train_s}
  return {
    "epoch": epoch,
    "train_mode": train_mode,
    "steps": len(stats["loss"]),
    **means,
    **{k: v for k, v in metrics.items() if k != "time"},
    "time": {**speed, **metrics["time"]},
  }


def _run_epochs(
  run: Setup,
  config: TrainConfig,
  epochs: CompiledEpochs,
  evaluator: Evaluator,
  checkpointer: Checkpointer | None,
  log: Callable[[str], None],
) -> tuple[TrainState, list[dict[str, Any]], tuple[np.ndarray, np.ndarray] | None]:
  """The epoch loop: train, evaluate, log, checkpoint. Returns (state, history, last prior)."""
  state, history, prior = run.state, list(run.history), None
  num_train = len(run.data.train.ops)
  _, _, prior_key = run_keys(parallel.local_value(state.key))
  for epoch in range(run.start_epoch, config.num_epochs):
    epoch_fn = epochs.compiled(epoch, state, run.train_data)
    t0 = time.perf_counter()
    state, stats = epoch_fn(state, run.train_data, jnp.int32(epoch))
    stats = jax.device_get(parallel.local_value(stats))
    train_s = time.perf_counter() - t0
    prior = metrics_lib.latent_stats(stats["mu_sum"], stats["mu_sq_sum"], num_train)
    local = parallel.local_value(state)  # on one device: metrics and checkpoints
    variables = {"params": local.params, "batch_stats": local.batch_stats}
    t1 = time.perf_counter()
    ev = evaluator(variables, *prior, jax.random.fold_in(prior_key, epoch))
    eval_s = time.perf_counter() - t1
    record = epoch_record(
      epoch,
      epochs.train_mode(epoch),
      stats,
      ev,
      num_train=num_train,
      train_s=train_s,
      eval_s=eval_s,
    )
    history.append(record)
    log(_format_epoch(record))
    if checkpointer is not None:
      checkpointer.save(local, epoch, history, prior)
  return state, history, prior


def write_embeddings(
  state: TrainState,
  data: RunData,
  config: TrainConfig,
  workdir: str | os.PathLike | None,
  log: Callable[[str], None] = _silent,
) -> tuple[np.ndarray, float]:
  """Embeds every cell of the run (`embed.encode`); writes `<workdir>/embeddings.npz` unless workdir is None.

  Returns:
    (embeddings np [N, latent], the seconds encoding took).
  """
  t0 = time.perf_counter()
  local = parallel.local_value(state)
  embeddings = embed_lib.encode(
    jax.device_get(local.params),
    jax.device_get(local.batch_stats),
    data.adjacency,
    data.ops,
    model_config=config.model,
    include_padding=config.embed_include_padding,
  )
  embed_s = time.perf_counter() - t0
  if workdir is not None:
    t0 = time.perf_counter()
    path = os.path.join(os.fspath(workdir), "embeddings.npz")
    embed_lib.save_embeddings(
      path, embeddings, embed_lib.cell_ids(data.space, data.adjacency, data.ops)
    )
    log(
      f"embeddings [{embeddings.shape[0]:,}, {embeddings.shape[1]}] in {embed_s:.2f}s "
      f"(+{time.perf_counter() - t0:.2f}s ids and write) -> {path}"
    )
  return embeddings, embed_s


def summarize(
  config: TrainConfig,
  run: Setup,
  history: list[dict[str, Any]],
  epochs: CompiledEpochs,
  *,
  ceiling: dict[str, float],
  command: str | None,
  total_s: float,
  embed_s: float | None,
) -> dict[str, Any]:
  """The metrics.json content: config, command, device, parallel, data, epochs, summary, timings, num_traces.

  The summary is the final epoch's `SUMMARY_KEYS`; the timings' train_s and
  eval_s sum the epochs this process ran (after `run.start_epoch`).
  """
  ran = history[run.start_epoch :]
  num_cells, n, d = run.data.ops.shape
  final = history[-1] if history else {}
  return {
    "config": config.to_dict(),
    "command": command if command is not None else " ".join(sys.argv),
    "device": machine.machine_info(),
    "parallel": parallel.mesh_info(run.mesh),
    "data": {
      "num_cells": num_cells,
      "num_train": len(run.data.train.ops),
      "num_val": len(run.data.val[1]),
      "num_nodes": n,
      "num_ops": d,
      "reconstruction_ceiling": ceiling,
    },
    "epochs": history,
    "summary": {k: final[k] for k in SUMMARY_KEYS if k in final},
    "timings": {
      "total_s": total_s,
      "data_s": run.data.load_s,
      "compile_s": epochs.compile_s,
      "train_s": sum(e["time"]["train_s"] for e in ran),
      "eval_s": sum(e["time"]["eval_s"] for e in ran),
      "embed_s": embed_s,
      "peak_rss_mib": _peak_rss_mib(),
      "resumed_at_epoch": run.start_epoch or None,
    },
    "num_traces": dict(epochs.num_traces),
  }


def _format_final(result: dict[str, Any]) -> str:
  """The run's last log line: the summary and the total time."""
  metrics = ", ".join(
    f"{k} {100 * v:.2f}%" if k != "loss" else f"loss {v:.5f}" for k, v in result["summary"].items()
  )
  t = result["timings"]
  return (
    f"final: {metrics} | total {t['total_s']:.1f}s (compile {sum(t['compile_s'].values()):.1f}s)"
  )


def pretrain(
  config: TrainConfig,
  workdir: str | os.PathLike | None = None,
  *,
  resume: bool = False,
  overwrite: bool = False,
  command: str | None = None,
  log: Callable[[str], None] | None = print,
  space: Any = None,
  cells: tuple[np.ndarray, np.ndarray] | None = None,
  save_embeddings: bool = True,
) -> dict[str, Any]:
  """Pre-trains arch2vec on a search space; writes metrics, checkpoints, embeddings.

  Args:
    config: `TrainConfig` (e.g. `configs.pretrain_config(space, variant)`).
    workdir: output folder (metrics.json, embeddings.npz, checkpoints/); None
      writes nothing.
    resume: continue from the newest checkpoint in `workdir/checkpoints` (its
      config must be the same); without one, start fresh.
    overwrite: a fresh run in a `workdir` that holds a run replaces it (the
      run files are deleted first); without it (or `resume`) that is an error.
    command: the command line to record.
    log: progress printer (None: silent).
    space: a `SearchSpace` to use instead of `get_space(config.space)`.
    cells: (adjacency, ops) to use instead of `load_cells` (tests).
    save_embeddings: write embeddings.npz of every cell at the end.

  Several devices (`config.num_devices`, default all): data parallel over a
  'data' mesh (`arch2vec_jax.parallel`); with several processes
  (`parallel.initialize_distributed` first) every process runs this function,
  process 0 alone logs and writes files.

  The workdir is claimed before any work (`arch2vec_jax.workdir.claim`): a
  lock held for the run (a second run on it raises `WorkdirInUse`), and a
  clear ValueError for a path that is a file or cannot be written.

  Returns:
    The metrics.json content (`summarize`): config, command, device, parallel
    (devices and processes used), per-epoch metrics, timings, summary; plus
    (not written) 'state' (the final `TrainState`, replicated over the mesh
    when there is one), 'embeddings' (np [N, latent] or None) and 'prior' (the
    last epoch's latent mean and std, np [n, latent] each, that its prior
    samples used; None when no epoch ran).
  """
  run = functools.partial(
    _pretrain, config, workdir, resume, command, log, space, cells, save_embeddings
  )
  if workdir is None or not parallel.is_main_process():
    return run()
  with workdir_lib.claim(workdir, resume=resume, overwrite=overwrite):
    return run()


def _pretrain(
  config, workdir, resume, command, log, space, cells, save_embeddings
) -> dict[str, Any]:
  """`pretrain` inside the claimed workdir: the driver of the parts."""
  t_start = time.perf_counter()
  main = parallel.is_main_process()
  log = log if (log is not None and main) else _silent
  out = workdir if main else None  # where this process writes
  checkpointer = None if workdir is None else Checkpointer(workdir, config, write=main)
  run = setup(config, checkpointer, resume=resume, space=space, cells=cells, log=log)
  # What any encoder of this depth can reconstruct (metrics.reconstruction_ceiling).
  ceiling = metrics_lib.reconstruction_ceiling(*run.data.val, config.model.layers)
  log(
    f"held-out reconstruction ceiling of a {config.model.layers}-layer GIN + inner-product "
    f"decoder: adj {100 * ceiling['adj_acc_max']:.2f}%, exact {100 * ceiling['exact_acc_max']:.2f}%"
  )
  evaluator = Evaluator(
    run.model,
    run.data.space,
    run.data.val,
    num_prior_samples=config.num_prior_samples,
    chunk_size=config.eval_chunk,
  )
  epochs = CompiledEpochs(run.model, run.tx, config, len(run.data.train.ops), run.mesh)
  state, history, prior = _run_epochs(run, config, epochs, evaluator, checkpointer, log)
  embeddings, embed_s = (
    write_embeddings(state, run.data, config, out, log) if save_embeddings else (None, None)
  )
  total_s = time.perf_counter() - t_start
  result = summarize(
    config,
    run,
    history,
    epochs,
    ceiling=ceiling,
    command=command,
    total_s=total_s,
    embed_s=embed_s,
  )
  if history:
    log(_format_final(result))
  if out is not None:
    fileio.atomic_write_json(os.path.join(os.fspath(out), "metrics.json"), result)
  return {**result, "state": state, "embeddings": embeddings, "prior": prior}


def seed_statistics(summaries: list[dict[str, float]]) -> dict[str, dict[str, float]]:
  """Mean, sample std (ddof 1; 0 for one run), min and max of each summary metric over runs.

  Args:
    summaries: one `pretrain(...)["summary"]`-like dict per run.
  Returns:
    {metric: {"mean", "std", "min", "max", "n"}} for the metrics every run has.
  """
  keys = [k for k in summaries[0] if all(k in s for s in summaries)] if summaries else []
  out = {}
  for k in keys:
    v = np.asarray([s[k] for s in summaries], np.float64)
    out[k] = {
      "mean": float(v.mean()),
      "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
      "min": float(v.min()),
      "max": float(v.max()),
      "n": len(v),
    }
  return out


def pretrain_seeds(
  config: TrainConfig,
  seeds: list[int],
  workdir: str | os.PathLike,
  *,
  resume: bool = False,
  overwrite: bool = False,
  command: str | None = None,
  log: Callable[[str], None] | None = print,
  cells: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
  """Pre-trains one run per seed (`<workdir>/seed_<s>/`) and writes their statistics to `<workdir>/seeds.json`.

  Each run is `pretrain(dataclasses.replace(config, seed=s), <workdir>/seed_<s>)`
  (its own metrics.json, embeddings.npz, checkpoints); `resume` resumes each,
  so an interrupted sweep reruns only what is missing and ends as an
  uninterrupted one. seeds.json is rewritten (atomically) after every seed.
  The sweep's folder is claimed like a run's (`pretrain`); `overwrite`
  replaces a sweep and its runs. `cells`: as in `pretrain` (tests).

  Returns:
    seeds.json's content: config (without the seed), command, device, seeds,
    runs (seed, workdir, summary, total_s per run), statistics
    (`seed_statistics` of the summaries plus total_s).
  """
  if not seeds:
    raise ValueError("seeds: give at least one seed")
  if len(set(seeds)) != len(seeds):
    raise ValueError(f"seeds: each seed once, got {list(seeds)}")
  main = parallel.is_main_process()
  if main:
    with workdir_lib.claim(workdir, resume=resume, overwrite=overwrite):
      return _pretrain_seeds(config, seeds, workdir, resume, overwrite, command, log, cells, main)
  return _pretrain_seeds(config, seeds, workdir, resume, overwrite, command, log, cells, main)


def _pretrain_seeds(config, seeds, workdir, resume, overwrite, command, log, cells, main):
  """`pretrain_seeds` inside the claimed sweep folder."""
  say = log if (log is not None and main) else (lambda _: None)
  runs = []
  result: dict[str, Any] = {}
  for i, seed in enumerate(seeds):
    run_dir = os.path.join(os.fspath(workdir), f"seed_{seed}")
    say(f"--- seed {seed} ({i + 1}/{len(seeds)}) -> {run_dir}")
    r = pretrain(
      dataclasses.replace(config, seed=int(seed)),
      run_dir,
      resume=resume,
      overwrite=overwrite,
      command=command,
      log=log,
      cells=cells,
    )
    runs.append(
      {
        "seed": int(seed),
        "workdir": run_dir,
        "summary": r["summary"],
        "total_s": r["timings"]["total_s"],
      }
    )
    stats = seed_statistics([{**run["summary"], "total_s": run["total_s"]} for run in runs])
    result = {
      "config": {k: v for k, v in config.to_dict().items() if k != "seed"},
      "command": command if command is not None else " ".join(sys.argv),
      "device": machine.machine_info(),
      "seeds": [int(s) for s in seeds],
      "runs": runs,
      "statistics": stats,
    }
    if main:
      fileio.atomic_write_json(os.path.join(os.fspath(workdir), "seeds.json"), result)
  say(
    f"{len(runs)} seeds: "
    + ", ".join(
      f"{k} {100 * v['mean']:.2f} +- {100 * v['std']:.2f} [{100 * v['min']:.2f}, {100 * v['max']:.2f}]"
      for k, v in result["statistics"].items()
      if k not in ("loss", "total_s", "ops_acc_release")
    )
  )
  return result
