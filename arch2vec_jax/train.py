"""Pre-training of the arch2vec autoencoder (docs/arch2vec.md §3, §4).

Layout after google/flax examples/ogbg_molpcba: `create_model`,
`create_optimizer`, `create_train_state`, `make_train_step`, and
`pretrain` (the whole run: data, epochs, metrics, checkpoints, embeddings).

One epoch is ONE compiled call (`make_train_epoch`): the training cells live on
the device, the epoch's permutation is drawn from
`fold_in(shuffle_key, epoch)` and a `lax.scan` runs every step; there is no
per-step Python dispatch. The last partial batch is padded with padding cells
(cell mask 0, n_node 0) that are left out of the loss means, the BatchNorm
statistics and the latent statistics, so every training cell is seen exactly
once per epoch and a partial batch counts as in the release (B = its real cells).

Modes: the default (`release_eval_mode=True`) is the public release's
behaviour, which switches to eval mode after epoch 0 and never back: from
epoch 1 on the steps use the running BatchNorm statistics (not updated), no
decoder dropout, and z = mu. It is the default because it reproduces the
paper's Table 1 on every seed and instruction set measured, while training in
training mode every epoch (`release_eval_mode=False`, the method as described)
leaves the op reconstruction to chance on some seeds and CPUs (NB201) or does
not learn the ops at all (DARTS); results/pretrain/README.md has the numbers.

Randomness: `TrainState.key` is the run's training key, fixed for the run;
step t draws its noise and dropout keys from `fold_in(step_key, t)` and epoch e
its permutation from `fold_in(shuffle_key, e)` (`shuffle_once=True`: every epoch
the permutation of epoch 0, the release's fixed order) and its prior samples
from `fold_in(prior_key, e)`. A resumed run therefore replays exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from arch2vec_jax import checkpoint as ckpt_lib
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio, machine, parallel
from arch2vec_jax import metrics as metrics_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import workdir as workdir_lib

__all__ = [
  "DEFAULT_EPOCHS",
  "SPACES",
  "SUMMARY_KEYS",
  "Dataset",
  "Evaluator",
  "TrainConfig",
  "TrainState",
  "create_model",
  "create_optimizer",
  "create_train_state",
  "get_space",
  "jit_train_epoch",
  "load_cells",
  "make_train_epoch",
  "make_train_step",
  "pretrain",
  "pretrain_seeds",
  "seed_statistics",
  "split_cells",
]

SPACES = ("nb101", "nb201", "darts")
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
DEFAULT_EPOCHS = {"nb101": 8, "nb201": 10, "darts": 10}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Pre-training configuration (defaults: the paper's).

  Attributes:
    space: 'nb101', 'nb201' or 'darts'.
    epochs: None = the space's default (NB101 8, NB201 10, DARTS 10).
    batch_size: cells per step (32).
    lr, b1, b2, adam_eps: Adam (1e-3, 0.9, 0.999, 1e-8).
    clip_norm: global-norm gradient clip (5).
    seed: the run's seed (init, shuffling, noise, dropout, prior samples).
    train_fraction: the first this fraction of `space.cells()` trains, the rest
      is held out (0.9).
    release_eval_mode: eval mode from epoch 1 on, as the release (default
      True: it reproduces the paper's Table 1 robustly); False trains in
      training mode every epoch, as the method is described.
    shuffle_once: visit the training cells in one fixed random order every epoch
      (the release permutes them once); default: a new permutation per epoch.
    num_prior_samples: latents decoded for validity / uniqueness (10,000).
    eval_chunk: cells per chunk in the held-out reconstruction pass.
    num_cells: DARTS: cells to sample (None = 600,000). NB101/NB201: if set, use
      only the first num_cells cells of the space (quick runs, tests).
    darts_seed: DARTS sampling seed.
    keep_checkpoints: newest checkpoints kept in `<workdir>/checkpoints`.
    embed_include_padding: embeddings averaged over all node slots (release)
      instead of the real nodes.
    num_devices: data parallelism: the global batch of every step is split
      over this many devices (a 1-D 'data' mesh, `arch2vec_jax.parallel`);
      None (default) = every device JAX sees, over all processes (one on a
      plain CPU: nothing changes). `batch_size` stays the global batch and
      must be a multiple of the device count (no padding; a clear error
      otherwise). The result equals single-device training to float
      tolerance, so it is not part of the config a resume must match.
    model: `model.ModelConfig`.
  """

  space: str = "nb201"
  epochs: int | None = None
  batch_size: int = 32
  lr: float = 1e-3
  b1: float = 0.9
  b2: float = 0.999
  adam_eps: float = 1e-8
  clip_norm: float = 5.0
  seed: int = 0
  train_fraction: float = 0.9
  release_eval_mode: bool = True
  shuffle_once: bool = False
  num_prior_samples: int = 10_000
  eval_chunk: int = 2048
  num_cells: int | None = None
  darts_seed: int = 0
  keep_checkpoints: int = 3
  embed_include_padding: bool = False
  num_devices: int | None = None
  model: model_lib.ModelConfig = model_lib.ModelConfig()

  def __post_init__(self):
    if self.space not in SPACES:
      raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
    if self.epochs is not None and int(self.epochs) < 0:
      raise ValueError(f"epochs must be >= 0, got {self.epochs}")
    if int(self.batch_size) < 1:
      raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
    if not float(self.lr) > 0:
      raise ValueError(f"lr must be > 0, got {self.lr}")
    if not 0.0 < float(self.train_fraction) < 1.0:
      raise ValueError(f"train_fraction must be in (0, 1), got {self.train_fraction}")
    if int(self.num_prior_samples) < 0:
      raise ValueError(f"num_prior_samples must be >= 0, got {self.num_prior_samples}")
    if self.num_cells is not None and int(self.num_cells) < 2:
      raise ValueError(f"num_cells must be >= 2, got {self.num_cells}")
    if int(self.keep_checkpoints) < 1:
      raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
    if int(self.eval_chunk) < 1:
      raise ValueError(f"eval_chunk must be >= 1, got {self.eval_chunk}")
    if self.num_devices is not None and int(self.num_devices) < 1:
      raise ValueError(
        f"num_devices must be >= 1 (or None for every device), got {self.num_devices}"
      )

  @property
  def num_epochs(self) -> int:
    return DEFAULT_EPOCHS[self.space] if self.epochs is None else int(self.epochs)

  def to_dict(self) -> dict[str, Any]:
    d = dataclasses.asdict(self)
    d["num_epochs"] = self.num_epochs
    return d


