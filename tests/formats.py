"""Test-only writers of the original benchmark file formats (no TensorFlow, no PyTorch).

Each writer reproduces the on-disk format byte for byte as the original tools
write it, independently of the library's readers (its own bitwise CRC32C, its
own protobuf encoder, its own pickler), so that reading the files back tests
the readers against the formats rather than against themselves:

- `write_tfrecord` / `write_nb101_tfrecord`: TFRecord framing with masked
  CRC32Cs, NAS-Bench-101 JSON records with base64 `ModelMetrics` protobufs
  (proto2 serialisation: every set field, in field-number order).
- `write_torch_legacy` / `write_torch_zip`: `torch.save` output in the legacy
  format (magic number, protocol version, sys info, the object pickle with
  persistent storage ids, the sorted storage keys, raw storages) and in the zip
  format (`archive/data.pkl`, `archive/data/<key>`, `archive/version`, ...),
  pickle protocol 2, tensors pickled as `torch._utils._rebuild_tensor_v2`.
- `write_nats_pbz2` / `write_nats_archive`: NATS-Bench topology `.pickle.pbz2`
  (bz2-compressed pickle protocol 4) as one file or a fast-mode folder.
- `nb201_results`: NAS-Bench-201 `ArchResults.state_dict()` content.

Bad inputs for the readers' checks: `write_nb101_tfrecord(..., edit=...)`
changes or drops single runs; `set_nb201_run` puts impossible numbers into one
NB201 run; `write_bz2_bomb` writes a tiny `.pickle.pbz2` that expands to
gigabytes; `write_csv_lines` rewrites, duplicates or drops CSV lines.
"""

from __future__ import annotations

import base64
import bz2
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

__all__ = [
  "FakeStorage",
  "FakeTensor",
  "crc32c_reference",
  "encode_model_metrics",
  "masked_crc32c_reference",
  "nb101_record",
  "nb201_results",
  "nb201_run",
  "set_nb201_run",
  "tfrecord_frame",
  "write_bz2_bomb",
  "write_csv_lines",
  "write_nats_archive",
  "write_nats_pbz2",
  "write_nb101_tfrecord",
  "write_tfrecord",
  "write_torch_legacy",
  "write_torch_zip",
]

# ----------------------------------------------------------------------------
# TFRecord + NB101
# ----------------------------------------------------------------------------


def crc32c_reference(data: bytes) -> int:
  """Bit-by-bit CRC32C (Castagnoli), the slow textbook definition."""
  crc = 0xFFFFFFFF
  for b in data:
    crc ^= b
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
  return crc ^ 0xFFFFFFFF


def masked_crc32c_reference(data: bytes) -> int:
  c = crc32c_reference(data)
  return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data: bytes) -> bytes:
  """One TFRecord frame: length, masked CRC of length, data, masked CRC of data."""
  length = struct.pack("<Q", len(data))
  return (
    length
    + struct.pack("<I", masked_crc32c_reference(length))
    + data
    + struct.pack("<I", masked_crc32c_reference(data))
  )


def write_tfrecord(path: str | os.PathLike, payloads: Iterable[bytes]) -> list[int]:
  """Writes frames; returns the byte offset of each record."""
  offsets = []
  with open(path, "wb") as f:
    for data in payloads:
      offsets.append(f.tell())
      f.write(tfrecord_frame(data))
  return offsets


def _varint(v: int) -> bytes:
  v &= (1 << 64) - 1
  out = bytearray()
  while True:
    b = v & 0x7F
    v >>= 7
    if v:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _double(field: int, v: float) -> bytes:
  return _varint(field << 3 | 1) + struct.pack("<d", v)


def encode_model_metrics(
  evaluation_data: Sequence[dict[str, Any]], trainable_parameters: int, total_time: float
) -> bytes:
  """Serialises a nasbench `ModelMetrics` (proto2) the way protobuf does."""
  out = bytearray()
  for e in evaluation_data:
    sub = bytearray()
    for field, name in enumerate(
      ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"),
      1,
    ):
      if name in e:
        sub += _double(field, float(e[name]))
    if "checkpoint_path" in e:
      raw = e["checkpoint_path"].encode("utf-8")
      sub += _varint(6 << 3 | 2) + _varint(len(raw)) + raw
    out += _varint(1 << 3 | 2) + _varint(len(sub)) + sub
  out += _varint(2 << 3 | 0) + _varint(int(trainable_parameters))
  out += _double(3, float(total_time))
  return bytes(out)


