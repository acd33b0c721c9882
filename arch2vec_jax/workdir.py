"""One run per workdir: a lock held for the whole run, and no silent mixing of two runs.

A run's folder (`launch/pretrain.py --workdir`) holds `metrics.json`,
`embeddings.npz`, `checkpoints/` (and `seeds.json` for a seed sweep). `claim`
checks the folder before any work (a file in its place, or a folder that
cannot be created, is a clear error), takes an exclusive lock (`.lock`,
`fcntl.flock`: released by the kernel when the process ends, also on SIGKILL)
so that a second run on the same folder stops at once, and refuses a fresh
run in a folder that already holds one unless it is resumed or replaced.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator

__all__ = ["LOCK_FILE", "RUN_FILES", "WorkdirInUse", "claim"]

RUN_FILES = ("metrics.json", "embeddings.npz", "checkpoints", "seeds.json")
LOCK_FILE = ".lock"


class WorkdirInUse(RuntimeError):
  """Another process holds the workdir's lock."""


def _held_files(path: str) -> list[str]:
  """The run files present in `path` (an empty checkpoints/ folder does not count)."""
  out = []
  for name in RUN_FILES:
    p = os.path.join(path, name)
    if os.path.isdir(p):
      if os.listdir(p):
        out.append(name + "/")
    elif os.path.exists(p):
      out.append(name)
  return out


@contextlib.contextmanager
def claim(workdir: str | os.PathLike, *, resume: bool, overwrite: bool = False) -> Iterator[str]:
  """Holds `workdir` for one run (a context manager; yields the folder's path).

  Args:
    workdir: the run's folder (created if missing).
    resume: the run continues what the folder holds (its own checks follow).
    overwrite: a fresh run replaces what the folder holds (the run files are
      deleted first; other files are left alone).

  Raises:
    ValueError: the path is a file or cannot be created or written; or it
      holds a run and neither `resume` nor `overwrite` is set.
    WorkdirInUse: another process runs in it (its pid in the message).
  """
  path = os.fspath(workdir)
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"workdir {path} is a file, not a folder")
  try:
    os.makedirs(path, exist_ok=True)
    fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise ValueError(f"workdir {path}: cannot create or write it ({e.strerror or e})") from e
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
      raise WorkdirInUse(
        f"workdir {path} is in use by another run (pid {owner}); wait for it to end or use "
        "another --workdir"
      ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    held = _held_files(path)
    if held and not resume:
      if not overwrite:
        raise ValueError(
          f"workdir {path} already holds a run ({', '.join(held)}); pass --resume to continue it "
          "or --overwrite to replace it"
        )
      for name in held:
        p = os.path.join(path, name.rstrip("/"))
        shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    yield path
  finally:
    os.close(fd)  # releases the lock
