"""Per-node (unpooled) arch2vec features: the encoder's mu of every node slot, concatenated.

The search's embedding of a cell is the mean over its real nodes of the encoder's
per-node mu (`embed.encode`, 16-d). The mean pooling throws away which node has
which latent; `node_features` keeps it: [N, n * latent], the mu of slot 0, then
slot 1, ..., with padding slots (NB101 cells with fewer than 7 nodes) set to zero.
The node order is the benchmark's stored order (NB201: the fixed 8-node layout,
so the features are well defined; NB101: the stored order of the cell).

`pooled_from_nodes` recovers the 16-d mean-pooled embedding from these features
(a check that both come from the same encoder, and the same numbers).
"""

from __future__ import annotations

import functools
from typing import Any

import jax.numpy as jnp
import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import model as model_lib

__all__ = ["node_features", "pooled_from_nodes"]


def node_features(
  encoder: Any, adjacency: np.ndarray, ops: np.ndarray, chunk: int = 4096
) -> np.ndarray:
  """The per-node mu of every cell, concatenated over node slots (eval mode).

  Args:
    encoder: a `pretrained.Encoder` (`pretrained.load("nb101")`, a workdir, a file).
    adjacency: int [N, n, n] 0/1 strict upper; ops: int [N, n, d] one-hot rows,
      all-zero rows for padding slots.
    chunk: cells per compiled call (the last chunk is padded).

  Returns:
    float32 [N, n * latent]; the block of a padding slot is zero.

  Raises:
    ValueError: if the cells do not fit the encoder's space (node count, op count).
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  if ops.ndim != 3 or adjacency.shape != ops.shape[:2] + (ops.shape[1],):
    raise ValueError(
      f"adjacency {adjacency.shape} and ops {ops.shape} are not [N, n, n] and [N, n, d]"
    )
  num, n, d = ops.shape
  if (n, d) != (encoder.num_nodes, encoder.num_ops):
    raise ValueError(
      f"cells of {n} nodes x {d} ops do not fit the {encoder.space} encoder "
      f"({encoder.num_nodes} nodes x {encoder.num_ops} ops)"
    )
  n_node = np.asarray(model_lib.count_nodes(ops), np.int32)
  fn = functools.partial(
    embed_lib.make_encode_fn(d, encoder.model_config, per_node=True), encoder.variables
  )
  chunk = max(1, min(chunk, num))
  outs = embed_lib.map_chunks(fn, (adjacency, ops, n_node), chunk)
  if not outs:
    return np.zeros((0, n * encoder.latent), np.float32)
  return np.asarray(jnp.concatenate(outs), np.float32)


def pooled_from_nodes(features: np.ndarray, n_node: np.ndarray, latent: int) -> np.ndarray:
  """float32 [N, latent]: the mean over the real nodes of `node_features` output [N, n * latent]."""
  features = np.asarray(features, np.float32)
  per_node = features.reshape(len(features), -1, latent)
  return per_node.sum(1) / np.maximum(np.asarray(n_node, np.float32), 1.0)[:, None]
