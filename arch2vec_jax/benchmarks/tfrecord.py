"""NAS-Bench-101 `.tfrecord` reader without TensorFlow: framing, CRC32C, protobuf.

The file (`nasbench_only108.tfrecord`, ~500 MB; the full file with 4/12/36/108
epochs, ~2 GB) is a sequence of TFRecord frames:

  uint64 length (little endian) | uint32 masked CRC32C of the 8 length bytes |
  data[length] | uint32 masked CRC32C of data

with masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32) and CRC32C the
Castagnoli CRC (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
Each record's data is the UTF-8 JSON list
`[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]` where
raw_metrics is base64 of the protobuf message

  ModelMetrics { repeated EvaluationData evaluation_data = 1;
                 int32 trainable_parameters = 2; double total_time = 3; }
  EvaluationData { double current_epoch = 1; double training_time = 2;
                   double train_accuracy = 3; double validation_accuracy = 4;
                   double test_accuracy = 5; string checkpoint_path = 6; }

decoded here by hand from the wire format (varint keys; wire types 0, 1, 2, 5).

CRC32C is computed without a compiled extension by a NumPy "lane" kernel: the
records of a read chunk are right-aligned in a zero-padded matrix (leading zero
bytes do not change a zero-initialised CRC register; the 0xFFFFFFFF initial
value is folded in by inverting the first four data bytes) and all records
advance together, 8 bytes per step through four 16-bit slicing tables. If the
optional `google-crc32c` package with its C extension is importable it is used
instead; both give identical values (tested).
"""

from __future__ import annotations

import array
import base64
import binascii
import functools
import json
import math
import os
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from arch2vec_jax.benchmarks.table import BenchmarkTable, Column, build_table
from arch2vec_jax.spaces import nb101

__all__ = [
  "NB101_OPS",
  "CellError",
  "Record",
  "crc32c",
  "crc32c_backend",
  "crc32c_batch",
  "decode_model_metrics",
  "encode_nb101_raw",
  "iter_records",
  "masked_crc32c",
  "parse_nb101_record",
  "read_nb101_tfrecord",
]

# Node operations of NB101 cells as the file spells them.
NB101_OPS = ("input", "conv1x1-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output")
_INNER_OPS = frozenset(NB101_OPS[1:4])

_POLY = 0x82F63B78  # Castagnoli, reflected.
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of length
_U32 = struct.Struct("<I")
_LANE_MAX = 1 << 16  # records longer than this use the blocked single-buffer path
_CHUNK = 16 << 20


# ----------------------------------------------------------------------------
# CRC32C
# ----------------------------------------------------------------------------


@functools.cache
def _tables8() -> np.ndarray:
  """uint32 [8, 256]: slicing-by-8 tables; row p = byte followed by p zero bytes."""
  t = np.zeros((8, 256), np.uint32)
  for i in range(256):
    c = i
    for _ in range(8):
      c = (c >> 1) ^ _POLY if c & 1 else c >> 1
    t[0, i] = c
  for p in range(1, 8):
    t[p] = t[0][t[p - 1] & 0xFF] ^ (t[p - 1] >> 8)
  return t


@functools.cache
def _tables16() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """Four uint32 [65536] tables: one per 16-bit piece of an 8-byte step."""
  t = _tables8()
  x = np.arange(65536, dtype=np.uint32)
  lo, hi = x & 0xFF, x >> 8
  return tuple(t[7 - 2 * k][lo] ^ t[6 - 2 * k][hi] for k in range(4))  # type: ignore[return-value]


@functools.cache
def _table_list() -> list[int]:
  return [int(v) for v in _tables8()[0]]


def _crc32c_small(data: bytes | memoryview, crc: int = 0) -> int:
  """Byte-at-a-time CRC32C (for short inputs and for reference)."""
  table = _table_list()
  c = crc ^ 0xFFFFFFFF
  for b in bytes(data):
    c = table[(c ^ b) & 0xFF] ^ (c >> 8)
  return c ^ 0xFFFFFFFF


_LANES = 8192  # records advanced together: every temporary (32 KB) stays in cache


