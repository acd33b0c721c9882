"""The compiled core of pre-training: state, optimizer, one step, one epoch (docs/arch2vec.md §3, §4).

Layout after google/flax examples/ogbg_molpcba: `create_model`, `create_optimizer`,
`create_train_state`, `make_train_step`, `make_train_epoch`; the run around them (data,
evaluation, checkpoints, embeddings, the summary) is `arch2vec_jax.train`, which
re-exports these names.

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

import functools
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from arch2vec_jax import model as model_lib
from arch2vec_jax import parallel
from arch2vec_jax.configs import SPACES, TrainConfig

__all__ = [
  "Dataset",
  "TrainState",
  "clipped_adam",
  "create_model",
  "create_optimizer",
  "create_train_state",
  "get_space",
  "jit_train_epoch",
  "load_cells",
  "make_train_epoch",
  "make_train_step",
  "run_keys",
  "split_cells",
]


class TrainState(NamedTuple):
  """Everything that changes during training (a pytree).

  Attributes:
    params: model parameters (a pytree, as `model.init` makes them).
    batch_stats: BatchNorm running statistics.
    opt_state: Optax state (of `create_optimizer`, which works on the flat
      parameter vector inside: `optax.flatten`).
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
  """(space, adjacency int8 [N, n, n], ops int8 [N, n, d]) for a config (`SearchSpace.pretraining_cells`)."""
  space = get_space(config.space) if space is None else space
  return space, *space.pretraining_cells(config.num_cells, seed=config.darts_seed)


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


def clipped_adam(config: TrainConfig) -> optax.GradientTransformation:
  """Global-norm clipping (5) then Adam (1e-3, 0.9, 0.999, 1e-8), as the release, per leaf.

  The one definition of the release's optimizer. `create_optimizer` runs it on the flat
  parameter vector; the supervised analysis (`analysis.supervised`) runs it per leaf, as
  its committed results were made (the two differ in the last bits of the updates).
  """
  return optax.chain(
    optax.clip_by_global_norm(config.clip_norm),
    optax.adam(config.lr, b1=config.b1, b2=config.b2, eps=config.adam_eps),
  )


def create_optimizer(config: TrainConfig) -> optax.GradientTransformation:
  """`clipped_adam` on one flat vector of all parameters: the pre-training optimizer.

  Wrapped in `optax.flatten`: the update runs on one flat vector of all ~136k
  parameters, one fused kernel chain instead of one per leaf (XLA:CPU pays a fixed
  cost per kernel); the parameters stay a pytree. Clipping by the global norm is the
  same on the flat vector. Measured on NB201 (2-core CPU, batch 32): as fast as a
  hand-carried flat vector and bit-identical to it, and a third faster to compile
  than the per-leaf update.
  """
  return optax.flatten(clipped_adam(config))


def create_train_state(
  model: model_lib.Arch2Vec, tx: optax.GradientTransformation, key: jax.Array, num_nodes: int
) -> TrainState:
  """Initialises parameters, BatchNorm statistics and the optimizer.

  Args:
    model: the model; tx: the optimizer (`create_optimizer`).
    key: uint32 [2] PRNG key (split into the init key and the training key).
    num_nodes: n, the node budget of a cell.

  Returns:
    A `TrainState`; its `opt_state` is `tx.init(params)`.
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
    opt_state=tx.init(params),
    step=jnp.zeros((), jnp.int32),
    key=train_key,
  )


def run_keys(key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
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
    b, n, _ = ops.shape
    chex.assert_shape(adjacency, (b, n, n))
    chex.assert_shape([n_node, cell_mask], (b,))
    noise_key, dropout_key = _rbg_keys(jax.random.fold_in(run_keys(state.key)[0], state.step), 2)
    graph = model_lib.cells_to_graphs(adjacency, ops, n_node)
    cell_mask = cell_mask.astype(jnp.float32)

    def loss_fn(params):
      variables = {"params": params, "batch_stats": state.batch_stats}
      if train:
        rngs = {"noise": noise_key, "dropout": dropout_key}
        out, updates = model.apply(variables, graph, train=True, rngs=rngs, mutable=["batch_stats"])
        batch_stats = updates["batch_stats"]
      else:
        out, batch_stats = model.apply(variables, graph, train=False), state.batch_stats
      loss, terms = model_lib.vae_loss(out, adjacency, ops, cell_mask)
      return loss, (terms, batch_stats, out["mu"])

    (loss, (terms, batch_stats, mu)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    mu_w = mu * cell_mask[:, None, None]
    stats = {
      "loss": loss,
      **terms,
      # The norm of the flat gradient vector, summed in the order the optimizer's clip sums it.
      "grad_norm": jnp.sqrt(jnp.sum(jnp.square(ravel_pytree(grads)[0]))),
      "mu_sum": mu_w.sum(0),
      "mu_sq_sum": (mu_w * mu).sum(0),
    }
    return TrainState(params, batch_stats, opt_state, state.step + 1, state.key), stats

  return step


def _epoch_batches(
  key: jax.Array, epoch, *, num_train: int, batch_size: int, shuffle_once: bool
) -> tuple[jax.Array, jax.Array]:
  """An epoch's batches: cell indices int32 [steps, B] and their validity bool [steps, B].

  The indices are the epoch's permutation of the N training cells, padded with
  index 0 to steps * B (the padding slots are invalid).
  """
  steps = -(-num_train // batch_size)
  padded = steps * batch_size
  (perm_key,) = _rbg_keys(jax.random.fold_in(run_keys(key)[1], 0 if shuffle_once else epoch), 1)
  perm = jax.random.permutation(perm_key, num_train).astype(jnp.int32)
  perm = jnp.concatenate([perm, jnp.zeros((padded - num_train,), jnp.int32)])
  valid = jnp.arange(padded) < num_train
  return perm.reshape(steps, batch_size), valid.reshape(steps, batch_size)


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
  `epoch` may be traced (an int32 scalar), so one compilation serves every epoch.

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
  step_fn = make_train_step(model, tx, train)
  batches = functools.partial(
    _epoch_batches, num_train=num_train, batch_size=batch_size, shuffle_once=shuffle_once
  )
  shard = constrain = lambda x: x
  if mesh is not None:
    parallel.check_batch_size(batch_size, mesh.devices.size)
    split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(None, parallel.DATA_AXIS))
    shard = functools.partial(
      jax.lax.with_sharding_constraint, shardings=parallel.batch_sharded(mesh)
    )
    constrain = functools.partial(jax.lax.with_sharding_constraint, shardings=split)

  def epoch_fn(state: TrainState, data: Dataset, epoch):
    chex.assert_equal(data.ops.shape[0], num_train)

    def body(state, xs):
      idx, mask = shard(xs)
      adj = shard(jnp.take(data.adjacency, idx, axis=0))
      ops = shard(jnp.take(data.ops, idx, axis=0))
      n_node = shard(jnp.where(mask, jnp.take(data.n_node, idx, axis=0), 0))
      return step_fn(state, adj, ops, n_node, mask)

    return jax.lax.scan(body, state, constrain(batches(state.key, epoch)))

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