def nb101_record(
  module_hash: str, epochs: int, matrix: np.ndarray, ops: Sequence[str], metrics: bytes
) -> bytes:
  """The JSON payload of one NAS-Bench-101 record."""
  raw_adjacency = "".join(str(int(x)) for x in np.asarray(matrix).reshape(-1))
  row = [
    module_hash,
    int(epochs),
    raw_adjacency,
    ",".join(ops),
    base64.b64encode(metrics).decode("ascii"),
  ]
  return json.dumps(row).encode("utf-8")


def nb101_run_metrics(
  epochs: int, valid: float, test: float, train_time: float, params: int, seed: int = 0
) -> bytes:
  """A realistic ModelMetrics: evaluations at epoch 0, epochs/2 and epochs (final)."""
  rng = np.random.default_rng(seed)
  evals = [
    {
      "current_epoch": 0.0,
      "training_time": 0.0,
      "train_accuracy": 0.1,
      "validation_accuracy": 0.1,
      "test_accuracy": 0.1,
    },
    {
      "current_epoch": epochs / 2,
      "training_time": train_time / 2,
      "train_accuracy": float(rng.uniform(0.5, 0.9)),
      "validation_accuracy": valid * 0.9,
      "test_accuracy": test * 0.9,
    },
    {
      "current_epoch": float(epochs),
      "training_time": train_time,
      "train_accuracy": 1.0,
      "validation_accuracy": valid,
      "test_accuracy": test,
    },
  ]
  return encode_model_metrics(evals, params, train_time * 1.1)


def write_nb101_tfrecord(
  path: str | os.PathLike,
  cells: Sequence[dict[str, Any]],
  epochs: Sequence[int] = (108,),
  runs: int = 3,
  edit: Callable[[int, int, int, dict[str, float]], dict[str, float] | None] | None = None,
) -> tuple[list[int], dict[str, dict[str, float]]]:
  """Writes a small NAS-Bench-101 file; each cell gets `runs` records per budget.

  Args:
    cells: dicts with 'hash', 'matrix' [V, V], 'ops' (V names), 'valid',
      'time', 'params' (as in the shared CSV); run k gets valid + (k-1)*0.002,
      test = valid - 0.01 + (k-1)*0.001, time * (1 + (k-1)*0.01) so the run
      means are valid, valid - 0.01 and time.
    epochs: budgets, each written for every cell (records interleaved as in the
      full file: budget-major, cells, runs).
    runs: runs per cell and budget.
    edit: optional `edit(cell, run, epochs, {'valid', 'test', 'time'})` -> the
      run's numbers to write, or None to leave the run out (bad-input tests).

  Returns:
    (record offsets, {hash: expected means at epochs[-1]... per budget}); the
    means ignore `edit`.
  """
  payloads = []
  expected: dict[str, dict[str, float]] = {}
  for ep in epochs:
    scale = ep / max(epochs)
    for c, cell in enumerate(cells):
      for k in range(runs):
        d = k - (runs - 1) / 2
        values = {
          "valid": cell["valid"] * scale + d * 0.002,
          "test": cell["valid"] * scale - 0.01 + d * 0.001,
          "time": cell["time"] * scale * (1 + d * 0.01),
        }
        if edit is not None:
          values = edit(c, k, ep, dict(values))
          if values is None:
            continue
        metrics = nb101_run_metrics(
          ep, values["valid"], values["test"], values["time"], cell["params"], seed=k
        )
        payloads.append(nb101_record(cell["hash"], ep, cell["matrix"], cell["ops"], metrics))
      expected.setdefault(cell["hash"], {})[f"valid@{ep}"] = cell["valid"] * scale
      expected[cell["hash"]][f"test@{ep}"] = cell["valid"] * scale - 0.01
      expected[cell["hash"]][f"time@{ep}"] = cell["time"] * scale
  return write_tfrecord(path, payloads), expected