def _raw_lanes(mat: np.ndarray) -> np.ndarray:
  """Zero-initialised CRC registers of the rows of `mat`.

  Args:
    mat: uint8 [R, W], W a multiple of 8.

  Returns:
    uint32 [R], the register after all W bytes of each row (no init, no final xor).
  """
  rows, width = mat.shape
  u0, u1, u2, u3 = _tables16()
  out = np.empty(rows, np.uint32)
  for r0 in range(0, rows, _LANES):
    # Column-major words: each step reads two contiguous uint32 vectors.
    words = np.ascontiguousarray(np.ascontiguousarray(mat[r0 : r0 + _LANES]).view("<u4").T)
    n = words.shape[1]
    r = np.zeros(n, np.uint32)
    lo = np.empty(n, np.uint32)
    acc = np.empty(n, np.uint32)
    idx = np.empty(n, np.intp)
    for j in range(0, width // 4, 2):
      np.bitwise_xor(r, words[j], out=lo)
      np.bitwise_and(lo, 0xFFFF, out=idx, casting="unsafe")
      np.take(u0, idx, out=r, mode="clip")
      np.right_shift(lo, 16, out=idx, casting="unsafe")
      np.take(u1, idx, out=acc, mode="clip")
      r ^= acc
      hi = words[j + 1]
      np.bitwise_and(hi, 0xFFFF, out=idx, casting="unsafe")
      np.take(u2, idx, out=acc, mode="clip")
      r ^= acc
      np.right_shift(hi, 16, out=idx, casting="unsafe")
      np.take(u3, idx, out=acc, mode="clip")
      r ^= acc
    out[r0 : r0 + n] = r
  return out


@functools.lru_cache(maxsize=16)
def _shift_tables(nbytes: int) -> np.ndarray:
  """uint32 [4, 256]: the linear map 'advance a register by nbytes zero bytes', per register byte."""
  assert nbytes % 8 == 0
  u0, u1, _, _ = _tables16()
  v = np.arange(256, dtype=np.uint32)
  r = np.concatenate([v << np.uint32(8 * k) for k in range(4)])
  for _ in range(nbytes // 8):
    r = u0[r & 0xFFFF] ^ u1[r >> 16]
  return r.reshape(4, 256)


def _crc32c_numpy(data: bytes | memoryview | np.ndarray, block: int = 8192) -> int:
  """CRC32C of one buffer with the lane kernel (blocks as lanes, then combined)."""
  arr = (
    np.frombuffer(data, np.uint8)
    if not isinstance(data, np.ndarray)
    else data.reshape(-1).view(np.uint8)
  )
  n = arr.size
  if n < 64:
    return _crc32c_small(arr.tobytes())
  block = min(block, -(-n // 8) * 8)
  nblocks = -(-n // block)
  padded = np.zeros(nblocks * block, np.uint8)
  padded[nblocks * block - n :] = arr
  padded[nblocks * block - n : nblocks * block - n + 4] ^= 0xFF
  mat = padded.reshape(nblocks, block)
  raw = np.concatenate([_raw_lanes(mat[i : i + 512]) for i in range(0, nblocks, 512)])
  shift = _shift_tables(block)
  s0, s1, s2, s3 = (shift[k].tolist() for k in range(4))
  r = 0
  for v in raw.tolist():
    r = s0[r & 0xFF] ^ s1[(r >> 8) & 0xFF] ^ s2[(r >> 16) & 0xFF] ^ s3[r >> 24] ^ v
  return r ^ 0xFFFFFFFF


def _load_google_crc32c():
  try:
    import google_crc32c  # type: ignore[import-not-found]
  except ImportError:
    return None
  if getattr(google_crc32c, "implementation", "python") != "c":
    return None
  return google_crc32c


_GOOGLE = None if os.environ.get("ARCH2VEC_PURE_CRC32C") else _load_google_crc32c()


def crc32c_backend() -> str:
  """'google-crc32c' when the optional C extension is used, else 'numpy'."""
  return "google-crc32c" if _GOOGLE is not None else "numpy"


def crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
  """CRC32C (Castagnoli) of a buffer, e.g. crc32c(b'123456789') == 0xE3069283."""
  if _GOOGLE is not None:
    return int(_GOOGLE.value(bytes(data)))
  return _crc32c_numpy(data)


def masked_crc32c(data: bytes | bytearray | memoryview | np.ndarray) -> int:
  """The TFRecord masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32)."""
  c = crc32c(data)
  return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _mask(c: np.ndarray) -> np.ndarray:
  c = c.astype(np.uint32)
  return ((c >> np.uint32(15)) | (c << np.uint32(17))) + np.uint32(_MASK_DELTA)


def _crc32c_batch_numpy(
  buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, bucket: int = 64
) -> np.ndarray:
  """CRC32C of many slices of one uint8 buffer with the lane kernel.

  Slices are grouped by length rounded up to `bucket` bytes; each group is one
  [R, W] matrix of windows ending where the slices end (gathered in one NumPy
  copy), with the bytes before each slice zeroed.
  """
  starts = np.asarray(starts, np.int64)
  lengths = np.asarray(lengths, np.int64)
  out = np.zeros(len(starts), np.uint32)
  big = lengths > _LANE_MAX
  tiny = lengths < 4
  for i in np.flatnonzero(big | tiny).tolist():
    piece = buf[starts[i] : starts[i] + lengths[i]]
    out[i] = _crc32c_numpy(piece) if big[i] else _crc32c_small(piece.tobytes())
  todo = np.flatnonzero(~(big | tiny))
  if todo.size == 0:
    return out
  widths = (lengths[todo] + bucket - 1) // bucket * bucket
  if bucket % 8 or (widths % 8).any():
    raise ValueError("bucket must be a multiple of 8")
  # Zero bytes in front of the buffer, so that every window [end - W, end) is inside it, and
  # behind it, so that the window view (rows of the widest width) has a row at every end - W
  # (a narrow slice that ends at the end of the buffer).
  front = int(widths.max())
  padded = np.concatenate([np.zeros(front, np.uint8), buf, np.zeros(front, np.uint8)])
  windows = np.lib.stride_tricks.sliding_window_view(padded, front)
  order = np.argsort(widths, kind="stable")
  todo, widths = todo[order], widths[order]
  for group in np.split(np.arange(todo.size), np.flatnonzero(np.diff(widths)) + 1):
    width = int(widths[group[0]])
    cols = np.arange(width)
    for g0 in range(0, group.size, _LANES):
      idx = todo[group[g0 : g0 + _LANES]]
      ends = starts[idx] + lengths[idx] + front
      mat = windows[ends - width, :width]  # one gather: [R, W] bytes ending where each slice ends
      lead = width - lengths[idx]  # bytes before the slice (fewer than `bucket`): zero them
      head = mat[:, :bucket]
      np.multiply(head, cols[None, :bucket] >= lead[:, None], out=head)
      # Fold the 0xFFFFFFFF initial register into the first four data bytes.
      mat[np.arange(idx.size)[:, None], lead[:, None] + np.arange(4)[None, :]] ^= 0xFF
      out[idx] = _raw_lanes(mat) ^ np.uint32(0xFFFFFFFF)
  return out


def crc32c_batch(
  buf: np.ndarray | bytes, starts: Sequence[int] | np.ndarray, lengths: Sequence[int] | np.ndarray
) -> np.ndarray:
  """CRC32C of many slices `buf[starts[i] : starts[i] + lengths[i]]`.

  Args:
    buf: the buffer (bytes or uint8 array [B]).
    starts: int [R] slice starts.
    lengths: int [R] slice lengths.

  Returns:
    uint32 [R], the (unmasked) CRC32C of each slice.
  """
  if _GOOGLE is not None:
    data = bytes(buf) if not isinstance(buf, bytes) else buf
    value = _GOOGLE.value
    return np.fromiter(
      (
        value(data[s : s + n])
        for s, n in zip(np.asarray(starts).tolist(), np.asarray(lengths).tolist())
      ),
      np.uint32,
      len(starts),
    )
  arr = np.frombuffer(buf, np.uint8) if isinstance(buf, (bytes, bytearray, memoryview)) else buf
  return _crc32c_batch_numpy(arr, np.asarray(starts), np.asarray(lengths))


# ----------------------------------------------------------------------------
# TFRecord framing
# ----------------------------------------------------------------------------


class Record(NamedTuple):
  """One TFRecord frame.

  Attributes:
    number: 0-based record number in the file.
    offset: byte offset of the frame (its length field) in the file.
    data: the payload.
  """

  number: int
  offset: int
  data: bytes


def _fail(path: str, number: int, offset: int, what: str) -> ValueError:
  return ValueError(f"{path}: record {number} at byte offset {offset}: {what}")


def iter_records(
  path: str | os.PathLike,
  check_crc: bool = True,
  chunk_size: int = _CHUNK,
  progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[Record]:
  """Streams the records of a TFRecord file, verifying both masked CRC32Cs.

  Memory stays at about one chunk; CRCs are verified for a whole chunk at once
  (vectorised) before its records are yielded.

  Args:
    path: the `.tfrecord` file.
    check_crc: verify the length and data CRCs (default True).
    chunk_size: bytes read per step.
    progress: optional `progress(records_so_far, bytes_read, total_bytes)`,
      called once per chunk.

  Yields:
    `Record`s in file order.

  Raises:
    ValueError: naming the file, the record number and its byte offset, on a
      truncated frame (short length, data or CRC), a length CRC or data CRC
      mismatch.
  """
  path = os.fspath(path)
  total = os.path.getsize(path)
  number = 0
  with open(path, "rb") as f:
    buf = b""
    base = 0  # file offset of buf[0]
    eof = False
    while not eof or buf:
      if not eof:
        more = f.read(chunk_size)
        eof = len(more) < chunk_size
        buf = buf + more if buf else more
      n = len(buf)
      pos = 0
      frames: list[tuple[int, int]] = []  # (pos, length)
      stop: ValueError | None = None
      while True:
        if n - pos < 12:
          if eof and pos < n:
            stop = _fail(
              path,
              number + len(frames),
              base + pos,
              f"truncated length header ({n - pos} of 12 bytes)",
            )
          break
        length, len_crc = _HEADER.unpack_from(buf, pos)
        end = pos + 16 + length
        if end > n:
          # Does not fit: trust the length only once its CRC is verified.
          if check_crc and _mask_int(crc32c(buf[pos : pos + 8])) != len_crc:
            stop = _fail(
              path, number + len(frames), base + pos, "length CRC mismatch (corrupt length field)"
            )
            break
          if base + end > total:
            have = total - (base + pos + 12)
            part = "data" if have < length else "data CRC"
            stop = _fail(
              path,
              number + len(frames),
              base + pos,
              f"truncated {part}: record needs {length + 4} bytes after its header, file has {max(have, 0)}",
            )
            break
          if not frames:  # a single record larger than the chunk: read it whole
            buf = buf + f.read(end - n)
            n = len(buf)
            eof = f.tell() >= total
            continue
          break
        frames.append((pos, length))
        pos = end
      # Verify the chunk's CRCs (all records at once), yield up to the first bad one.
      bad = len(frames)
      bad_msg = ""
      if check_crc and frames:
        arr = np.frombuffer(buf, np.uint8)
        starts = np.fromiter((p for p, _ in frames), np.int64, len(frames))
        lengths = np.fromiter((l for _, l in frames), np.int64, len(frames))
        src = buf if _GOOGLE is not None else arr
        len_ok = _mask(crc32c_batch(src, starts, np.full(len(frames), 8))) == _gather_u32(
          arr, starts + 8
        )
        data_ok = _mask(crc32c_batch(src, starts + 12, lengths)) == _gather_u32(
          arr, starts + 12 + lengths
        )
        ok = len_ok & data_ok
        if not ok.all():
          bad = int(np.argmin(ok))
          bad_msg = (
            "length CRC mismatch (corrupt length field)"
            if not len_ok[bad]
            else "data CRC mismatch (corrupt data)"
          )
      for k in range(bad):
        p, length = frames[k]
        yield Record(number, base + p, buf[p + 12 : p + 12 + length])
        number += 1
      if bad < len(frames):
        raise _fail(path, number, base + frames[bad][0], bad_msg)
      if stop is not None:
        raise stop
      base += pos
      buf = buf[pos:]
      if progress is not None:
        progress(number, base, total)
      if eof and not buf:
        break


def _mask_int(c: int) -> int:
  return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def _gather_u32(arr: np.ndarray, starts: np.ndarray) -> np.ndarray:
  b = arr[starts[:, None] + np.arange(4)[None, :]]
  return np.ascontiguousarray(b).view("<u4").reshape(-1)


# ----------------------------------------------------------------------------
# Protobuf (hand-decoded wire format)
# ----------------------------------------------------------------------------

_F64 = struct.Struct("<d")
_F32 = struct.Struct("<f")
# field number -> (name, wire type) ; wire 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
_EVAL_FIELDS = {
  1: ("current_epoch", 1),
  2: ("training_time", 1),
  3: ("train_accuracy", 1),
  4: ("validation_accuracy", 1),
  5: ("test_accuracy", 1),
  6: ("checkpoint_path", 2),
}
_METRIC_FIELDS = {1: ("evaluation_data", 2), 2: ("trainable_parameters", 0), 3: ("total_time", 1)}


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
  shift = 0
  value = 0
  while True:
    if i >= end:
      raise ValueError("truncated varint")
    b = buf[i]
    i += 1
    value |= (b & 0x7F) << shift
    if not b & 0x80:
      return value, i
    shift += 7
    if shift >= 70:
      raise ValueError("varint longer than 10 bytes")


def _skip(buf: bytes, i: int, end: int, wire: int) -> int:
  if wire == 0:
    return _varint(buf, i, end)[1]
  if wire == 1:
    i += 8
  elif wire == 5:
    i += 4
  elif wire == 2:
    n, i = _varint(buf, i, end)
    i += n
  else:
    raise ValueError(f"unsupported wire type {wire}")
  if i > end:
    raise ValueError("truncated field")
  return i


def _decode_message(
  buf: bytes, i: int, end: int, fields: dict[int, tuple[str, int]], what: str
) -> tuple[dict[str, Any], dict[str, list]]:
  """Decodes one message; scalar fields keep the last value (proto3), `repeated` in lists."""
  scalars: dict[str, Any] = {}
  spans: dict[str, list] = {}
  while i < end:
    key = buf[i]
    if key < 0x80:
      i += 1
    else:
      key, i = _varint(buf, i, end)
    number, wire = key >> 3, key & 7
    spec = fields.get(number)
    if number == 0:
      raise ValueError(f"{what}: field number 0")
    if spec is None:  # unknown field: skip (proto3 keeps parsing)
      i = _skip(buf, i, end, wire)
      continue
    name, expected = spec
    if wire != expected:
      raise ValueError(f"{what}.{name} (field {number}) has wire type {wire}, expected {expected}")
    if wire == 1:
      if i + 8 > end:
        raise ValueError(f"{what}.{name}: truncated fixed64")
      scalars[name] = _F64.unpack_from(buf, i)[0]
      i += 8
    elif wire == 0:
      v, i = _varint(buf, i, end)
      scalars[name] = v
    elif wire == 2:
      n, i = _varint(buf, i, end)
      if i + n > end:
        raise ValueError(f"{what}.{name}: length {n} runs past the end of the message")
      spans.setdefault(name, []).append((i, i + n))
      i += n
    else:  # wire 5
      if i + 4 > end:
        raise ValueError(f"{what}.{name}: truncated fixed32")
      scalars[name] = _F32.unpack_from(buf, i)[0]
      i += 4
  if i != end:
    raise ValueError(f"{what}: last field runs past the end of the message")
  return scalars, spans


def _int32(v: int) -> int:
  v &= 0xFFFFFFFFFFFFFFFF
  if v >= 1 << 63:
    v -= 1 << 64
  v &= 0xFFFFFFFF
  return v - (1 << 32) if v >= 1 << 31 else v


def decode_model_metrics(buf: bytes) -> dict[str, Any]:
  """Decodes a serialized `ModelMetrics` protobuf.

  Args:
    buf: the message bytes.

  Returns:
    {'evaluation_data': [ {current_epoch, training_time, train_accuracy,
    validation_accuracy, test_accuracy: float, checkpoint_path: str}, ... ],
    'trainable_parameters': int, 'total_time': float}, proto3 defaults (0 / '')
    for absent fields.

  Raises:
    ValueError: on malformed wire data or a field of the wrong wire type.
  """
  scalars, spans = _decode_message(buf, 0, len(buf), _METRIC_FIELDS, "ModelMetrics")
  evals = []
  for k, (a, b) in enumerate(spans.get("evaluation_data", [])):
    e, s = _decode_message(buf, a, b, _EVAL_FIELDS, f"ModelMetrics.evaluation_data[{k}]")
    entry = {name: float(e.get(name, 0.0)) for name, _ in list(_EVAL_FIELDS.values())[:5]}
    paths = s.get("checkpoint_path", [])
    try:
      entry["checkpoint_path"] = (
        bytes(buf[paths[-1][0] : paths[-1][1]]).decode("utf-8") if paths else ""
      )
    except UnicodeDecodeError as e2:
      raise ValueError(f"ModelMetrics.evaluation_data[{k}].checkpoint_path is not UTF-8") from e2
    evals.append(entry)
  return {
    "evaluation_data": evals,
    "trainable_parameters": _int32(scalars.get("trainable_parameters", 0)),
    "total_time": float(scalars.get("total_time", 0.0)),
  }


_EVAL5 = struct.Struct(
  "<xdxdxdxdxd"
)  # the five doubles of an EvaluationData, keys 0x09 0x11 0x19 0x21 0x29


def _final_evaluation(buf: bytes) -> tuple[float, float, float]:
  """(validation_accuracy, test_accuracy, training_time) of evaluation_data[-1].

  A fast path for messages laid out as protobuf writes nasbench's (every
  EvaluationData five doubles in field order, no checkpoint path); anything
  else goes through the full decoder, which also reports malformed data.

  Raises:
    ValueError: malformed protobuf, or no evaluation_data.
  """
  n = len(buf)
  i = 0
  last = -1
  ok = True
  while i < n:
    key = buf[i]
    if key == 0x0A and i + 1 < n and buf[i + 1] == 45 and i + 47 <= n:
      a = i + 2
      if (
        buf[a] != 0x09
        or buf[a + 9] != 0x11
        or buf[a + 18] != 0x19
        or buf[a + 27] != 0x21
        or buf[a + 36] != 0x29
      ):
        ok = False
        break
      last = a
      i = a + 45
    elif key == 0x10:  # trainable_parameters (varint)
      i += 1
      while i < n and buf[i] & 0x80:
        i += 1
      i += 1
    elif key == 0x19 and i + 9 <= n:  # total_time
      i += 9
    else:
      ok = False
      break
  if ok and i == n and last >= 0:
    _, train_time, _, valid, test = _EVAL5.unpack_from(buf, last)
    return valid, test, train_time
  evals = decode_model_metrics(buf)["evaluation_data"]
  if not evals:
    raise ValueError("no evaluation_data")
  e = evals[-1]
  return e["validation_accuracy"], e["test_accuracy"], e["training_time"]


# ----------------------------------------------------------------------------
# NB101 records
# ----------------------------------------------------------------------------


_HASH_RE = re.compile(r"[0-9a-f]{32}")
_ADJ_RE = re.compile(r"[01]+")
# The records as nasbench's json.dumps writes them; anything else takes the json.loads path.
_FAST_RE = re.compile(
  rb'\["([0-9a-f]{32})", ([1-9][0-9]*), "([01]+)", "([a-z0-9,\-]+)", "([A-Za-z0-9+/=]*)"\]'
)


def _fields(data: bytes) -> tuple[str, int, str, str, bytes]:
  """(module_hash, epochs, raw_adjacency, raw_operations, metrics protobuf bytes), validated."""
  m = _FAST_RE.fullmatch(data)
  if m is not None:
    module_hash, epochs, raw_adj, raw_ops, raw_metrics = (
      m[1].decode("ascii"),
      int(m[2]),
      m[3].decode("ascii"),
      m[4].decode("ascii"),
      m[5],
    )
  else:
    try:
      row = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
      raise ValueError(f"bad JSON ({e})") from None
    if not isinstance(row, list) or len(row) != 5:
      raise ValueError(
        "JSON is not a list [module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]"
      )
    module_hash, epochs, raw_adj, raw_ops, raw_metrics = row
    if not isinstance(module_hash, str) or not _HASH_RE.fullmatch(module_hash):
      raise ValueError(f"module_hash {module_hash!r} is not a 32-digit lowercase hex string")
    if type(epochs) is not int or epochs <= 0:
      raise ValueError(f"epochs {epochs!r} is not a positive integer")
    if not isinstance(raw_adj, str) or not _ADJ_RE.fullmatch(raw_adj):
      raise ValueError(f"raw_adjacency {raw_adj!r} is not a string of 0/1")
    if not isinstance(raw_ops, str):
      raise ValueError(f"raw_operations {raw_ops!r} is not a string")
    if not isinstance(raw_metrics, str):
      raise ValueError("raw_metrics is not a string")
  dim = math.isqrt(len(raw_adj))
  if dim * dim != len(raw_adj):
    raise ValueError(f"raw_adjacency has {len(raw_adj)} entries, not a square")
  ops = raw_ops.split(",")
  if len(ops) != dim:
    raise ValueError(f"{len(ops)} operations for a {dim}x{dim} adjacency")
  if ops[0] != "input" or ops[-1] != "output" or not _INNER_OPS.issuperset(ops[1:-1]):
    raise ValueError(
      f"operations {ops} are not input, {{conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3}}*, output"
    )
  try:
    blob = base64.b64decode(raw_metrics, validate=True)
  except (binascii.Error, ValueError) as e:
    raise ValueError(f"raw_metrics is not valid base64 ({e})") from None
  return module_hash, epochs, raw_adj, raw_ops, blob


def _adjacency(raw_adj: str) -> np.ndarray:
  dim = math.isqrt(len(raw_adj))
  return (
    (np.frombuffer(raw_adj.encode("ascii"), np.uint8) - ord("0")).astype(np.int8).reshape(dim, dim)
  )


def parse_nb101_record(data: bytes) -> tuple[str, int, np.ndarray, list[str], dict[str, Any]]:
  """Parses one record payload.

  Args:
    data: the UTF-8 JSON payload of a record.

  Returns:
    (module_hash, epochs, adjacency int8 [V, V], operations (V names), metrics)
    with metrics as from `decode_model_metrics`.

  Raises:
    ValueError: bad JSON, wrong field types or shapes, unknown operations, bad
      base64 or protobuf.
  """
  module_hash, epochs, raw_adj, raw_ops, blob = _fields(data)
  try:
    metrics = decode_model_metrics(blob)
  except ValueError as e:
    raise ValueError(f"raw_metrics protobuf: {e}") from None
  return module_hash, epochs, _adjacency(raw_adj), raw_ops.split(","), metrics


class CellError(ValueError):
  """A bad cell in a batch: `.cell` is its position, `.reason` says why."""

  def __init__(self, cell: int, reason: str):
    super().__init__(f"cell {cell}: {reason}")
    self.cell, self.reason = int(cell), reason


def encode_nb101_raw(
  raw_adjacency: Sequence[str], operations: Sequence[Sequence[str]]
) -> tuple[np.ndarray, np.ndarray]:
  """Vectorised arch2vec encoding of NB101 cells given as the file stores them.

  The same encoding as `nb101.encode` (zero padding after the output node,
  one-hot over `nb101.OPS`), for many cells at once.

  Args:
    raw_adjacency: N row-major 0/1 strings of length V*V (V <= 7, may differ per cell).
    operations: N lists of V op names.

  Returns:
    (adjacency int8 [N, 7, 7], ops int8 [N, 7, 5]).

  Raises:
    CellError: (a ValueError) for the first cell that is not a V x V strictly
      upper-triangular 0/1 matrix with V known op names.
  """
  n_nodes, n_ops = nb101.NUM_NODES, len(nb101.OPS)
  op_index = {op: i for i, op in enumerate(nb101.OPS)}
  count = len(raw_adjacency)
  adjacency = np.zeros((count, n_nodes, n_nodes), np.int8)
  onehot = np.zeros((count, n_nodes, n_ops), np.int8)
  dims = np.fromiter((math.isqrt(len(a)) for a in raw_adjacency), np.int64, count)
  for v in np.unique(dims).tolist():
    rows = np.flatnonzero(dims == v)
    if not 1 <= v <= n_nodes:
      raise CellError(rows[0], f"{v} nodes (at most {n_nodes})")
    text = "".join(raw_adjacency[k] for k in rows.tolist())
    if len(text) != rows.size * v * v:
      bad = next(k for k in rows.tolist() if len(raw_adjacency[k]) != v * v)
      raise CellError(bad, f"adjacency of length {len(raw_adjacency[bad])} is not square")
    m = np.frombuffer(text.encode("ascii", "replace"), np.uint8).reshape(
      rows.size, v, v
    ) - np.uint8(ord("0"))
    bad = ~np.all(m <= 1, axis=(1, 2)) | np.any(np.tril(m) != 0, axis=(1, 2))
    if bad.any():
      raise CellError(
        rows[np.argmax(bad)], "adjacency is not a strictly upper-triangular 0/1 matrix"
      )
    adjacency[rows, :v, :v] = m
  codes = np.full((count, n_nodes), -1, np.int64)
  for k, ops in enumerate(operations):
    if len(ops) != dims[k]:
      raise CellError(k, f"{len(ops)} operations for {dims[k]} nodes")
    try:
      codes[k, : len(ops)] = [op_index[o] for o in ops]
    except KeyError as e:
      raise CellError(k, f"unknown operation {e.args[0]!r}") from None
  r, c = np.nonzero(codes >= 0)
  onehot[r, c, codes[r, c]] = 1
  return adjacency, onehot


def read_nb101_tfrecord(
  path: str | os.PathLike,
  epochs: int = 108,
  verify_hash: bool = True,
  check_crc: bool = True,
  progress: Callable[[int, int, int], None] | None = None,
  allow_subset: bool = False,
) -> BenchmarkTable:
  """Reads NAS-Bench-101 (`nasbench_only108.tfrecord` or the full file) into a table.

  Runs are grouped by module hash; as arch2vec's preprocessing (gen_json.py)
  does with the official API's per-run records, the cell's validation and test
  accuracy and training time are the means over its runs at `epochs`, each run
  taken at its final evaluation (evaluation_data[-1]). Records at other epoch
  budgets are read, checked and skipped. Memory grows with the number of cells,
  not with the file.

  Args:
    path: the `.tfrecord` file.
    epochs: the budget to select (108; the full file also has 4, 12, 36).
    verify_hash: check each cell's stored hash against `nb101.graph_hash`.
    check_crc: verify the TFRecord CRCs.
    progress: optional `progress(records, bytes_read, total_bytes)` per chunk.
    allow_subset: accept fewer than the 423,624 cells of NAS-Bench-101 (the
      count is logged); a cell with fewer runs than the others is an error
      either way.

  Returns:
    BenchmarkTable(space='nb101'): adjacency int8 [N, 7, 7], ops int8 [N, 7, 5],
    valid_acc / test_acc (fractions) and cost (seconds) float64 [N], ids the
    hashes and index 0..N-1 in first-seen order.

  Raises:
    ValueError: naming the file, record number and byte offset, for any framing,
      CRC, JSON, base64, protobuf or hash problem, an accuracy outside [0, 1] or
      a training time that is negative or not finite, a cell with another number
      of runs than the others, fewer cells than the space without `allow_subset`
      (see `table.build_table`), or if no record has `epochs`.
  """
  path = os.fspath(path)
  slot: dict[str, int] = {}
  hashes: list[str] = []
  graphs: list[tuple[str, str]] = []  # (raw_adjacency, raw_operations) per cell
  where: list[tuple[int, int]] = []  # (record number, offset) of the first record per cell
  # One entry per run at `epochs`: its cell, final valid / test accuracy, training time, record.
  run_cell, run_number, run_offset = array.array("q"), array.array("q"), array.array("q")
  run_valid, run_test, run_time = array.array("d"), array.array("d"), array.array("d")
  epochs_seen: set[int] = set()
  records = 0
  for rec in iter_records(path, check_crc=check_crc, progress=progress):
    records += 1
    try:
      module_hash, ep, raw_adj, raw_ops, blob = _fields(rec.data)
      try:
        valid, test, train_time = _final_evaluation(blob)
      except ValueError as e:
        raise ValueError(f"raw_metrics protobuf: {e}") from None
    except ValueError as e:
      raise _fail(path, rec.number, rec.offset, str(e)) from None
    epochs_seen.add(ep)
    if ep != epochs:
      continue
    k = slot.get(module_hash)
    if k is None:
      k = slot[module_hash] = len(hashes)
      hashes.append(module_hash)
      graphs.append((raw_adj, raw_ops))
      where.append((rec.number, rec.offset))
    elif graphs[k] != (raw_adj, raw_ops):
      raise _fail(
        path,
        rec.number,
        rec.offset,
        f"hash {module_hash} was stored with a different graph at record {where[k][0]}",
      )
    run_cell.append(k)
    run_number.append(rec.number)
    run_offset.append(rec.offset)
    run_valid.append(valid)
    run_test.append(test)
    run_time.append(train_time)
  if not hashes:
    raise ValueError(
      f"{path}: no record with epochs={epochs} among {records} records (epochs present: {sorted(epochs_seen)})"
    )
  try:
    adjacency, onehot = encode_nb101_raw([g[0] for g in graphs], [g[1].split(",") for g in graphs])
  except CellError as e:
    raise _fail(path, where[e.cell][0], where[e.cell][1], e.reason) from None
  if verify_hash:
    computed = _hash_all(nb101, adjacency, onehot)
    for k in np.flatnonzero(computed != np.asarray(hashes)):
      raise _fail(
        path,
        where[k][0],
        where[k][1],
        f"stored module_hash {hashes[k]} != graph hash {computed[k] or '(invalid cell)'} of its graph",
      )
  cell = np.frombuffer(run_cell, np.int64)

  def run_where(m: int) -> str:
    return f"record {run_number[m]} at byte offset {run_offset[m]}"

  def cell_where(k: int) -> str:
    return f"first record {where[k][0]} at byte offset {where[k][1]}"

  final = "evaluation_data[-1]"
  return build_table(
    "nb101",
    path,
    adjacency=adjacency,
    ops=onehot,
    ids=np.asarray(hashes, dtype=str),
    index=np.arange(len(hashes), dtype=np.int64),
    valid=Column(np.frombuffer(run_valid), cell, f"{final}.validation_accuracy", run_where),
    test=Column(np.frombuffer(run_test), cell, f"{final}.test_accuracy", run_where),
    cost=Column(np.frombuffer(run_time), cell, f"{final}.training_time", run_where),
    acc_scale=1.0,
    cell_where=cell_where,
    same_runs=True,
    allow_subset=allow_subset,
    meta={
      "source": os.path.abspath(path),
      "format": "nb101-tfrecord",
      "dataset": "cifar10",
      "epochs": int(epochs),
      "epochs_in_file": sorted(epochs_seen),
      "records": records,
      "reward": "validation_accuracy, mean over runs, final evaluation",
      "test": "test_accuracy, mean over runs, final evaluation",
      "cost": "training_time in seconds, mean over runs",
      "hash_verified": bool(verify_hash),
    },
  )


def _hash_all(nb101, adjacency: np.ndarray, onehot: np.ndarray) -> np.ndarray:
  """Official hashes of encoded cells (str [N]; '' for a cell outside the space)."""
  out = []
  for i in range(0, len(adjacency), 65536):  # bounded temporaries
    out.append(
      np.asarray(nb101.hash_batch(adjacency[i : i + 65536], onehot[i : i + 65536]), dtype=str)
    )
  return np.concatenate(out) if out else np.zeros(0, str)
