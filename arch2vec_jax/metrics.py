"""Pre-training metrics (docs/arch2vec.md §4): reconstruction, validity, uniqueness.

Reconstruction (held-out cells, eval mode, z = mu):
  ops_acc: per-node argmax match over the real nodes.
  ops_acc_release: the release's number, argmax match over every node slot
    (an all-zero padding row has argmax 0); equal to ops_acc without padding.
  adj_acc: per-entry match of the strict upper triangle at sigmoid > 0.5, over
    all n(n-1)/2 entries of every cell (as the release's `get_accuracy`).
  exact_acc: whole-cell match: every real node's op and every strict-upper entry.

Validity / uniqueness (the release's `pretraining_*.py` loop, vectorised):
  z ~ N(mean_Z, std_Z) independently per node position and latent dim, where
  mean_Z, std_Z [n, latent] are the mean and the unbiased (torch `.std`) std over
  the training cells of the mus collected during the epoch; decoded in eval mode
  (no dropout): ops = one-hot argmax, adjacency = strict upper triangle of
  sigmoid(z z^T) > 0.5. validity = valid / samples (`space.is_valid`),
  uniqueness = distinct `space.hash` among the valid / valid (0 if none valid).
  uniqueness_raw = distinct graphs as decoded (the NB101 hash of the unpruned
  decoded adjacency with the argmax ops as labels) among the valid / valid:
  what the release counts for NB101 (`graph_util.hash_module` of the decoded
  matrix, not of the pruned cell), so decodes that differ only in nodes or
  edges that pruning removes count as different. `uniqueness` counts cells of
  the space; `uniqueness_raw` >= `uniqueness`.
  The spaces' default validity is the release's (NB201: ops only, the decoded
  adjacency is not checked; DARTS: its partial edge checks), which produced the
  paper's numbers; `validity_strict` (NB201, DARTS) counts the decodes that are
  exactly a cell of the space. On NB201 a prior sample that is a real cell is
  one of 15,625, so with ~10,000 samples uniqueness among real cells cannot
  exceed the birthday bound (about 75% for uniform draws); the paper's 98.72%
  counts decodes with other adjacencies as distinct cells.

Reconstruction ceiling (`reconstruction_ceiling`, once per run): the GIN encoder
sees op labels and undirected edges, so nodes that 1-WL colour refinement cannot
tell apart get the same mu, and the inner-product decoder then decodes an edge
between them; held-out cells with such a non-adjacent pair cannot be reconstructed
exactly by any weights (NB101 and DARTS have them, NB201 does not).

Device work is jitted (one compiled call per metric); validity and hashing are
host-side NumPy through the search space's vectorised functions.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import model as model_lib
from arch2vec_jax.spaces import graph_hash

__all__ = [
  "ReconCounts",
  "chunk_cells",
  "decode_latents",
  "latent_stats",
  "make_prior_decoder",
  "make_reconstruction_fn",
  "reconstruction_accuracy",
  "reconstruction_ceiling",
  "reconstruction_counts",
  "validity_uniqueness",
  "wl_colors",
]


class ReconCounts(NamedTuple):
  """Integer counts behind the reconstruction accuracies (sums over cells)."""

  ops_correct: jax.Array  # real nodes with the right op
  ops_total: jax.Array  # real nodes
  ops_correct_all: jax.Array  # node slots with the right argmax (release)
  adj_correct: jax.Array  # strict-upper entries right
  exact: jax.Array  # cells entirely right
  cells: jax.Array  # cells counted


def reconstruction_counts(
  ops_logits: jax.Array,
  adj_logits: jax.Array,
  ops: jax.Array,
  adjacency: jax.Array,
  n_node: jax.Array,
  cell_mask: jax.Array | None = None,
) -> ReconCounts:
  """Counts of correct reconstructions in a batch (pure, jittable).

  Args:
    ops_logits: [B, n, d]; adj_logits: [B, n, n] (decoder outputs, z = mu).
    ops: [B, n, d] one-hot targets; adjacency: [B, n, n] 0/1 targets.
    n_node: int [B] real nodes per cell.
    cell_mask: optional bool/float [B]; cells with 0 are not counted.

  Returns:
    `ReconCounts` of int32 scalars.
  """
  b, n, d = ops.shape
  chex.assert_shape(ops_logits, (b, n, d))
  chex.assert_shape([adj_logits, adjacency], (b, n, n))
  if cell_mask is None:
    cell_mask = jnp.ones((b,), bool)
  cell_mask = cell_mask.astype(bool)
  real = model_lib.node_mask(n_node, n) & cell_mask[:, None]  # [B, n]
  op_ok = jnp.argmax(ops_logits, -1) == jnp.argmax(ops, -1)  # [B, n]
  upper = jnp.triu(jnp.ones((n, n), bool), 1)
  pred_adj = jax.nn.sigmoid(adj_logits) > 0.5
  adj_ok = (pred_adj == (adjacency != 0)) | ~upper  # [B, n, n], True off the strict upper
  cell_ok = jnp.all(op_ok | ~real, -1) & jnp.all(adj_ok, (-1, -2)) & cell_mask
  i32 = lambda x: jnp.sum(x, dtype=jnp.int32)
  return ReconCounts(
    ops_correct=i32(op_ok & real),
    ops_total=i32(real),
    ops_correct_all=i32(op_ok & cell_mask[:, None]),
    adj_correct=i32(adj_ok & upper & cell_mask[:, None, None]),
    exact=i32(cell_ok),
    cells=i32(cell_mask),
  )


def make_reconstruction_fn(
  model: model_lib.Arch2Vec, chunk_size: int
) -> Callable[..., ReconCounts]:
  """A jitted `fn(variables, adjacency, ops, n_node, cell_mask) -> ReconCounts`.

  Inputs are stacked in chunks, [C, chunk_size, ...]; the chunks run under
  `lax.map` inside one compiled call (eval mode, z = mu) and the counts are summed.
  """

  def one_chunk(variables, chunk):
    adj, ops, n_node, mask = chunk
    graph = model_lib.cells_to_graphs(adj, ops, n_node)
    out = model.apply(variables, graph, train=False)
    return reconstruction_counts(out["ops_logits"], out["adj_logits"], ops, adj, n_node, mask)

  @jax.jit
  def fn(variables, adjacency, ops, n_node, cell_mask):
    chex.assert_rank([adjacency, ops], 4)
    chex.assert_equal(adjacency.shape[1], chunk_size)
    counts = jax.lax.map(
      functools.partial(one_chunk, variables), (adjacency, ops, n_node, cell_mask)
    )
    return jax.tree.map(lambda x: jnp.sum(x, dtype=jnp.int32), counts)

  return fn


def chunk_cells(
  adjacency: np.ndarray, ops: np.ndarray, n_node: np.ndarray, chunk_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Pads N cells to a multiple of `chunk_size` and stacks them [C, chunk, ...].

  Returns:
    adjacency [C, chunk, n, n], ops [C, chunk, n, d], n_node [C, chunk] (0 for
    padding), cell_mask bool [C, chunk].
  """
  num = adjacency.shape[0]
  chunks = max(1, -(-num // chunk_size))
  pad = chunks * chunk_size - num

  def padded(x):
    x = np.asarray(x)
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    return x.reshape(chunks, chunk_size, *x.shape[1:])

  mask = np.arange(chunks * chunk_size) < num
  return padded(adjacency), padded(ops), padded(n_node), mask.reshape(chunks, chunk_size)


def reconstruction_accuracy(counts: ReconCounts, n: int) -> dict[str, float]:
  """Accuracies (fractions) from summed counts for node budget n."""
  c = {k: int(v) for k, v in counts._asdict().items()}
  cells = max(c["cells"], 1)
  return {
    "ops_acc": c["ops_correct"] / max(c["ops_total"], 1),
    "adj_acc": c["adj_correct"] / (cells * n * (n - 1) / 2),
    "exact_acc": c["exact"] / cells,
    "ops_acc_release": c["ops_correct_all"] / (cells * n),
  }


def latent_stats(
  mu_sum: np.ndarray, mu_sq_sum: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
  """Per-position mean and unbiased std of the training mus from their sums.

  Args:
    mu_sum, mu_sq_sum: [..., n, latent] sums over cells (summed in float64 here).
    count: number of cells.

  Returns:
    (mean, std) float32 [n, latent].
  """
  s = np.asarray(mu_sum, np.float64).reshape(-1, *np.shape(mu_sum)[-2:]).sum(0)
  q = np.asarray(mu_sq_sum, np.float64).reshape(-1, *np.shape(mu_sq_sum)[-2:]).sum(0)
  mean = s / count
  var = np.maximum(q - count * mean**2, 0.0) / max(count - 1, 1)
  return mean.astype(np.float32), np.sqrt(var).astype(np.float32)


def decode_latents(
  model: model_lib.Arch2Vec, variables: Any, z: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """Decodes latents to discrete cells (eval mode), as the release does.

  Args:
    z: [S, n, latent].

  Returns:
    adjacency int8 [S, n, n] (strict upper of sigmoid(z z^T) > 0.5), ops int8
    [S, n, d] (one-hot argmax of the decoded ops).
  """
  ops_logits, adj_logits = model.apply(variables, z, train=False, method=model_lib.Arch2Vec.decode)
  n, d = ops_logits.shape[-2:]
  ops = jax.nn.one_hot(jnp.argmax(ops_logits, -1), d, dtype=jnp.int8)
  upper = jnp.triu(jnp.ones((n, n), bool), 1)
  adj = ((jax.nn.sigmoid(adj_logits) > 0.5) & upper).astype(jnp.int8)
  return adj, ops


def make_prior_decoder(
  model: model_lib.Arch2Vec, num_samples: int
) -> Callable[..., tuple[jax.Array, jax.Array]]:
  """A jitted `fn(variables, mean, std, key) -> (adjacency, ops)` of `num_samples` prior decodes.

  z = mean + std * N(0, 1), mean/std [n, latent] per node position.
  """

  @jax.jit
  def fn(variables, mean, std, key):
    z = mean + std * jax.random.normal(key, (num_samples, *mean.shape), mean.dtype)
    return decode_latents(model, variables, z)

  return fn


def validity_uniqueness(space: Any, adjacency: np.ndarray, ops: np.ndarray) -> dict[str, float]:
  """Validity and uniqueness of decoded cells, judged by the search space.

  Args:
    space: a `SearchSpace` (its `is_valid` and `hash`).
    adjacency: 0/1 [S, n, n]; ops: one-hot [S, n, d].

  Returns:
    dict: validity (valid / S), uniqueness (distinct hashes / valid, 0 if none),
    uniqueness_raw (distinct decoded graphs / valid, module doc), num_samples,
    num_valid, num_unique, num_unique_raw; validity_strict (decodes that are
    exactly a cell of the space / S) where the space's `is_valid` takes `strict`;
    validity_parts {check: fraction of decodes passing it} where the space has
    `validity_parts` (DARTS: which of the release's checks the decodes fail).
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  num = adjacency.shape[0]
  extra = {}
  if "strict" in inspect.signature(space.is_valid).parameters:
    extra["validity_strict"] = (
      float(np.mean(space.is_valid(adjacency, ops, strict=True))) if num else 0.0
    )
  if getattr(space, "validity_parts", None) is not None:  # `is_valid` is the AND of these checks
    parts = space.validity_parts(adjacency, ops)
    extra["validity_parts"] = {k: float(np.mean(v)) if num else 0.0 for k, v in parts.items()}
    valid = np.logical_and.reduce(list(parts.values()))
  else:
    valid = np.asarray(space.is_valid(adjacency, ops), dtype=bool)
  chex.assert_shape(valid, (num,))
  num_valid = int(valid.sum())
  if num_valid:
    hashes = np.asarray(space.hash(adjacency[valid], ops[valid]))
    num_unique = len(set(hashes.tolist()))
    raw = graph_hash.hash_batch(adjacency[valid], np.argmax(ops[valid], axis=-1))
    num_unique_raw = len(set(raw.tolist()))
  else:
    num_unique = num_unique_raw = 0
  return {
    "validity": num_valid / max(num, 1),
    "uniqueness": num_unique / num_valid if num_valid else 0.0,
    "uniqueness_raw": num_unique_raw / num_valid if num_valid else 0.0,
    "num_samples": num,
    "num_valid": num_valid,
    "num_unique": num_unique,
    "num_unique_raw": num_unique_raw,
    **extra,
  }


def wl_colors(
  adjacency: np.ndarray, ops: np.ndarray, n_node: np.ndarray, rounds: int
) -> np.ndarray:
  """1-WL colour refinement of the cells as the encoder sees them (op labels, undirected edges).

  A GIN layer maps equal (own colour, multiset of neighbour colours) to equal
  features, so after `rounds` layers two nodes of a cell with the same colour
  have the same mu, whatever the weights.

  Args:
    adjacency: 0/1 [N, n, n] strict upper; ops: one-hot [N, n, d]; n_node: int [N].
    rounds: refinement rounds (the encoder's GIN layers).

  Returns:
    int64 [N, n]: colours (comparable within and across cells); -1 for padding slots.
  """
  edges = np.asarray(adjacency) != 0
  sym = edges | np.swapaxes(edges, 1, 2)
  num, n = sym.shape[:2]
  real = np.arange(n)[None, :] < np.asarray(n_node)[:, None]
  colors = np.where(real, np.argmax(np.asarray(ops), -1), -1).astype(np.int64)
  for _ in range(rounds):
    neighbours = np.sort(np.where(sym, colors[:, None, :], -2), axis=-1)  # [N, n, n], -2 = no edge
    signature = np.concatenate([colors[..., None], neighbours], axis=-1).reshape(num * n, n + 1)
    _, inverse = np.unique(signature, axis=0, return_inverse=True)
    colors = np.where(real, inverse.reshape(num, n), -1)
  return colors


def reconstruction_ceiling(
  adjacency: np.ndarray, ops: np.ndarray, n_node: np.ndarray, rounds: int
) -> dict[str, float]:
  """The best reconstruction a `rounds`-layer GIN encoder with the inner-product decoder can reach.

  Two real nodes with the same `wl_colors` get the same z = mu (eval mode), so the
  decoder gives their pair sigmoid(|mu|^2) >= 0.5: an edge unless mu = 0, and
  with mu = 0 every edge of those nodes is lost instead. A class of same-colour
  nodes with a non-adjacent pair therefore costs at least min(its non-adjacent
  pairs, the true edges touching it) >= 1 adjacency errors, whatever the weights.

  Args:
    adjacency: 0/1 [N, n, n] strict upper; ops: one-hot [N, n, d]; n_node: int [N].
    rounds: the encoder's GIN layers.

  Returns:
    dict: adj_acc_max (1 - forced errors / (N n(n-1)/2), the `adj_acc` definition),
    exact_acc_max (cells without a forced error / N), forced_errors (their count).
  """
  adjacency = np.asarray(adjacency) != 0
  num, n = adjacency.shape[:2]
  if not num:
    return {"adj_acc_max": 1.0, "exact_acc_max": 1.0, "forced_errors": 0}
  colors = wl_colors(adjacency, ops, n_node, rounds)
  sym = adjacency | np.swapaxes(adjacency, 1, 2)
  upper = np.triu(np.ones((n, n), bool), 1)
  forced = np.zeros(num, np.int64)
  for k in range(n):  # the class of slot k, counted at its first member
    members = (colors == colors[:, k : k + 1]) & (colors >= 0)  # [N, n]
    first = members.argmax(axis=1) == k
    pairs = members[:, :, None] & members[:, None, :] & upper
    non_adjacent = np.sum(pairs & ~sym, axis=(1, 2))
    touching = np.sum(sym & members[:, :, None], axis=(1, 2)) - np.sum(pairs & sym, axis=(1, 2))
    forced += np.where(first & (colors[:, k] >= 0), np.minimum(non_adjacent, touching), 0)
  return {
    "adj_acc_max": float(1.0 - forced.sum() / (num * n * (n - 1) / 2)),
    "exact_acc_max": float(np.mean(forced == 0)),
    "forced_errors": int(forced.sum()),
  }