# ----------------------------------------------------------------------------
# torch.save formats
# ----------------------------------------------------------------------------

_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_PROTOCOL_VERSION = 1001
_ELEMENT = {
  "FloatStorage": ("<f4", 4),
  "DoubleStorage": ("<f8", 8),
  "LongStorage": ("<i8", 8),
  "IntStorage": ("<i4", 4),
  "HalfStorage": ("<f2", 2),
  "ByteStorage": ("u1", 1),
  "BoolStorage": ("?", 1),
}


class _Global:
  """A reference to a global (module.name) that need not be importable here."""

  _cache: ClassVar[dict[tuple[str, str], _Global]] = {}

  def __new__(cls, module: str, name: str):
    key = (module, name)
    if key not in cls._cache:
      obj = super().__new__(cls)
      obj.module, obj.name = module, name
      cls._cache[key] = obj
    return cls._cache[key]

  def __call__(self, *args):  # pickle wants reduce functions callable; never called here
    raise TypeError(f"{self.module}.{self.name} is a stand-in")


class FakeStorage:
  """A typed storage: torch.<type_name> with its values."""

  def __init__(self, values: np.ndarray, type_name: str = "FloatStorage", key: str | None = None):
    dtype, _ = _ELEMENT[type_name]
    self.values = np.asarray(values, dtype=dtype).reshape(-1)
    self.type_name = type_name
    self.key = key

  @property
  def numel(self) -> int:
    return int(self.values.size)


class FakeTensor:
  """A tensor as torch pickles it: a view (offset, size, stride) of a storage."""

  def __init__(
    self,
    storage: FakeStorage,
    size: Sequence[int],
    offset: int = 0,
    stride: Sequence[int] | None = None,
    requires_grad: bool = False,
  ):
    self.storage, self.size, self.offset = storage, tuple(int(s) for s in size), int(offset)
    if stride is None:
      stride, acc = [], 1
      for s in reversed(self.size):
        stride.insert(0, acc)
        acc *= s
    self.stride = tuple(int(s) for s in stride)
    self.requires_grad = requires_grad

  @classmethod
  def of(cls, array: np.ndarray, type_name: str = "FloatStorage") -> FakeTensor:
    a = np.asarray(array)
    return cls(FakeStorage(a, type_name), a.shape)

  def __reduce_ex__(self, protocol):
    # torch.Tensor._reduce_ex_internal for a CPU tensor.
    args = (
      self.storage,
      self.offset,
      self.size,
      self.stride,
      self.requires_grad,
      collections.OrderedDict(),
    )
    return (_Global("torch._utils", "_rebuild_tensor_v2"), args)


class _TorchPickler(pickle._Pickler):  # pure-Python pickler: globals written by name
  dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

  def __init__(self, file, storages: dict[str, FakeStorage], legacy: bool):
    super().__init__(file, protocol=2)
    self._storages = storages
    self._legacy = legacy
    self._ids: dict[int, str] = {}

  def save_torch_global(self, obj: _Global):
    self.write(
      pickle.GLOBAL + obj.module.encode("utf-8") + b"\n" + obj.name.encode("utf-8") + b"\n"
    )
    self.memoize(obj)

  dispatch[_Global] = save_torch_global

  def persistent_id(self, obj):
    if not isinstance(obj, FakeStorage):
      return None
    key = self._ids.get(id(obj))
    if key is None:
      if self._legacy:
        key = obj.key or str(140000000000000 + 4096 * len(self._ids))  # str(storage._cdata)
      else:
        key = str(len(self._ids))
      self._ids[id(obj)] = key
      self._storages[key] = obj
    storage_type = _Global("torch", obj.type_name)
    if self._legacy:
      return ("storage", storage_type, key, "cpu", obj.numel, None)
    return ("storage", storage_type, key, "cpu", obj.numel)


