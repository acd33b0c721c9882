"""The arch2vec variational graph autoencoder: a GIN encoder and an inner-product decoder.

Yan et al., "Does Unsupervised Architecture Representation Learning Help Neural
Architecture Search?", NeurIPS 2020 (docs/arch2vec.md §3).

A batch of B cells with a fixed node budget n is one `jraph.GraphsTuple` of
B * n nodes (`cells_to_graphs`). Message passing is Jraph-style: messages are
sender features weighted by the symmetric adjacency, summed onto receivers
with `jax.ops.segment_sum`. Because every graph has exactly n node slots, the
same sum is also a dense batched product A @ X per graph; `aggregation='dense'`
computes it that way, which XLA:CPU runs much faster (one batched matmul
instead of a gather plus a scatter-add). Both read the same `GraphsTuple` and
give the same numbers (tests/test_model.py checks it).

Padding nodes (NB101 cells with fewer than 7 nodes; the last n - n_node[b]
slots of graph b) have no edges. By default they are masked out of the
BatchNorm statistics; `bn_include_padding=True` reproduces the release, which
normalises over every node slot of the batch. A graph with n_node == 0 is a
padding graph (it fills up a partial batch) and is left out of the statistics
in both modes.

Initialisation follows the release (PyTorch defaults): every Linear layer has
weights and biases uniform in +-1/sqrt(fan_in); BatchNorm scale 1, bias 0.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Literal

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import numpy as np

__all__ = [
  "Arch2Vec",
  "GINLayer",
  "MaskedBatchNorm",
  "ModelConfig",
  "aggregate_neighbours",
  "cells_to_graphs",
  "count_nodes",
  "node_mask",
  "symmetrize",
  "vae_loss",
]

Aggregation = Literal["dense", "segment_sum"]
AGGREGATIONS: tuple[str, ...] = typing.get_args(Aggregation)
EDGE_LAYOUTS = ("all_pairs", "edge_list")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Model hyperparameters (defaults: the released configuration; the launcher's flags come from here).

  Attributes:
    hidden: GIN hidden width.
    latent: Latent dimension per node.
    layers: GIN layers (the release's "hops 5" is 4 layers).
    dropout: Decoder dropout on z (training mode only).
    bn_include_padding: BatchNorm statistics over padding node slots too (the release);
      otherwise over real nodes only.
    aggregation: Neighbour sum: 'dense', a batched A @ X per graph (fastest on CPU), or
      'segment_sum', Jraph message passing over the graph's edge list.
    bn_momentum: BatchNorm running-average decay (PyTorch's momentum is one minus it).
    bn_epsilon: BatchNorm epsilon (PyTorch's default).
  """

  hidden: int = 128
  latent: int = 16
  layers: int = 4
  dropout: float = 0.3
  bn_include_padding: bool = False
  aggregation: Aggregation = "dense"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  def __post_init__(self):
    if self.aggregation not in AGGREGATIONS:
      raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
    for name in ("hidden", "latent", "layers"):
      if int(getattr(self, name)) < 1:
        raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
    if not 0.0 <= float(self.dropout) < 1.0:
      raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


# ---------------------------------------------------------------------------
# Graph construction.


def count_nodes(ops: np.ndarray) -> np.ndarray:
  """Number of real nodes per cell: rows of `ops` that are not all zero.

  Args:
    ops: [N, n, d] one-hot ops, padding rows all zero and trailing.

  Returns:
    int32 [N].

  Raises:
    ValueError: if a cell has a padding row before a real one (padding must trail).
  """
  ops = np.asarray(ops)
  real = ops.any(axis=-1)  # [N, n]
  n_node = real.sum(axis=-1).astype(np.int32)
  trailing = real == (np.arange(ops.shape[1])[None, :] < n_node[:, None])
  if not trailing.all():
    bad = np.flatnonzero(~trailing.all(axis=-1))[:5]
    raise ValueError(
      f"padding nodes must come after the real nodes; cells {bad.tolist()} break this"
    )
  return n_node


