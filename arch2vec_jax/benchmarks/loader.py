"""One entry point for every benchmark source: `load_table`, with an `.npz` cache.

`load_table(source)` picks the reader from the file type:

  .tfrecord               NAS-Bench-101 (`tfrecord.read_nb101_tfrecord`)
  .pth                    NAS-Bench-201 torch file (`nb201_pickle.read_nb201_pth`)
  .pbz2 / folder          NATS-Bench topology (`read_nats_pbz2`, `read_nats_archive`)
  .csv                    the shared CSVs (`csv_data`), NB201 or NB101 by header
  .npz                    a saved BenchmarkTable (`BenchmarkTable.load`)

and caches what it read as a BenchmarkTable `.npz` in `fileio.cache_dir()/tables`
under a key made of the source's absolute path, size, modification time and
the reader options, so the next call with the same source and options loads in
well under a second.

NAS-Bench-201 datasets follow the paper protocol for every NB201 source:
`dataset` is 'cifar10' (reward: cifar10-valid x-valid; report: cifar10
ori-test), 'cifar100' or 'imagenet16' (x-valid / x-test), reward after `epochs`
(default 12) and report after 200 epochs, exactly the columns
`{dataset}_valid_12ep` / `{dataset}_test_200ep` of the shared CSV. Other choices
go through keyword options to the reader (e.g. test_epochs=12, cost='simulated').
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.benchmarks import csv_data, nb201_pickle, tfrecord
from arch2vec_jax.benchmarks.table import BenchmarkTable

__all__ = ["ProgressLogger", "cache_path", "load_table", "prepare", "source_kind", "summarize"]

_LOG = logging.getLogger("arch2vec_jax.benchmarks")
# Bump when a reader's output changes, to invalidate old caches (2: value and size checks).
_READER_VERSION = 2
# Paper protocol: short dataset name -> (NB201 reward dataset, NB201 test dataset).
_NB201_PROTOCOL = {
  "cifar10": ("cifar10-valid", "cifar10"),
  "cifar10-valid": ("cifar10-valid", "cifar10"),
  "cifar100": ("cifar100", "cifar100"),
  "imagenet16": ("ImageNet16-120", "ImageNet16-120"),
  "imagenet16-120": ("ImageNet16-120", "ImageNet16-120"),
}


def source_kind(source: str | os.PathLike) -> str:
  """The reader for a source: 'tfrecord', 'pth', 'pbz2', 'nats-dir', 'csv-nb201', 'csv-nb101' or 'npz'.

  Raises:
    ValueError: naming the source, if its type is not recognised.
    FileNotFoundError: if it does not exist.
  """
  path = os.fspath(source)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such file or folder")
  if os.path.isdir(path):
    if os.path.exists(os.path.join(path, "meta.pickle.pbz2")):
      return "nats-dir"
    raise ValueError(f"{path}: a folder, but not a NATS-Bench archive (no meta.pickle.pbz2)")
  name = os.path.basename(path).lower()
  if name.endswith(".tfrecord"):
    return "tfrecord"
  if name.endswith((".pth", ".pt")):
    return "pth"
  if name.endswith(".pbz2"):
    return "pbz2"
  if name.endswith(".csv"):
    return "csv-" + csv_data.csv_kind(path)
  if name.endswith(".npz"):
    return "npz"
  raise ValueError(
    f"{path}: unknown benchmark file type (expected .tfrecord, .pth, .pbz2, .csv, .npz or a NATS folder)"
  )


def _space_of(kind: str) -> str:
  return {"tfrecord": "nb101", "csv-nb101": "nb101"}.get(kind, "nb201")


def _options(
  kind: str, dataset: str | None, epochs: int | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
  """The reader's keyword arguments, defaults filled in (also the cache key)."""
  opts = dict(kwargs)
  if not opts.get("allow_subset", True):
    del opts["allow_subset"]  # the default: the same cache entry as without it
  if kind in ("tfrecord", "csv-nb101"):
    if dataset not in (None, "cifar10"):
      raise ValueError(f"NAS-Bench-101 has only cifar10, got dataset={dataset!r}")
    opts["epochs"] = int(epochs or 108)
    return opts
  name = str(dataset or "cifar10").lower()
  if kind == "csv-nb201":
    opts["dataset"] = csv_data.nb201_csv_prefix(name)
    if epochs is not None:
      opts.setdefault("reward", f"valid_{int(epochs)}ep")
    opts.setdefault("reward", "valid_12ep")
    opts.setdefault("report", "test_200ep")
    return opts
  if name not in _NB201_PROTOCOL:
    raise ValueError(
      f"unknown NAS-Bench-201 dataset {dataset!r}; expected cifar10, cifar100 or imagenet16"
    )
  reward_ds, test_ds = _NB201_PROTOCOL[name]
  opts["dataset"] = reward_ds
  opts["epochs"] = int(epochs or 12)
  opts.setdefault("test_dataset", test_ds)
  opts.setdefault("test_epochs", 200)
  return opts


