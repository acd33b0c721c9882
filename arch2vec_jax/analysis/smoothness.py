"""Smoothness of an embedding: latent L2 distance against graph edit distance, and nearest-neighbour accuracy gaps.

Edit distance on integer cell codes (a Hamming distance; each space's
`SearchSpace.edit_codes`, which the pipeline uses):
  NB201: the 6 edge operations of the arch string (`nb201_codes`); the edit
    distance of two cells is the number of edges whose operation differs (0..6).
  NB101: the flattened strict-upper adjacency and the node operations of cells
    with the same number of vertices (`nb101_codes`): the number of differing
    adjacency entries plus differing operations, in the stored node order (no
    minimum over relabellings, so it is an upper bound of the true graph edit
    distance); pairs of cells with different vertex counts are left out (their
    `group` differs).

`distance_by_edit` runs over every pair of (a random subset of) cells in
compiled row chunks and accumulates, per edit distance, the number of pairs,
the mean and the std of the L2 distance (and of |accuracy difference|).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax.spaces import nb101_tables, nb201_tables

__all__ = [
  "distance_by_edit",
  "monotone_increasing",
  "nb101_codes",
  "nb201_codes",
  "nb201_edit_distance",
  "nearest_neighbour_gap",
]


def nb201_codes(arch_strings) -> np.ndarray:
  """int32 [N, 6]: the index in `nb201.EDGE_OPS` of each edge's operation (arch-string order).

  `spaces.nb201_tables.edge_op_codes`.
  """
  return nb201_tables.edge_op_codes(arch_strings)


def nb201_edit_distance(a: str, b: str) -> int:
  """Number of the 6 edges whose operation differs between two NB201 arch strings."""
  ca, cb = nb201_codes([a, b])
  return int(np.sum(ca != cb))


def nb101_codes(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(codes int32 [N, n(n-1)/2 + n], group int32 [N]) of NB101 cells (`nb101_tables.edit_codes`).

  codes: the strict-upper adjacency entries then the op index per node (-1 on
  padding rows); group: the number of real nodes (only same-size cells are compared).
  """
  return nb101_tables.edit_codes(None, adjacency, ops)


@functools.partial(jax.jit, static_argnames=("max_edit", "chunk"))
def _pair_stats(emb, codes, group, acc, max_edit: int, chunk: int):
  """Sums over pairs i < j of the same group, binned by edit distance: [max_edit + 1] each."""
  n = emb.shape[0]
  pad = (-n) % chunk
  rows = jnp.arange(n + pad)
  sq = jnp.sum(emb * emb, 1)

  def one(start):
    i = jax.lax.dynamic_slice_in_dim(rows, start, chunk)
    ic = jnp.minimum(i, n - 1)
    e, c, g, a = emb[ic], codes[ic], group[ic], acc[ic]
    d2 = sq[ic][:, None] + sq[None, :] - 2.0 * e @ emb.T
    dist = jnp.sqrt(jnp.maximum(d2, 0.0))  # [chunk, n]
    edit = jnp.sum(c[:, None, :] != codes[None, :, :], axis=-1)  # [chunk, n]
    valid = (
      (i[:, None] < jnp.arange(n)[None, :]) & (i[:, None] < n) & (g[:, None] == group[None, :])
    )
    valid &= edit <= max_edit
    bins = jnp.where(valid, edit, max_edit + 1).reshape(-1)
    gap = jnp.abs(a[:, None] - acc[None, :]).reshape(-1)
    seg = functools.partial(jax.ops.segment_sum, segment_ids=bins, num_segments=max_edit + 2)
    flat = dist.reshape(-1)
    return jnp.stack(
      [seg(jnp.ones_like(flat)), seg(flat), seg(flat * flat), seg(gap), seg(gap * gap)]
    )[:, :-1]

  starts = jnp.arange(0, n + pad, chunk)
  return jax.lax.map(one, starts).sum(0)  # [5, max_edit + 1]