class TrainState(NamedTuple):
  """Everything that changes during training (a pytree).

  Attributes:
    params: model parameters.
    batch_stats: BatchNorm running statistics.
    opt_state: Optax state.
    step: int32 scalar, steps taken.
    key: uint32 [2], the run's training key (constant; see the module docstring).
  """

  params: Any
  batch_stats: Any
  opt_state: Any
  step: jax.Array
  key: jax.Array


class Dataset(NamedTuple):
  """Device-resident cells: adjacency int8 [N, n, n], ops int8 [N, n, d], n_node int32 [N]."""

  adjacency: jax.Array
  ops: jax.Array
  n_node: jax.Array


# ---------------------------------------------------------------------------
# Data.


def get_space(name: str) -> Any:
  """The `SearchSpace` object `arch2vec_jax.spaces.<name>.SPACE`."""
  if name not in SPACES:
    raise ValueError(f"unknown space {name!r}; expected one of {SPACES}")
  return importlib.import_module(f"arch2vec_jax.spaces.{name}").SPACE


def load_cells(config: TrainConfig, space: Any = None) -> tuple[Any, np.ndarray, np.ndarray]:
  """(space, adjacency int8 [N, n, n], ops int8 [N, n, d]) for a config."""
  space = get_space(config.space) if space is None else space
  if config.space == "darts":
    kwargs = {"seed": config.darts_seed}
    if config.num_cells is not None:
      kwargs["num_cells"] = int(config.num_cells)
    adj, ops = space.cells(**kwargs)
  else:
    adj, ops = space.cells()
    if config.num_cells is not None:
      adj, ops = adj[: config.num_cells], ops[: config.num_cells]
  return space, np.asarray(adj, np.int8), np.asarray(ops, np.int8)