def write_torch_legacy(path: str | os.PathLike, obj: Any) -> None:
  """`torch.save(obj, path, _use_new_zipfile_serialization=False)` (torch < 1.6 default)."""
  storages: dict[str, FakeStorage] = {}
  with open(path, "wb") as f:
    pickle.dump(_MAGIC_NUMBER, f, protocol=2)
    pickle.dump(_PROTOCOL_VERSION, f, protocol=2)
    sys_info = {
      "protocol_version": _PROTOCOL_VERSION,
      "little_endian": sys.byteorder == "little",
      "type_sizes": {"short": 2, "int": 4, "long": 4},
    }
    pickle.dump(sys_info, f, protocol=2)
    _TorchPickler(f, storages, legacy=True).dump(obj)
    keys = sorted(storages)
    pickle.dump(keys, f, protocol=2)
    f.flush()
    for key in keys:
      values = storages[key].values
      f.write(struct.pack("<q", values.size))
      f.write(values.tobytes())


def _aligned(zf: zipfile.ZipFile, name: str, data: bytes, alignment: int = 64) -> None:
  """Writes a stored record whose data starts at a multiple of `alignment` (as PyTorchStreamWriter)."""
  info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
  info.compress_type = zipfile.ZIP_STORED
  offset = zf.fp.tell() + 30 + len(name.encode("utf-8"))
  pad = (-(offset + 4)) % alignment
  info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
  zf.writestr(info, data)


def write_torch_zip(path: str | os.PathLike, obj: Any, archive: str = "archive") -> None:
  """`torch.save(obj, path)` in the zip format (torch >= 1.6 default)."""
  storages: dict[str, FakeStorage] = {}
  buf = io.BytesIO()
  _TorchPickler(buf, storages, legacy=False).dump(obj)
  with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
    _aligned(zf, f"{archive}/data.pkl", buf.getvalue())
    _aligned(zf, f"{archive}/.format_version", b"1")
    _aligned(zf, f"{archive}/.storage_alignment", b"64")
    _aligned(zf, f"{archive}/byteorder", sys.byteorder.encode("ascii"))
    for key in sorted(storages):
      _aligned(zf, f"{archive}/data/{key}", storages[key].values.tobytes())
    _aligned(zf, f"{archive}/version", b"3\n")
    _aligned(zf, f"{archive}/.data/serialization_id", b"1234567890123456789012345678901234567890")


# ----------------------------------------------------------------------------
# NAS-Bench-201 / NATS-Bench content
# ----------------------------------------------------------------------------


