"""Pre-trained arch2vec encoders in one call: load, embed any cell, decode latents.

  from arch2vec_jax import pretrained

  enc = pretrained.load("nb201")                 # shipped weights (package data)
  enc = pretrained.load("workdir/nb201")         # or any --workdir of launch/pretrain.py
  x = enc.embed(["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"])
  x.shape                                        # (1, 16): what embeddings.npz has for that cell
  out = enc.decode(z)                            # z [S, n, latent] -> cells, validity per point
  near = enc.nearest(x, pool_embeddings)         # nearest pool cells by embedding distance

`load(name_or_path)` returns an `Encoder`: the parameters, BatchNorm statistics
and full configuration (`train.TrainConfig`, with its `model.ModelConfig`) of a
pre-training run, the space, and the prior's per-node latent mean and std where
the source has them (a weights file exported with `export(..., prior=...)`; a
workdir from its checkpoint's extra data "prior": {"mean", "std"}, which
`train.pretrain` writes with every checkpoint; older checkpoints have none). `name_or_path` is one of `NAMES` ("nb101", "nb201",
"darts": always the shipped files `arch2vec_jax/weights/<name>.msgpack`; use
"./nb201" for a folder of that name), a weights file written by `export`, or a
`--workdir` of `launch/pretrain.py` (its newest `checkpoints/checkpoint_*.msgpack`,
read with `checkpoint.latest_checkpoint` / `checkpoint.load_raw`, plus
`metrics.json` and the length of `embeddings.npz` when present).

Inputs `Encoder.embed` accepts (`Encoder.to_arrays` converts them):
  * arrays: a pair (adjacency int [N, n, n] 0/1 strict upper, ops [N, n, d]
    one-hot rows, all-zero rows for trailing padding nodes);
  * a sequence of cells, each one of: a pair of arrays (adjacency [n, n], ops
    [n, d]); NB101: a (matrix [V, V], op-name list) spec (V <= 7, `nb101.OPS`) or
    an object with `.matrix` and `.ops` (a nasbench `ModelSpec`); NB201: an arch
    string; DARTS: a genotype (8 (op, input) pairs, or an object with `.normal`)
    or its text (`darts.parse_genotype`).
A cell of another space or size is a ValueError naming its index and shape.

Exactness: `embed` runs the compiled function that wrote the run's
`embeddings.npz` (`embed.make_encode_fn` with the run's `include_padding`) on
chunks of the run's chunk size (`Encoder.embed_chunk`, `min(8192, cells of the
run)`, the default of `embed.encode`), padded, so on the same machine the
vectors equal the file's bit for bit, for any subset and order of its cells.
XLA:CPU picks other kernels for other batch sizes (results about 1 ulp apart
for small batches), so `exact=False`, which pads to the next power of two
instead (16 .. 8192), agrees to float rounding only; it is the fast choice for a
few cells (default model, 2-core CPU: one cell 2 ms instead of 0.35 s; 15,625
NB201 cells about 18,000 cells/s either way).

Inside your own `jit` / `grad`: `Encoder.module` is the Flax module
(`model.Arch2Vec`), `Encoder.variables` its variables, `Encoder.embed_fn` the pure
`fn(variables, adjacency, ops, n_node) -> [B, latent]`:

  import jax, jax.numpy as jnp
  from arch2vec_jax import model, pretrained
  enc = pretrained.load("nb201")
  adj, ops = enc.to_arrays(arch_strings)          # int8 [B, 8, 8], [B, 8, 7]
  n_node = model.count_nodes(ops)
  z = jnp.zeros((len(ops), enc.num_nodes, enc.latent))

  @jax.jit
  def loss(variables, z):                         # z [B, 8, latent]
    ops_logits, adj_logits = enc.module.apply(variables, z, method=model.Arch2Vec.decode)
    return jnp.mean(jax.nn.sigmoid(adj_logits))

  g = jax.grad(loss, argnums=1)(enc.variables, z)
  x = jax.jit(enc.embed_fn)(enc.variables, adj, ops, n_node)   # == enc.embed((adj, ops))

File layout (`FORMAT_VERSION` 1), one `flax.serialization` msgpack file:
  outer map {"format": "arch2vec-jax-pretrained", "version": 1,
             "sha256": hex digest of body, "body": bytes}
  body (msgpack map):
    params, batch_stats: the model's variables (nested maps of float32 arrays).
    prior: {"mean", "std": float32 [n, latent]} (the last epoch's prior) or {}.
    reference: {"adjacency" int8 [K, n, n], "ops" int8 [K, n, d],
                "embeddings" float32 [K, latent]}: K cells of the run and their
               rows of embeddings.npz (a check a shipped file carries), or {}.
    meta: JSON text: format_version, space, num_nodes, num_ops, config
          (`TrainConfig.to_dict()`), include_padding, embed_chunk, epoch (last
          finished, 0-based), command, summary (final metrics), data (cell
          counts), device (of the run), reference_ids, source (workdir and
          checkpoint), package_version, versions (jax, jaxlib, flax, numpy),
          created (UTC, ISO 8601).
The version is read from the outer map before anything else: a file of another
format or version fails with a ValueError naming the file and both versions;
a checksum mismatch (truncated, altered) fails naming the file. A later format
version gets a new number, and this module is to keep reading version 1 files.

Why one msgpack file and not Orbax: measured on this project's 2-core CPU
(orbax-checkpoint 0.12.8, flax 0.12.8) with the default model (hidden 128,
latent 16, 4 layers: 123k parameters, 2k BatchNorm statistics) plus prior and
metadata, for each space's shapes; Orbax as `Checkpointer(CompositeCheckpointHandler())`
with `StandardSave` (arrays) and `JsonSave` (metadata); each layout saved once,
loaded 5 times in the process (median) and 3 times in a new process:
                         msgpack (this)      Orbax
    size                 502-506 KB          467-470 KB
    files                1                   13-15 (4 folders, content-hashed OCDBT names)
    load, in process     0.3-0.4 ms          29-34 ms (about 90x)
    load, new process    1.11 s              1.17-1.24 s (both mostly `import jax`)
    save                 1.1-1.3 ms          47-110 ms
Orbax's 7% smaller size does not matter at 0.5 MB; its folder of generated file
names is awkward as package data and in git, it loads about 90x slower in the
process, it is not a dependency of the project (it brings tensorstore), and the
project's checkpoints are already msgpack (`arch2vec_jax.checkpoint`).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import importlib.metadata
import importlib.resources
import inspect
import json
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.core
import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import checkpoint as ckpt_lib
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio
from arch2vec_jax import metrics as metrics_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import train as train_lib

__all__ = [
  "FORMAT",
  "FORMAT_VERSION",
  "NAMES",
  "Decoded",
  "Encoder",
  "Nearest",
  "decode",
  "embed",
  "export",
  "load",
  "nearest",
  "weights_path",
]

FORMAT = "arch2vec-jax-pretrained"
FORMAT_VERSION = 1
NAMES = ("nb101", "nb201", "darts")
# The chunk `embed.encode` (hence `train.pretrain`) embeds with when not told otherwise.
_ENCODE_CHUNK = int(inspect.signature(embed_lib.encode).parameters["chunk_size"].default)
_MIN_BUCKET = 16
_NUM_REFERENCE = 16
# (n, d) of each space's cells, to say which space a wrongly sized cell looks like.
_SHAPES = {(7, 5): "nb101", (8, 7): "nb201", (11, 11): "darts"}


class Decoded(NamedTuple):
  """Decoded latent points (`Encoder.decode`).

  Attributes:
    adjacency: int8 [S, n, n], strict upper triangle of sigmoid(z z^T) > 0.5.
    ops: int8 [S, n, d], one-hot argmax of the decoded ops.
    valid: bool [S], the space's validity check (`SearchSpace.is_valid`, the
      release's semantics, as the pre-training metrics count).
    strict: bool [S], exactly a cell of the space (`is_valid(strict=True)` for
      NB201 and DARTS; NB101's check is already exact, so `strict == valid`).
    cells: S entries, the cell in the space's own form where `strict`, else None:
      NB201 arch string, NB101 (matrix, ops) after pruning, DARTS genotype.
  """

  adjacency: np.ndarray
  ops: np.ndarray
  valid: np.ndarray
  strict: np.ndarray
  cells: list


class Nearest(NamedTuple):
  """Nearest pool cells (`Encoder.nearest`).

  Attributes:
    index: int64 [S, k], rows of the pool, nearest first.
    distance: float32 [S, k], Euclidean distances in embedding space.
  """

  index: np.ndarray
  distance: np.ndarray


def weights_path(name: str) -> str:
  """The path of the shipped weights file of space `name` (it may not exist)."""
  if name not in NAMES:
    raise ValueError(f"no shipped weights named {name!r}; names: {NAMES}")
  return os.fspath(importlib.resources.files("arch2vec_jax") / "weights" / f"{name}.msgpack")


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def _bucket(num: int, cap: int) -> int:
  """The padded batch for `num` cells: the next power of two in [_MIN_BUCKET, cap]."""
  return max(1, min(cap, max(_MIN_BUCKET, 1 << max(num - 1, 0).bit_length())))


def _is_numeric_array(x: Any) -> bool:
  return isinstance(x, (np.ndarray, jax.Array)) and np.dtype(x.dtype).kind in "biuf"


def _is_array_pair(x: Any) -> bool:
  return isinstance(x, (tuple, list)) and len(x) == 2 and all(_is_numeric_array(a) for a in x)


def _short(x: Any, limit: int = 80) -> str:
  text = repr(x)
  return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.partial(jax.jit, static_argnums=(0, 1))
def _decode(num_ops: int, model_config: model_lib.ModelConfig, variables: Any, z: jax.Array):
  """(adjacency, ops) of latents z [S, n, latent] (`metrics.decode_latents`), compiled per config and shape."""
  return metrics_lib.decode_latents(model_lib.Arch2Vec(num_ops, model_config), variables, z)


@functools.partial(jax.jit, static_argnames="k")
def _top_k(queries: jax.Array, pool: jax.Array, pool_sq: jax.Array, k: int):
  """Indices [Q, k] of the k pool rows nearest to each query (squared distances expanded)."""
  d2 = (
    jnp.sum(queries * queries, axis=-1, keepdims=True) - 2.0 * queries @ pool.T + pool_sq[None, :]
  )
  return jax.lax.top_k(-d2, k)[1]


@dataclasses.dataclass(frozen=True, eq=False)
class Encoder:
  """A pre-trained arch2vec model: variables, configuration, and what to do with them.

  Attributes:
    space: 'nb101', 'nb201' or 'darts'.
    config: the run's `train.TrainConfig` (its `model` is the `ModelConfig`).
    params, batch_stats: the model's variables, nested dicts of NumPy arrays.
    prior_mean, prior_std: float32 [n, latent], the per-node latent mean and
      std of the run's last prior (docs/arch2vec.md §4), or None where the source has
      none (a workdir's checkpoints do not store it).
    embed_chunk: cells per compiled call in exact mode (the run's; module doc).
    reference: None or {"adjacency", "ops", "embeddings", "ids"}: K cells of the
      run with their rows of its embeddings.npz (shipped files carry them).
    meta: the rest, as JSON-like data: epoch, command, summary, data, device,
      source, package_version, versions, created (see the module doc).
  """

  space: str
  config: train_lib.TrainConfig
  params: Any
  batch_stats: Any
  prior_mean: np.ndarray | None = None
  prior_std: np.ndarray | None = None
  embed_chunk: int = _ENCODE_CHUNK
  reference: dict[str, Any] | None = None
  meta: dict[str, Any] = dataclasses.field(default_factory=dict)

  # ----------------------------------------------------------------- model access

  @property
  def model_config(self) -> model_lib.ModelConfig:
    return self.config.model

  @property
  def include_padding(self) -> bool:
    """Embeddings average every node slot (the release) instead of the real nodes."""
    return bool(self.config.embed_include_padding)

  @functools.cached_property
  def search_space(self) -> Any:
    """The `SearchSpace` of `space` (validity, hashes)."""
    return train_lib.get_space(self.space)

  @property
  def num_nodes(self) -> int:
    return int(self.search_space.num_nodes)

  @property
  def num_ops(self) -> int:
    return int(self.search_space.num_ops)

  @property
  def latent(self) -> int:
    return int(self.model_config.latent)

  @functools.cached_property
  def module(self) -> model_lib.Arch2Vec:
    """The Flax module; `module.apply(variables, graph)`, `method=Arch2Vec.encode / decode`."""
    return model_lib.Arch2Vec(self.num_ops, self.model_config)

  @functools.cached_property
  def variables(self) -> dict[str, Any]:
    """{"params", "batch_stats"} as device arrays (placed once), for `module.apply`."""
    return jax.device_put({"params": self.params, "batch_stats": self.batch_stats})

  @property
  def embed_fn(self):
    """The jitted `fn(variables, adjacency [B, n, n], ops [B, n, d], n_node [B]) -> [B, latent]`.

    The function that wrote embeddings.npz (`embed.make_encode_fn` with this run's
    `include_padding`); pure, so it composes with `jit`, `grad` and `vmap`.
    """
    return embed_lib.make_encode_fn(self.num_ops, self.model_config, self.include_padding)

  # ----------------------------------------------------------------- inputs

  def to_arrays(self, cells: Any) -> tuple[np.ndarray, np.ndarray]:
    """Any accepted cell input (module doc) as (adjacency int8 [N, n, n], ops int8 [N, n, d]).

    Raises:
      ValueError: naming the offending cell (index, shape or value) for a cell of
        another space or size, a malformed one, or an unsupported input.
    """
    n, d = self.num_nodes, self.num_ops
    if _is_array_pair(cells):
      adjacency, ops = (np.asarray(x) for x in cells)
      if adjacency.ndim == 2 and ops.ndim == 2:
        raise ValueError(
          f"one cell as arrays {adjacency.shape} and {ops.shape}: give a batch, "
          "(adjacency[None], ops[None]), or a list of (adjacency, ops) pairs"
        )
      if adjacency.shape[1:] != (n, n) or ops.shape[1:] != (n, d) or len(adjacency) != len(ops):
        raise ValueError(
          f"{self.space} cells are adjacency [N, {n}, {n}] and ops [N, {n}, {d}]; got "
          f"{adjacency.shape} and {ops.shape}{self._looks_like(ops.shape[1:])}"
        )
      return self._check_arrays(adjacency, ops)
    if isinstance(cells, np.ndarray) and cells.dtype.kind in "OSU":  # e.g. embeddings.npz ids
      cells = cells.tolist()
    if isinstance(cells, (str, bytes)) or not isinstance(cells, Sequence):
      raise TypeError(
        f"cells must be a sequence of cells or an (adjacency, ops) pair of arrays, got "
        f"{type(cells).__name__} {_short(cells)}"
        + ("; wrap one cell in a list" if isinstance(cells, str) else "")
      )
    adjacency = np.zeros((len(cells), n, n), np.int8)
    ops = np.zeros((len(cells), n, d), np.int8)
    native_rows: list[int] = []
    parsed: list[Any] = []
    for i, cell in enumerate(cells):
      try:
        if _is_array_pair(cell):
          a, o = (np.asarray(x) for x in cell)
          if a.shape != (n, n) or o.shape != (n, d):
            raise ValueError(
              f"adjacency {a.shape} and ops {o.shape}, but {self.space} cells are "
              f"[{n}, {n}] and [{n}, {d}]{self._looks_like(o.shape)}"
            )
          adjacency[i], ops[i] = self._check_values(a, o)
        else:
          parsed.append(self._parse_native(cell))
          native_rows.append(i)
      except (ValueError, TypeError) as e:
        raise ValueError(f"cell {i}: {e}") from None
    if native_rows:
      adjacency[native_rows], ops[native_rows] = self.search_space.native.to_cells(parsed)
    return self._check_arrays(adjacency, ops)

  @staticmethod
  def _looks_like(shape: tuple[int, ...]) -> str:
    other = _SHAPES.get(tuple(int(s) for s in shape))
    return f" (the shape of a {other} cell: an encoder of another space?)" if other else ""

  def _parse_native(self, cell: Any) -> Any:
    """One cell in the space's own form (`SearchSpace.native.parse`), TypeError naming the form."""
    native = self.search_space.native
    if native is None:
      raise TypeError(
        f"the {self.space} space has no cell form of its own: give (adjacency, ops) pairs"
      )
    try:
      return native.parse(cell)
    except TypeError:
      raise TypeError(
        f"expected {native.form} or an (adjacency, ops) pair for this {self.space} encoder, "
        f"got {type(cell).__name__} {_short(cell)}"
      ) from None

  def _check_values(self, adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One cell's arrays: 0/1, strict upper, one-hot or trailing zero rows, no edge at padding."""
    adj, ops = self._check_arrays(adjacency[None], ops[None])
    return adj[0], ops[0]

  def _check_arrays(self, adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch value checks (see `_check_values`); int8 copies. Errors name the first bad cell."""

    def first(bad: np.ndarray) -> int:
      return int(np.flatnonzero(bad)[0])

    n = self.num_nodes
    if adjacency.size and not np.isin(adjacency, (0, 1)).all():
      i = first(~np.isin(adjacency, (0, 1)).all(axis=(1, 2)))
      raise ValueError(
        f"cell {i}: adjacency entries must be 0/1, got {np.unique(adjacency[i]).tolist()}"
      )
    if ops.size and not np.isin(ops, (0, 1)).all():
      i = first(~np.isin(ops, (0, 1)).all(axis=(1, 2)))
      raise ValueError(f"cell {i}: ops entries must be 0/1, got {np.unique(ops[i]).tolist()}")
    adjacency, ops = adjacency.astype(np.int8), ops.astype(np.int8)
    lower = np.tril(adjacency).any(axis=(1, 2))
    if lower.any():
      i = first(lower)
      u, v = np.argwhere(np.tril(adjacency[i]))[0].tolist()
      raise ValueError(
        f"cell {i}: adjacency must be strictly upper triangular, has edge {u} -> {v}"
      )
    rows = ops.sum(axis=-1)
    if (rows > 1).any():
      i, r = np.argwhere(rows > 1)[0].tolist()
      raise ValueError(f"cell {i}: ops row {r} is not one-hot: {ops[i, r].tolist()}")
    real = rows == 1
    n_node = real.sum(axis=1)
    slots = np.arange(n)[None, :]
    if not (real == (slots < n_node[:, None])).all():
      i = first(~(real == (slots < n_node[:, None])).all(axis=1))
      raise ValueError(
        f"cell {i}: all-zero (padding) ops rows must come after the real nodes, got rows "
        f"{real[i].astype(int).tolist()}"
      )
    if (n_node == 0).any():
      raise ValueError(f"cell {first(n_node == 0)}: no nodes (every ops row is zero)")
    pad = slots >= n_node[:, None]
    touching = (adjacency.astype(bool) & (pad[:, :, None] | pad[:, None, :])).any(axis=(1, 2))
    if touching.any():
      i = first(touching)
      raise ValueError(
        f"cell {i}: an edge touches a padding node (the cell has {int(n_node[i])} nodes)"
      )
    return adjacency, ops

  # ----------------------------------------------------------------- embed, decode, nearest

  def embed(self, cells: Any, *, exact: bool = True, per_node: bool = False) -> np.ndarray:
    """Embeddings of any number of cells, as the run wrote them to embeddings.npz.

    Args:
      cells: any input of the module doc (arrays, NB101 specs, NB201 arch
        strings, DARTS genotypes, lists of (adjacency, ops) pairs).
      exact: True: chunks of `embed_chunk` cells, the run's own compiled call, so
        the rows equal embeddings.npz bit for bit on the same machine; False:
        pad to the next power of two (faster for a few cells; float rounding).
      per_node: the unpooled features instead: every node slot's mu, concatenated.

    Returns:
      float32 [N, latent]: mean over the real nodes (all slots with
      `include_padding`) of the encoder's mu in eval mode; with `per_node`
      float32 [N, num_nodes * latent], the mu of slot 0, slot 1, ..., padding
      slots zero (the mean over the real slots is the pooled embedding).
    """
    adjacency, ops = self.to_arrays(cells)
    num = len(ops)
    if not num:
      return np.zeros((0, self.latent * (self.num_nodes if per_node else 1)), np.float32)
    n_node = model_lib.count_nodes(ops)
    fn = (
      embed_lib.make_encode_fn(self.num_ops, self.model_config, per_node=True)
      if per_node
      else self.embed_fn
    )
    variables = self.variables
    outs = []
    for start in range(0, num, self.embed_chunk):
      a, o, k = (x[start : start + self.embed_chunk] for x in (adjacency, ops, n_node))
      size = self.embed_chunk if exact else _bucket(len(a), self.embed_chunk)
      pad = size - len(a)
      if pad:
        a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)])
        o = np.concatenate([o, np.zeros((pad, *o.shape[1:]), o.dtype)])
        k = np.concatenate([k, np.zeros((pad,), k.dtype)])
      outs.append(fn(variables, a, o, k)[: size - pad])  # dispatched asynchronously
    return np.asarray(jnp.concatenate(outs), dtype=np.float32)

  def decode(self, z: Any) -> Decoded:
    """The decoder's most likely cell of each latent point, with its validity.

    Args:
      z: float [S, n, latent], one latent vector per node (e.g. prior samples
        `prior_mean + prior_std * normal`).

    Returns:
      `Decoded`: adjacency, ops (`metrics.decode_latents`), valid, strict, cells.
    """
    z = np.asarray(z, np.float32)
    want = (self.num_nodes, self.latent)
    if z.ndim != 3 or z.shape[1:] != want:
      raise ValueError(
        f"z must be [S, {want[0]}, {want[1]}] for this {self.space} encoder, got {z.shape}"
      )
    num = len(z)
    fn = functools.partial(_decode, self.num_ops, self.model_config)
    adj_parts, ops_parts = [], []
    for start in range(0, num, _ENCODE_CHUNK):
      part = z[start : start + _ENCODE_CHUNK]
      size = _bucket(len(part), _ENCODE_CHUNK)
      padded = np.concatenate([part, np.zeros((size - len(part), *want), np.float32)])
      a, o = fn(self.variables, padded)
      adj_parts.append(np.asarray(a)[: len(part)])
      ops_parts.append(np.asarray(o)[: len(part)])
    n, d = self.num_nodes, self.num_ops
    adjacency = np.concatenate(adj_parts) if num else np.zeros((0, n, n), np.int8)
    ops = np.concatenate(ops_parts) if num else np.zeros((0, n, d), np.int8)
    space = self.search_space
    valid = np.asarray(space.is_valid(adjacency, ops), bool)
    if "strict" in inspect.signature(space.is_valid).parameters:
      strict = np.asarray(space.is_valid(adjacency, ops, strict=True), bool)
    else:
      strict = valid.copy()
    return Decoded(adjacency, ops, valid, strict, self._native(adjacency, ops, strict))

  def _native(self, adjacency: np.ndarray, ops: np.ndarray, strict: np.ndarray) -> list:
    """The cells where `strict` in the space's own form (None elsewhere)."""
    out: list = [None] * len(ops)
    rows = np.flatnonzero(strict)
    native = self.search_space.native
    if not len(rows) or native is None:
      return out
    for i, cell in zip(rows, native.from_cells(adjacency[rows], ops[rows])):
      out[i] = cell
    return out

  def nearest(self, z_or_embeddings: Any, pool_embeddings: Any, k: int = 1) -> Nearest:
    """The k pool cells nearest (Euclidean, in embedding space) to each point.

    Args:
      z_or_embeddings: embeddings float [S, latent] (e.g. `embed(...)`), or latent
        points [S, n, latent], whose embedding is their mean over the n node
        vectors (what `embed` gives a cell whose mu is z, all n nodes real).
      pool_embeddings: float [P, latent], e.g. the run's embeddings.npz or
        `embed(pool_cells)`; its rows index the result.
      k: neighbours per point, 1 <= k <= P.

    Returns:
      `Nearest`: index int64 [S, k] into the pool, nearest first; distance
      float32 [S, k].
    """
    q = np.asarray(z_or_embeddings, np.float32)
    if q.ndim == 3:
      if q.shape[1:] != (self.num_nodes, self.latent):
        raise ValueError(
          f"latent points must be [S, {self.num_nodes}, {self.latent}], got {q.shape}"
        )
      q = q.mean(axis=1)
    pool = np.asarray(pool_embeddings, np.float32)
    if q.ndim != 2 or q.shape[1] != self.latent:
      raise ValueError(
        f"embeddings must be [S, {self.latent}] (or latent points [S, {self.num_nodes}, "
        f"{self.latent}]), got {np.shape(z_or_embeddings)}"
      )
    if pool.ndim != 2 or pool.shape[1] != self.latent or not len(pool):
      raise ValueError(f"pool_embeddings must be [P >= 1, {self.latent}], got {pool.shape}")
    if not 1 <= int(k) <= len(pool):
      raise ValueError(f"k must be in [1, {len(pool)}] (the pool size), got {k}")
    k = int(k)
    pool_dev = jnp.asarray(pool)
    pool_sq = jnp.sum(pool_dev * pool_dev, axis=-1)
    chunk = _bucket(len(q), max(_MIN_BUCKET, min(4096, (1 << 26) // len(pool))))
    index = []
    for start in range(0, len(q), chunk):
      part = q[start : start + chunk]
      padded = np.concatenate([part, np.zeros((chunk - len(part), self.latent), np.float32)])
      index.append(np.asarray(_top_k(jnp.asarray(padded), pool_dev, pool_sq, k))[: len(part)])
    index = np.concatenate(index).astype(np.int64) if len(q) else np.zeros((0, k), np.int64)
    distance = np.sqrt(np.sum(np.square(q[:, None, :] - pool[index]), axis=-1)).astype(np.float32)
    return Nearest(index, distance)


# ---------------------------------------------------------------------------
# Module-level forms of the methods.


def embed(encoder: Encoder, cells: Any, *, exact: bool = True) -> np.ndarray:
  """`encoder.embed(cells)`: float32 [N, latent] (see `Encoder.embed`)."""
  return encoder.embed(cells, exact=exact)


def decode(encoder: Encoder, z: Any) -> Decoded:
  """`encoder.decode(z)` for z [S, n, latent] (see `Encoder.decode`)."""
  return encoder.decode(z)


def nearest(encoder: Encoder, z_or_embeddings: Any, pool_embeddings: Any, k: int = 1) -> Nearest:
  """`encoder.nearest(...)`: index [S, k] into the pool, distance [S, k] (see `Encoder.nearest`)."""
  return encoder.nearest(z_or_embeddings, pool_embeddings, k)


# ---------------------------------------------------------------------------
# Reading.


def _train_config(saved: dict[str, Any], where: str) -> train_lib.TrainConfig:
  """A `TrainConfig` from its saved dict; options the run predates take their defaults."""
  saved = dict(saved or {})
  model_saved = dict(saved.pop("model", {}) or {})
  model_fields = {f.name for f in dataclasses.fields(model_lib.ModelConfig)}
  unknown = sorted(set(model_saved) - model_fields)
  if unknown:
    raise ValueError(
      f"{where}: model options {unknown} are unknown to this arch2vec-jax "
      f"({_version('arch2vec-jax')}); the model cannot be rebuilt: upgrade the package"
    )
  train_fields = {f.name for f in dataclasses.fields(train_lib.TrainConfig)} - {"model"}
  kwargs = {k: v for k, v in saved.items() if k in train_fields}  # e.g. 'num_epochs' is derived
  return train_lib.TrainConfig(**kwargs, model=model_lib.ModelConfig(**model_saved))


def _check_variables(
  space: str, config: train_lib.TrainConfig, params: Any, batch_stats: Any, where: str
) -> None:
  """The variables must have the structure and shapes of the configured model."""
  space_obj = train_lib.get_space(space)
  module = model_lib.Arch2Vec(space_obj.num_ops, config.model)
  n = space_obj.num_nodes
  graph = model_lib.cells_to_graphs(
    jnp.zeros((1, n, n), jnp.int8), jnp.zeros((1, n, space_obj.num_ops), jnp.int8)
  )
  shapes = flax.core.unfreeze(
    jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), graph, train=False))
  )
  want = {"params": shapes["params"], "batch_stats": shapes["batch_stats"]}
  got = {"params": params, "batch_stats": batch_stats}
  want_leaves = jax.tree_util.tree_leaves_with_path(want)
  if jax.tree.structure(want) != jax.tree.structure(got):
    raise ValueError(
      f"{where}: the variables do not match the configured {space} model "
      f"(hidden {config.model.hidden}, latent {config.model.latent}, {config.model.layers} layers)"
    )
  for (path, w), g in zip(want_leaves, jax.tree.leaves(got)):
    if tuple(np.shape(g)) != tuple(w.shape):
      raise ValueError(
        f"{where}: variable {jax.tree_util.keystr(path)} has shape {np.shape(g)}, the "
        f"configured model {tuple(w.shape)}"
      )


def _read_json(path: str) -> dict[str, Any] | None:
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _prior_from(extra: dict[str, Any]) -> tuple[np.ndarray | None, np.ndarray | None]:
  prior = extra.get("prior") if isinstance(extra, dict) else None
  if not prior:
    return None, None
  return np.asarray(prior["mean"], np.float32), np.asarray(prior["std"], np.float32)


def _load_workdir(workdir: str) -> Encoder:
  """An `Encoder` from a --workdir of launch/pretrain.py (its newest checkpoint)."""
  ckpt_dir = os.path.join(workdir, "checkpoints")
  path = ckpt_lib.latest_checkpoint(ckpt_dir)
  if path is None:
    hint = "not a --workdir of launch/pretrain.py, or no epoch has finished"
    if os.path.exists(os.path.join(workdir, "seeds.json")):
      hint = "a --seeds workdir: load one of its seed_<s> folders"
    raise FileNotFoundError(f"{workdir}: no checkpoint in {ckpt_dir} ({hint})")
  raw = ckpt_lib.load_raw(path)
  extra = raw.get("extra") or {}
  if "config" not in extra:
    raise ValueError(f"{path}: the checkpoint has no training config in its 'extra' data")
  config = _train_config(extra["config"], path)
  state = raw["state"]
  params, batch_stats = state["params"], state["batch_stats"]
  _check_variables(config.space, config, params, batch_stats, path)
  metrics = _read_json(os.path.join(workdir, "metrics.json")) or {}
  num_cells = (metrics.get("data") or {}).get("num_cells")
  emb_path = os.path.join(workdir, "embeddings.npz")
  if num_cells is None and os.path.exists(emb_path):
    num_cells = len(embed_lib.load_embeddings(emb_path)["embeddings"])
  history = extra.get("history") or []
  summary = metrics.get("summary")
  if summary is None and history:
    keys = getattr(
      train_lib,
      "SUMMARY_KEYS",
      ("loss", "ops_acc", "adj_acc", "exact_acc", "validity", "uniqueness"),
    )
    summary = {k: history[-1][k] for k in keys if k in history[-1]}
  mean, std = _prior_from(extra)
  meta = {
    "epoch": int(raw["epoch"]),
    "command": metrics.get("command"),
    "summary": summary,
    "data": metrics.get("data"),
    "device": metrics.get("device"),
    "source": {"workdir": os.path.abspath(workdir), "checkpoint": os.path.basename(path)},
  }
  return Encoder(
    space=config.space,
    config=config,
    params=params,
    batch_stats=batch_stats,
    prior_mean=mean,
    prior_std=std,
    embed_chunk=max(1, min(_ENCODE_CHUNK, int(num_cells))) if num_cells else _ENCODE_CHUNK,
    meta=meta,
  )


def _load_file(path: str, data: bytes | None = None) -> Encoder:
  """An `Encoder` from a weights file (the layout of the module doc)."""
  if data is None:
    with open(path, "rb") as f:
      data = f.read()
  try:
    outer = flax.serialization.msgpack_restore(data)
  except Exception as e:  # noqa: BLE001  (msgpack's ExtraData / FormatError / ValueError ...)
    raise ValueError(
      f"{path}: not an arch2vec-jax weights file (cannot be decoded: {type(e).__name__})"
    ) from None
  if not isinstance(outer, dict) or outer.get("format") != FORMAT:
    got = outer.get("format") if isinstance(outer, dict) else type(outer).__name__
    raise ValueError(
      f"{path}: not an arch2vec-jax weights file (format {got!r}, expected {FORMAT!r})"
    )
  version = outer.get("version")
  if version != FORMAT_VERSION:
    raise ValueError(
      f"{path}: weights format version {version!r} is unknown to this arch2vec-jax "
      f"({_version('arch2vec-jax')}), which reads version {FORMAT_VERSION}; use a matching "
      "package version or re-export the run with `launch/export_weights.py`"
    )
  body = outer.get("body")
  if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != outer.get("sha256"):
    raise ValueError(f"{path}: damaged weights file (SHA-256 checksum mismatch)")
  payload = flax.serialization.msgpack_restore(body)
  meta = json.loads(payload["meta"])
  config = _train_config(meta["config"], path)
  _check_variables(config.space, config, payload["params"], payload["batch_stats"], path)
  prior = payload.get("prior") or {}
  reference = payload.get("reference") or None
  if reference:
    reference = {**reference, "ids": list(meta.get("reference_ids") or [])}
  keep = (
    "epoch",
    "command",
    "summary",
    "data",
    "device",
    "source",
    "package_version",
    "versions",
    "created",
  )
  return Encoder(
    space=config.space,
    config=config,
    params=payload["params"],
    batch_stats=payload["batch_stats"],
    prior_mean=np.asarray(prior["mean"], np.float32) if prior else None,
    prior_std=np.asarray(prior["std"], np.float32) if prior else None,
    embed_chunk=int(meta["embed_chunk"]),
    reference=reference,
    meta={k: meta.get(k) for k in keep},
  )


def load(name_or_path: str | os.PathLike) -> Encoder:
  """Loads a pre-trained encoder.

  Args:
    name_or_path: "nb101", "nb201" or "darts" (the shipped weights), a weights
      file written by `export`, or a --workdir of launch/pretrain.py.

  Returns:
    An `Encoder`.

  Raises:
    FileNotFoundError: naming the file, for a shipped name whose file is not in
      this installation, or a workdir without checkpoints.
    ValueError: for an unknown name or path, another file format, an unknown
      format version, a damaged file, or variables that do not fit the config.
  """
  if isinstance(name_or_path, str) and name_or_path in NAMES:
    path = weights_path(name_or_path)
    resource = importlib.resources.files("arch2vec_jax") / "weights" / f"{name_or_path}.msgpack"
    if not resource.is_file():
      raise FileNotFoundError(
        f"no shipped {name_or_path} weights in this installation: {path} is missing. Load a "
        "--workdir of launch/pretrain.py instead, or make the file: python launch/pretrain.py "
        f"--space {name_or_path} "
        f"--workdir W && python launch/export_weights.py --workdir W --out {path}"
      )
    return _load_file(path, resource.read_bytes())
  path = os.fspath(name_or_path)
  if os.path.isdir(path):
    return _load_workdir(path)
  if os.path.isfile(path):
    return _load_file(path)
  raise ValueError(
    f"{path!r} is neither a shipped name {NAMES}, a weights file, nor a --workdir folder"
  )


# ---------------------------------------------------------------------------
# Writing.


def _reference_cells(
  encoder: Encoder,
  workdir: str,
  ids: np.ndarray,
  rows: np.ndarray,
  cells: tuple[np.ndarray, np.ndarray] | None,
) -> tuple[np.ndarray, np.ndarray]:
  """(adjacency, ops) of the embeddings.npz rows `rows`: `cells`, the ids (a space whose ids are its cells, NB201) or the space's cells."""
  if cells is not None:
    adjacency, ops = (np.asarray(x)[rows] for x in cells)
  elif encoder.search_space.ids_are_cells:
    adjacency, ops = encoder.to_arrays([str(s) for s in ids[rows]])
  else:
    _, adj_all, ops_all = train_lib.load_cells(encoder.config)
    adjacency, ops = adj_all[rows], ops_all[rows]
  found = embed_lib.cell_ids(encoder.search_space, adjacency, ops)
  if not np.array_equal(found, ids[rows].astype(str)):
    raise ValueError(
      f"{workdir}: the reference cells are not the rows of embeddings.npz (ids differ); the run "
      "used other cells than the space's: pass them as cells=(adjacency, ops)"
    )
  return np.asarray(adjacency, np.int8), np.asarray(ops, np.int8)


def export(
  workdir: str | os.PathLike,
  out_path: str | os.PathLike,
  *,
  prior: tuple[np.ndarray, np.ndarray] | None = None,
  cells: tuple[np.ndarray, np.ndarray] | None = None,
  num_reference: int = _NUM_REFERENCE,
) -> dict[str, Any]:
  """Writes a weights file (module doc layout) from a finished pre-training run.

  Args:
    workdir: a --workdir of launch/pretrain.py with checkpoints/ and metrics.json
      (embeddings.npz too, for the reference cells).
    out_path: the file to write (atomically), e.g. `weights_path("nb201")`.
    prior: (mean, std) float [n, latent] of the run's last prior (e.g.
      `train.pretrain(...)["prior"]`); default: the checkpoint's, if it has one.
    cells: the (adjacency, ops) the run embedded, in embeddings.npz order, where
      they are not the space's cells (runs given `cells=`); NB201 needs none.
    num_reference: K cells, spread evenly over embeddings.npz, stored with their
      rows (0: none).

  Returns:
    {"path", "bytes", "sha256", "meta", "reference_max_abs_diff"}: the last is
    the largest difference between the written file's `embed` of the reference
    cells and embeddings.npz (0.0 on the machine that ran the training), or None.

  Raises:
    ValueError: if metrics.json is missing (run not finished) or its last epoch is
      not the newest checkpoint's, or the reference cells do not match.
  """
  workdir = os.fspath(workdir)
  encoder = _load_workdir(workdir)
  metrics = _read_json(os.path.join(workdir, "metrics.json"))
  if metrics is None:
    raise ValueError(
      f"{workdir}: no metrics.json; export a finished run (or let --resume finish it)"
    )
  epochs = metrics.get("epochs") or []
  if not epochs or int(epochs[-1]["epoch"]) != encoder.meta["epoch"]:
    raise ValueError(
      f"{workdir}: metrics.json ends at epoch {epochs[-1]['epoch'] if epochs else None} but the "
      f"newest checkpoint is of epoch {encoder.meta['epoch']}"
    )
  if prior is None and encoder.prior_mean is not None:
    prior = (encoder.prior_mean, encoder.prior_std)
  prior_tree = {}
  if prior is not None:
    mean, std = (np.asarray(x, np.float32) for x in prior)
    want = (encoder.num_nodes, encoder.latent)
    if mean.shape != want or std.shape != want:
      raise ValueError(f"prior mean and std must be {list(want)}, got {mean.shape} and {std.shape}")
    prior_tree = {"mean": mean, "std": std}
  reference_tree, reference_ids, expected = {}, [], None
  emb_path = os.path.join(workdir, "embeddings.npz")
  if num_reference and os.path.exists(emb_path):
    emb = embed_lib.load_embeddings(emb_path)
    rows = np.unique(
      np.linspace(0, len(emb["ids"]) - 1, min(int(num_reference), len(emb["ids"]))).astype(int)
    )
    adjacency, ops = _reference_cells(encoder, workdir, emb["ids"], rows, cells)
    expected = emb["embeddings"][rows]
    reference_tree = {"adjacency": adjacency, "ops": ops, "embeddings": expected}
    reference_ids = emb["ids"][rows].astype(str).tolist()
  meta = {
    "format_version": FORMAT_VERSION,
    "space": encoder.space,
    "num_nodes": encoder.num_nodes,
    "num_ops": encoder.num_ops,
    "config": encoder.config.to_dict(),
    "include_padding": encoder.include_padding,
    "embed_chunk": encoder.embed_chunk,
    **{k: encoder.meta.get(k) for k in ("epoch", "command", "summary", "data", "device", "source")},
    "reference_ids": reference_ids,
    "package_version": _version("arch2vec-jax"),
    "versions": {p: _version(p) for p in ("jax", "jaxlib", "flax", "numpy")},
    "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
  }
  body = flax.serialization.msgpack_serialize(
    {
      "params": jax.device_get(encoder.params),
      "batch_stats": jax.device_get(encoder.batch_stats),
      "prior": prior_tree,
      "reference": reference_tree,
      "meta": json.dumps(meta),
    }
  )
  digest = hashlib.sha256(body).hexdigest()
  data = flax.serialization.msgpack_serialize(
    {"format": FORMAT, "version": FORMAT_VERSION, "sha256": digest, "body": body}
  )
  out_path = os.fspath(out_path)
  fileio.atomic_write_bytes(out_path, data)
  diff = None
  if reference_tree:
    written = _load_file(out_path)
    diff = float(
      np.max(
        np.abs(written.embed((written.reference["adjacency"], written.reference["ops"])) - expected)
      )
    )
  return {
    "path": out_path,
    "bytes": len(data),
    "sha256": hashlib.sha256(data).hexdigest(),
    "meta": meta,
    "reference_max_abs_diff": diff,
  }
