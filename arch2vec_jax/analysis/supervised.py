"""A supervised embedding: the arch2vec GIN encoder trained with an accuracy head instead of the decoder.

The paper's comparison (docs/arch2vec.md §6): the same encoder (`model.Arch2Vec.encode`,
4 GIN layers, per-node mu head of width 16) is trained jointly with a regression head on
the labelled cells; a cell's embedding is the mean of mu over its real nodes (as
`embed.encode`), the head is Linear(16, 64) -> ReLU -> Linear(64, 1) on it. Loss:
mean squared error on standardised accuracies. Optimiser: `train.clipped_adam`
(global-norm clip then Adam, per leaf).

Training is one compiled call: `make_supervised_train` returns a pure
`train(key, train_idx) -> (variables, losses)` that runs every step in a
`lax.scan` (minibatches drawn with replacement from `train_idx`), and several
random splits run side by side as a `vmap` axis (`train_supervised`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import train as train_lib
from arch2vec_jax.search.joint import regression_step

__all__ = [
  "AccuracyRegressor",
  "SupervisedConfig",
  "make_supervised_train",
  "regression_step",
  "supervised_embed",
  "train_supervised",
]


@dataclasses.dataclass(frozen=True)
class SupervisedConfig:
  """Supervised training (short by design: the comparison, not a predictor to tune).

  Attributes:
    epochs: passes over the training cells (converted to steps, clipped to [min_steps, max_steps]).
    min_steps: the fewest training steps (after the epochs are converted).
    max_steps: the most training steps (after the epochs are converted).
    batch_size: cells per step.
    lr: Adam learning rate (global-norm clip 5, as pre-training).
    head_hidden: width of the regression head's hidden layer.
    model: the encoder's `ModelConfig`.
  """

  epochs: int = 20
  min_steps: int = 200
  max_steps: int = 1500
  batch_size: int = 32
  lr: float = 1e-3
  head_hidden: int = 64
  model: model_lib.ModelConfig = model_lib.ModelConfig()

  def num_steps(self, num_train: int) -> int:
    steps = -(-int(self.epochs) * int(num_train) // int(self.batch_size))
    return int(min(max(steps, self.min_steps), self.max_steps))


class AccuracyRegressor(nn.Module):
  """GIN encoder -> mean over real nodes of mu [B, latent] -> accuracy [B]."""

  num_ops: int
  config: model_lib.ModelConfig = model_lib.ModelConfig()
  head_hidden: int = 64

  @nn.compact
  def __call__(self, graph, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Returns (prediction [B], embedding [B, latent])."""
    mu, _ = model_lib.Arch2Vec(self.num_ops, self.config, name="encoder").encode(graph, train)
    emb = embed_lib.masked_node_mean(mu, graph.n_node)
    h = nn.relu(nn.Dense(self.head_hidden, name="head_0")(emb))
    return nn.Dense(1, name="head_1")(h)[:, 0], emb


def _make_train(num_ops: int, config: SupervisedConfig, num_train: int):
  """(net, `train(key, train_idx, y_all, adjacency, ops, n_node) -> (variables, losses)`): the cells are arguments."""
  net = AccuracyRegressor(num_ops, config.model, config.head_hidden)
  tx = train_lib.clipped_adam(train_lib.TrainConfig(lr=config.lr))
  steps = config.num_steps(num_train)
  b = config.batch_size

  def train(key, train_idx, y_all, adj_all, ops_all, n_node_all):
    def batch(idx):
      return model_lib.cells_to_graphs(adj_all[idx], ops_all[idx], n_node_all[idx])

    init_key, step_key = jax.random.split(key)
    variables = net.init(init_key, batch(train_idx[:2]), train=False)
    params, stats = variables["params"], variables["batch_stats"]
    y_tr = y_all[train_idx]
    y_mean, y_std = jnp.mean(y_tr), jnp.maximum(jnp.std(y_tr), 1e-6)

    def step(carry, t):
      pick = jax.random.randint(jax.random.fold_in(step_key, t), (b,), 0, num_train)
      idx = train_idx[pick]
      return regression_step(net, tx, carry, batch(idx), (y_all[idx] - y_mean) / y_std)

    (params, stats, _), losses = jax.lax.scan(
      step, (params, stats, tx.init(params)), jnp.arange(steps)
    )
    return {"params": params, "batch_stats": stats}, losses

  return net, train