def _stat(path: str) -> tuple[int, int]:
  """(size, mtime_ns) of a file, or summed size / latest mtime of a folder's files."""
  if not os.path.isdir(path):
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns
  size, mtime = 0, os.stat(path).st_mtime_ns
  for entry in os.scandir(path):
    if entry.is_file():
      st = entry.stat()
      size += st.st_size
      mtime = max(mtime, st.st_mtime_ns)
  return size, mtime


def cache_path(
  source: str | os.PathLike, kind: str, options: dict[str, Any], cache_dir: str | None = None
) -> str:
  """Where the table of (source, options) is cached: <cache_dir>/tables/<name>-<key>.npz."""
  path = os.path.abspath(os.fspath(source))
  size, mtime = _stat(path)
  key = json.dumps(
    {
      "v": _READER_VERSION,
      "path": path,
      "size": size,
      "mtime_ns": mtime,
      "kind": kind,
      "options": options,
    },
    sort_keys=True,
    default=str,
  )
  digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
  folder = os.path.join(cache_dir or fileio.cache_dir(), "tables")
  stem = os.path.basename(path.rstrip(os.sep)).split(".")[0] or "source"
  return os.path.join(folder, f"{stem}-{digest}.npz")


def _read(kind: str, path: str, options: dict[str, Any], progress) -> BenchmarkTable:
  if kind == "tfrecord":
    return tfrecord.read_nb101_tfrecord(path, progress=progress, **options)
  if kind == "pth":
    return nb201_pickle.read_nb201_pth(path, progress=progress, **options)
  if kind == "pbz2":
    return nb201_pickle.read_nats_pbz2(path, progress=progress, **options)
  if kind == "nats-dir":
    return nb201_pickle.read_nats_archive(path, progress=progress, **options)
  if kind == "csv-nb201":
    return csv_data.read_nb201_csv(path, **options)
  if kind == "csv-nb101":
    return csv_data.read_nb101_csv(path, **options)
  raise AssertionError(kind)


def load_table(
  source: str | os.PathLike,
  space: str | None = None,
  dataset: str | None = None,
  epochs: int | None = None,
  cache: bool | str = True,
  progress: Callable[[int, int, int], None] | None = None,
  **options: Any,
) -> BenchmarkTable:
  """Loads any benchmark source as a BenchmarkTable, through the `.npz` cache.

  Args:
    source: a .tfrecord, .pth, .pickle.pbz2, shared .csv, table .npz, or a
      NATS-Bench fast-mode folder.
    space: optional check, 'nb101' or 'nb201'.
    dataset: NB201: 'cifar10' | 'cifar100' | 'imagenet16' (paper protocol, see
      the module doc); NB101: None or 'cifar10'.
    epochs: the reward's training budget (NB101 default 108; NB201 default 12).
    cache: True for `fileio.cache_dir()`, a folder path, or False for no cache.
    progress: optional `progress(records, bytes_read, total_bytes)` while reading.
    **options: passed to the reader (e.g. allow_subset=True to accept fewer
      cells than the space has, verify_hash=False, test_epochs=12,
      cost='simulated', report='test_12ep').

  Returns:
    The table (from the cache when source, size, mtime and options match).

  Raises:
    ValueError: from the reader, naming the file (bad values, a cell twice, a
      cell with fewer runs, fewer cells than the space without
      allow_subset=True: see `table.build_table`); or if `space` does not match.
  """
  path = os.fspath(source)
  kind = source_kind(path)
  if kind == "npz":
    table = BenchmarkTable.load(path)
  else:
    if space is not None and _space_of(kind) != space:
      raise ValueError(f"{path}: a {_space_of(kind)} source, but space={space!r}")
    opts = _options(kind, dataset, epochs, options)
    target = (
      cache_path(path, kind, opts, cache if isinstance(cache, str) else None) if cache else None
    )
    table = None
    if target is not None and os.path.exists(target):
      try:
        table = BenchmarkTable.load(target)
      except ValueError:
        table = None  # unreadable or outdated cache: rebuild it
      if table is not None and "subset" in table.meta:
        sub = table.meta["subset"]
        _LOG.warning(
          "%s: a subset of %s: %d of its %d cells (allow_subset=True; cached)",
          path,
          table.space,
          sub["cells"],
          sub["of"],
        )
    if table is None:
      table = _read(kind, path, opts, progress)
      if target is not None:
        table.save(target)
  if space is not None and table.space != space:
    raise ValueError(f"{path}: a {table.space} table, but space={space!r}")
  return table


