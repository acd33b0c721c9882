"""DARTS normal cells as 11-node graphs (arch2vec's encoding) and their sampling.

A genotype (the DARTS `Genotype.normal` list) is 8 (op, input) pairs; pairs
2i and 2i+1 form block i, whose two inputs are distinct and drawn from
{0 = c_{k-2}, 1 = c_{k-1}, 2 + j = block j < i}. arch2vec uses the normal cell
also as the reduction cell.

The graph (arch2vec `preprocessing/gen_isomorphism_graphs.py`):
  node 0 = c_{k-2}, node 1 = c_{k-1}; node 2 + p = the op of pair p (so block i
  is nodes 2 + 2i and 3 + 2i); node 10 = output.
  Every op node feeds the output. An op node whose input is c_{k-2} / c_{k-1}
  has an edge from node 0 / 1; one whose input is block j has edges from both
  op nodes of block j (nodes 2 + 2j and 3 + 2j).
Node operations are one-hot over `OPS` = [c_k-2, c_k-1, *PRIMITIVES, output]
(d = 11). Identity of a cell is the NAS-Bench-101 graph hash of (adjacency,
argmax ops), as in the release, so the two orders of a block's pairs (and any
other isomorphic relabelling) are one cell.

Pre-training data (`sample_space`): genotypes sampled as in the release (ops
uniform over the 8 primitives, each block's inputs an ordered pair of distinct
uniform choices), kept when the ImageNet mobile network stays under 600M
multiply-adds (`darts_flops`) and the graph hash is new, in first-seen order.
"""

from __future__ import annotations

import ast
import os
from typing import Any

import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.spaces import darts_flops, graph_hash
from arch2vec_jax.spaces.base import (
  NativeCells,
  SearchSpace,
  check_batch_shapes,
  one_hot_labels,
)

__all__ = [
  "CELL_FORM",
  "DARTS_V2",
  "MAX_MADDS",
  "NUM_BLOCKS",
  "NUM_NODES",
  "NUM_PAIRS",
  "OPS",
  "PRIMITIVES",
  "SPACE",
  "Genotype",
  "arrays_to_genotype",
  "cell_to_genotype",
  "cells",
  "cells_to_genotypes",
  "genotype_to_arrays",
  "genotype_to_cell",
  "genotype_to_str",
  "genotypes_to_cells",
  "hash_batch",
  "is_valid_batch",
  "parse_genotype",
  "sample_genotypes",
  "sample_space",
  "validate_genotype",
  "validity_parts",
]

PRIMITIVES: tuple[str, ...] = darts_flops.PRIMITIVES
OPS: tuple[str, ...] = ("c_k-2", "c_k-1", *PRIMITIVES, "output")
NUM_NODES = 11
NUM_BLOCKS = 4
NUM_PAIRS = 2 * NUM_BLOCKS
MAX_MADDS = 600e6
_OUTPUT = NUM_NODES - 1
_PRIMITIVE_INDEX = {op: i for i, op in enumerate(PRIMITIVES)}
# Number of allowed inputs of each pair: block i reads one of i + 2 states.
_NUM_INPUTS = np.repeat(np.arange(NUM_BLOCKS) + 2, 2)  # [8] = 2 2 3 3 4 4 5 5
_CHUNK = 1 << 16  # sampling chunk; fixed so that a seed's output does not depend on num_cells
_MIN_HASH_BATCH = 256
_CACHE_VERSION = 1

Genotype = tuple[tuple[str, int], ...]
"""8 (op name, input index) pairs, the DARTS `Genotype.normal` list."""

DARTS_V2: Genotype = darts_flops.DARTS_V2_NORMAL


def _in_edge_patterns() -> np.ndarray:
  """int8 [6, 11]: the in-edge column of an op node for each input index 0..5."""
  pat = np.zeros((NUM_BLOCKS + 2, NUM_NODES), dtype=np.int8)
  pat[0, 0] = 1
  pat[1, 1] = 1
  for j in range(NUM_BLOCKS):
    pat[2 + j, 2 + 2 * j] = 1
    pat[2 + j, 3 + 2 * j] = 1
  return pat


_IN_PATTERNS = _in_edge_patterns()
_BITS = 1 << np.arange(NUM_NODES, dtype=np.int16)  # in-edge column -> integer code < 2048
_CODE_TO_INPUT = np.full(1 << NUM_NODES, -1, dtype=np.int64)
_CODE_TO_INPUT[_IN_PATTERNS.astype(np.int64) @ _BITS.astype(np.int64)] = np.arange(
  len(_IN_PATTERNS)
)


