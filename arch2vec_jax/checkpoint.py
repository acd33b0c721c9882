"""Checkpoints: a pytree as `flax.serialization` msgpack bytes, written atomically.

A checkpoint file `<dir>/checkpoint_<epoch:06d>.msgpack` holds
  {'state': state dict of the training state, 'epoch': int (the last finished
   epoch), 'extra': JSON text (e.g. the metrics history)}.
Files are written to a temporary name and renamed (`fileio.atomic_write_bytes`),
so a crash never leaves a truncated checkpoint under its final name; after a
write only the newest `keep` checkpoints are kept.

Integrity: the msgpack bytes are followed by a 48-byte trailer, `_TRAILER_MAGIC`
and the SHA-256 of the msgpack bytes, checked by every read (`load_raw`,
`restore_checkpoint`, `verify_checkpoint`); a truncated or bit-flipped file is a
`CheckpointError` naming it. Files without the trailer (written before it
existed) still load, with only msgpack's own checks. `latest_checkpoint(...,
verify=True)` skips damaged checkpoints with a warning naming each and returns
the newest good one. Temporary files left by an interrupted write
(`.checkpoint_*.msgpack.*.tmp`) are removed at the start of every save and of
`latest_checkpoint`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import warnings
from collections.abc import Callable
from typing import Any

import flax.serialization
import jax
import numpy as np

from arch2vec_jax import fileio

__all__ = [
  "CheckpointError",
  "checkpoint_path",
  "checkpoint_run",
  "latest_checkpoint",
  "list_checkpoints",
  "load_raw",
  "remove_temporaries",
  "restore_checkpoint",
  "save_checkpoint",
  "verify_checkpoint",
]

_PATTERN = re.compile(r"^checkpoint_(\d+)\.msgpack$")
# The temporaries of fileio.atomic_open: .<name>.<random>.tmp beside the target.
_TEMP_PATTERN = re.compile(r"^\.checkpoint_\d+\.msgpack\..*\.tmp$")
_TRAILER_MAGIC = b"arch2vec-sha256\x00"  # 16 bytes, then the 32-byte digest
_TRAILER = len(_TRAILER_MAGIC) + 32


class CheckpointError(ValueError):
  """A damaged (truncated, bit-flipped) checkpoint file, or not a checkpoint; names the file."""


def remove_temporaries(directory: str | os.PathLike) -> list[str]:
  """Removes the temporary files of interrupted checkpoint writes in `directory`; returns them."""
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    return []
  removed = []
  for name in sorted(os.listdir(directory)):
    if _TEMP_PATTERN.match(name):
      path = os.path.join(directory, name)
      with contextlib.suppress(FileNotFoundError):
        os.remove(path)
        removed.append(path)
  return removed


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


def latest_checkpoint(
  directory: str | os.PathLike, verify: bool = False, warn: Callable[[str], None] | None = None
) -> str | None:
  """Path of the newest checkpoint in `directory`, or None (none there).

  Removes temporary files left by interrupted writes first.

  Args:
    directory: the checkpoint folder.
    verify: check each candidate, newest first (`verify_checkpoint`): a damaged
      one is reported through `warn` with its name and the reason, and the next
      older one is tried.
    warn: where the damage reports go (default `warnings.warn`).

  Returns:
    The newest (with `verify`: the newest intact) checkpoint, or None if there is none.

  Raises:
    CheckpointError: with `verify`, if every checkpoint in `directory` is damaged.
  """
  remove_temporaries(directory)
  found = list_checkpoints(directory)
  if not verify:
    return found[-1][1] if found else None
  warn = warn or (lambda msg: warnings.warn(msg, stacklevel=3))
  damaged = []
  for _, path in reversed(found):
    try:
      verify_checkpoint(path)
      return path
    except CheckpointError as e:
      damaged.append(path)
      warn(f"{e}; skipping it, trying the next older checkpoint")
  if damaged:
    names = ", ".join(damaged)
    raise CheckpointError(f"{os.fspath(directory)}: every checkpoint is damaged: {names}")
  return None


def save_checkpoint(
  directory: str | os.PathLike,
  state: Any,
  epoch: int,
  extra: Any = None,
  keep: int = 3,
  run_id: str | None = None,
) -> str:
  """Writes a checkpoint atomically and prunes old ones.

  Args:
    directory: checkpoint folder (created).
    state: a pytree (e.g. `train.TrainState`); device arrays are fetched.
    epoch: the last finished epoch (0-based).
    extra: JSON-serialisable data stored beside the state.
    keep: how many of the newest checkpoints to keep (>= 1).
    run_id: the run's identity (e.g. a hash of its config), stored in the
      file; pruning then removes only older files of the same run (files of
      another run, damaged files and files without an id are left alone).
      None: prune every older file.

  Returns:
    The path written.
  """
  if keep < 1:
    raise ValueError(f"keep must be >= 1, got {keep}")
  state_dict = flax.serialization.to_state_dict(jax.device_get(state))
  payload = {"state": state_dict, "epoch": int(epoch), "extra": json.dumps(extra)}
  if run_id is not None:
    payload["run"] = str(run_id)
  path = checkpoint_path(directory, epoch)
  remove_temporaries(directory)
  data = flax.serialization.msgpack_serialize(payload)
  fileio.atomic_write_bytes(path, data + _TRAILER_MAGIC + hashlib.sha256(data).digest())
  ours = [
    p
    for _, p in list_checkpoints(directory)
    if run_id is None or p == path or checkpoint_run(p) == run_id
  ]
  for old in ours[:-keep]:
    os.remove(old)
  return path


def checkpoint_run(path: str | os.PathLike) -> str | None:
  """The run id stored in a checkpoint (`save_checkpoint(run_id=...)`); None if it has none or is damaged."""
  try:
    return load_raw(path).get("run")
  except CheckpointError:
    return None


def _checked_bytes(path: str) -> bytes:
  """The msgpack bytes of a checkpoint file, its checksum verified (if it has one)."""
  with open(path, "rb") as f:
    data = f.read()
  if len(data) >= _TRAILER and data[-_TRAILER:-32] == _TRAILER_MAGIC:
    body, digest = data[:-_TRAILER], data[-32:]
    if hashlib.sha256(body).digest() != digest:
      raise CheckpointError(
        f"{path}: damaged checkpoint: SHA-256 checksum mismatch "
        f"({len(data)} bytes; bit flips or a partial overwrite)"
      )
    return body
  return data  # written before checksums existed (or its trailer is damaged: msgpack then fails)


def _decode(path: str, data: bytes) -> dict[str, Any]:
  try:
    payload = flax.serialization.msgpack_restore(data)
    if not isinstance(payload, dict) or not {"state", "epoch", "extra"} <= set(payload):
      raise ValueError("not a checkpoint payload {'state', 'epoch', 'extra'}")
    payload["extra"] = json.loads(payload["extra"])
    int(payload["epoch"])
  except Exception as e:  # noqa: BLE001  msgpack's ExtraData / OutOfData / FormatError, ValueError, TypeError ...
    raise CheckpointError(
      f"{path}: damaged checkpoint: cannot be decoded ({len(data)} bytes; "
      f"truncated or corrupt: {type(e).__name__}: {e})"
    ) from None
  return payload


def verify_checkpoint(path: str | os.PathLike) -> None:
  """Checks that a checkpoint file is intact (checksum, if it has one, and decoding).

  Raises:
    CheckpointError: naming the file, if it is damaged.
  """
  path = os.fspath(path)
  _decode(path, _checked_bytes(path))


def load_raw(path: str | os.PathLike) -> dict[str, Any]:
  """The raw payload of a checkpoint: {'state': nested dict of arrays, 'epoch', 'extra'}.

  Useful without a target structure, e.g. to read `params` and `batch_stats` for
  embedding: `load_raw(p)['state']['params']`.

  Raises:
    CheckpointError: (a ValueError) naming the file, if it is truncated, has a
      checksum mismatch or cannot be decoded.
  """
  path = os.fspath(path)
  return _decode(path, _checked_bytes(path))


def restore_checkpoint(path: str | os.PathLike, target: Any) -> tuple[Any, int, Any]:
  """Restores a checkpoint into the structure of `target`.

  Args:
    path: a checkpoint file.
    target: a pytree with the saved structure (e.g. a freshly initialised state).

  Returns:
    (state, epoch, extra). Leaves are NumPy arrays with the saved values.

  Raises:
    CheckpointError: naming the file, if it is damaged (see `load_raw`).
    ValueError: naming the file, if it does not match `target`.
  """
  payload = load_raw(path)
  try:
    state = flax.serialization.from_state_dict(target, payload["state"])
  except (ValueError, KeyError, TypeError) as e:
    raise ValueError(
      f"{os.fspath(path)}: checkpoint does not match the model/optimizer structure: {e}"
    ) from e
  # Keep dtypes of the target (msgpack keeps them; this guards scalars).
  state = jax.tree.map(lambda t, x: np.asarray(x, dtype=np.asarray(t).dtype), target, state)
  return state, int(payload["epoch"]), payload["extra"]