def prepare(
  source: str | os.PathLike,
  dataset: str | None = None,
  epochs: int | None = None,
  out: str | os.PathLike | None = None,
  cache_dir: str | None = None,
  refresh: bool = False,
  log: Callable[[str], None] = print,
  **options: Any,
) -> BenchmarkTable:
  """Reads a source into the cache (logging progress), optionally also saving it to `out`.

  Args:
    source, dataset, epochs, **options: as `load_table`.
    out: optional extra `.npz` destination (atomic write).
    cache_dir: the cache folder (default `fileio.cache_dir()`).
    refresh: ignore an existing cache entry and re-read the source.
    log: where progress lines go.

  Returns:
    The table.
  """
  path = os.fspath(source)
  kind = source_kind(path)
  if kind != "npz":
    target = cache_path(path, kind, _options(kind, dataset, epochs, options), cache_dir)
    if refresh and os.path.exists(target):
      os.remove(target)
    log(
      f"reading {path} ({kind}); cache {target}" + (" (exists)" if os.path.exists(target) else "")
    )
  table = load_table(
    path,
    dataset=dataset,
    epochs=epochs,
    cache=cache_dir or True,
    progress=ProgressLogger(log),
    **options,
  )
  if out is not None:
    table.save(out)
    log(f"wrote {os.fspath(out)}")
  return table


def summarize(table: BenchmarkTable) -> str:
  """A few lines describing a table: size, accuracy and cost ranges, provenance."""

  def rng(x: np.ndarray, scale: float = 1.0, fmt: str = "{:.4f}") -> str:
    x = np.asarray(x, np.float64)
    ok = np.isfinite(x)
    if not ok.any():
      return "n/a"
    return (
      f"[{fmt.format(x[ok].min() * scale)}, {fmt.format(x[ok].max() * scale)}] mean {fmt.format(x[ok].mean() * scale)}"
      + (f" ({int((~ok).sum())} NaN)" if (~ok).any() else "")
    )

  m = table.meta
  lines = [
    f"{table.space}: {len(table)} cells, adjacency {tuple(table.adjacency.shape[1:])}, ops {tuple(table.ops.shape[1:])}",
    f"  valid_acc {rng(table.valid_acc)}  ({m.get('reward', '?')})",
    f"  test_acc  {rng(table.test_acc)}  ({m.get('test', '?')})",
    f"  cost (s)  {rng(table.cost, fmt='{:.1f}')}  ({m.get('cost', '?')})",
    f"  source {m.get('source', '?')} [{m.get('format', '?')}]",
  ]
  if "subset" in m:
    sub = m["subset"]
    lines.insert(1, f"  a subset: {sub['cells']} of the {sub['of']} {table.space} cells")
  return "\n".join(lines)


class ProgressLogger:
  """A `progress(records, bytes_read, total_bytes)` callback that logs rates every `every` seconds."""

  def __init__(self, log: Callable[[str], None], every: float = 2.0):
    self._log, self._every = log, every
    self._start = self._last = time.perf_counter()

  def __call__(self, records: int, bytes_read: int, total: int) -> None:
    now = time.perf_counter()
    if now - self._last < self._every and bytes_read < total:
      return
    self._last = now
    dt = max(now - self._start, 1e-9)
    pct = 100.0 * bytes_read / total if total else 0.0
    rec = f"{records} records ({records / dt:,.0f} rec/s), " if records else ""
    self._log(
      f"{rec}{bytes_read / 1e6:,.1f} / {total / 1e6:,.1f} MB ({pct:.0f}%, {bytes_read / 1e6 / dt:.1f} MB/s)"
    )