def validate_genotype(genotype: Any) -> Genotype:
  """Checks a genotype and returns it as a tuple of 8 (str, int) pairs.

  Args:
    genotype: 8 (op, input) pairs, or an object with a `.normal` attribute (a DARTS
      `Genotype` namedtuple), whose normal cell is taken.

  Raises:
    ValueError: naming the genotype, on a wrong pair count, unknown op, input out
      of range for its block, or a block whose two inputs are equal.
  """
  pairs_in = getattr(genotype, "normal", genotype)
  try:
    pairs = tuple((op, idx) for op, idx in pairs_in)
  except (TypeError, ValueError):
    raise ValueError(f"genotype {genotype!r}: expected a sequence of (op, input) pairs") from None
  if len(pairs) != NUM_PAIRS:
    raise ValueError(
      f"genotype {genotype!r}: expected {NUM_PAIRS} (op, input) pairs, got {len(pairs)}"
    )
  out = []
  for p, (op, idx) in enumerate(pairs):
    if op not in _PRIMITIVE_INDEX:
      raise ValueError(f"genotype {genotype!r}: unknown op {op!r}; expected one of {PRIMITIVES}")
    if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
      raise ValueError(f"genotype {genotype!r}: input {idx!r} of pair {p} is not an int")  # noqa: TRY004
    if not 0 <= idx < _NUM_INPUTS[p]:
      raise ValueError(
        f"genotype {genotype!r}: input {idx} of pair {p} out of range for block {p // 2} "
        f"(allowed 0..{_NUM_INPUTS[p] - 1})"
      )
    out.append((str(op), int(idx)))
  for i in range(NUM_BLOCKS):
    if out[2 * i][1] == out[2 * i + 1][1]:
      raise ValueError(f"genotype {genotype!r}: block {i} has the same input {out[2 * i][1]} twice")
  return tuple(out)


def genotype_to_arrays(genotype: Any) -> tuple[np.ndarray, np.ndarray]:
  """(op indices into PRIMITIVES int8 [8], inputs int8 [8]) of one genotype."""
  g = validate_genotype(genotype)
  return (
    np.array([_PRIMITIVE_INDEX[op] for op, _ in g], dtype=np.int8),
    np.array([idx for _, idx in g], dtype=np.int8),
  )


def arrays_to_genotype(op_idx: np.ndarray, inputs: np.ndarray) -> Genotype:
  """Inverse of `genotype_to_arrays` (validated)."""
  op_idx, inputs = np.asarray(op_idx).reshape(-1), np.asarray(inputs).reshape(-1)
  if op_idx.shape != (NUM_PAIRS,) or inputs.shape != (NUM_PAIRS,):
    raise ValueError(
      f"expected op_idx and inputs of shape [{NUM_PAIRS}], got {op_idx.shape}, {inputs.shape}"
    )
  if op_idx.min() < 0 or op_idx.max() >= len(PRIMITIVES):
    raise ValueError(f"op indices {op_idx.tolist()} out of range for {len(PRIMITIVES)} primitives")
  return validate_genotype(
    [(PRIMITIVES[o], int(i)) for o, i in zip(op_idx.tolist(), inputs.tolist())]
  )


def genotype_to_str(genotype: Any) -> str:
  """The DARTS normal-list text, e.g. "[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...]"."""
  return repr(list(validate_genotype(genotype)))


def parse_genotype(text: str) -> Genotype:
  """Parses a genotype from text.

  Accepts the DARTS normal list ("[('sep_conv_3x3', 0), ...]", as `genotype_to_str`
  writes it) or a whole DARTS genotype ("Genotype(normal=[...], normal_concat=...,
  reduce=[...], reduce_concat=...)"), whose normal cell is taken. Parsed with
  `ast`, never evaluated.

  Raises:
    ValueError: naming the text, if it does not parse or is not a valid genotype.
  """
  if not isinstance(text, str):
    raise TypeError(f"genotype text must be a str, got {type(text).__name__}: {text!r}")
  try:
    node = ast.parse(text.strip(), mode="eval").body
    if isinstance(node, ast.Call):
      func = node.func
      name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
      if name != "Genotype":
        raise ValueError("only a list of pairs or a Genotype(...) is accepted")
      normal = [kw.value for kw in node.keywords if kw.arg == "normal"]
      if normal:
        node = normal[0]
      elif node.args:
        node = node.args[0]
      else:
        raise ValueError("no normal cell in the call")
    pairs = ast.literal_eval(node)
  except (SyntaxError, ValueError, TypeError) as e:
    raise ValueError(f"genotype text {text!r} does not parse: {e}") from None
  try:
    return validate_genotype(pairs)
  except ValueError as e:
    raise ValueError(f"genotype text {text!r}: {e}") from None