def _device_cells(adjacency: np.ndarray, ops: np.ndarray) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(adjacency int8, ops int8, n_node int32) on the device."""
  return (
    jnp.asarray(adjacency, jnp.int8),
    jnp.asarray(ops, jnp.int8),
    jnp.asarray(model_lib.count_nodes(ops), jnp.int32),
  )


def make_supervised_train(
  adjacency: np.ndarray,
  ops: np.ndarray,
  targets: np.ndarray,
  config: SupervisedConfig,
  num_train: int,
) -> tuple[AccuracyRegressor, Callable[[jax.Array, jax.Array], tuple[Any, jax.Array]]]:
  """The model and a pure `train(key, train_idx [num_train], y_all [N]) -> (variables, losses [steps])`.

  Args:
    adjacency: int [N, n, n]; ops: int [N, n, d]: every cell (put on the device once).
    targets: unused here (the accuracies are `train`'s argument `y_all`, so one compilation
      serves every dataset); kept for the signature's symmetry with `train_supervised`.
    config: `SupervisedConfig`.
    num_train: length of `train_idx` (static: the number of steps depends on it).
  """
  del targets
  net, train = _make_train(ops.shape[2], config, num_train)
  cells = _device_cells(adjacency, ops)
  return net, lambda key, train_idx, y_all: train(key, train_idx, y_all, *cells)


@functools.partial(jax.jit, static_argnames=("num_ops", "config", "num_train"))
def _train_splits(keys, train_idx, y_all, adjacency, ops, n_node, *, num_ops, config, num_train):
  """`vmap` of `_make_train`'s train over the splits (keys [S], train_idx [S, num_train]); the cells shared.

  Compiled once per (shapes, num_ops, config, num_train): every dataset of a space shares it.
  """
  _, train = _make_train(num_ops, config, num_train)
  return jax.vmap(train, in_axes=(0, 0, None, None, None, None))(
    keys, train_idx, y_all, adjacency, ops, n_node
  )


def supervised_embed(
  net: AccuracyRegressor, variables: Any, adjacency: np.ndarray, ops: np.ndarray, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
  """(embeddings float32 [N, latent], predictions float32 [N]) of every cell, eval mode.

  `embed.map_chunks` over chunks of `chunk` cells (the last padded).
  """
  n_node = model_lib.count_nodes(ops)
  outs = embed_lib.map_chunks(
    functools.partial(_apply_eval, net, variables), (adjacency, ops, n_node), chunk
  )
  embs = [np.asarray(e) for _, e in outs]
  preds = [np.asarray(p) for p, _ in outs]
  return np.concatenate(embs).astype(np.float32), np.concatenate(preds).astype(np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _apply_eval(net: nn.Module, variables, adjacency, ops, n_node):
  """`net` on the cells in eval mode (compiled once per module and shapes)."""
  return net.apply(variables, model_lib.cells_to_graphs(adjacency, ops, n_node), train=False)


def train_supervised(
  adjacency: np.ndarray,
  ops: np.ndarray,
  targets: np.ndarray,
  train_idx: np.ndarray,
  key: jax.Array,
  config: SupervisedConfig = SupervisedConfig(),
) -> dict[str, Any]:
  """Trains one supervised encoder per split (a vmap axis) and embeds every cell with each.

  Args:
    adjacency, ops: [N, n, n], [N, n, d] all cells.
    targets: [N] accuracies.
    train_idx: int [S, num_train], the labelled cells of each split.
    key: PRNG key (split per split).
    config: `SupervisedConfig`.

  Returns:
    {'embeddings': float32 [S, N, latent], 'losses': float32 [S, steps], 'steps': int}.
  """
  train_idx = np.asarray(train_idx, np.int32)
  num_splits, num_train = train_idx.shape
  ops = np.asarray(ops)
  net = AccuracyRegressor(ops.shape[2], config.model, config.head_hidden)
  y = jnp.asarray(targets, jnp.float32)
  variables, losses = _train_splits(
    jax.random.split(key, num_splits),
    jnp.asarray(train_idx),
    y,
    *_device_cells(adjacency, ops),
    num_ops=ops.shape[2],
    config=config,
    num_train=num_train,
  )
  embeddings = []
  for s in range(num_splits):
    v = jax.tree.map(lambda a, s=s: a[s], variables)
    embeddings.append(supervised_embed(net, v, adjacency, ops)[0])
  return {
    "embeddings": np.stack(embeddings),
    "losses": np.asarray(losses),
    "steps": config.num_steps(num_train),
  }
