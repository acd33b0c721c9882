"""Checkpoints: a pytree as `flax.serialization` msgpack bytes, written atomically.

A checkpoint file `<dir>/checkpoint_<epoch:06d>.msgpack` holds
  {'state': state dict of the training state, 'epoch': int (the last finished
   epoch), 'extra': JSON text (e.g. the metrics history)}.
Files are written to a temporary name and renamed (`fileio.atomic_write_bytes`),
so a crash never leaves a truncated checkpoint under its final name; after a
write only the newest `keep` checkpoints are kept.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import flax.serialization
import jax
import numpy as np

from arch2vec_jax import fileio

__all__ = [
  "checkpoint_path",
  "list_checkpoints",
  "latest_checkpoint",
  "save_checkpoint",
  "restore_checkpoint",
  "load_raw",
]

_PATTERN = re.compile(r"^checkpoint_(\d+)\.msgpack$")


def checkpoint_path(directory: str | os.PathLike, epoch: int) -> str:
  """The file name of the checkpoint after `epoch`."""
  return os.path.join(os.fspath(directory), f"checkpoint_{int(epoch):06d}.msgpack")


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
  """(epoch, path) of every checkpoint in `directory`, oldest first ([] if none)."""
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    return []
  found = []
  for name in os.listdir(directory):
    m = _PATTERN.match(name)
    if m:
      found.append((int(m.group(1)), os.path.join(directory, name)))
  return sorted(found)


def latest_checkpoint(directory: str | os.PathLike) -> str | None:
  """Path of the newest checkpoint in `directory`, or None."""
  found = list_checkpoints(directory)
  return found[-1][1] if found else None


def save_checkpoint(
  directory: str | os.PathLike,
  state: Any,
  epoch: int,
  extra: Any = None,
  keep: int = 3,
) -> str:
  """Writes a checkpoint atomically and prunes old ones.

  Args:
    directory: checkpoint folder (created).
    state: a pytree (e.g. `train.TrainState`); device arrays are fetched.
    epoch: the last finished epoch (0-based).
    extra: JSON-serialisable data stored beside the state.
    keep: how many of the newest checkpoints to keep (>= 1).

  Returns:
    The path written.
  """
  if keep < 1:
    raise ValueError(f"keep must be >= 1, got {keep}")
  state_dict = flax.serialization.to_state_dict(jax.device_get(state))
  payload = {"state": state_dict, "epoch": int(epoch), "extra": json.dumps(extra)}
  path = checkpoint_path(directory, epoch)
  fileio.atomic_write_bytes(path, flax.serialization.msgpack_serialize(payload))
  for _, old in list_checkpoints(directory)[:-keep]:
    os.remove(old)
  return path


def load_raw(path: str | os.PathLike) -> dict[str, Any]:
  """The raw payload of a checkpoint: {'state': nested dict of arrays, 'epoch', 'extra'}.

  Useful without a target structure, e.g. to read `params` and `batch_stats` for
  embedding: `load_raw(p)['state']['params']`.
  """
  with open(os.fspath(path), "rb") as f:
    payload = flax.serialization.msgpack_restore(f.read())
  payload["extra"] = json.loads(payload["extra"])
  return payload


def restore_checkpoint(path: str | os.PathLike, target: Any) -> tuple[Any, int, Any]:
  """Restores a checkpoint into the structure of `target`.

  Args:
    path: a checkpoint file.
    target: a pytree with the saved structure (e.g. a freshly initialised state).

  Returns:
    (state, epoch, extra). Leaves are NumPy arrays with the saved values.

  Raises:
    ValueError: naming the file, if it does not match `target`.
  """
  payload = load_raw(path)
  try:
    state = flax.serialization.from_state_dict(target, payload["state"])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(f"{os.fspath(path)}: checkpoint does not match the model/optimizer structure: {e}") from e
  # Keep dtypes of the target (msgpack keeps them; this guards scalars).
  state = jax.tree.map(lambda t, x: np.asarray(x, dtype=np.asarray(t).dtype), target, state)
  return state, int(payload["epoch"]), payload["extra"]
