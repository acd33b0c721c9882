"""NAS-Bench-201 as a search space: the codec (`nb201_cells`, re-exported) and `SPACE`.

`SPACE` joins the codec (arch strings <-> 8-node cells, validity, hashes) with what
the searches and analyses know of the space (`nb201_tables`: datasets, search
defaults, mutation neighbours, edit codes, table rows).
"""

from __future__ import annotations

import numpy as np

from arch2vec_jax.spaces import nb201_cells, nb201_tables
from arch2vec_jax.spaces.base import SearchSpace
from arch2vec_jax.spaces.nb201_cells import *

__all__ = ["SPACE"]
__all__ += nb201_cells.__all__  # the codec is this module's API too


def _cells(**kwargs) -> tuple[np.ndarray, np.ndarray]:
  """`SearchSpace.cells` for NB201: every cell in benchmark order (no options)."""
  if kwargs:
    raise TypeError(f"nb201 cells() takes no options, got {sorted(kwargs)}")
  return nb201_cells.all_cells()


SPACE = SearchSpace(
  name="nb201",
  num_nodes=nb201_cells.NUM_NODES,
  ops=nb201_cells.OPS,
  cells=_cells,
  is_valid=nb201_cells.is_valid_batch,
  hash=nb201_cells.hash_batch,
  native=nb201_tables.NATIVE,
  ids_are_cells=True,
  datasets=nb201_tables.DATASETS,
  search_defaults=nb201_tables.SEARCH_DEFAULTS,
  neighbours=nb201_tables.mutation_neighbours,
  edit_codes=nb201_tables.edit_codes,
  table_rows=nb201_tables.table_rows,
)
