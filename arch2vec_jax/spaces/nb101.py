"""The NAS-Bench-101 search space: the codec (`nb101_cells`), the enumeration of the whole
space (`nb101_enumerate`), both re-exported, and `SPACE`.

A cell is a DAG of V <= 7 nodes given as an upper-triangular 0/1 matrix
(`matrix[u, v] = 1`: edge u -> v) and V op names, node 0 'input', node V-1
'output', inner nodes one of conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3; at
most 9 edges. Encoded as arch2vec: adjacency int8 [7, 7] and one-hot ops int8
[7, 5] over `OPS`, zero padding after the output node.
"""

from __future__ import annotations

from arch2vec_jax.spaces import nb101_cells, nb101_enumerate, nb101_tables
from arch2vec_jax.spaces.base import SearchSpace
from arch2vec_jax.spaces.nb101_cells import *
from arch2vec_jax.spaces.nb101_enumerate import *

__all__ = ["SPACE"]
__all__ += nb101_cells.__all__ + nb101_enumerate.__all__  # the codec and enumeration are its API

SPACE = SearchSpace(
  name="nb101",
  num_nodes=nb101_cells.NUM_NODES,
  ops=tuple(nb101_cells.OPS),
  cells=nb101_enumerate.space_cells,
  is_valid=nb101_cells.is_valid_batch,
  hash=nb101_cells.hash_batch,
  native=nb101_tables.NATIVE,
  datasets=nb101_tables.DATASETS,
  search_defaults=nb101_tables.SEARCH_DEFAULTS,
  neighbours=nb101_tables.mutation_neighbours,
  edit_codes=nb101_tables.edit_codes,
)