def genotypes_to_cells(op_idx: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Encodes genotypes in array form (vectorised, not validated).

  Args:
    op_idx: int [N, 8] indices into `PRIMITIVES`.
    inputs: int [N, 8], each pair's input (0, 1, or 2 + block).

  Returns:
    adjacency int8 [N, 11, 11], ops int8 [N, 11, 11] (one-hot over `OPS`).
  """
  op_idx, inputs = np.asarray(op_idx), np.asarray(inputs)
  n = op_idx.shape[0]
  adj = np.zeros((n, NUM_NODES, NUM_NODES), dtype=np.int8)
  adj[:, 2:_OUTPUT, _OUTPUT] = 1
  adj[:, :, 2:_OUTPUT] = _IN_PATTERNS[inputs.astype(np.intp)].transpose(0, 2, 1)
  labels = np.empty((n, NUM_NODES), dtype=np.intp)
  labels[:, 0], labels[:, 1], labels[:, _OUTPUT] = 0, 1, _OUTPUT
  labels[:, 2:_OUTPUT] = op_idx.astype(np.intp) + 2
  ops = (labels[..., None] == np.arange(len(OPS))).astype(np.int8)
  return adj, ops


def genotype_to_cell(genotype: Any) -> tuple[np.ndarray, np.ndarray]:
  """Encodes one genotype: (adjacency int8 [11, 11], ops int8 [11, 11]).

  Raises:
    ValueError: if the genotype is invalid (see `validate_genotype`).
  """
  op_idx, inputs = genotype_to_arrays(genotype)
  adj, ops = genotypes_to_cells(op_idx[None], inputs[None])
  return adj[0], ops[0]


def _check_shapes(adjacency: np.ndarray, ops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  return check_batch_shapes(adjacency, ops, NUM_NODES, len(OPS))


def cells_to_genotypes(
  adjacency: np.ndarray, ops: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Decodes cells to genotypes in array form (vectorised, exact).

  Args:
    adjacency: 0/1 [N, 11, 11]; ops: one-hot [N, 11, 11].

  Returns:
    op_idx int8 [N, 8], inputs int8 [N, 8] (zeros where invalid), valid bool [N]:
    True iff the cell is exactly `genotypes_to_cells` of a valid genotype.
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  labels, one_hot = one_hot_labels(ops)
  op_idx = np.clip(labels[:, 2:_OUTPUT] - 2, 0, len(PRIMITIVES) - 1)
  # Which input pattern each op node's in-edge column equals (-1: none), via its bit code.
  codes = ((adjacency[:, :, 2:_OUTPUT] != 0) * _BITS[:, None]).sum(axis=1)  # [N, 8]
  inputs = _CODE_TO_INPUT[codes]
  valid = one_hot.all(axis=-1) & np.all(inputs >= 0, axis=-1)
  inputs = np.maximum(inputs, 0)
  valid &= (labels[:, 0] == 0) & (labels[:, 1] == 1) & (labels[:, _OUTPUT] == _OUTPUT)
  valid &= np.all((labels[:, 2:_OUTPUT] >= 2) & (labels[:, 2:_OUTPUT] < _OUTPUT), axis=-1)
  valid &= np.all(inputs < _NUM_INPUTS, axis=-1)
  valid &= np.all(inputs[:, 0::2] != inputs[:, 1::2], axis=-1)
  # Everything else (edges into 0, 1, the output) must match the re-encoding exactly.
  adj_re, ops_re = genotypes_to_cells(op_idx, inputs)
  valid &= np.all((adjacency != 0) == (adj_re != 0), axis=(1, 2)) & np.all(
    ops == ops_re, axis=(1, 2)
  )
  op_idx = np.where(valid[:, None], op_idx, 0).astype(np.int8)
  inputs = np.where(valid[:, None], inputs, 0).astype(np.int8)
  return op_idx, inputs, valid


def cell_to_genotype(adjacency: np.ndarray, ops: np.ndarray) -> Genotype:
  """Decodes one cell (adjacency [11, 11], ops one-hot [11, 11]) to its genotype.

  Raises:
    ValueError: if the cell is not the encoding of a valid genotype.
  """
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  if adjacency.shape != (NUM_NODES, NUM_NODES) or ops.shape != (NUM_NODES, len(OPS)):
    raise ValueError(
      f"expected adjacency [11, 11] and ops [11, 11], got {adjacency.shape} and {ops.shape}"
    )
  op_idx, inputs, valid = cells_to_genotypes(adjacency[None], ops[None])
  if not valid[0]:
    raise ValueError(
      "not a DARTS cell encoding:\n"
      f"adjacency=\n{adjacency}\nops argmax={np.asarray(ops).argmax(-1).tolist()}"
    )
  return arrays_to_genotype(op_idx[0], inputs[0])


def _rng(key_or_seed: Any) -> np.random.Generator:
  if isinstance(key_or_seed, np.random.Generator):
    return key_or_seed
  try:
    seed = np.asarray(key_or_seed)
  except Exception as e:  # e.g. a typed JAX key
    raise TypeError(
      f"cannot seed from {key_or_seed!r}; pass an int or jax.random.key_data(key)"
    ) from e
  if seed.dtype == object or not (np.issubdtype(seed.dtype, np.integer) or seed.dtype == bool):
    raise TypeError(f"cannot seed from {key_or_seed!r}; pass an int or jax.random.key_data(key)")
  return np.random.default_rng(seed.astype(np.uint64) if seed.ndim else int(seed))


def sample_genotypes(key_or_seed: Any, num: int) -> tuple[np.ndarray, np.ndarray]:
  """Samples genotypes as in the arch2vec release (vectorised).

  Each of the 8 ops is uniform over `PRIMITIVES` (including 'none'); block i's two
  inputs are an ordered pair of distinct values drawn uniformly from 0..i+1.

  Args:
    key_or_seed: an int seed, a `np.random.Generator` (advanced in place), or a raw
      JAX key (uint32 array, used as entropy).
    num: number of genotypes.

  Returns:
    op_idx int8 [num, 8], inputs int8 [num, 8].
  """
  rng = _rng(key_or_seed)
  op_idx = rng.integers(0, len(PRIMITIVES), size=(num, NUM_PAIRS), dtype=np.int8)
  choices = _NUM_INPUTS[0::2]  # [4] = 2 3 4 5
  first = rng.integers(0, choices, size=(num, NUM_BLOCKS))
  second = rng.integers(0, choices - 1, size=(num, NUM_BLOCKS))
  second += second >= first  # uniform over the choices other than `first`
  inputs = np.stack([first, second], axis=-1).reshape(num, NUM_PAIRS).astype(np.int8)
  return op_idx, inputs


def hash_batch(adjacency: np.ndarray, ops: np.ndarray, workers: int = 1) -> np.ndarray:
  """Cell identity: the NAS-Bench-101 graph hash of (adjacency, argmax ops), as in the release.

  Args:
    adjacency: 0/1 [N, 11, 11]; ops: one-hot [N, 11, 11].
    workers: processes for large batches (`graph_hash.hash_batch`).

  Returns:
    str array [N] ('<U32').
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  return graph_hash.hash_batch(adjacency, ops.argmax(axis=-1), workers=workers)


def validity_parts(adjacency: np.ndarray, ops: np.ndarray) -> dict[str, np.ndarray]:
  """The release's DARTS validity checks (`utils.is_valid_darts`), one by one.

  Shows which check a decode fails (a cell is valid iff it passes all four):
    fixed_nodes: nodes 0, 1, 10 decode to c_k-2, c_k-1, output.
    op_nodes: nodes 2..9 all decode to one of the 8 primitives.
    in_edges: every op node of block i has an in-edge from a node before block i
      (nodes 0 .. 2i+1).
    no_later_inputs: no op node of blocks 0..2 has an in-edge from a later block
      (always true for a strictly upper-triangular decode).
  A row of `ops` that is not one-hot fails its node's check.

  Args:
    adjacency: 0/1 [N, 11, 11] decoded edges; ops: one-hot [N, 11, 11].

  Returns:
    dict of bool [N], keys as above.
  """
  adjacency, ops = _check_shapes(adjacency, ops)
  labels, one_hot = one_hot_labels(ops)
  fixed = one_hot[:, [0, 1, _OUTPUT]].all(axis=-1)
  fixed &= (labels[:, 0] == 0) & (labels[:, 1] == 1) & (labels[:, _OUTPUT] == _OUTPUT)
  op_labels = labels[:, 2:_OUTPUT]
  op_nodes = one_hot[:, 2:_OUTPUT].all(axis=-1) & np.all(
    (op_labels >= 2) & (op_labels < _OUTPUT), axis=-1
  )
  edges = adjacency != 0
  in_edges = np.ones(len(adjacency), bool)
  no_later = np.ones(len(adjacency), bool)
  for i in range(NUM_BLOCKS):
    lo = 2 + 2 * i  # first op node of block i; its nodes are lo and lo + 1
    for node in (lo, lo + 1):
      in_edges &= edges[:, :lo, node].any(axis=-1)
      if i < NUM_BLOCKS - 1:
        no_later &= ~edges[:, lo + 2 :, node].any(axis=-1)
  return {
    "fixed_nodes": fixed,
    "op_nodes": op_nodes,
    "in_edges": in_edges,
    "no_later_inputs": no_later,
  }


def is_valid_batch(adjacency: np.ndarray, ops: np.ndarray, strict: bool = False) -> np.ndarray:
  """Which decoded cells count as valid DARTS cells.

  The default follows the arch2vec release (`utils.is_valid_darts`), which produced
  the paper's validity numbers: nodes 0, 1, 10 are c_k-2, c_k-1, output; nodes 2..9
  are primitives; each op node of block i has at least one in-edge from a node
  before block i (nodes 0..2i+1), and none from block i+1 or later
  (`validity_parts` gives each check). The release does not check the edges into
  the output, that a block input feeds from both op nodes of its block, or edges
  within a block. `strict=True` asks for exactly the encoding of a valid genotype
  (what `cell_to_genotype` accepts).

  Args:
    adjacency: 0/1 [N, 11, 11] decoded edges; ops: one-hot [N, 11, 11] (argmax of
      the decoded ops; a row that is not one-hot is invalid).
    strict: see above.

  Returns:
    bool [N].
  """
  if strict:
    return cells_to_genotypes(*_check_shapes(adjacency, ops))[2]
  return np.logical_and.reduce(list(validity_parts(adjacency, ops).values()))


def sample_space(
  num_cells: int = 600_000, seed: int = 0, max_madds: float = MAX_MADDS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Samples `num_cells` unique DARTS cells under the multiply-add budget.

  Genotypes are drawn in chunks of 65,536 from `np.random.default_rng(seed)`
  (`sample_genotypes`); a genotype is kept when
  `darts_flops.madds_batch(g) < max_madds` (normal cell also as reduction cell)
  and its graph hash was not seen before. Deterministic per seed, and the first k
  cells do not depend on `num_cells` (a smaller request is a prefix of a larger).

  Args:
    num_cells: N, how many unique cells.
    seed: the sampling seed.
    max_madds: the strict upper bound on the ImageNet network's multiply-adds.

  Returns:
    adjacency int8 [N, 11, 11], ops int8 [N, 11, 11], ids str [N] (graph hashes).
  """
  stats = _sample(num_cells, seed, max_madds)
  return stats["adjacency"], stats["ops"], stats["ids"]


def _sample(num_cells: int, seed: int, max_madds: float) -> dict[str, Any]:
  """`sample_space` plus counts: 'sampled', 'over_budget' (over whole chunks), 'duplicates'."""
  if num_cells < 0:
    raise ValueError(f"num_cells must be >= 0, got {num_cells}")
  rng = np.random.default_rng(seed)
  workers = graph_hash.default_workers()
  seen: set[str] = set()
  adj_parts, ops_parts, id_parts = [], [], []
  kept = sampled = over_budget = duplicates = 0
  while kept < num_cells:
    # The random stream is consumed in fixed chunks, so results never depend on num_cells.
    op_idx, inputs = sample_genotypes(rng, _CHUNK)
    sampled += _CHUNK
    under = darts_flops.madds_batch(op_idx, inputs) < max_madds
    over_budget += int((~under).sum())
    op_idx, inputs = op_idx[under], inputs[under]
    # Hash (the costly step) only as much of the chunk as still needed, in order.
    pos = 0
    while pos < len(op_idx) and kept < num_cells:
      need = num_cells - kept
      size = min(len(op_idx) - pos, max(_MIN_HASH_BATCH, need + need // 16 + 64))
      adj, ops = genotypes_to_cells(op_idx[pos : pos + size], inputs[pos : pos + size])
      pos += size
      ids = hash_batch(adj, ops, workers)
      # First occurrences in sampling order, minus those seen in earlier batches.
      _, first = np.unique(ids, return_index=True)
      first.sort()
      fresh = np.fromiter(
        (h not in seen for h in ids[first].tolist()), dtype=bool, count=len(first)
      )
      duplicates += len(ids) - int(fresh.sum())
      take = first[fresh][:need]
      seen.update(ids[take].tolist())
      adj_parts.append(adj[take])
      ops_parts.append(ops[take])
      id_parts.append(ids[take])
      kept += len(take)
  empty = np.zeros((0, NUM_NODES, NUM_NODES), dtype=np.int8)
  return {
    "adjacency": np.concatenate(adj_parts) if adj_parts else empty,
    "ops": np.concatenate(ops_parts) if ops_parts else empty.copy(),
    "ids": np.concatenate(id_parts) if id_parts else np.zeros(0, dtype="<U32"),
    "sampled": sampled,
    "over_budget": over_budget,
    "duplicates": duplicates,
  }


def _cache_path(num_cells: int, seed: int, max_madds: float) -> str:
  name = f"darts_cells_v{_CACHE_VERSION}_n{num_cells}_seed{seed}_madds{int(max_madds)}.npz"
  return os.path.join(fileio.cache_dir(), name)


def cells(
  num_cells: int = 600_000, seed: int = 0, max_madds: float = MAX_MADDS, use_cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
  """`SearchSpace.cells` for DARTS: `sample_space` cached in `fileio.cache_dir()`.

  The cache file is keyed by (num_cells, seed, max_madds) and written atomically;
  an unreadable cache file is regenerated.

  Returns:
    adjacency int8 [N, 11, 11], ops int8 [N, 11, 11].
  """
  path = _cache_path(num_cells, seed, max_madds)
  if use_cache and os.path.exists(path):
    try:
      data = fileio.load_npz(path)
      adj, ops = data["adjacency"], data["ops"]
      if adj.shape == (num_cells, NUM_NODES, NUM_NODES) and ops.shape == adj.shape:
        return adj, ops
    except (ValueError, KeyError):
      pass
  adj, ops, ids = sample_space(num_cells, seed, max_madds)
  if use_cache:
    fileio.atomic_save_npz(path, adjacency=adj, ops=ops, ids=ids.astype("S32"))
  return adj, ops


CELL_FORM = "a DARTS genotype (8 (op, input) pairs, an object with .normal, or its text)"


def _parse_cell(cell: Any) -> tuple[np.ndarray, np.ndarray]:
  """`NativeCells.parse`: (op_idx int8 [8], inputs int8 [8]) of a genotype or its text."""
  if isinstance(cell, str):
    cell = parse_genotype(cell)
  return genotype_to_arrays(cell)


def _genotype_arrays_to_cells(parsed: list) -> tuple[np.ndarray, np.ndarray]:
  """`NativeCells.to_cells`: `genotypes_to_cells` of the stacked genotype arrays."""
  op_idx, inputs = (np.stack(x) for x in zip(*parsed))
  return genotypes_to_cells(op_idx, inputs)


def _cells_to_genotype_list(adjacency: np.ndarray, ops: np.ndarray) -> list:
  """`NativeCells.from_cells`: the genotypes of valid cells."""
  op_idx, inputs, _ = cells_to_genotypes(adjacency, ops)
  return [arrays_to_genotype(op_idx[j], inputs[j]) for j in range(len(op_idx))]


SPACE = SearchSpace(
  name="darts",
  num_nodes=NUM_NODES,
  ops=OPS,
  cells=cells,
  is_valid=is_valid_batch,
  hash=hash_batch,
  validity_parts=validity_parts,
  sampled=True,
  native=NativeCells(CELL_FORM, _parse_cell, _genotype_arrays_to_cells, _cells_to_genotype_list),
)