def symmetrize(adjacency: jax.Array) -> jax.Array:
  """A + strict_upper(A)^T, the encoder's undirected adjacency (no self loops).

  Args:
    adjacency: [..., n, n] 0/1, strictly upper triangular.

  Returns:
    float32 [..., n, n].
  """
  a = adjacency.astype(jnp.float32)
  upper = jnp.triu(a, 1)
  return a + jnp.swapaxes(upper, -1, -2)


def node_mask(n_node: jax.Array, n: int) -> jax.Array:
  """bool [B, n]: slot i of graph b is a real node iff i < n_node[b]."""
  return jnp.arange(n)[None, :] < n_node[:, None]


def cells_to_graphs(
  adjacency: jax.Array,
  ops: jax.Array,
  n_node: jax.Array | None = None,
  *,
  edge_layout: str = "all_pairs",
  max_edges: int | None = None,
) -> jraph.GraphsTuple:
  """A batch of cells as one `jraph.GraphsTuple` with static padded shapes.

  Node b * n + i is slot i of cell b. Edges carry the symmetric adjacency
  (`symmetrize`) as a scalar weight; a message from sender j to receiver i is
  `w * x_j`, so the summed messages are A_sym @ X per graph.

  Layouts:
    'all_pairs': every ordered pair (i, j) of every graph, E = B * n * n,
      receiver-major (edge b*n*n + i*n + j: receiver b*n+i, sender b*n+j), weight
      A_sym[b, i, j]. `edges.reshape(B, n, n)` is A_sym.
    'edge_list': the nonzero entries of A_sym only, padded to `max_edges` per
      graph (default n * (n - 1)); padding edges have weight 0.

  Args:
    adjacency: [B, n, n] 0/1 strictly upper triangular (any int/float dtype).
    ops: [B, n, d] one-hot node operations.
    n_node: int [B] real nodes per cell; defaults to n for every cell.
    edge_layout: 'all_pairs' or 'edge_list'.
    max_edges: per-graph edge budget for 'edge_list'.

  Returns:
    GraphsTuple with nodes float32 [B*n, d], edges float32 [E], senders and
    receivers int32 [E], n_node int32 [B], n_edge int32 [B], globals None.
  """
  b, n, d = ops.shape
  chex.assert_shape(adjacency, (b, n, n))
  if n_node is None:
    n_node = jnp.full((b,), n, dtype=jnp.int32)
  chex.assert_shape(n_node, (b,))
  a_sym = symmetrize(adjacency)
  nodes = ops.astype(jnp.float32).reshape(b * n, d)
  offsets = (jnp.arange(b, dtype=jnp.int32) * n)[:, None]  # [B, 1]
  if edge_layout == "all_pairs":
    recv = jnp.repeat(jnp.arange(n, dtype=jnp.int32), n)  # i for edge i*n + j
    send = jnp.tile(jnp.arange(n, dtype=jnp.int32), n)  # j
    receivers = (offsets + recv[None, :]).reshape(-1)
    senders = (offsets + send[None, :]).reshape(-1)
    edges = a_sym.reshape(-1)
    n_edge = jnp.full((b,), n * n, dtype=jnp.int32)
  elif edge_layout == "edge_list":
    m = int(max_edges) if max_edges is not None else n * (n - 1)

    def one(a):
      flat = a.reshape(-1)
      (idx,) = jnp.nonzero(flat, size=m, fill_value=0)
      valid = jnp.arange(m) < jnp.count_nonzero(flat)
      return (
        (idx // n).astype(jnp.int32),
        (idx % n).astype(jnp.int32),
        jnp.where(valid, flat[idx], 0.0),
      )

    recv, send, w = jax.vmap(one)(a_sym)  # [B, m] each
    receivers = (offsets + recv).reshape(-1)
    senders = (offsets + send).reshape(-1)
    edges = w.reshape(-1)
    n_edge = jnp.full((b,), m, dtype=jnp.int32)
  else:
    raise ValueError(f"edge_layout must be one of {EDGE_LAYOUTS}, got {edge_layout!r}")
  return jraph.GraphsTuple(
    nodes=nodes,
    edges=edges,
    senders=senders,
    receivers=receivers,
    globals=None,
    n_node=n_node.astype(jnp.int32),
    n_edge=n_edge,
  )


def _graph_dims(graph: jraph.GraphsTuple) -> tuple[int, int]:
  """(B, n) of a fixed-budget batch."""
  b = graph.n_node.shape[0]
  total = graph.nodes.shape[0]
  if total % b:
    raise ValueError(f"{total} nodes do not split into {b} graphs of equal budget")
  return b, total // b


def aggregate_neighbours(
  graph: jraph.GraphsTuple, x: jax.Array, aggregation: str = "dense"
) -> jax.Array:
  """Sum over neighbours: (A_sym @ X) per graph, as [B*n, F].

  Args:
    graph: the batch (`cells_to_graphs`); its edges hold the weights.
    x: [B*n, F] node features.
    aggregation: 'segment_sum' (Jraph: `segment_sum(w * x[senders], receivers)`,
      any edge layout) or 'dense' (einsum on `edges.reshape(B, n, n)`, requires
      the 'all_pairs' layout).

  Returns:
    [B*n, F].
  """
  b, n = _graph_dims(graph)
  if aggregation == "segment_sum":
    messages = x[graph.senders] * graph.edges[:, None]
    return jax.ops.segment_sum(messages, graph.receivers, num_segments=b * n)
  if aggregation == "dense":
    if graph.edges.shape[0] != b * n * n:
      raise ValueError("aggregation='dense' needs the 'all_pairs' edge layout")
    a = graph.edges.reshape(b, n, n)
    return jnp.einsum("bij,bjf->bif", a, x.reshape(b, n, -1)).reshape(b * n, -1)
  raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


# ---------------------------------------------------------------------------
# Layers.


def _torch_uniform(fan_in: int):
  """PyTorch's default Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  bound = 1.0 / np.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def _dense(features: int, fan_in: int, name: str | None = None) -> nn.Dense:
  return nn.Dense(
    features, kernel_init=_torch_uniform(fan_in), bias_init=_torch_uniform(fan_in), name=name
  )


class MaskedBatchNorm(nn.Module):
  """BatchNorm over the rows of [M, F] where `mask` is set (PyTorch semantics).

  Training: normalise with the biased mean/variance of the masked rows; update the
  running mean and the *unbiased* running variance (as `torch.nn.BatchNorm1d`).
  Eval: normalise with the running statistics. Unmasked rows are normalised too
  (their outputs exist) but never enter the statistics.
  """

  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, use_running_average: bool) -> jax.Array:
    """x: [M, F]; mask: float [M] of 0/1. Returns [M, F]."""
    features = x.shape[-1]
    ra_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    ra_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    scale = self.param("scale", nn.initializers.ones, (features,), jnp.float32)
    bias = self.param("bias", nn.initializers.zeros, (features,), jnp.float32)
    if use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      m = mask[:, None]
      count = jnp.maximum(jnp.sum(mask), 1.0)
      mean = jnp.sum(x * m, axis=0) / count
      var = jnp.sum(jnp.square(x - mean) * m, axis=0) / count
      if not self.is_initializing():
        unbiased = var * count / jnp.maximum(count - 1.0, 1.0)
        ra_mean.value = self.momentum * ra_mean.value + (1.0 - self.momentum) * mean
        ra_var.value = self.momentum * ra_var.value + (1.0 - self.momentum) * unbiased
    y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
    return y * scale + bias


class GINLayer(nn.Module):
  """One GIN layer: x' = ReLU(BN(MLP((1 + eps) x + sum_neighbours x))).

  MLP = Linear(in, hidden) -> BN -> ReLU -> Linear(hidden, hidden); eps is a
  learnable scalar initialised to 0 (Xu et al., ICLR 2019, GIN-eps).
  """

  in_features: int
  hidden: int
  aggregation: str = "dense"
  bn_momentum: float = 0.9
  bn_epsilon: float = 1e-5

  @nn.compact
  def __call__(
    self, graph: jraph.GraphsTuple, x: jax.Array, bn_mask: jax.Array, train: bool
  ) -> jax.Array:
    """x: [B*n, in_features]; bn_mask: float [B*n]. Returns [B*n, hidden]."""
    eps = self.param("eps", nn.initializers.zeros, (), jnp.float32)
    h = (1.0 + eps) * x + aggregate_neighbours(graph, x, self.aggregation)
    bn = lambda name: MaskedBatchNorm(self.bn_momentum, self.bn_epsilon, name=name)
    h = _dense(self.hidden, self.in_features, name="mlp_0")(h)
    h = nn.relu(bn("mlp_bn")(h, bn_mask, not train))
    h = _dense(self.hidden, self.hidden, name="mlp_1")(h)
    return nn.relu(bn("bn")(h, bn_mask, not train))


class Arch2Vec(nn.Module):
  """GIN encoder -> per-node Gaussian latent -> ops and adjacency decoders.

  Attributes:
    num_ops: d, width of the one-hot ops (decoder output).
    config: `ModelConfig`.
  """

  num_ops: int
  config: ModelConfig = ModelConfig()

  def setup(self):
    c = self.config
    self.gin = [
      GINLayer(
        self.num_ops if l == 0 else c.hidden,
        c.hidden,
        c.aggregation,
        c.bn_momentum,
        c.bn_epsilon,
        name=f"gin_{l}",
      )
      for l in range(c.layers)
    ]
    self.mu_head = _dense(c.latent, c.hidden, name="mu")
    self.log_sigma_head = _dense(c.latent, c.hidden, name="log_sigma")
    self.ops_decoder = _dense(self.num_ops, c.latent, name="ops_decoder")
    self.dropout = nn.Dropout(c.dropout)

  def encode(self, graph: jraph.GraphsTuple, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Per-node Gaussian parameters.

    Args:
      graph: B cells of n slots (`cells_to_graphs`).
      train: BatchNorm with batch statistics (True) or running averages.

    Returns:
      mu, log_sigma: float32 [B, n, latent] (log_sigma is log of the std).
    """
    b, n = _graph_dims(graph)
    chex.assert_shape(graph.nodes, (b * n, self.num_ops))
    if self.config.bn_include_padding:
      # Every slot of every real cell; a graph with n_node == 0 is a padding
      # graph (filling a partial batch) and never enters the statistics.
      bn_mask = (
        jnp.broadcast_to((graph.n_node > 0)[:, None], (b, n)).reshape(-1).astype(jnp.float32)
      )
    else:
      bn_mask = node_mask(graph.n_node, n).reshape(-1).astype(jnp.float32)
    x = graph.nodes
    for layer in self.gin:
      x = layer(graph, x, bn_mask, train)
    mu = self.mu_head(x).reshape(b, n, -1)
    log_sigma = self.log_sigma_head(x).reshape(b, n, -1)
    return mu, log_sigma

  def decode(self, z: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
    """Logits of the decoded cells.

    Args:
      z: [B, n, latent].
      train: apply dropout to z (needs a 'dropout' rng).

    Returns:
      ops_logits [B, n, d] (probabilities = sigmoid), adj_logits [B, n, n] = z z^T.
    """
    z = self.dropout(z, deterministic=not train)
    ops_logits = self.ops_decoder(z)
    adj_logits = jnp.einsum("bil,bjl->bij", z, z)
    return ops_logits, adj_logits

  def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> dict[str, jax.Array]:
    """Encodes and reconstructs a batch.

    Args:
      graph: B cells (`cells_to_graphs`).
      train: training mode: batch-statistics BN, z = mu + exp(log_sigma) * noise
        (rng 'noise'), dropout on z (rng 'dropout'). Eval mode: running BN
        statistics, z = mu, no dropout.

    Returns:
      dict with mu, log_sigma, z [B, n, latent]; ops_logits [B, n, d];
      adj_logits [B, n, n].
    """
    mu, log_sigma = self.encode(graph, train)
    if train:
      noise = jax.random.normal(self.make_rng("noise"), mu.shape, mu.dtype)
      z = mu + jnp.exp(log_sigma) * noise
    else:
      z = mu
    ops_logits, adj_logits = self.decode(z, train)
    return {
      "mu": mu,
      "log_sigma": log_sigma,
      "z": z,
      "ops_logits": ops_logits,
      "adj_logits": adj_logits,
    }


# ---------------------------------------------------------------------------
# Loss.


def _bce_with_logits(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Elementwise binary cross-entropy of sigmoid(logits) against 0/1 targets."""
  return jnp.maximum(logits, 0.0) - logits * targets + jnp.log1p(jnp.exp(-jnp.abs(logits)))


def vae_loss(
  outputs: dict[str, jax.Array],
  adjacency: jax.Array,
  ops: jax.Array,
  cell_mask: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The arch2vec loss: ops BCE + adjacency BCE + KL (as released).

  ops term: BCE between sigmoid(ops_logits) and the one-hot ops, mean over all
    B * n * d entries (padding rows included, targets zero there).
  adjacency term: BCE between sigmoid(adj_logits) and the target, both with the
    diagonal and lower triangle zeroed, mean over all B * n * n entries (zeroed
    entries contribute 0 but count in the mean).
  KL: -0.5 / (B n) * mean_{b,node} sum_dims (1 + 2 s - mu^2 - exp(s)^2), s = log sigma.

  BCE is computed from logits (the same values as the release's BCELoss on
  sigmoid outputs, without its log clamp at -100).

  Args:
    outputs: `Arch2Vec.__call__` outputs.
    adjacency: [B, n, n] 0/1 target (strict upper).
    ops: [B, n, d] one-hot target.
    cell_mask: optional float [B]; cells with 0 are padding of a partial batch and
      are left out of every mean (B then counts the real cells only).

  Returns:
    (loss scalar, dict of the three terms).
  """
  ops_logits, adj_logits = outputs["ops_logits"], outputs["adj_logits"]
  mu, log_sigma = outputs["mu"], outputs["log_sigma"]
  b, n, d = ops_logits.shape
  chex.assert_shape(adj_logits, (b, n, n))
  chex.assert_shape(ops, (b, n, d))
  chex.assert_shape(adjacency, (b, n, n))
  if cell_mask is None:
    cell_mask = jnp.ones((b,), jnp.float32)
  cells = jnp.maximum(jnp.sum(cell_mask), 1.0)
  upper = jnp.triu(jnp.ones((n, n), jnp.float32), 1)

  ops_bce = _bce_with_logits(ops_logits, ops.astype(jnp.float32))  # [B, n, d]
  loss_ops = jnp.sum(ops_bce.sum(axis=(1, 2)) * cell_mask) / (cells * n * d)

  adj_target = adjacency.astype(jnp.float32) * upper
  adj_bce = _bce_with_logits(adj_logits, adj_target) * upper  # [B, n, n]
  loss_adj = jnp.sum(adj_bce.sum(axis=(1, 2)) * cell_mask) / (cells * n * n)

  kl_terms = jnp.sum(
    1.0 + 2.0 * log_sigma - jnp.square(mu) - jnp.exp(2.0 * log_sigma), axis=-1
  )  # [B, n]
  kl_mean = jnp.sum(kl_terms.sum(axis=1) * cell_mask) / (cells * n)
  kl = -0.5 / (cells * n) * kl_mean

  loss = loss_ops + loss_adj + kl
  return loss, {"loss_ops": loss_ops, "loss_adj": loss_adj, "kl": kl}
