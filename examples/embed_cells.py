"""Embed cells of your own with a shipped (or your own) pre-trained arch2vec encoder.

  python examples/embed_cells.py                      # the shipped NB201, NB101 and DARTS encoders
  python examples/embed_cells.py --nb201 workdir/nb201  # the encoder of your own pre-training run

NB201 cells are given as arch strings, NB101 cells as (adjacency, op labels)
specs, DARTS cells as genotypes (the normal cell: 8 (op, input) pairs, or the
text of a whole DARTS `Genotype(...)`); `embed` returns one 16-d vector per cell (the mean over nodes of the
encoder's mu, exactly as `launch/pretrain.py` writes them to embeddings.npz).
Nearby vectors are similar cells: the script prints each cell's nearest
neighbour in the small pool.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from arch2vec_jax import pretrained

NB201_CELLS = [
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
  "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
  "|avg_pool_3x3~0|+|none~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
  "|none~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|",
]
NB101_CELLS = [  # (upper-triangular adjacency, op labels): input, 3 ops, output
  (
    [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", "conv3x3-bn-relu", "conv1x1-bn-relu", "conv3x3-bn-relu", "output"],
  ),
  (
    [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
    ["input", "conv3x3-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "output"],
  ),
  ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "maxpool3x3", "output"]),
]
DARTS_CELLS = [  # DARTS-V2's normal cell, the same with one op changed, and an all-pooling cell
  (
    "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), "
    "('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5])"
  ),
  [
    ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
    ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("sep_conv_5x5", 2),
  ],
  [
    ("max_pool_3x3", 0), ("avg_pool_3x3", 1), ("max_pool_3x3", 0), ("avg_pool_3x3", 2),
    ("max_pool_3x3", 1), ("avg_pool_3x3", 3), ("max_pool_3x3", 2), ("avg_pool_3x3", 4),
  ],
]  # fmt: skip


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--nb201", default="nb201", help="a shipped name or a pre-training --workdir")
  p.add_argument("--nb101", default="nb101", help="a shipped name or a pre-training --workdir")
  p.add_argument("--darts", default="darts", help="a shipped name or a pre-training --workdir")
  args = p.parse_args(argv)
  out = {}
  for name, source, cells in (
    ("nb201", args.nb201, NB201_CELLS),
    ("nb101", args.nb101, NB101_CELLS),
    ("darts", args.darts, DARTS_CELLS),
  ):
    encoder = pretrained.load(source)
    z = np.asarray(encoder.embed(cells))  # [cells, 16]
    near = encoder.nearest(z, z, k=2)  # the nearest other cell of this small pool
    print(f"{name} ({encoder.meta.get('command', source)}): embeddings {z.shape}")
    for i in range(len(cells)):
      j = int(near.index[i, 1])
      print(
        f"  cell {i}: |z| {np.linalg.norm(z[i]):.2f}, nearest other cell {j} at {float(near.distance[i, 1]):.3f}"
      )
    out[name] = {"embeddings": z, "nearest": near.index[:, 1], "encoder": encoder}
  return out


if __name__ == "__main__":
  main(sys.argv[1:])