def nb201_run(
  arch_str: str,
  dataset: str,
  seed: int,
  epochs: int,
  final: dict[str, float],
  train_epoch_time: float,
  eval_epoch_time: float = 1.0,
  weights: Any = None,
) -> dict[str, Any]:
  """A `ResultsCount.state_dict()`: one training run of one cell on one dataset.

  Args:
    final: {split: final accuracy in percent}, e.g. {'x-valid': 91.2, 'ori-test': 90.5}.
    train_epoch_time: seconds per training epoch (train_times sums to epochs * this).
    weights: the net_state_dict (e.g. an OrderedDict of FakeTensor) or None.
  """
  last = epochs - 1
  eval_acc, eval_times, eval_losses = {}, {}, {}
  for split, acc in final.items():
    for e in range(epochs):
      eval_acc[f"{split}@{e}"] = acc * (0.5 + 0.5 * e / last) if e < last else acc
      eval_times[f"{split}@{e}"] = eval_epoch_time
      eval_losses[f"{split}@{e}"] = 2.0 - e / epochs
  classes = {"cifar10-valid": 10, "cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[dataset]
  return {
    "name": dataset,
    "net_state_dict": weights,
    "train_acc1es": {e: 10.0 + 80.0 * e / last for e in range(epochs)},
    "train_acc5es": {e: 50.0 + 49.0 * e / last for e in range(epochs)},
    "train_losses": {e: 2.0 - 1.5 * e / last for e in range(epochs)},
    "train_times": {e: train_epoch_time for e in range(epochs)},
    "arch_config": {
      "name": "infer.tiny",
      "C": 16,
      "N": 5,
      "arch_str": arch_str,
      "class_num": classes,
    },
    "params": 0.8,
    "flop": 100.0,
    "seed": seed,
    "epochs": epochs,
    "latency": [0.01, 0.012],
    "eval_names": list(final),
    "eval_acc1es": eval_acc,
    "eval_times": eval_times,
    "eval_losses": eval_losses,
  }


def nb201_results(
  index: int, arch_str: str, runs: dict[tuple[str, int], dict[str, Any]]
) -> dict[str, Any]:
  """An `ArchResults.state_dict()` holding the given runs."""
  dataset_seed: dict[str, list[int]] = {}
  for ds, seed in runs:
    dataset_seed.setdefault(ds, []).append(seed)
  return {
    "arch_index": index,
    "arch_str": arch_str,
    "all_results": dict(runs),
    "dataset_seed": {k: sorted(v) for k, v in dataset_seed.items()},
    "clear_net_done": False,
  }


def write_nats_pbz2(path: str | os.PathLike, obj: Any) -> None:
  """NATS-Bench `pickle_save`: bz2-compressed pickle, protocol 4."""
  with bz2.BZ2File(path, "wb") as f:
    pickle.dump(obj, f, protocol=4)


def write_nats_archive(
  folder: str | os.PathLike, meta_archs: list[str], arch2infos: dict[int, dict[str, Any]]
) -> None:
  """A NATS-Bench fast-mode folder: meta.pickle.pbz2 and one {index:06d}.pickle.pbz2 per cell."""
  os.makedirs(folder, exist_ok=True)
  write_nats_pbz2(os.path.join(folder, "meta.pickle.pbz2"), {"meta_archs": meta_archs})
  for index, hp2results in arch2infos.items():
    write_nats_pbz2(os.path.join(folder, f"{index:06d}.pickle.pbz2"), hp2results)


def set_nb201_run(
  obj: dict[str, Any],
  index: int,
  hp: str,
  dataset: str,
  seed: int,
  split: str | None = None,
  accuracy: float | None = None,
  train_time: float | None = None,
) -> str:
  """Puts an (impossible) number into one run of NB201 content, in place.

  Args:
    obj: the content ({'arch2infos': {index: {hp: ArchResults state}}}).
    index, hp, dataset, seed: the run (hp 'less'/'full' or '12'/'200').
    split: with `accuracy`: the split whose final-epoch accuracy (percent) is set.
    accuracy: the new final accuracy.
    train_time: the new time of every training epoch (seconds).

  Returns:
    The key path of the changed number as the reader names it.
  """
  run = obj["arch2infos"][index][hp]["all_results"][(dataset, seed)]
  where = f"['arch2infos'][{index}][{hp!r}]['all_results'][{(dataset, seed)!r}]"
  if accuracy is not None:
    key = f"{split}@{run['epochs'] - 1}"
    run["eval_acc1es"][key] = accuracy
    where += f"['eval_acc1es'][{key!r}]"
  if train_time is not None:
    run["train_times"] = {e: train_time for e in run["train_times"]}
    where = f"sum of {where}['train_times']"
  return where


def write_bz2_bomb(path: str | os.PathLike, size: int = 1 << 30, piece: int = 64 << 20) -> int:
  """A `.pickle.pbz2` of about a kilobyte whose pickle is one `size`-byte bytes object of zeros.

  The pickle (protocol 4: PROTO, BINBYTES8 with length `size`, then the bytes) is
  written as concatenated bz2 streams (a multi-stream file, which bz2 readers
  accept): the header, then `size / piece` copies of one stream of `piece` zeros.

  Returns:
    The file's size in bytes.
  """
  assert size % piece == 0
  head = b"\x80\x04\x8e" + struct.pack("<Q", size)
  zeros = bz2.compress(bytes(piece), 9)
  data = bz2.compress(head, 9) + zeros * (size // piece)
  with open(path, "wb") as f:
    f.write(data)
  return len(data)


def write_csv_lines(
  src: str | os.PathLike, dst: str | os.PathLike, edit: Callable[[list[str]], list[str]]
) -> str:
  """Writes `edit(lines of src)` (lines with their newlines; line 1 is the header) to `dst`."""
  with open(src, newline="") as f:
    lines = f.read().splitlines(keepends=True)
  with open(dst, "w", newline="") as f:
    f.write("".join(edit(lines)))
  return os.fspath(dst)
