"""NAS-Bench-201 `.pth` and NATS-Bench `.pickle.pbz2` readers without PyTorch.

`NAS-Bench-201-v1_0-e61699.pth` (2020-02) and `NAS-Bench-201-v1_1-096897.pth`
(2020-03) predate torch 1.6, so they are in torch's legacy serialization format:
five pickles in a row (magic number 0x1950a86a20f9469cfc6c, protocol version
1001, sys info, the object, the sorted storage keys) followed by the raw tensor
storages. torch >= 1.6 writes a zip archive instead (`<name>/data.pkl` plus one
`<name>/data/<key>` entry per storage). Both are detected from the content and
read here with a restricted unpickler that maps torch's globals to lightweight
placeholders (`TensorRef`, `StorageRef`) and never reads a storage's bytes;
anything else that is not a plain container becomes an inert `OpaqueObject`, so
no code from the file is ever run.

The object is a dict of plain Python values:

  {'meta_archs': [15,625 arch strings],
   'arch2infos': {index: {'less': ArchResults (12 epochs), 'full': (200 epochs)}},
   'evaluated_indexes': [...]}

where an ArchResults state dict holds `dataset_seed` {dataset: [seeds]} and
`all_results` {(dataset, seed): run}; a run holds `eval_acc1es`
{'<split>@<epoch>': accuracy in percent}, `train_times` {epoch: seconds},
`eval_times`, `epochs`, ... The NATS-Bench topology release
(`NATS-tss-v1_0-3ffb9.pickle.pbz2`, bz2-compressed pickle) has the same content
with hyper-parameter keys '12' and '200' instead of 'less' and 'full'; its
fast-mode folder holds `meta.pickle.pbz2` and one `{index:06d}.pickle.pbz2`
({'12': ..., '200': ...}) per cell.

Numbers follow the official APIs (nas_201_api / nats_bench `ArchResults`):
accuracies are the mean over the seeds of the run's final-epoch accuracy
(`get_metrics(..., is_random=False)`), converted from percent to a fraction; the
cost is the mean over seeds of the summed per-epoch training times
(`get_compute_costs()['T-train@total']`), or with `cost='simulated'` that plus
the mean validation time of one epoch (`simulate_train_eval`'s
train-all-time + valid-per-time).
"""

from __future__ import annotations

import bz2
import collections
import dataclasses
import io
import os
import pickle
import zipfile
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from arch2vec_jax.benchmarks.table import BenchmarkTable, Column, build_table
from arch2vec_jax.spaces import nb201

__all__ = [
  "DATASETS",
  "TEST_SPLITS",
  "VALID_SPLITS",
  "DecompressionLimitError",
  "OpaqueObject",
  "StorageRef",
  "TensorRef",
  "canonical_dataset",
  "load_pbz2",
  "load_torch_file",
  "pbz2_limit",
  "read_nats_archive",
  "read_nats_pbz2",
  "read_nb201_pth",
  "table_from_nb201",
]

DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
# Default split per dataset for the reward and for the reported test accuracy
# (nas_201_api get_more_info: cifar10-valid x-valid / ori-test; cifar10 has only
# ori-test; cifar100 and ImageNet16-120 x-valid / x-test).
VALID_SPLITS = {
  "cifar10-valid": "x-valid",
  "cifar10": "ori-test",
  "cifar100": "x-valid",
  "ImageNet16-120": "x-valid",
}
TEST_SPLITS = {
  "cifar10-valid": "ori-test",
  "cifar10": "ori-test",
  "cifar100": "x-test",
  "ImageNet16-120": "x-test",
}
_ALIASES = {
  "imagenet16": "ImageNet16-120",
  "imagenet16-120": "ImageNet16-120",
  "imagenet": "ImageNet16-120",
}
_HP_KEYS = {12: ("12", "less"), 200: ("200", "full")}

_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_TORCH_PROTOCOL = 1001


def canonical_dataset(name: str) -> str:
  """NB201 dataset name: one of `DATASETS` ('imagenet16' -> 'ImageNet16-120')."""
  name = _ALIASES.get(str(name).lower(), name)
  if name not in DATASETS:
    raise ValueError(
      f"unknown NAS-Bench-201 dataset {name!r}; expected one of {DATASETS} (or 'imagenet16')"
    )
  return name