def split_cells(adjacency: np.ndarray, ops: np.ndarray, train_fraction: float = 0.9):
  """First `int(N * train_fraction)` cells train, the rest validate (the release's split).

  Returns:
    (train, val): tuples (adjacency, ops, n_node) of NumPy arrays.
  """
  n_node = model_lib.count_nodes(ops)
  cut = int(len(ops) * train_fraction)
  return (adjacency[:cut], ops[:cut], n_node[:cut]), (adjacency[cut:], ops[cut:], n_node[cut:])


# ---------------------------------------------------------------------------
# Model, optimizer, state.


def create_model(
  num_ops: int, model_config: model_lib.ModelConfig = model_lib.ModelConfig()
) -> model_lib.Arch2Vec:
  """The arch2vec model for ops of width `num_ops`."""
  return model_lib.Arch2Vec(num_ops, model_config)


def create_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """Global-norm clipping (5) then Adam (1e-3, 0.9, 0.999, 1e-8), as the release.

  The training code applies it to the flat parameter vector
  (`jax.flatten_util.ravel_pytree(params)[0]`): one fused update for all ~136k
  parameters instead of one small kernel chain per leaf (XLA:CPU pays a fixed
  cost per kernel). Clipping by the global norm is the same on the flat vector.
  """
  return optax.chain(
    optax.clip_by_global_norm(config.clip_norm),
    optax.adam(config.lr, b1=config.b1, b2=config.b2, eps=config.adam_eps),
  )


def create_train_state(
  model: model_lib.Arch2Vec, tx: optax.GradientTransformation, key: jax.Array, num_nodes: int
) -> TrainState:
  """Initialises parameters, BatchNorm statistics and the optimizer.

  Args:
    model: the model; tx: the optimizer (`create_optimizer`).
    key: uint32 [2] PRNG key (split into the init key and the training key).
    num_nodes: n, the node budget of a cell.

  Returns:
    A `TrainState`; its `opt_state` is `tx.init` of the flat parameter vector.
  """
  init_key, train_key = jax.random.split(key)
  graph = model_lib.cells_to_graphs(
    jnp.zeros((2, num_nodes, num_nodes), jnp.int8),
    jnp.zeros((2, num_nodes, model.num_ops), jnp.int8),
  )
  k1, k2, k3 = jax.random.split(init_key, 3)
  variables = model.init({"params": k1, "noise": k2, "dropout": k3}, graph, train=False)
  params = variables["params"]
  return TrainState(
    params=params,
    batch_stats=variables["batch_stats"],
    opt_state=tx.init(ravel_pytree(params)[0]),
    step=jnp.zeros((), jnp.int32),
    key=train_key,
  )


