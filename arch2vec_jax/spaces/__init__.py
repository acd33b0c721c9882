"""Search spaces: NAS-Bench-101, NAS-Bench-201 and DARTS cells as padded graphs.

`get(name)` is the `SearchSpace` of a space ('nb101', 'nb201' or 'darts'; its
module is imported on first use); everything a caller needs to know about a
space is a field or method of that object (`spaces.base`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
  from arch2vec_jax.spaces.base import SearchSpace

__all__ = ["NAMES", "get"]

NAMES: tuple[str, ...] = ("nb101", "nb201", "darts")


def get(name: str) -> SearchSpace:
  """The `SearchSpace` of `name` (`arch2vec_jax.spaces.<name>.SPACE`).

  Raises:
    ValueError: for a name not in `NAMES`.
  """
  if name not in NAMES:
    raise ValueError(f"unknown space {name!r}; expected one of {NAMES}")
  return importlib.import_module(f"arch2vec_jax.spaces.{name}").SPACE