# ----------------------------------------------------------------------------
# Restricted unpickling of torch files
# ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StorageRef:
  """A tensor storage named by a torch file (its bytes are never read).

  Attributes:
    key: the storage key (legacy: a number string; zip: 'data/<key>' entry).
    storage_type: e.g. 'FloatStorage'.
    location: e.g. 'cpu', 'cuda:0'.
    numel: number of elements.
  """

  key: str
  storage_type: str
  location: str
  numel: int


@dataclasses.dataclass(frozen=True)
class TensorRef:
  """A tensor of a torch file: a view of a `StorageRef` (no data).

  Attributes:
    storage: the StorageRef (or None if the file did not give one).
    offset: storage offset in elements.
    shape: tuple of sizes.
    stride: tuple of strides.
    requires_grad: as saved.
  """

  storage: StorageRef | None
  offset: int
  shape: tuple[int, ...]
  stride: tuple[int, ...]
  requires_grad: bool = False


class OpaqueObject:
  """An inert stand-in for an object of a class that is not unpickled for real."""

  def __init__(self, *args, **kwargs):
    self.args, self.kwargs, self.state = args, kwargs, None

  def __setstate__(self, state):
    self.state = state

  def __repr__(self):
    return f"<opaque {type(self).__module__}.{type(self).__qualname__}>"


def _opaque_class(module: str, name: str) -> type:
  return type(name, (OpaqueObject,), {"__module__": module, "__qualname__": name})


@dataclasses.dataclass(frozen=True)
class _StorageType:
  name: str

  def __call__(self, *args, **kwargs):
    return OpaqueObject(self.name, *args)


def _rebuild_tensor(storage, storage_offset, size, stride, *rest, **kwargs) -> TensorRef:
  requires_grad = bool(rest[0]) if rest and isinstance(rest[0], bool) else False
  return TensorRef(
    storage if isinstance(storage, StorageRef) else None,
    int(storage_offset),
    tuple(size),
    tuple(stride) if stride is not None else (),
    requires_grad,
  )


def _rebuild_parameter(data, requires_grad=False, *rest, **kwargs):
  if isinstance(data, TensorRef):
    return dataclasses.replace(data, requires_grad=bool(requires_grad))
  return data


def _rebuild_other(*args, **kwargs) -> OpaqueObject:
  return OpaqueObject(*args)


_SAFE_BUILTINS = {
  "list": list,
  "dict": dict,
  "set": set,
  "frozenset": frozenset,
  "tuple": tuple,
  "int": int,
  "float": float,
  "complex": complex,
  "str": str,
  "bytes": bytes,
  "bytearray": bytearray,
  "bool": bool,
  "slice": slice,
  "range": range,
  "object": object,
}


def _numpy_global(name: str):
  import numpy  # the real numpy reconstructors: they build arrays/scalars, nothing else

  core = getattr(numpy, "_core", None) or numpy.core
  table = {
    "scalar": core.multiarray.scalar,
    "_reconstruct": core.multiarray._reconstruct,
    "dtype": numpy.dtype,
    "ndarray": numpy.ndarray,
    "_frombuffer": getattr(core.numeric, "_frombuffer", None),
  }
  return table.get(name)


class _TorchUnpickler(pickle.Unpickler):
  """Unpickles torch files into placeholders; refuses to import or run anything."""

  def find_class(self, module: str, name: str):
    if module == "torch._utils":
      if name.startswith("_rebuild_parameter"):
        return _rebuild_parameter
      if name.startswith("_rebuild_tensor"):
        return _rebuild_tensor
      return _rebuild_other
    if module == "torch" or module.startswith("torch."):
      if name.endswith("Storage"):
        return _StorageType(name)
      if name == "Size":
        return tuple
      return _opaque_class(module, name)
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
      return _SAFE_BUILTINS[name]
    if module in (
      "numpy",
      "numpy.core.multiarray",
      "numpy._core.multiarray",
      "numpy.core.numeric",
      "numpy._core.numeric",
    ):
      fn = _numpy_global(name)
      if fn is not None:
        return fn
    if module == "_codecs" and name == "encode":  # protocol-2 pickles of bytes from Python 3
      return _latin1_encode
    return _opaque_class(module, name)

  def persistent_load(self, pid):
    if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
      storage_type = pid[1].name if isinstance(pid[1], _StorageType) else str(pid[1])
      return StorageRef(str(pid[2]), storage_type, str(pid[3]), int(pid[4]))
    if isinstance(pid, tuple) and pid and pid[0] == "module":
      return OpaqueObject(*pid[1:])
    raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
  if encoding not in ("latin1", "latin-1", "utf-8", "utf8"):
    raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
  return text.encode(encoding)


