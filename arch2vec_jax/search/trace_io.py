"""Search traces on disk: `traces/<method>.npz`, the [S, T] fields of `env.Trace`, the seeds' keys and meta.

save_trace("traces/rs.npz", trace, keys, {"method": "rs"})
trace, meta = load_trace("traces/rs.npz")
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.search import env as env_lib

__all__ = ["load_trace", "save_trace"]


def save_trace(
  path: str | os.PathLike,
  trace: env_lib.Trace,
  keys: np.ndarray | None = None,
  meta: dict[str, Any] | None = None,
) -> None:
  """Writes per-seed traces ([S, T] fields of `Trace`) as a compressed `.npz` (atomic).

  Keys: the `Trace` fields, `seed_keys` (uint32 [S, 2] raw PRNG keys, if given)
  and `meta` (a JSON string). The slots after the last one any seed used (a
  time budget reserves room for the most queries the cheapest cells could buy)
  are dropped: they are masked in every seed and carry nothing.
  """
  used = np.flatnonzero(np.asarray(trace.mask).any(axis=0))
  slots = int(used[-1]) + 1 if used.size else 0
  arrays = {
    name: _smallest_int(np.asarray(getattr(trace, name))[:, :slots])
    for name in env_lib.Trace._fields
  }
  if keys is not None:
    if jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
      keys = jax.random.key_data(keys)
    arrays["seed_keys"] = np.asarray(keys)
  arrays["meta"] = np.str_(json.dumps(meta or {}, sort_keys=True, default=str))
  fileio.atomic_save_npz(path, **arrays)


def _smallest_int(a: np.ndarray) -> np.ndarray:
  """An integer array in the smallest signed dtype that holds its values (files stay small); others unchanged."""
  if a.dtype.kind != "i" or not a.size:
    return a
  for dtype in (np.int8, np.int16):
    info = np.iinfo(dtype)
    if info.min <= a.min() and a.max() <= info.max:
      return a.astype(dtype)
  return a


def load_trace(path: str | os.PathLike) -> tuple[env_lib.Trace, dict[str, Any]]:
  """Reads `save_trace`'s file: (Trace of host arrays, meta)."""
  data = fileio.load_npz(path)
  missing = set(env_lib.Trace._fields) - set(data)
  if missing:
    raise ValueError(f"{os.fspath(path)}: not a search trace (missing {sorted(missing)})")
  meta = json.loads(str(data["meta"])) if "meta" in data else {}
  fields = (
    data[name].astype(np.int32) if data[name].dtype.kind == "i" else data[name]
    for name in env_lib.Trace._fields
  )
  return env_lib.Trace(*fields), meta