def distance_by_edit(
  embeddings: np.ndarray,
  codes: np.ndarray,
  accuracy: np.ndarray | None = None,
  group: np.ndarray | None = None,
  *,
  max_cells: int | None = None,
  seed: int = 0,
  max_edit: int | None = None,
  chunk: int = 256,
) -> dict[str, Any]:
  """Mean L2 latent distance (and |accuracy gap|) per edit distance over all pairs of cells.

  Args:
    embeddings: float [N, L]; codes: int [N, C] (edit distance = Hamming distance).
    accuracy: float [N] (optional; NaN-free) for the accuracy gap per edit distance.
    group: int [N]; only pairs within a group count (default: one group).
    max_cells: use a random subset of this many cells (all pairs of the subset).
    seed: the subset's seed.
    max_edit: largest edit distance kept (default C).
    chunk: rows per compiled step.

  Returns:
    {'edit': [K] edit distances with at least one pair, 'count', 'mean', 'std', 'gap_mean',
     'gap_std' ([K] lists), 'num_cells'}.
  """
  embeddings = np.asarray(embeddings, np.float32)
  codes = np.asarray(codes, np.int32)
  n = len(embeddings)
  group = np.zeros(n, np.int32) if group is None else np.asarray(group, np.int32)
  accuracy = np.zeros(n, np.float32) if accuracy is None else np.asarray(accuracy, np.float32)
  if max_cells is not None and n > max_cells:
    pick = np.sort(np.random.default_rng(seed).choice(n, max_cells, replace=False))
    embeddings, codes, group, accuracy = embeddings[pick], codes[pick], group[pick], accuracy[pick]
  max_edit = codes.shape[1] if max_edit is None else int(max_edit)
  s = np.asarray(
    _pair_stats(
      jnp.asarray(embeddings),
      jnp.asarray(codes),
      jnp.asarray(group),
      jnp.asarray(accuracy),
      max_edit,
      min(chunk, len(embeddings)),
    ),
    np.float64,
  )
  count, sd, sd2, sg, sg2 = s
  keep = np.flatnonzero(count > 0)
  c = count[keep]
  mean, gap = sd[keep] / c, sg[keep] / c
  std = np.sqrt(np.maximum(sd2[keep] / c - mean**2, 0.0))
  gap_std = np.sqrt(np.maximum(sg2[keep] / c - gap**2, 0.0))
  return {
    "edit": keep.tolist(),
    "count": c.astype(np.int64).tolist(),
    "mean": mean.tolist(),
    "std": std.tolist(),
    "gap_mean": gap.tolist(),
    "gap_std": gap_std.tolist(),
    "num_cells": len(embeddings),
  }


@functools.partial(jax.jit, static_argnames=("chunk",))
def _nearest(emb, chunk: int):
  n = emb.shape[0]
  pad = (-n) % chunk
  sq = jnp.sum(emb * emb, 1)

  def one(start):
    i = jnp.minimum(start + jnp.arange(chunk), n - 1)
    d2 = sq[i][:, None] + sq[None, :] - 2.0 * emb[i] @ emb.T
    d2 = jnp.where(i[:, None] == jnp.arange(n)[None, :], jnp.inf, d2)
    return jnp.argmin(d2, axis=1)

  return jax.lax.map(one, jnp.arange(0, n + pad, chunk)).reshape(-1)[:n]


def nearest_neighbour_gap(
  embeddings: np.ndarray, accuracy: np.ndarray, *, seed: int = 0, chunk: int = 512
) -> dict[str, float]:
  """|accuracy difference| between each cell and its nearest other cell in the embedding (L2).

  Returns:
    {'nn_gap_mean', 'nn_gap_median', 'random_gap_mean' (a random partner instead), 'ratio'
     (nn / random: below 1 means neighbours in the latent space have similar accuracy)}.
  """
  emb = jnp.asarray(np.asarray(embeddings, np.float32))
  accuracy = np.asarray(accuracy, np.float64)
  nn_idx = np.asarray(_nearest(emb, min(chunk, len(accuracy))))
  gap = np.abs(accuracy - accuracy[nn_idx])
  rng = np.random.default_rng(seed)
  partner = (np.arange(len(accuracy)) + rng.integers(1, len(accuracy), len(accuracy))) % len(
    accuracy
  )
  rand = np.abs(accuracy - accuracy[partner])
  return {
    "nn_gap_mean": float(gap.mean()),
    "nn_gap_median": float(np.median(gap)),
    "random_gap_mean": float(rand.mean()),
    "ratio": float(gap.mean() / max(rand.mean(), 1e-12)),
  }


def monotone_increasing(values) -> bool:
  """Whether a sequence is strictly increasing."""
  v = np.asarray(values, np.float64)
  return bool(np.all(np.diff(v) > 0))
