"""Analytic multiply-add count of the DARTS ImageNet (mobile setting) network.

The network is DARTS' `NetworkImageNet(C=48, num_classes=1000, layers=14,
auxiliary=False, genotype)` on a 224x224 input:
  stem0: conv3x3/2 (3 -> C/2), BN, ReLU, conv3x3/2 (C/2 -> C), BN      224 -> 56
  stem1: ReLU, conv3x3/2 (C -> C), BN                                     56 -> 28
  14 cells, reductions (channels x2, stride 2 on ops that read the cell inputs)
    at cells layers//3 and 2*layers//3 (4 and 9); every cell preprocesses
    s0 with FactorizedReduce (two 1x1/2 convs, C_pp -> C/2 each) when the
    previous cell reduced (and for cell 0, whose s0 is the 56x56 stem0 output),
    else with ReLU-conv1x1-BN, and s1 with ReLU-conv1x1-BN; the output
    concatenates the 4 blocks (multiplier 4).
  7x7 average pooling, Linear(4 * 4C -> 1000). Auxiliary head excluded.
Cell operations (DARTS `operations.py`): sep_conv_kxk = twice (ReLU, depthwise
kxk, pointwise 1x1, BN) with only the first depthwise strided; dil_conv_kxk =
ReLU, depthwise kxk dilation 2, pointwise 1x1, BN; skip_connect = identity, or
FactorizedReduce(C, C) when strided; pools and none have no weights.

Counting convention (the "conv + fc" multiply-add count; see
https://github.com/quark0/darts/issues/46): a convolution costs
H_out * W_out * C_out * (C_in / groups) * k * k multiply-adds, a linear layer
in_features * out_features; BatchNorm, ReLU, pooling, additions and the zero op
cost nothing. With this convention the published DARTS_V2 genotype (its own
normal and reduction cells) comes to 529,911,552 multiply-adds (4,718,752
parameters, the paper's "4.7M"). The DARTS paper's "574M" is not reproducible
with any standard counter: conv + fc gives about 530M (523M reported by
D-X-Y in that issue), ptflops (which adds BN, ReLU and pooling) about 545M.
arch2vec's filter (thop 0.0.31 on the network with the normal cell also as the
reduction cell, `macs < 6e8`) counts conv and linear layers the same way; thop
adds at most a few million for BN/average-pool elements, so cells within
about 1% of the threshold may be classified differently.

`network_madds` walks the network for any (normal, reduce) pair. For arch2vec's
convention (normal used as reduce) the count is additive over the eight (op,
input) pairs: `madds_batch` = a constant + sum over pairs of a table entry
indexed by (op, input is a cell input), so filtering millions of genotypes is one
gather and a sum.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

__all__ = [
  "CHANNELS",
  "DARTS_V2_NORMAL",
  "DARTS_V2_REDUCE",
  "IMAGE_SIZE",
  "LAYERS",
  "NUM_CLASSES",
  "PRIMITIVES",
  "madds_batch",
  "madds_table",
  "network_madds",
  "network_params",
  "op_madds",
]

PRIMITIVES: tuple[str, ...] = (
  "none",
  "max_pool_3x3",
  "avg_pool_3x3",
  "skip_connect",
  "sep_conv_3x3",
  "sep_conv_5x5",
  "dil_conv_3x3",
  "dil_conv_5x5",
)
CHANNELS = 48
LAYERS = 14
IMAGE_SIZE = 224
NUM_CLASSES = 1000
_MULTIPLIER = 4  # concat of the 4 blocks

# DARTS (second order) as published, quark0/darts cnn/genotypes.py DARTS_V2.
DARTS_V2_NORMAL: tuple[tuple[str, int], ...] = (
  ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
  ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2),
)  # fmt: skip
DARTS_V2_REDUCE: tuple[tuple[str, int], ...] = (
  ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
  ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1),
)  # fmt: skip


def _out(h: int, k: int, stride: int, pad: int, dilation: int = 1) -> int:
  """Spatial output size of a convolution or pooling window."""
  return (h + 2 * pad - dilation * (k - 1) - 1) // stride + 1


def _conv(h_out: int, c_in: int, c_out: int, k: int, groups: int = 1) -> int:
  """Multiply-adds of one convolution with a square h_out x h_out output."""
  return h_out * h_out * c_out * (c_in // groups) * k * k


def _op_spec(name: str) -> tuple[str, int]:
  if name not in PRIMITIVES:
    raise ValueError(f"unknown DARTS op {name!r}; expected one of {PRIMITIVES}")
  if name in ("none", "skip_connect"):
    return name, 0
  kind, size = name.rsplit("_", 1)
  return kind, int(size.split("x")[0])


def op_madds(name: str, channels: int, h_in: int, stride: int) -> tuple[int, int]:
  """Multiply-adds of one cell operation and its output size.

  Args:
    name: one of `PRIMITIVES`.
    channels: C, the cell's channel count (input = output channels).
    h_in: input height = width.
    stride: 1, or 2 for ops that read a cell input inside a reduction cell.

  Returns:
    (multiply-adds, output height).
  """
  kind, k = _op_spec(name)
  h_out = _out(h_in, 3, stride, 1)  # every op keeps 'same' geometry: pools/convs alike
  if kind in ("none", "max_pool", "avg_pool"):
    return 0, h_out
  if kind == "skip_connect":
    if stride == 1:
      return 0, h_in
    # FactorizedReduce(C, C): two 1x1 stride-2 convs of C -> C/2 (the second on x[:, :, 1:, 1:]).
    h2 = _out(h_in - 1, 1, 2, 0)
    return _conv(h_out, channels, channels // 2, 1) + _conv(h2, channels, channels // 2, 1), h_out
  if kind == "sep_conv":
    pad = (k - 1) // 2
    h1 = _out(h_in, k, stride, pad)
    macs = _conv(h1, channels, channels, k, channels) + _conv(h1, channels, channels, 1)
    macs += _conv(h1, channels, channels, k, channels) + _conv(h1, channels, channels, 1)
    return macs, h1
  # dil_conv: dilation 2, padding k - 1.
  h1 = _out(h_in, k, stride, k - 1, dilation=2)
  return _conv(h1, channels, channels, k, channels) + _conv(h1, channels, channels, 1), h1


class _CellGeom(NamedTuple):
  channels: int  # C of the cell
  h_in: int  # spatial size of the (preprocessed) cell inputs
  reduction: bool


def _walk(
  channels: int, layers: int, image_size: int, num_classes: int
) -> tuple[int, list[_CellGeom]]:
  """(multiply-adds of everything except the cell ops, geometry of each cell)."""
  c = channels
  h0 = _out(image_size, 3, 2, 1)  # stem0 conv a
  h1 = _out(h0, 3, 2, 1)  # stem0 conv b -> s0
  h2 = _out(h1, 3, 2, 1)  # stem1 -> s1
  fixed = _conv(h0, 3, c // 2, 3) + _conv(h1, c // 2, c, 3) + _conv(h2, c, c, 3)
  c_pp, c_p, c_cur = c, c, c
  h_pp, h_p = h1, h2
  reduction_prev = True
  cells = []
  for i in range(layers):
    reduction = i in (layers // 3, 2 * layers // 3)
    if reduction:
      c_cur *= 2
    if reduction_prev:
      ha, hb = _out(h_pp, 1, 2, 0), _out(h_pp - 1, 1, 2, 0)
      fixed += _conv(ha, c_pp, c_cur // 2, 1) + _conv(hb, c_pp, c_cur // 2, 1)
    else:
      fixed += _conv(h_pp, c_pp, c_cur, 1)
    fixed += _conv(h_p, c_p, c_cur, 1)
    cells.append(_CellGeom(c_cur, h_p, reduction))
    h_out = _out(h_p, 3, 2, 1) if reduction else h_p
    reduction_prev = reduction
    c_pp, c_p = c_p, _MULTIPLIER * c_cur
    h_pp, h_p = h_p, h_out
  fixed += c_p * num_classes  # classifier
  return fixed, cells


def _cell_madds(genotype: Sequence[tuple[str, int]], geom: _CellGeom) -> int:
  h_mid = _out(geom.h_in, 3, 2, 1) if geom.reduction else geom.h_in
  total = 0
  for name, index in genotype:
    if index < 2:
      total += op_madds(name, geom.channels, geom.h_in, 2 if geom.reduction else 1)[0]
    else:
      total += op_madds(name, geom.channels, h_mid, 1)[0]
  return total


def _check_genotype(genotype: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
  pairs = [(str(op), int(idx)) for op, idx in genotype]
  if len(pairs) != 8:
    raise ValueError(f"a DARTS cell has 8 (op, input) pairs, got {len(pairs)}: {genotype!r}")
  for p, (op, idx) in enumerate(pairs):
    _op_spec(op)
    if not 0 <= idx < p // 2 + 2:
      raise ValueError(f"pair {p} of {genotype!r}: input {idx} out of range for block {p // 2}")
  return pairs


def network_madds(
  normal: Sequence[tuple[str, int]],
  reduce: Sequence[tuple[str, int]] | None = None,
  *,
  channels: int = CHANNELS,
  layers: int = LAYERS,
  image_size: int = IMAGE_SIZE,
  num_classes: int = NUM_CLASSES,
) -> int:
  """Multiply-adds (conv + linear, see the module docstring) of `NetworkImageNet`.

  Args:
    normal: the normal cell, 8 (op name, input index) pairs as in DARTS genotypes.
    reduce: the reduction cell; None uses `normal` (arch2vec's convention).
    channels, layers, image_size, num_classes: the network (defaults: the mobile
      setting, C=48, 14 cells, 224px, 1000 classes).

  Returns:
    The exact integer count.
  """
  normal = _check_genotype(normal)
  reduce = normal if reduce is None else _check_genotype(reduce)
  fixed, cells = _walk(channels, layers, image_size, num_classes)
  return fixed + sum(_cell_madds(reduce if g.reduction else normal, g) for g in cells)


def network_params(
  normal: Sequence[tuple[str, int]],
  reduce: Sequence[tuple[str, int]] | None = None,
  *,
  channels: int = CHANNELS,
  layers: int = LAYERS,
  num_classes: int = NUM_CLASSES,
) -> int:
  """Trainable parameters of the same network (conv weights, BN affine, classifier).

  A structural check of the network walk: DARTS_V2 gives the paper's 4.7M.
  """
  normal = _check_genotype(normal)
  reduce = normal if reduce is None else _check_genotype(reduce)

  def conv(c_in: int, c_out: int, k: int, groups: int = 1) -> int:
    return c_out * (c_in // groups) * k * k

  c = channels
  total = conv(3, c // 2, 3) + c + conv(c // 2, c, 3) + 2 * c + conv(c, c, 3) + 2 * c
  c_pp, c_p, c_cur = c, c, c
  reduction_prev = True
  for i in range(layers):
    reduction = i in (layers // 3, 2 * layers // 3)
    if reduction:
      c_cur *= 2
    total += (2 * conv(c_pp, c_cur // 2, 1) if reduction_prev else conv(c_pp, c_cur, 1)) + 2 * c_cur
    total += conv(c_p, c_cur, 1) + 2 * c_cur
    for name, index in reduce if reduction else normal:
      kind, k = _op_spec(name)
      strided = reduction and index < 2
      if kind == "skip_connect" and strided:
        total += 2 * conv(c_cur, c_cur // 2, 1) + 2 * c_cur
      elif kind == "sep_conv":
        total += 2 * (conv(c_cur, c_cur, k, c_cur) + conv(c_cur, c_cur, 1) + 2 * c_cur)
      elif kind == "dil_conv":
        total += conv(c_cur, c_cur, k, c_cur) + conv(c_cur, c_cur, 1) + 2 * c_cur
    reduction_prev = reduction
    c_pp, c_p = c_p, _MULTIPLIER * c_cur
  return total + c_p * num_classes + num_classes


@functools.lru_cache(maxsize=8)
def madds_table(
  channels: int = CHANNELS,
  layers: int = LAYERS,
  image_size: int = IMAGE_SIZE,
  num_classes: int = NUM_CLASSES,
) -> tuple[int, np.ndarray]:
  """The additive form of `network_madds(g)` with the normal cell used as reduction cell.

  Returns:
    base: multiply-adds independent of the genotype (stems, preprocessing, classifier).
    table: int64 [8, 2] (read-only); table[o, 1] is what op `PRIMITIVES[o]` adds summed
      over all cells when it reads a cell input (strided in reduction cells), table[o, 0]
      when it reads an intermediate block. network_madds = base + sum over the 8 pairs.
  """
  fixed, cells = _walk(channels, layers, image_size, num_classes)
  table = np.zeros((len(PRIMITIVES), 2), dtype=np.int64)
  for o, name in enumerate(PRIMITIVES):
    for g in cells:
      h_mid = _out(g.h_in, 3, 2, 1) if g.reduction else g.h_in
      table[o, 0] += op_madds(name, g.channels, h_mid, 1)[0]
      table[o, 1] += op_madds(name, g.channels, g.h_in, 2 if g.reduction else 1)[0]
  table.flags.writeable = False
  return fixed, table


def madds_batch(op_idx: np.ndarray, inputs: np.ndarray, **network) -> np.ndarray:
  """Vectorised `network_madds` for genotypes in array form (normal cell = reduction cell).

  Args:
    op_idx: int [N, 8], indices into `PRIMITIVES`.
    inputs: int [N, 8], input of each pair (0 = c_{k-2}, 1 = c_{k-1}, 2 + j = block j).
    **network: channels / layers / image_size / num_classes, as in `network_madds`.

  Returns:
    int64 [N] multiply-adds.
  """
  base, table = madds_table(**network)
  op_idx = np.asarray(op_idx, dtype=np.intp)
  from_cell_input = (np.asarray(inputs) < 2).astype(np.intp)
  return base + table[op_idx, from_cell_input].sum(axis=-1)