class _CountingRaw(io.RawIOBase):
  """A raw file that reports how many bytes were read."""

  def __init__(self, path: str, progress: Callable[[int, int, int], None] | None):
    self._f = io.FileIO(path, "rb")
    self._total = os.fstat(self._f.fileno()).st_size
    self._progress = progress
    self._read = 0
    self._next = 0

  def readable(self) -> bool:
    return True

  def seekable(self) -> bool:
    return True

  def seek(self, offset: int, whence: int = 0) -> int:
    return self._f.seek(offset, whence)

  def tell(self) -> int:
    return self._f.tell()

  def readinto(self, b) -> int:
    n = self._f.readinto(b)
    self._read += n or 0
    if self._progress is not None and self._read >= self._next:
      self._next = self._read + (32 << 20)
      self._progress(0, self._read, self._total)
    return n

  def close(self) -> None:
    self._f.close()
    super().close()


def _open(path: str, progress) -> io.BufferedReader:
  return io.BufferedReader(_CountingRaw(path, progress), buffer_size=1 << 20)


def load_torch_file(
  path: str | os.PathLike, progress: Callable[[int, int, int], None] | None = None
) -> Any:
  """Loads the object of a `torch.save` file without torch (tensors as `TensorRef`).

  Handles the legacy format (torch < 1.6) and the zip format (torch >= 1.6);
  a plain pickle is accepted too.

  Args:
    path: the `.pth` file.
    progress: optional `progress(0, bytes_read, total_bytes)`.

  Raises:
    ValueError: naming the file, if it is not a readable torch file.
  """
  path = os.fspath(path)
  try:
    if zipfile.is_zipfile(path):
      with _open(path, progress) as raw, zipfile.ZipFile(raw) as zf:
        names = [n for n in zf.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if not names:
          raise ValueError(
            "zip archive without <name>/data.pkl (a TorchScript archive or not a torch.save file)"
          )
        with zf.open(names[0]) as f:
          return _TorchUnpickler(f).load()
    with _open(path, progress) as f:
      head = f.peek(262)[:262]
      if len(head) >= 262 and head[257:262] == b"ustar":
        raise ValueError("tar-format torch file (torch < 0.4) is not supported")
      first = _TorchUnpickler(f).load()
      if not (isinstance(first, int) and first == _TORCH_MAGIC):
        return first  # a plain pickle
      version = _TorchUnpickler(f).load()
      if version != _TORCH_PROTOCOL:
        raise ValueError(f"torch legacy protocol version {version!r}, expected {_TORCH_PROTOCOL}")
      sys_info = _TorchUnpickler(f).load()
      if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
        raise ValueError(f"unsupported torch sys info {sys_info!r}")
      return _TorchUnpickler(f).load()
  except ValueError as e:
    if str(e).startswith(path):
      raise
    raise ValueError(f"{path}: {e}") from None
  except (
    pickle.UnpicklingError,
    EOFError,
    zipfile.BadZipFile,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    TypeError,
    UnicodeDecodeError,
    MemoryError,
    OverflowError,
  ) as e:
    raise ValueError(f"{path}: not a readable torch file ({type(e).__name__}: {e})") from None


# Decompression cap of a .pickle.pbz2: a pickle of benchmark numbers (floats, dicts of
# 'split@epoch' keys) expands a few to a few tens of times under bz2; a bz2 bomb expands
# by 10^5 or more (200 MB of zeros are 177 bytes). The cap allows `_PBZ2_MAX_RATIO` times
# the file, and at least `_PBZ2_MIN_CAP` bytes (one NATS-Bench cell file is about 1 MB).
_PBZ2_MAX_RATIO = 100
_PBZ2_MIN_CAP = 64 << 20
_PBZ2_STEP = 1 << 20


def pbz2_limit(compressed_size: int) -> int:
  """The most bytes a `.pickle.pbz2` of `compressed_size` bytes may decompress to."""
  return max(_PBZ2_MIN_CAP, _PBZ2_MAX_RATIO * int(compressed_size))


class DecompressionLimitError(ValueError):
  """A compressed file expanded past its cap (a decompression bomb or a corrupt file)."""


class _CappedReader(io.RawIOBase):
  """The decompressed bytes of a BZ2File, at most `limit` of them, read 1 MB at a time."""

  def __init__(self, f: bz2.BZ2File, limit: int, path: str, compressed: int):
    self._f, self._limit, self._path, self._compressed = f, limit, path, compressed
    self.total = 0

  def readable(self) -> bool:
    return True

  def readinto(self, b) -> int:
    view = memoryview(b).cast("B")
    n = self._f.readinto(view[: min(len(view), _PBZ2_STEP, self._limit + 1 - self.total)])
    self.total += n
    if self.total > self._limit:
      raise DecompressionLimitError(
        f"{self._path}: decompressed data passed the cap of {self._limit:,} bytes (the file has "
        f"{self._compressed:,} bytes; a NATS-Bench pickle expands far less than {_PBZ2_MAX_RATIO}x): "
        "a bz2 bomb or a corrupt file (load_pbz2(..., max_bytes=N) sets another cap)"
      )
    return n


def load_pbz2(
  path: str | os.PathLike,
  progress: Callable[[int, int, int], None] | None = None,
  max_bytes: int | None = None,
) -> Any:
  """Loads a NATS-Bench `.pickle.pbz2` (bz2-compressed pickle) with the restricted unpickler.

  Decompression streams 1 MB at a time and stops past `max_bytes` (default
  `pbz2_limit(file size)`), so a bz2 bomb fails early with bounded memory.

  Args:
    path: the `.pickle.pbz2` file.
    progress: optional `progress(0, bytes_read, total_bytes)` (compressed bytes).
    max_bytes: the decompression cap in bytes.

  Raises:
    ValueError: naming the file, if it is not a bz2-compressed pickle, or
      (`DecompressionLimitError`) if it decompresses to more than the cap.
  """
  path = os.fspath(path)
  size = os.path.getsize(path)
  limit = pbz2_limit(size) if max_bytes is None else int(max_bytes)
  try:
    with (
      _open(path, progress) as raw,
      bz2.BZ2File(raw) as f,
      io.BufferedReader(_CappedReader(f, limit, path, size), buffer_size=1 << 16) as capped,
    ):
      return _TorchUnpickler(capped).load()
  except DecompressionLimitError:
    raise
  except (
    pickle.UnpicklingError,
    EOFError,
    OSError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
    UnicodeDecodeError,
    MemoryError,
    OverflowError,
  ) as e:
    raise ValueError(f"{path}: not a readable .pickle.pbz2 ({type(e).__name__}: {e})") from None


# ----------------------------------------------------------------------------
# Benchmark content -> table
# ----------------------------------------------------------------------------


class _Missing(ValueError):
  pass


def _get(obj: Any, key: Any, where: str) -> Any:
  """obj[key], or a ValueError naming the path of the missing key/index."""
  try:
    return obj[key]
  except (KeyError, IndexError, TypeError):
    have = ""
    if isinstance(obj, dict):
      keys = list(obj)[:8]
      have = f" (has {keys}{' ...' if len(obj) > 8 else ''})"
    elif not isinstance(obj, (list, tuple)):
      have = f" (a {type(obj).__name__}, not a dict)"
    raise _Missing(f"missing {where}[{key!r}]{have}") from None


def _hp_key(hp2results: Any, epochs: int, where: str) -> str:
  if not isinstance(hp2results, dict):
    raise _Missing(f"{where} is a {type(hp2results).__name__}, not a dict of schedules")
  for key in _HP_KEYS.get(int(epochs), (str(epochs),)):
    if key in hp2results:
      return key
  raise _Missing(
    f"missing {where}[{_HP_KEYS.get(int(epochs), (str(epochs),))[0]!r}] (the {epochs}-epoch schedule; "
    f"has {sorted(map(str, hp2results))})"
  )


def _runs(results: Any, dataset: str, where: str) -> list[tuple[str, dict]]:
  """[(path of the run, run)] for every seed of `dataset`."""
  seeds = _get(_get(results, "dataset_seed", where), dataset, f"{where}['dataset_seed']")
  all_results = _get(results, "all_results", where)
  if not isinstance(seeds, (list, tuple)) or not seeds:
    raise _Missing(f"{where}['dataset_seed'][{dataset!r}] is not a non-empty list of seeds")
  out = []
  for s in seeds:
    run = _get(all_results, (dataset, s), f"{where}['all_results']")
    if not isinstance(run, dict):
      raise _Missing(
        f"{where}['all_results'][{(dataset, s)!r}] is a {type(run).__name__}, not a dict"
      )
    out.append((f"{where}['all_results'][{(dataset, s)!r}]", run))
  return out


def _accuracies(runs: list[tuple[str, dict]], split: str, epochs: int) -> list[tuple[float, str]]:
  """(final-epoch accuracy of `split` in percent, its key path) per seed."""
  values = []
  for where, run in runs:
    key = f"{split}@{int(run.get('epochs', epochs)) - 1}"
    v = _get(_get(run, "eval_acc1es", where), key, f"{where}['eval_acc1es']")
    if not isinstance(v, (int, float, np.number)) or isinstance(v, bool):
      raise _Missing(f"{where}['eval_acc1es'][{key!r}] is a {type(v).__name__}, not a number")
    values.append((float(v), f"{where}['eval_acc1es'][{key!r}]"))
  return values


def _costs(
  runs: list[tuple[str, dict]], split: str, epochs: int, mode: str
) -> list[tuple[float, str]]:
  """(summed training time, its key path) per seed; [] if a seed has no times (cost unknown)."""
  totals = []
  for where, run in runs:
    times = run.get("train_times")
    if not isinstance(times, dict) or not times:
      return []
    try:
      total = float(sum(times.values()))
    except TypeError:
      raise _Missing(f"{where}['train_times'] holds a value that is not a number") from None
    if mode == "simulated":
      ep = int(run.get("epochs", epochs))
      ev = run.get("eval_times") or {}
      try:
        total += sum(float(ev[f"{split}@{i}"]) for i in range(ep)) / ep
      except KeyError:
        return []
      totals.append((total, f"sum of {where}['train_times'] + one epoch of ['eval_times']"))
    else:
      totals.append((total, f"sum of {where}['train_times']"))
  return totals


def _column(entries: list[tuple[int, float, str]], name: str) -> Column:
  """A table Column from (row, value, key path) per run."""
  paths = [e[2] for e in entries]
  values = np.fromiter((e[1] for e in entries), np.float64, len(entries))
  cells = np.fromiter((e[0] for e in entries), np.int64, len(entries))
  return Column(values, cells, name, paths.__getitem__)


def table_from_nb201(
  obj: Any,
  source: str,
  dataset: str = "cifar10-valid",
  epochs: int = 12,
  valid_split: str | None = None,
  test_dataset: str | None = None,
  test_epochs: int | None = None,
  test_split: str | None = None,
  cost: str = "train",
  check_order: bool = True,
  load_index: Callable[[int], Any] | None = None,
  indexes: Iterable[int] | None = None,
  fmt: str = "nb201",
  index_names: list[str] | None = None,
  allow_subset: bool = False,
) -> BenchmarkTable:
  """Builds a BenchmarkTable from the loaded NAS-Bench-201 / NATS-Bench content.

  Args:
    obj: the top-level dict ({'meta_archs', 'arch2infos', 'evaluated_indexes'}),
      or for a fast-mode folder the meta dict with `load_index` set.
    source: the file name used in messages and meta.
    dataset: reward dataset, one of `DATASETS`.
    epochs: reward schedule, 12 or 200.
    valid_split: reward split (default `VALID_SPLITS[dataset]`).
    test_dataset, test_epochs, test_split: the reported test accuracy (defaults:
      dataset, epochs, `TEST_SPLITS[test_dataset]`).
    cost: 'train' (mean summed training time) or 'simulated' (plus one epoch of
      validation time); for the reward dataset and schedule.
    check_order: check meta_archs[i] is the cell `nb201.index_of` puts at i.
    load_index: for fast-mode folders, index -> {'12': ..., '200': ...}.
    indexes: the cells to read (default: evaluated_indexes), in any order.
    fmt: a format tag for meta.
    index_names: where each entry of `indexes` comes from, for messages
      (default "['evaluated_indexes'][i]").
    allow_subset: accept fewer than the 15,625 cells (the count is logged).

  Returns:
    BenchmarkTable(space='nb201'), rows in increasing benchmark index;
    meta['num_runs'] the seeds per cell of the reward (an int, or {'min', 'max'}:
    NAS-Bench-201 has 2 seeds for some cells and 3 for others).

  Raises:
    ValueError: naming the source and the missing key/index path, or a bad cell;
      from `table.build_table` for an accuracy outside [0, 100] percent or a
      training time that is negative or not finite (naming the key path and the
      value), a cell listed twice, or fewer than 15,625 cells without `allow_subset`.
  """
  dataset = canonical_dataset(dataset)
  test_dataset = canonical_dataset(test_dataset or dataset)
  test_epochs = int(test_epochs or epochs)
  valid_split = valid_split or VALID_SPLITS[dataset]
  test_split = test_split or TEST_SPLITS[test_dataset]
  if cost not in ("train", "simulated"):
    raise ValueError(f"cost must be 'train' or 'simulated', got {cost!r}")
  try:
    if not isinstance(obj, dict):
      raise _Missing(f"top level is a {type(obj).__name__}, not a dict")
    meta_archs = _get(obj, "meta_archs", "top level")
    if not isinstance(meta_archs, (list, tuple)):
      raise _Missing(f"'meta_archs' is a {type(meta_archs).__name__}, not a list")
    if load_index is None:
      arch2infos = _get(obj, "arch2infos", "top level")
      if indexes is None:
        indexes = _get(obj, "evaluated_indexes", "top level")
    indexes = [int(i) for i in indexes]
    if index_names is None:
      index_names = [f"['evaluated_indexes'][{p}]" for p in range(len(indexes))]
    order = sorted(range(len(indexes)), key=indexes.__getitem__)
    rows = [indexes[p] for p in order]
    names = [index_names[p] for p in order]
    valid, test, costs, ids = [], [], [], []  # (row, value, key path) per run; arch per row
    for row, idx in enumerate(rows):
      arch = _get(meta_archs, idx, "['meta_archs']")
      if not isinstance(arch, str):
        arch = getattr(arch, "tostr", lambda: None)() if hasattr(arch, "tostr") else None
        if not isinstance(arch, str):
          raise _Missing(f"['meta_archs'][{idx}] is not an arch string")
      if check_order:
        try:
          expected = nb201.index_of(arch)
        except ValueError as e:
          raise _Missing(f"['meta_archs'][{idx}]: {e}") from None
        if expected != idx:
          raise _Missing(
            f"['meta_archs'][{idx}] is {arch!r}, which is cell {expected} of NAS-Bench-201"
          )
      hp2results = (
        load_index(idx) if load_index is not None else _get(arch2infos, idx, "['arch2infos']")
      )
      where = f"['arch2infos'][{idx}]"
      key = _hp_key(hp2results, epochs, where)
      runs = _runs(hp2results[key], dataset, f"{where}[{key!r}]")
      valid += [(row, v, p) for v, p in _accuracies(runs, valid_split, epochs)]
      costs += [(row, v, p) for v, p in _costs(runs, valid_split, epochs, cost)]
      tkey = _hp_key(hp2results, test_epochs, where)
      truns = (
        runs
        if (tkey, test_dataset) == (key, dataset)
        else _runs(hp2results[tkey], test_dataset, f"{where}[{tkey!r}]")
      )
      test += [(row, v, p) for v, p in _accuracies(truns, test_split, test_epochs)]
      ids.append(arch)
  except _Missing as e:
    raise ValueError(f"{source}: {e}") from None
  if not rows:
    raise ValueError(f"{source}: no evaluated cells")
  adjacency, ops = nb201.encode_batch(ids)
  return build_table(
    "nb201",
    source,
    adjacency=adjacency,
    ops=ops,
    ids=ids,
    index=rows,
    valid=_column(valid, "accuracy (percent)"),
    test=_column(test, "accuracy (percent)"),
    cost=_column(costs, "training time (s)"),
    acc_scale=100.0,
    cell_where=lambda k: f"{names[k]} = {rows[k]}",
    allow_subset=allow_subset,
    meta={
      "source": os.path.abspath(source),
      "format": fmt,
      "dataset": dataset,
      "epochs": int(epochs),
      "valid_split": valid_split,
      "test_dataset": test_dataset,
      "test_epochs": test_epochs,
      "test_split": test_split,
      "cost": "mean over seeds of summed train_times (T-train@total)"
      if cost == "train"
      else "mean over seeds of train-all-time + valid-per-time (simulate_train_eval)",
      "reward": f"{dataset} {valid_split} @ {epochs} epochs, mean over seeds, fraction",
      "test": f"{test_dataset} {test_split} @ {test_epochs} epochs, mean over seeds, fraction",
    },
  )


def read_nb201_pth(
  path: str | os.PathLike,
  dataset: str = "cifar10-valid",
  epochs: int = 12,
  progress: Callable[[int, int, int], None] | None = None,
  **kwargs,
) -> BenchmarkTable:
  """Reads a NAS-Bench-201 `.pth` (legacy or zip torch format) into a table.

  Args:
    path: e.g. NAS-Bench-201-v1_0-e61699.pth (needs memory for the whole pickle).
    dataset, epochs, **kwargs: see `table_from_nb201` (v1_0's 12-epoch 'less'
      results exist for cifar10-valid only).
    progress: optional `progress(items, bytes_read, total_bytes)`.

  Returns:
    BenchmarkTable(space='nb201').
  """
  path = os.fspath(path)
  obj = load_torch_file(path, progress)
  return table_from_nb201(obj, path, dataset, epochs, fmt="nb201-pth", **kwargs)


def read_nats_pbz2(
  path: str | os.PathLike,
  dataset: str = "cifar10-valid",
  epochs: int = 12,
  progress: Callable[[int, int, int], None] | None = None,
  **kwargs,
) -> BenchmarkTable:
  """Reads a NATS-Bench topology `.pickle.pbz2` (one file) into a table; see `table_from_nb201`."""
  path = os.fspath(path)
  obj = load_pbz2(path, progress)
  return table_from_nb201(obj, path, dataset, epochs, fmt="nats-tss-pbz2", **kwargs)


def read_nats_archive(
  folder: str | os.PathLike,
  dataset: str = "cifar10-valid",
  epochs: int = 12,
  progress: Callable[[int, int, int], None] | None = None,
  **kwargs,
) -> BenchmarkTable:
  """Reads a NATS-Bench topology fast-mode folder (meta + one file per cell); see `table_from_nb201`.

  Cells are those with a `{index:06d}.pickle.pbz2` (or `{index}.pickle.pbz2`) file.
  """
  folder = os.fspath(folder)
  meta = load_pbz2(os.path.join(folder, "meta.pickle.pbz2"))
  found: dict[int, str] = {}
  indexes, names = [], []  # every cell file (two files of one cell are an error in build_table)
  for name in sorted(os.listdir(folder)):
    stem = name[: -len(".pickle.pbz2")] if name.endswith(".pickle.pbz2") else None
    if stem is not None and stem.isdigit():
      found.setdefault(int(stem), os.path.join(folder, name))
      indexes.append(int(stem))
      names.append(f"file {name}")
  total = len(indexes)

  def load_index(i: int) -> Any:
    if progress is not None:
      progress(load_index.count, load_index.count, total)  # type: ignore[attr-defined]
    load_index.count += 1  # type: ignore[attr-defined]
    return load_pbz2(found[i])

  load_index.count = 0  # type: ignore[attr-defined]
  return table_from_nb201(
    meta,
    folder,
    dataset,
    epochs,
    load_index=load_index,
    indexes=indexes,
    index_names=names,
    fmt="nats-tss-archive",
    **kwargs,
  )
