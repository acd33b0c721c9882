"""Cell embeddings for search: the mean over a cell's real nodes of mu, in eval mode.

`embeddings.npz` (what the search code reads):
  embeddings: float32 [N, latent], one row per cell of the space.
  ids: str [N], the space's cell identifiers (`space.hash`): NB201 arch strings
    in benchmark order, NB101 graph hashes, DARTS graph hashes.
  index: int64 [N], the cell's position in `space.cells()` (0..N-1).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax import model as model_lib

__all__ = [
  "cell_ids",
  "encode",
  "load_embeddings",
  "make_encode_fn",
  "map_chunks",
  "masked_node_mean",
  "save_embeddings",
]


def masked_node_mean(mu: jax.Array, n_node: jax.Array) -> jax.Array:
  """[B, latent]: the mean of mu [B, n, latent] over each cell's real nodes (the first n_node [B])."""
  w = model_lib.node_mask(n_node, mu.shape[1]).astype(mu.dtype)[..., None]
  return (mu * w).sum(axis=1) / jnp.maximum(w.sum(axis=1), 1.0)


def map_chunks(fn: Callable[..., Any], arrays: Sequence[np.ndarray], chunk: int) -> list[Any]:
  """`fn(*parts)` over consecutive chunks of `chunk` rows of `arrays` (host arrays, same length N).

  The last chunk is padded with zero rows to `chunk`, so that one compilation
  serves every call; the padding rows are dropped from its output.

  Args:
    fn: a (jitted) function of the chunks, [chunk, ...] each, returning a pytree
      of [chunk, ...] arrays.
    arrays: [N, ...] each.
    chunk: rows per call (>= 1).

  Returns:
    One output pytree per chunk (device arrays, dispatched asynchronously), its
    leaves [rows of the chunk, ...].
  """
  num = len(arrays[0])
  outs = []
  for start in range(0, num, chunk):
    parts = [a[start : start + chunk] for a in arrays]
    pad = chunk - len(parts[0])
    if pad:
      parts = [np.concatenate([p, np.zeros((pad,) + p.shape[1:], p.dtype)]) for p in parts]
    out = fn(*parts)
    outs.append(jax.tree.map(lambda x, keep=chunk - pad: x[:keep], out))
  return outs


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _encode_chunk(
  num_ops: int,
  model_config: model_lib.ModelConfig,
  include_padding: bool,
  per_node: bool,
  variables: Any,
  adjacency: jax.Array,
  ops: jax.Array,
  n_node: jax.Array,
) -> jax.Array:
  """[B, latent]: the mean of the encoder's mu over real nodes (or every slot) of B cells, eval mode.

  With `per_node` [B, n * latent]: the mu of node slot 0, then slot 1, ..., padding slots zero.
  """
  model = model_lib.Arch2Vec(num_ops, model_config)
  graph = model_lib.cells_to_graphs(adjacency, ops, n_node)
  mu, _ = model.apply(variables, graph, train=False, method=model_lib.Arch2Vec.encode)
  if per_node:
    w = model_lib.node_mask(n_node, ops.shape[1]).astype(mu.dtype)[..., None]
    return (mu * w).reshape(mu.shape[0], -1)
  if include_padding:  # the release: mean over every node slot
    return mu.mean(axis=1)
  return masked_node_mean(mu, n_node)


def make_encode_fn(
  num_ops: int,
  model_config: model_lib.ModelConfig,
  include_padding: bool = False,
  per_node: bool = False,
) -> Callable[..., jax.Array]:
  """A jitted `fn(variables, adjacency, ops, n_node)` for one chunk of B cells of n nodes.

  Returns [B, latent], the pooled embedding, or with `per_node` [B, n * latent]
  (unpooled features; see `_encode_chunk`).

  Compiled once per (num_ops, model_config, include_padding, per_node, shapes): JAX's own
  cache of `_encode_chunk`, no cache of this module's.
  """
  return functools.partial(_encode_chunk, num_ops, model_config, include_padding, per_node)


def encode(
  params: Any,
  batch_stats: Any,
  adjacency: np.ndarray,
  ops: np.ndarray,
  *,
  model_config: model_lib.ModelConfig = model_lib.ModelConfig(),
  n_node: np.ndarray | None = None,
  chunk_size: int = 8192,
  include_padding: bool = False,
) -> np.ndarray:
  """Embeds cells: mean over real nodes of the encoder's mu (eval mode).

  Args:
    params, batch_stats: the model's variables.
    adjacency: int [N, n, n] 0/1 strict upper; ops: int [N, n, d] one-hot.
    model_config: the `ModelConfig` the variables belong to.
    n_node: real nodes per cell (default: from the nonzero rows of `ops`).
    chunk_size: cells per compiled call (the last chunk is padded; one compile).
    include_padding: average over all n node slots instead (the release's
      extraction, which differs only for NB101 cells with < 7 nodes).

  Returns:
    float32 [N, latent].
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  num, _, d = ops.shape
  if n_node is None:
    n_node = model_lib.count_nodes(ops)
  n_node = np.asarray(n_node, np.int32)
  fn = make_encode_fn(d, model_config, include_padding)
  variables = {"params": params, "batch_stats": batch_stats}
  chunk = max(1, min(chunk_size, num))
  outs = map_chunks(functools.partial(fn, variables), (adjacency, ops, n_node), chunk)
  if not outs:
    return np.zeros((0, model_config.latent), np.float32)
  return np.asarray(jnp.concatenate(outs), dtype=np.float32)


def cell_ids(space: Any, adjacency: np.ndarray, ops: np.ndarray, chunk: int = 65536) -> np.ndarray:
  """The space's identifiers of its own cells (`space.hash`, in chunks), as str [N]."""
  parts = [
    np.asarray(space.hash(adjacency[i : i + chunk], ops[i : i + chunk]))
    for i in range(0, len(ops), chunk)
  ]
  if not parts:
    return np.zeros(0, dtype=str)
  return np.concatenate([p.astype(str) for p in parts])


def save_embeddings(
  path: str | os.PathLike, embeddings: np.ndarray, ids: np.ndarray, index: np.ndarray | None = None
) -> None:
  """Writes `embeddings.npz` atomically (keys embeddings, ids, index; see module doc)."""
  embeddings = np.asarray(embeddings, np.float32)
  ids = np.asarray(ids).astype(str)
  index = (
    np.arange(len(embeddings), dtype=np.int64) if index is None else np.asarray(index, np.int64)
  )
  if embeddings.ndim != 2 or ids.shape != (len(embeddings),) or index.shape != (len(embeddings),):
    raise ValueError(
      f"shape mismatch: embeddings {embeddings.shape}, ids {ids.shape}, index {index.shape}"
    )
  fileio.atomic_save_npz(path, embeddings=embeddings, ids=ids, index=index)


def load_embeddings(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Reads `embeddings.npz`: {'embeddings' [N, L] float32, 'ids' str [N], 'index' int64 [N]}."""
  data = fileio.load_npz(path)
  missing = {"embeddings", "ids", "index"} - set(data)
  if missing:
    raise ValueError(f"{os.fspath(path)}: missing keys {sorted(missing)}")
  return data