def _keys(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(step_key, shuffle_key, prior_key) derived from the training key."""
  step_key, shuffle_key, prior_key = jax.random.split(key, 3)
  return step_key, shuffle_key, prior_key


def _rbg_keys(key: jax.Array, num: int) -> list[jax.Array]:
  """`num` 'rbg' keys seeded from a threefry key.

  Their bits come from XLA's RngBitGenerator, which compiles in a fraction of
  the time of threefry's unrolled rounds (about 10 s of CPU less per compiled
  training step on a 2-core CPU) and runs faster; the streams are still a pure
  function of the seed, so runs stay reproducible.
  """
  data = jax.random.bits(key, (num, 4), jnp.uint32)
  return [jax.random.wrap_key_data(d, impl="rbg") for d in data]


def _make_flat_step(
  model: model_lib.Arch2Vec, tx: optax.GradientTransformation, train: bool, unravel: Callable
):
  """The training step on a state whose `params` is the flat parameter vector."""

  def step(state: TrainState, adjacency, ops, n_node, cell_mask):
    b, n, _ = ops.shape
    chex.assert_shape(adjacency, (b, n, n))
    chex.assert_shape([n_node, cell_mask], (b,))
    chex.assert_rank(state.params, 1)
    noise_key, dropout_key = _rbg_keys(jax.random.fold_in(_keys(state.key)[0], state.step), 2)
    graph = model_lib.cells_to_graphs(adjacency, ops, n_node)
    cell_mask = cell_mask.astype(jnp.float32)

    def loss_fn(flat_params):
      variables = {"params": unravel(flat_params), "batch_stats": state.batch_stats}
      if train:
        out, updates = model.apply(
          variables,
          graph,
          train=True,
          rngs={"noise": noise_key, "dropout": dropout_key},
          mutable=["batch_stats"],
        )
        batch_stats = updates["batch_stats"]
      else:
        out = model.apply(variables, graph, train=False)
        batch_stats = state.batch_stats
      loss, terms = model_lib.vae_loss(out, adjacency, ops, cell_mask)
      return loss, (terms, batch_stats, out["mu"])

    (loss, (terms, batch_stats, mu)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = state.params + updates
    mu_w = mu * cell_mask[:, None, None]
    stats = {
      "loss": loss,
      **terms,
      "grad_norm": jnp.sqrt(jnp.sum(jnp.square(grads))),
      "mu_sum": mu_w.sum(0),
      "mu_sq_sum": (mu_w * mu).sum(0),
    }
    return TrainState(params, batch_stats, opt_state, state.step + 1, state.key), stats

  return step


def make_train_step(
  model: model_lib.Arch2Vec, tx: optax.GradientTransformation, train: bool = True
) -> Callable:
  """A pure `step(state, adjacency, ops, n_node, cell_mask) -> (state, stats)` (not jitted).

  Args:
    model, tx: model and optimizer.
    train: training mode (batch-statistics BN updated, z sampled, dropout) or
      eval mode (the release's quirk after epoch 0).

  Inputs: adjacency [B, n, n], ops [B, n, d], n_node int [B] (0 = padding cell),
  cell_mask [B] (0 = padding cell, left out of the loss).
  The returned stats: loss, loss_ops, loss_adj, kl, grad_norm (before clipping)
  scalars; mu_sum, mu_sq_sum [n, latent] over the batch's real cells (for the
  prior's mean and std).
  """

  def step(state: TrainState, adjacency, ops, n_node, cell_mask):
    flat, unravel = ravel_pytree(state.params)
    flat_step = _make_flat_step(model, tx, train, unravel)
    new_state, stats = flat_step(state._replace(params=flat), adjacency, ops, n_node, cell_mask)
    return new_state._replace(params=unravel(new_state.params)), stats

  return step


def make_train_epoch(
  model: model_lib.Arch2Vec,
  tx: optax.GradientTransformation,
  *,
  batch_size: int,
  num_train: int,
  train: bool = True,
  mesh: jax.sharding.Mesh | None = None,
  shuffle_once: bool = False,
) -> Callable[[TrainState, Dataset, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
  """A pure `epoch(state, data, epoch) -> (state, stats)`: one shuffled pass in a `lax.scan`.

  Not jitted here; `jit_train_epoch` (or `jax.jit(fn, donate_argnums=0)`) it.
  `epoch` may be traced (an int32 scalar), so one compilation serves every
  epoch. Inside, the parameters are carried as one flat vector (see
  `create_optimizer`).

  Args:
    model, tx: model and optimizer.
    batch_size: the global batch B (cells per step, over all devices).
    num_train: N, the training cells in `data` ([N, ...] arrays).
    train: training or eval mode (see `make_train_step`).
    mesh: data parallelism: a 1-D mesh (`parallel.data_mesh`) whose 'data'
      axis splits every step's batch ([B] indices, [B, n, n] and [B, n, d]
      cells: each device gathers and processes B / devices cells of the
      replicated `data`); B must be a multiple of its size. None: no
      sharding constraints (one device). The math is the same: batch sums
      become all-reduces.
    shuffle_once: every epoch uses epoch 0's permutation (the release's order).

  Returns stats stacked over the steps ([steps] scalars, [steps, n, latent] sums).
  """
  steps = -(-num_train // batch_size)
  padded = steps * batch_size
  if mesh is not None:
    parallel.check_batch_size(batch_size, mesh.devices.size)
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, parallel.DATA_AXIS))
    shard = functools.partial(
      jax.lax.with_sharding_constraint, shardings=parallel.batch_sharded(mesh)
    )
  else:
    shard = lambda x: x

  def epoch_fn(state: TrainState, data: Dataset, epoch):
    chex.assert_equal(data.ops.shape[0], num_train)
    flat, unravel = ravel_pytree(state.params)
    step_fn = _make_flat_step(model, tx, train, unravel)
    (perm_key,) = _rbg_keys(
      jax.random.fold_in(_keys(state.key)[1], 0 if shuffle_once else epoch), 1
    )
    perm = jax.random.permutation(perm_key, num_train).astype(jnp.int32)
    perm = jnp.concatenate([perm, jnp.zeros((padded - num_train,), jnp.int32)]).reshape(
      steps, batch_size
    )
    valid = (jnp.arange(padded) < num_train).reshape(steps, batch_size)
    if mesh is not None:
      perm, valid = jax.lax.with_sharding_constraint((perm, valid), split)

    def body(state, xs):
      idx, mask = shard(xs)
      adj = shard(jnp.take(data.adjacency, idx, axis=0))
      ops = shard(jnp.take(data.ops, idx, axis=0))
      n_node = shard(jnp.where(mask, jnp.take(data.n_node, idx, axis=0), 0))
      return step_fn(state, adj, ops, n_node, mask)

    state, stats = jax.lax.scan(body, state._replace(params=flat), (perm, valid))
    return state._replace(params=unravel(state.params)), stats

  return epoch_fn


def jit_train_epoch(epoch_fn: Callable, mesh: jax.sharding.Mesh | None = None) -> Callable:
  """`jax.jit` of an epoch function (`make_train_epoch`), the state donated.

  With a mesh: the state, the training cells and the epoch number replicated
  over it, the outputs (state, stats) replicated (`parallel.replicated`); pass
  the same mesh to `make_train_epoch`. Inputs placed otherwise are moved (pass
  `parallel.replicate(x, mesh)` to avoid the copy, and with several processes).
  """
  if mesh is None:
    return jax.jit(epoch_fn, donate_argnums=0)
  rep = parallel.replicated(mesh)
  return jax.jit(epoch_fn, in_shardings=(rep, rep, rep), out_shardings=rep, donate_argnums=0)


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
# The whole run.


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
    config: `TrainConfig`.
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
    The metrics.json content: config, command, device, parallel (devices and
    processes used), per-epoch metrics, timings, summary; plus (not written)
    'state' (the final `TrainState`, replicated over the mesh when there is
    one), 'embeddings' (np [N, latent] or None) and 'prior' (the last epoch's
    latent mean and std, np [n, latent] each, that its prior samples used;
    None when no epoch ran).
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
  """`pretrain` inside the claimed workdir."""
  main = parallel.is_main_process()
  log = log if (log is not None and main) else (lambda _: None)
  num_devices = parallel.resolve_num_devices(config.num_devices)
  parallel.check_batch_size(config.batch_size, num_devices)
  mesh = parallel.data_mesh(num_devices) if num_devices > 1 or jax.process_count() > 1 else None
  t_start = time.perf_counter()
  if cells is None:
    space, adj_all, ops_all = load_cells(config, space)
  else:
    space = get_space(config.space) if space is None else space
    adj_all, ops_all = (np.asarray(x, np.int8) for x in cells)
  t_data = time.perf_counter() - t_start
  num_cells, n, d = ops_all.shape
  train_np, val_np = split_cells(adj_all, ops_all, config.train_fraction)
  num_train = len(train_np[1])
  if num_train < 1:
    raise ValueError(
      f"no training cells ({num_cells} cells, train_fraction {config.train_fraction})"
    )
  log(
    f"{config.space}: {num_cells:,} cells (n={n}, d={d}), {num_train:,} train / {len(val_np[1]):,} held out; "
    f"{config.num_epochs} epochs, batch {config.batch_size}, backend {jax.default_backend()}"
    + (
      f", data parallel over {num_devices} devices ({jax.process_count()} process(es))"
      if mesh
      else ""
    )
  )

  model = create_model(d, config.model)
  tx = create_optimizer(config)
  state = create_train_state(model, tx, jax.random.PRNGKey(config.seed), n)
  history: list[dict[str, Any]] = []
  start_epoch = 0
  ckpt_dir = os.path.join(os.fspath(workdir), "checkpoints") if workdir is not None else None
  config_dict = config.to_dict()

  # The run's identity in its checkpoints (pruning touches only this run's files): its config, less the
  # device count, which a resume may change (same result to float tolerance).
  run_id = hashlib.sha256(
    json.dumps(
      {k: v for k, v in config_dict.items() if k != "num_devices"}, sort_keys=True, default=str
    ).encode()
  ).hexdigest()[:16]

  def same_run(saved):  # the device count may change on resume (same result to float tolerance)
    ours = json.loads(json.dumps(config_dict))
    # A checkpoint from before an option existed ran with that option's default.
    saved = {**json.loads(json.dumps(TrainConfig().to_dict())), **(saved or {})}
    return {k: v for k, v in saved.items() if k != "num_devices"} == {
      k: v for k, v in ours.items() if k != "num_devices"
    }

  if resume and ckpt_dir is not None:
    path = ckpt_lib.latest_checkpoint(
      ckpt_dir, verify=True
    )  # a damaged newest one: warned, skipped
    if path is not None:
      state, last_epoch, extra = ckpt_lib.restore_checkpoint(path, state)
      if not same_run(extra.get("config")):
        raise ValueError(
          f"{path}: checkpoint config differs from this run's config; use another workdir"
        )
      history = extra["history"]
      start_epoch = last_epoch + 1
      log(f"resumed from {path} (epoch {last_epoch} done)")

  # What any encoder of this depth can reconstruct (metrics.reconstruction_ceiling).
  ceiling = metrics_lib.reconstruction_ceiling(*val_np, config.model.layers)
  log(
    f"held-out reconstruction ceiling of a {config.model.layers}-layer GIN + inner-product decoder: "
    f"adj {100 * ceiling['adj_acc_max']:.2f}%, exact {100 * ceiling['exact_acc_max']:.2f}%"
  )
  data = Dataset(train_np[0], train_np[1], train_np[2].astype(np.int32))
  if mesh is None:
    data = Dataset(*jax.device_put(tuple(data)))
  else:
    state, data = parallel.replicate((state, data), mesh)
  evaluator = Evaluator(
    model, space, val_np, num_prior_samples=config.num_prior_samples, chunk_size=config.eval_chunk
  )
  traces = {"train": 0, "eval": 0}

  def traced(kind, fn):
    @functools.wraps(fn)
    def wrapper(*args):
      traces[kind] += 1  # runs only while tracing
      return fn(*args)

    return wrapper

  epoch_fns = {}
  compile_s = {}

  def get_epoch_fn(train_mode: bool):
    kind = "train" if train_mode else "eval"
    if kind not in epoch_fns:
      fn = make_train_epoch(
        model,
        tx,
        batch_size=config.batch_size,
        num_train=num_train,
        train=train_mode,
        mesh=mesh,
        shuffle_once=config.shuffle_once,
      )
      jitted = jit_train_epoch(traced(kind, fn), mesh)
      t0 = time.perf_counter()
      epoch_fns[kind] = jitted.lower(state, data, jnp.int32(0)).compile()
      compile_s[kind] = time.perf_counter() - t0
    return epoch_fns[kind]

  _, _, prior_key = _keys(parallel.local_value(state.key))
  steps = -(-num_train // config.batch_size)
  prior = None
  for epoch in range(start_epoch, config.num_epochs):
    train_mode = not (config.release_eval_mode and epoch >= 1)
    epoch_fn = get_epoch_fn(train_mode)
    t0 = time.perf_counter()
    state, stats = epoch_fn(state, data, jnp.int32(epoch))
    stats = jax.device_get(parallel.local_value(stats))
    train_s = time.perf_counter() - t0
    mean, std = metrics_lib.latent_stats(stats["mu_sum"], stats["mu_sq_sum"], num_train)
    prior = (mean, std)
    local = parallel.local_value(state)  # on one device: metrics and checkpoints
    variables = {"params": local.params, "batch_stats": local.batch_stats}
    t1 = time.perf_counter()
    ev = evaluator(variables, mean, std, jax.random.fold_in(prior_key, epoch))
    eval_s = time.perf_counter() - t1
    record = {
      "epoch": epoch,
      "train_mode": train_mode,
      "steps": int(steps),
      "loss": float(np.mean(stats["loss"])),
      "loss_ops": float(np.mean(stats["loss_ops"])),
      "loss_adj": float(np.mean(stats["loss_adj"])),
      "kl": float(np.mean(stats["kl"])),
      "grad_norm": float(np.mean(stats["grad_norm"])),
      **{k: v for k, v in ev.items() if k != "time"},
      "time": {
        "train_s": train_s,
        "eval_s": eval_s,
        "graphs_per_s": num_train / train_s,
        **ev["time"],
      },
    }
    history.append(record)
    log(_format_epoch(record))
    if ckpt_dir is not None and main:
      ckpt_lib.save_checkpoint(
        ckpt_dir,
        local,
        epoch,
        {
          "config": config_dict,
          "history": history,
          "prior": {"mean": mean.tolist(), "std": std.tolist()},
        },
        keep=config.keep_checkpoints,
        run_id=run_id,
      )

  embeddings = None
  embed_s = None
  if save_embeddings:
    t0 = time.perf_counter()
    local = parallel.local_value(state)
    embeddings = embed_lib.encode(
      jax.device_get(local.params),
      jax.device_get(local.batch_stats),
      adj_all,
      ops_all,
      model_config=config.model,
      include_padding=config.embed_include_padding,
    )
    embed_s = time.perf_counter() - t0
    if workdir is not None and main:
      t0 = time.perf_counter()
      ids = embed_lib.cell_ids(space, adj_all, ops_all)
      embed_lib.save_embeddings(os.path.join(os.fspath(workdir), "embeddings.npz"), embeddings, ids)
      log(
        f"embeddings [{embeddings.shape[0]:,}, {embeddings.shape[1]}] in {embed_s:.2f}s "
        f"(+{time.perf_counter() - t0:.2f}s ids and write) -> {os.path.join(os.fspath(workdir), 'embeddings.npz')}"
      )

  total_s = time.perf_counter() - t_start
  final = history[-1] if history else {}
  summary = {k: final[k] for k in SUMMARY_KEYS if k in final}
  result = {
    "config": config_dict,
    "command": command if command is not None else " ".join(sys.argv),
    "device": machine.machine_info(),
    "parallel": parallel.mesh_info(mesh),
    "data": {
      "num_cells": num_cells,
      "num_train": num_train,
      "num_val": len(val_np[1]),
      "num_nodes": n,
      "num_ops": d,
      "reconstruction_ceiling": ceiling,
    },
    "epochs": history,
    "summary": summary,
    "timings": {
      "total_s": total_s,
      "data_s": t_data,
      "compile_s": compile_s,
      "train_s": sum(e["time"]["train_s"] for e in history[start_epoch:]),
      "eval_s": sum(e["time"]["eval_s"] for e in history[start_epoch:]),
      "embed_s": embed_s,
      "peak_rss_mib": _peak_rss_mib(),
      "resumed_at_epoch": start_epoch if start_epoch else None,
    },
    "num_traces": dict(traces),
  }
  if history:
    log(
      "final: "
      + ", ".join(
        f"{k} {100 * v:.2f}%" if k != "loss" else f"loss {v:.5f}" for k, v in summary.items()
      )
      + f" | total {total_s:.1f}s (compile {sum(compile_s.values()):.1f}s)"
    )
  if workdir is not None and main:
    fileio.atomic_write_json(os.path.join(os.fspath(workdir), "metrics.json"), result)
  result["state"] = state
  result["embeddings"] = embeddings
  result["prior"] = prior
  return result


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
