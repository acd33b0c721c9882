"""The supervised predictor of the paper's comparison: a GIN encoder and DNGO trained jointly.

The release's `pybnn/dngo_supervised.py` (the "supervised" curve of the paper's
predictive figure and its supervised-BO baseline): the arch2vec GIN encoder
(`model.Arch2Vec.encode`, 4 GIN layers, per-node mu head of width 16) feeds the
DNGO network, and both are trained together on the labelled cells only:

  basis(cell) = tanh(mean over the cell's real nodes of mu)        [latent]
  prediction  = Linear(latent, 1)(basis)

Training as the release: Adam (lr 1e-2, no clipping), 100 epochs, minibatches of
10 from a fresh shuffle every epoch (floor(n / 10) per epoch, the incomplete last
batch dropped; all n in one batch when n <= 10), mean squared error on the raw
accuracies (fractions; `normalize_output` standardises them instead). BatchNorm
uses batch statistics while training and its running averages (decay 0.9, PyTorch
momentum 0.1) afterwards. Then, as DNGO does, a Bayesian linear regression with
evidence-maximised alpha, beta (`search.blr.fit`, the search's BLR) is fitted on
the basis of the training cells and predicts every other cell (`search.blr.predict`).

Differences to the release, on purpose: the mean runs over real nodes (the release
averages over every node slot, padding included, which differs only for NB101 cells
with fewer than 7 nodes), the basis is taken in eval mode (the release never calls
`eval()`, so its design matrix uses the statistics of whatever batch it is given), and
BatchNorm statistics skip padding nodes (`ModelConfig.bn_include_padding=False`).

One fit is one compiled call (`fit_joint`): every step runs in a `lax.scan`; the
cells are arguments, not constants, so one compilation serves every split of a size.
`regression_step` (one Adam step on the mean squared error of a GIN regressor) is
shared with the supervised embedding (`analysis.supervised`). Supervised-BO
(`search.supervised`) uses this module; `analysis.joint` re-exports it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax.search import blr as blr_lib

__all__ = [
  "GINDNGO",
  "JointConfig",
  "fit_joint",
  "joint_basis",
  "joint_predict",
  "num_steps",
  "regression_step",
]


@dataclasses.dataclass(frozen=True)
class JointConfig:
  """Training of the joint GIN + DNGO predictor (defaults: the release's `dngo_supervised`).

  Attributes:
    num_epochs: passes over the training cells.
    batch_size: cells per minibatch.
    learning_rate: Adam learning rate.
    normalize_output: standardise the targets by the training cells' mean / std.
    model: the encoder's `ModelConfig`.
  """

  num_epochs: int = 100
  batch_size: int = 10
  learning_rate: float = 1e-2
  normalize_output: bool = False
  model: model_lib.ModelConfig = dataclasses.field(default_factory=model_lib.ModelConfig)

  def __post_init__(self):
    if self.num_epochs < 1 or self.batch_size < 1 or not self.learning_rate > 0:
      raise ValueError(f"bad JointConfig {self}")


def num_steps(config: JointConfig, num_train: int) -> tuple[int, int]:
  """(minibatches per epoch, minibatch size) for `num_train` training cells."""
  bs = min(int(config.batch_size), int(num_train))
  return max(int(num_train) // bs, 1), bs


class GINDNGO(nn.Module):
  """GIN encoder -> tanh(mean over real nodes of mu) [B, latent] -> Linear -> prediction [B]."""

  num_ops: int
  config: model_lib.ModelConfig = model_lib.ModelConfig()

  @nn.compact
  def __call__(self, graph, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Returns (prediction [B], basis [B, latent])."""
    mu, _ = model_lib.Arch2Vec(self.num_ops, self.config, name="encoder").encode(graph, train)
    phi = jnp.tanh(embed_lib.masked_node_mean(mu, graph.n_node))
    return nn.Dense(1, name="out")(phi)[:, 0], phi


def regression_step(net: nn.Module, tx: optax.GradientTransformation, carry, graph, target):
  """One optimiser step on the mean squared error of `net`'s prediction, BatchNorm in training mode.

  Args:
    net: a module whose `__call__(graph, train)` returns (prediction [B], features).
    tx: the optimiser.
    carry: (params, batch_stats, optimiser state).
    graph: the minibatch of B cells; target: float32 [B].

  Returns:
    (the carry after the step, the loss before it).
  """
  params, stats, opt = carry

  def loss_fn(p):
    (pred, _), upd = net.apply(
      {"params": p, "batch_stats": stats}, graph, train=True, mutable=["batch_stats"]
    )
    return jnp.mean(jnp.square(pred - target)), upd["batch_stats"]

  (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
  updates, opt = tx.update(grads, opt, params)
  return (optax.apply_updates(params, updates), stats, opt), loss


@functools.partial(jax.jit, static_argnames=("num_ops", "config", "num_train"))
def _train(key, adjacency, ops, n_node, y, train_idx, *, num_ops, config, num_train):
  """The joint training (module doc) as one compiled call per (shapes, num_ops, config, num_train).

  Returns:
    (variables, mean loss per epoch [epochs], y_mu, y_sd).
  """
  net = GINDNGO(num_ops, config.model)
  tx = optax.adam(config.learning_rate)
  nb, bs = num_steps(config, num_train)

  def graphs(idx):
    return model_lib.cells_to_graphs(adjacency[idx], ops[idx], n_node[idx])

  init_key, shuffle_key = jax.random.split(key)
  variables = net.init(init_key, graphs(train_idx[:2]), train=False)
  y_tr = y[train_idx]
  y_mu = jnp.mean(y_tr) if config.normalize_output else jnp.float32(0.0)
  y_sd = jnp.maximum(jnp.std(y_tr), 1e-6) if config.normalize_output else jnp.float32(1.0)

  def step(carry, rows):
    idx = train_idx[rows]
    return regression_step(net, tx, carry, graphs(idx), (y[idx] - y_mu) / y_sd)

  def epoch(carry, e):
    order = jax.random.permutation(jax.random.fold_in(shuffle_key, e), num_train)
    return jax.lax.scan(step, carry, order[: nb * bs].reshape(nb, bs))

  params, stats = variables["params"], variables["batch_stats"]
  carry = (params, stats, tx.init(params))
  (params, stats, _), losses = jax.lax.scan(epoch, carry, jnp.arange(config.num_epochs))
  return {"params": params, "batch_stats": stats}, losses.mean(axis=1), y_mu, y_sd


def fit_joint(
  adjacency: np.ndarray,
  ops: np.ndarray,
  targets: np.ndarray,
  train_idx: np.ndarray,
  key: jax.Array,
  config: JointConfig = JointConfig(),
) -> dict[str, Any]:
  """Trains the GIN encoder and the DNGO network together on `train_idx`, then the BLR on its basis.

  Only the rows `train_idx` of `targets` are read (the others may be NaN).

  Args:
    adjacency: int [N, n, n]; ops: int [N, n, d]: every cell.
    targets: float [N] accuracies (fractions, as the search's rewards).
    train_idx: int [num_train] the labelled cells.
    key: PRNG key (initialisation and shuffles).
    config: `JointConfig`.

  Returns:
    {'net': `GINDNGO`, 'variables', 'post': the BLR posterior on the training basis,
     'y_mu', 'y_sd': the target standardisation, 'losses': float32 [epochs] mean loss per epoch}.
  """
  train_idx = np.asarray(train_idx, np.int32).reshape(-1)
  if len(train_idx) < 2:
    raise ValueError(f"the joint predictor needs at least 2 training cells, got {len(train_idx)}")
  if len(np.unique(train_idx)) != len(train_idx):
    raise ValueError("train_idx repeats cells")
  targets = np.asarray(targets, np.float32)
  if not np.all(np.isfinite(targets[train_idx])):
    raise ValueError("some training cells have no finite target")
  ops = np.asarray(ops)
  net = GINDNGO(ops.shape[2], config.model)
  y = jnp.asarray(np.where(np.isfinite(targets), targets, 0.0), jnp.float32)
  n_node = jnp.asarray(model_lib.count_nodes(ops), jnp.int32)
  variables, losses, y_mu, y_sd = _train(
    key,
    jnp.asarray(adjacency, jnp.int8),
    jnp.asarray(ops, jnp.int8),
    n_node,
    y,
    jnp.asarray(train_idx),
    num_ops=ops.shape[2],
    config=config,
    num_train=len(train_idx),
  )
  phi = joint_basis(net, variables, np.asarray(adjacency)[train_idx], ops[train_idx])
  post = blr_lib.fit(jnp.asarray(phi), (y[train_idx] - y_mu) / y_sd)
  return {
    "net": net,
    "variables": variables,
    "post": post,
    "y_mu": y_mu,
    "y_sd": y_sd,
    "losses": np.asarray(losses),
  }


@functools.partial(jax.jit, static_argnums=0)
def _basis(net: GINDNGO, variables, adjacency, ops, n_node):
  """The basis [B, latent] of cells in eval mode (compiled once per module and shapes)."""
  return net.apply(variables, model_lib.cells_to_graphs(adjacency, ops, n_node), train=False)[1]


def joint_basis(
  net: GINDNGO, variables: Any, adjacency: np.ndarray, ops: np.ndarray, chunk: int = 4096
) -> np.ndarray:
  """float32 [N, latent]: the DNGO basis tanh(pooled mu) of every cell, eval mode (`embed.map_chunks`)."""
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  n_node = np.asarray(model_lib.count_nodes(ops), np.int32)
  chunk = max(1, min(chunk, len(ops)))
  outs = embed_lib.map_chunks(
    functools.partial(_basis, net, variables), (adjacency, ops, n_node), chunk
  )
  return np.concatenate([np.asarray(o) for o in outs]).astype(np.float32)


def joint_predict(
  fit: dict[str, Any], adjacency: np.ndarray, ops: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
  """(mean [M], variance [M]) in target units of cells [M, n, n], [M, n, d] from a `fit_joint` result."""
  phi = joint_basis(fit["net"], fit["variables"], adjacency, ops)
  mean, var = blr_lib.predict(fit["post"], jnp.asarray(phi))
  y_mu, y_sd = float(fit["y_mu"]), float(fit["y_sd"])
  return np.asarray(mean) * y_sd + y_mu, np.asarray(var) * y_sd**2
