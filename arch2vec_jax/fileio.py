"""Atomic file writes: write to a temporary file beside the target, then rename.

Every file this project writes (caches, checkpoints, results) goes through these
helpers, so an interrupted run never leaves a half-written file under the final
name.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = [
  "atomic_open",
  "atomic_save_npz",
  "atomic_write_bytes",
  "atomic_write_json",
  "cache_dir",
  "load_npz",
]


def cache_dir() -> str:
  """The folder for derived caches: $ARCH2VEC_CACHE, else ~/.cache/arch2vec_jax (created)."""
  path = os.environ.get("ARCH2VEC_CACHE") or os.path.join(
    os.path.expanduser("~"), ".cache", "arch2vec_jax"
  )
  os.makedirs(path, exist_ok=True)
  return path


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[io.IOBase]:
  """Opens a temporary file next to `path`; renames it onto `path` on success.

  On an exception the temporary file is removed and `path` is left untouched.
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
    prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory
  )
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to `path` atomically."""
  with atomic_open(path, "wb") as f:
    f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int = 2) -> None:
  """Writes `obj` as JSON to `path` atomically (NumPy scalars/arrays are converted)."""

  def default(o):
    if isinstance(o, np.generic):
      return o.item()
    if isinstance(o, np.ndarray):
      return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")

  text = json.dumps(obj, indent=indent, default=default, sort_keys=False)
  atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def atomic_save_npz(path: str | os.PathLike, compressed: bool = True, **arrays: np.ndarray) -> None:
  """Saves arrays to an `.npz` file atomically (compressed by default)."""
  with atomic_open(path, "wb") as f:
    (np.savez_compressed if compressed else np.savez)(f, **arrays)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
  """Loads every array of an `.npz` file into memory.

  Raises:
    ValueError: naming the file, if it is not a readable `.npz` archive.
  """
  path = os.fspath(path)
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except FileNotFoundError:
    raise
  except Exception as e:  # zipfile.BadZipFile, EOFError, ValueError, OSError ...
    raise ValueError(f"{path}: not a readable .npz archive ({type(e).__name__}: {e})") from e
