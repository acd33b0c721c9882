"""NB101 `.tfrecord` reader: CRC32C, TFRecord framing, protobuf, the table, errors."""

import base64
import csv
import json
import os
import pathlib
import struct

import formats
import numpy as np
import pytest

from arch2vec_jax.benchmarks import loader, tfrecord
from arch2vec_jax.spaces import nb101

# ----------------------------------------------------------------------------- CRC32C


@pytest.mark.parametrize(
  "data, crc",
  [
    (b"123456789", 0xE3069283),
    (b"", 0x00000000),
    (b"a", 0xC1D04330),
    (bytes(32), 0x8A9136AA),  # RFC 3720 B.4
    (b"\xff" * 32, 0x62A8AB43),
    (bytes(range(32)), 0x46DD794E),
    (bytes(range(31, -1, -1)), 0x113FDB5C),
  ],
)
def test_crc32c_known_answers(data, crc):
  assert tfrecord.crc32c(data) == crc
  assert tfrecord._crc32c_numpy(data) == crc
  assert formats.crc32c_reference(data) == crc


def test_crc32c_numpy_matches_reference_all_lengths():
  rng = np.random.default_rng(0)
  for n in list(range(130)) + [1000, 8191, 8192, 8193, 70001]:
    data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    ref = formats.crc32c_reference(data) if n <= 1000 else tfrecord._crc32c_small(data)
    assert tfrecord._crc32c_numpy(data) == ref, n


def test_crc32c_batch_matches_reference():
  rng = np.random.default_rng(1)
  buf = rng.integers(0, 256, 300_000, dtype=np.uint8)
  lengths = np.concatenate([np.arange(0, 40), rng.integers(40, 900, 200), [70_000, 65_536, 65_537]])
  starts = rng.integers(0, buf.size - lengths.max(), lengths.size)
  got = tfrecord._crc32c_batch_numpy(buf, starts, lengths)
  want = [tfrecord._crc32c_small(buf[s : s + n].tobytes()) for s, n in zip(starts, lengths)]
  np.testing.assert_array_equal(got, np.asarray(want, np.uint32))
  np.testing.assert_array_equal(tfrecord.crc32c_batch(buf.tobytes(), starts, lengths), got)


def test_crc32c_batch_narrow_slice_at_the_end_of_the_buffer():
  # A slice ending at the buffer's end that is narrower than the widest one (the last record
  # of a file, shorter than another record of its chunk) once indexed past the window view.
  buf = np.random.default_rng(2).integers(0, 256, 1000, dtype=np.uint8)
  starts, lengths = np.array([0, 900]), np.array([500, 100])
  want = [tfrecord._crc32c_small(buf[s : s + n].tobytes()) for s, n in zip(starts, lengths)]
  np.testing.assert_array_equal(
    tfrecord._crc32c_batch_numpy(buf, starts, lengths), np.asarray(want, np.uint32)
  )


def test_masked_crc32c():
  for data in (b"", b"123456789", bytes(range(100))):
    assert tfrecord.masked_crc32c(data) == formats.masked_crc32c_reference(data)
  # The length field of an empty record, as TensorFlow writes it.
  assert tfrecord.masked_crc32c(struct.pack("<Q", 0)) == formats.masked_crc32c_reference(bytes(8))


def test_google_crc32c_backend_agrees():
  google_crc32c = pytest.importorskip("google_crc32c")
  rng = np.random.default_rng(2)
  for n in (0, 5, 100, 4097):
    data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    assert google_crc32c.value(data) == tfrecord._crc32c_numpy(data)


# ----------------------------------------------------------------------------- protobuf


def _model_metrics_classes():
  """ModelMetrics/EvaluationData from the real protobuf runtime (test-only cross-check)."""
  pytest.importorskip("google.protobuf")
  from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

  fdp = descriptor_pb2.FileDescriptorProto(
    name="model_metrics_test.proto", package="nasbench", syntax="proto2"
  )
  ev = fdp.message_type.add(name="EvaluationData")
  for number, name in enumerate(
    ["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], 1
  ):
    ev.field.add(
      name=name,
      number=number,
      type=descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
    )
  ev.field.add(
    name="checkpoint_path",
    number=6,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
  )
  mm = fdp.message_type.add(name="ModelMetrics")
  mm.field.add(
    name="evaluation_data",
    number=1,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
    type_name=".nasbench.EvaluationData",
  )
  mm.field.add(
    name="trainable_parameters",
    number=2,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
  )
  mm.field.add(
    name="total_time",
    number=3,
    type=descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
  )
  pool = descriptor_pool.DescriptorPool()
  pool.Add(fdp)
  return message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench.ModelMetrics"))


EVALS = [
  {
    "current_epoch": 0.0,
    "training_time": 0.0,
    "train_accuracy": 0.1,
    "validation_accuracy": 0.09,
    "test_accuracy": 0.1,
  },
  {
    "current_epoch": 54.0,
    "training_time": 800.5,
    "train_accuracy": 0.8,
    "validation_accuracy": 0.75,
    "test_accuracy": 0.74,
    "checkpoint_path": "gs://bucket/model.ckpt-1234",
  },
  {
    "current_epoch": 108.0,
    "training_time": 1600.25,
    "train_accuracy": 1.0,
    "validation_accuracy": 0.93,
    "test_accuracy": 0.925,
  },
]


def test_protobuf_writer_and_decoder_match_protobuf_runtime():
  ModelMetrics = _model_metrics_classes()
  msg = ModelMetrics(trainable_parameters=2694282, total_time=1800.75)
  for e in EVALS:
    msg.evaluation_data.add(**e)
  wire = msg.SerializeToString()
  assert formats.encode_model_metrics(EVALS, 2694282, 1800.75) == wire
  got = tfrecord.decode_model_metrics(wire)
  assert got["trainable_parameters"] == 2694282
  assert got["total_time"] == 1800.75
  assert len(got["evaluation_data"]) == 3
  for g, e in zip(got["evaluation_data"], EVALS):
    for k, v in e.items():
      assert g[k] == v
  assert got["evaluation_data"][0]["checkpoint_path"] == ""
  # Negative int32 (10-byte varint) and absent optional fields.
  neg = ModelMetrics(trainable_parameters=-5).SerializeToString()
  assert tfrecord.decode_model_metrics(neg) == {
    "evaluation_data": [],
    "trainable_parameters": -5,
    "total_time": 0.0,
  }


def test_fast_paths_agree_with_full_decoders():
  for evals in (EVALS, EVALS[:2], EVALS[::-1], [EVALS[0]]):
    wire = formats.encode_model_metrics(evals, 123, 4.5)
    e = tfrecord.decode_model_metrics(wire)["evaluation_data"][-1]
    assert tfrecord._final_evaluation(wire) == (
      e["validation_accuracy"],
      e["test_accuracy"],
      e["training_time"],
    )
  with pytest.raises(ValueError, match="no evaluation_data"):
    tfrecord._final_evaluation(formats.encode_model_metrics([], 1, 1.0))
  # Compact JSON (no spaces) goes through json.loads and gives the same fields.
  metrics = formats.encode_model_metrics(EVALS, 5, 1.0)
  row = ["0" * 32, 108, "0100", "input,output", base64.b64encode(metrics).decode()]
  fast = tfrecord._fields(json.dumps(row).encode())
  slow = tfrecord._fields(json.dumps(row, separators=(",", ":")).encode())
  assert fast == slow == ("0" * 32, 108, "0100", "input,output", metrics)


def test_protobuf_unknown_fields_are_skipped():
  base = formats.encode_model_metrics(EVALS[:1], 7, 1.5)
  extra = (
    bytes([9 << 3 | 0])
    + b"\x96\x01"
    + bytes([10 << 3 | 5])
    + b"abcd"
    + bytes([11 << 3 | 2, 3])
    + b"xyz"
  )
  got = tfrecord.decode_model_metrics(base + extra)
  assert got["trainable_parameters"] == 7 and got["total_time"] == 1.5


@pytest.mark.parametrize(
  "wire, match",
  [
    (
      bytes([2 << 3 | 1]) + bytes(8),
      r"trainable_parameters \(field 2\) has wire type 1, expected 0",
    ),
    (bytes([3 << 3 | 0, 1]), r"total_time \(field 3\) has wire type 0, expected 1"),
    (bytes([1 << 3 | 2, 50]) + bytes(3), "runs past the end"),
    (bytes([3 << 3 | 1]) + bytes(4), "truncated fixed64"),
    (bytes([2 << 3 | 0, 0x80]), "truncated varint"),
    (bytes([1 << 3 | 2, 2, 2 << 3 | 2, 0]), r"evaluation_data\[0\].training_time"),
    (bytes([4 << 3 | 3]), "unsupported wire type 3"),
  ],
)
def test_protobuf_errors(wire, match):
  with pytest.raises(ValueError, match=match):
    tfrecord.decode_model_metrics(wire)


# ----------------------------------------------------------------------------- files


@pytest.fixture(scope="module")
def nb101_cells(shared_data):
  """Real NB101 cells (hash, graph, one run's numbers) from the shared CSV, all sizes V = 2..7."""
  by_v = {}
  with open(shared_data / "nb101_subset.csv", newline="") as f:
    for row in csv.DictReader(f):
      v = int(row["num_vertices"])
      if len(by_v.setdefault(v, [])) < 3:
        by_v[v].append(row)
  cells = []
  for v in sorted(by_v):
    for row in by_v[v]:
      cells.append(
        {
          "hash": row["hash"],
          "matrix": np.array([int(c) for c in row["adjacency"]], np.int8).reshape(v, v),
          "ops": row["operations"].split("|"),
          "valid": float(row["valid_acc_108ep"]),
          "time": float(row["training_time_108ep"]),
          "params": int(row["trainable_parameters"]),
        }
      )
  return cells


@pytest.fixture(scope="module")
def nb101_file(tmp_path_factory, nb101_cells):
  path = tmp_path_factory.mktemp("nb101") / "nasbench_only108.tfrecord"
  offsets, expected = formats.write_nb101_tfrecord(path, nb101_cells)
  return path, offsets, expected


def test_read_nb101_tfrecord_values(nb101_file, nb101_cells):
  path, offsets, _ = nb101_file
  table = tfrecord.read_nb101_tfrecord(path, allow_subset=True)
  assert table.space == "nb101" and len(table) == len(nb101_cells)
  assert list(table.ids) == [c["hash"] for c in nb101_cells]
  np.testing.assert_array_equal(table.index, np.arange(len(nb101_cells)))
  # Means of the three runs (see formats.write_nb101_tfrecord).
  np.testing.assert_allclose(table.valid_acc, [c["valid"] for c in nb101_cells], rtol=0, atol=1e-12)
  np.testing.assert_allclose(
    table.test_acc, [c["valid"] - 0.01 for c in nb101_cells], rtol=0, atol=1e-12
  )
  np.testing.assert_allclose(table.cost, [c["time"] for c in nb101_cells], rtol=1e-12)
  for k, c in enumerate(nb101_cells):
    a, o = nb101.encode(c["matrix"], c["ops"])
    np.testing.assert_array_equal(table.adjacency[k], a)
    np.testing.assert_array_equal(table.ops[k], o)
  assert (
    table.adjacency.dtype == np.int8
    and table.adjacency.shape[1:] == (7, 7)
    and table.ops.shape[1:] == (7, 5)
  )
  assert (
    table.meta["num_runs"] == 3
    and table.meta["epochs"] == 108
    and table.meta["records"] == len(offsets)
  )
  assert table.meta["hash_verified"] is True


def test_full_file_selects_epochs(tmp_path, nb101_cells):
  path = tmp_path / "nasbench_full.tfrecord"
  _, expected = formats.write_nb101_tfrecord(path, nb101_cells[:6], epochs=(4, 12, 36, 108))
  t108 = tfrecord.read_nb101_tfrecord(path, allow_subset=True)
  t12 = tfrecord.read_nb101_tfrecord(path, epochs=12, allow_subset=True)
  assert t108.meta["epochs_in_file"] == [4, 12, 36, 108] and t108.meta["records"] == 6 * 4 * 3
  for k, c in enumerate(nb101_cells[:6]):
    assert t108.valid_acc[k] == pytest.approx(expected[c["hash"]]["valid@108"], abs=1e-12)
    assert t12.valid_acc[k] == pytest.approx(expected[c["hash"]]["valid@12"], abs=1e-12)
    assert t12.cost[k] == pytest.approx(expected[c["hash"]]["time@12"], rel=1e-12)
  with pytest.raises(
    ValueError,
    match=r"no record with epochs=50 among 72 records \(epochs present: \[4, 12, 36, 108\]\)",
  ):
    tfrecord.read_nb101_tfrecord(path, epochs=50, allow_subset=True)


def test_iter_records_streaming(nb101_file):
  path, offsets, _ = nb101_file
  whole = list(tfrecord.iter_records(path))
  assert [r.offset for r in whole] == offsets and [r.number for r in whole] == list(
    range(len(offsets))
  )
  calls = []
  small = list(
    tfrecord.iter_records(path, chunk_size=700, progress=lambda *a: calls.append(a))
  )  # < one record
  assert [(r.number, r.offset, r.data) for r in small] == [
    (r.number, r.offset, r.data) for r in whole
  ]
  assert calls[-1] == (len(offsets), os.path.getsize(path), os.path.getsize(path))
  assert json.loads(whole[0].data)[0] == whole[0].data[2:34].decode()


def test_empty_and_large_records(tmp_path):
  payloads = [b"", b"x", bytes(range(256)) * 500, b"tail"]
  path = tmp_path / "misc.tfrecord"
  formats.write_tfrecord(path, payloads)
  for chunk in (16, 1000, 1 << 20):
    assert [r.data for r in tfrecord.iter_records(path, chunk_size=chunk)] == payloads


def test_load_table_dispatches_and_caches(nb101_file, tmp_path):
  path, _, _ = nb101_file
  t1 = loader.load_table(path, cache=str(tmp_path), allow_subset=True)
  cached = list((tmp_path / "tables").iterdir())
  assert len(cached) == 1
  t2 = loader.load_table(path, cache=str(tmp_path), space="nb101", allow_subset=True)
  np.testing.assert_array_equal(t1.valid_acc, t2.valid_acc)
  assert list(t1.ids) == list(t2.ids) and t2.meta == t1.meta
  with pytest.raises(ValueError, match="a nb101 source, but space='nb201'"):
    loader.load_table(path, space="nb201", cache=False)


# ----------------------------------------------------------------------------- corrupt files


def _corrupt(src, dst, fn):
  data = fn(bytearray(pathlib.Path(src).read_bytes()))
  pathlib.Path(dst).write_bytes(bytes(data))
  return dst


def _flip(pos):
  def fn(data):
    data[pos] ^= 0x20
    return data

  return fn


def _read(path):
  return tfrecord.read_nb101_tfrecord(path, allow_subset=True)


@pytest.mark.parametrize(
  "where, message",
  [
    (lambda o, k: o[k] + 12 + 40, "data CRC mismatch"),  # a byte of the JSON payload
    (lambda o, k: o[k] + 9, "length CRC mismatch"),  # a byte of the length's CRC
    (lambda o, k: o[k] + 1, "length CRC mismatch"),  # a byte of the length itself
    (lambda o, k: o[k + 1] - 2, "data CRC mismatch"),  # a byte of the data's CRC
  ],
)
def test_flipped_bytes_name_file_record_and_offset(nb101_file, tmp_path, where, message):
  path, offsets, _ = nb101_file
  k = 5
  bad = _corrupt(path, tmp_path / "bad.tfrecord", _flip(where(offsets, k)))
  with pytest.raises(ValueError) as e:
    _read(bad)
  assert str(e.value) == f"{bad}: record {k} at byte offset {offsets[k]}: {message}" + (
    " (corrupt length field)" if "length" in message else " (corrupt data)"
  )
  # Records before the bad one are still streamed.
  got = []
  with pytest.raises(ValueError):
    for r in tfrecord.iter_records(bad):
      got.append(r.number)
  assert got == list(range(k))


@pytest.mark.parametrize(
  "cut, what", [(5, "truncated length header"), (14, "truncated data"), (-2, "truncated data CRC")]
)
def test_truncated_file(nb101_file, tmp_path, cut, what):
  path, offsets, _ = nb101_file
  k = len(offsets) - 1
  end = offsets[k] + cut if cut > 0 else os.path.getsize(path) + cut
  bad = _corrupt(path, tmp_path / "trunc.tfrecord", lambda d: d[:end])
  with pytest.raises(ValueError, match=rf"^{bad}: record {k} at byte offset {offsets[k]}: {what}"):
    _read(bad)


def test_truncated_mid_record_with_small_chunks(nb101_file, tmp_path):
  path, offsets, _ = nb101_file
  bad = _corrupt(path, tmp_path / "trunc.tfrecord", lambda d: d[: offsets[3] + 100])
  with pytest.raises(ValueError, match=rf"record 3 at byte offset {offsets[3]}: truncated data"):
    list(tfrecord.iter_records(bad, chunk_size=64))


def _rewrite(nb101_file, tmp_path, k, fn):
  """A copy of the file with record k's payload replaced by fn(payload) (valid CRCs)."""
  path, _, _ = nb101_file
  payloads = [r.data for r in tfrecord.iter_records(path)]
  payloads[k] = fn(payloads[k])
  out = tmp_path / "edited.tfrecord"
  new_offsets = formats.write_tfrecord(out, payloads)
  return out, new_offsets[k]


def _edit_json(i, value):
  def fn(data):
    row = json.loads(data)
    row[i] = value(row[i]) if callable(value) else value
    return json.dumps(row).encode()

  return fn


@pytest.mark.parametrize(
  "fn, message",
  [
    (lambda d: d[:-3], "bad JSON"),
    (lambda d: b"\xff" + d, "bad JSON"),
    (lambda d: b'{"a": 1}', r"JSON is not a list \[module_hash, epochs"),
    (_edit_json(1, "108"), "epochs '108' is not a positive integer"),
    (_edit_json(0, 123), "module_hash 123 is not a 32-digit"),
    (_edit_json(2, lambda s: s[:-1]), "not a square|operations for a"),
    (_edit_json(2, lambda s: s.replace("0", "2", 1)), "is not a string of 0/1"),
    (_edit_json(3, lambda s: s.replace("output", "conv5x5")), "operations .* are not input"),
    (_edit_json(4, lambda s: s[:-2] + "!!"), "raw_metrics is not valid base64"),
    (
      _edit_json(4, lambda s: base64.b64encode(b"\x10\x01\x19").decode()),
      "raw_metrics protobuf: .*truncated fixed64",
    ),
    (
      _edit_json(4, lambda s: base64.b64encode(b"\x11" + bytes(8)).decode()),
      r"raw_metrics protobuf: .*has wire type 1",
    ),
    (
      _edit_json(4, lambda s: base64.b64encode(formats.encode_model_metrics([], 1, 1.0)).decode()),
      "no evaluation_data",
    ),
  ],
)
def test_bad_payloads_name_file_record_and_offset(nb101_file, tmp_path, fn, message):
  k = 4
  bad, offset = _rewrite(nb101_file, tmp_path, k, fn)
  with pytest.raises(
    ValueError, match=rf"^{bad}: record {k} at byte offset {offset}: .*({message})"
  ):
    _read(bad)


def test_hash_mismatch_is_detected(nb101_file, tmp_path, nb101_cells):
  # Record 7 (a run of cell 2) claims a hash that is not its graph's.
  k = 7
  bad, offset = _rewrite(nb101_file, tmp_path, k, _edit_json(0, "0" * 32))
  with pytest.raises(
    ValueError,
    match=rf"^{bad}: record {k} at byte offset {offset}: stored module_hash 0{{32}} != graph hash",
  ):
    _read(bad)
  # Unchecked, the record is a run of another cell: cell 2 is left with 2 of its 3 runs.
  with pytest.raises(
    ValueError,
    match=rf"^{bad}: cell {nb101_cells[2]['hash']} \(first record 6 at byte offset "
    rf"\d+\) has 2 run\(s\), but {len(nb101_cells) - 1} of the {len(nb101_cells) + 1} cells have 3",
  ):
    tfrecord.read_nb101_tfrecord(bad, verify_hash=False, allow_subset=True)
  # Record 0 claims the hash of the last cell: that cell's own records then disagree with it.
  bad2, _ = _rewrite(nb101_file, tmp_path, 0, _edit_json(0, nb101_cells[-1]["hash"]))
  with pytest.raises(ValueError, match="was stored with a different graph at record 0"):
    _read(bad2)


def test_parse_nb101_record(nb101_file):
  path, _, _ = nb101_file
  rec = next(tfrecord.iter_records(path))
  h, ep, adj, ops, metrics = tfrecord.parse_nb101_record(rec.data)
  assert ep == 108 and adj.dtype == np.int8 and adj.shape == (len(ops), len(ops))
  assert nb101.graph_hash(adj, ops) == h
  assert (
    len(metrics["evaluation_data"]) == 3
    and metrics["evaluation_data"][-1]["current_epoch"] == 108.0
  )


def test_encode_nb101_raw_matches_encode(nb101_cells):
  raw = ["".join(map(str, c["matrix"].reshape(-1))) for c in nb101_cells]
  adj, ops = tfrecord.encode_nb101_raw(raw, [c["ops"] for c in nb101_cells])
  for k, c in enumerate(nb101_cells):
    a, o = nb101.encode(c["matrix"], c["ops"])
    np.testing.assert_array_equal(adj[k], a)
    np.testing.assert_array_equal(ops[k], o)
  with pytest.raises(
    tfrecord.CellError, match="cell 1: adjacency is not a strictly upper-triangular"
  ):
    tfrecord.encode_nb101_raw(["0100", "0010"], [["input", "output"]] * 2)


# ----------------------------------------------------------------------------- impossible values, shape gaps


def _write_edited(tmp_path, cells, edit, name="edited.tfrecord", **kwargs):
  path = tmp_path / name
  offsets, _ = formats.write_nb101_tfrecord(path, cells, edit=edit, **kwargs)
  return path, offsets


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("valid", 9.4e78, r"validation_accuracy = 9.4e\+78 outside \[0.0, 1.0\]"),
    ("valid", 5.0, r"validation_accuracy = 5.0 outside \[0.0, 1.0\]"),
    ("valid", -0.3, r"validation_accuracy = -0.3 outside \[0.0, 1.0\]"),
    ("valid", float("nan"), "validation_accuracy = nan is not a finite number"),
    ("test", -81.43, r"test_accuracy = -81.43 outside \[0.0, 1.0\]"),
    ("test", 1.5, r"test_accuracy = 1.5 outside \[0.0, 1.0\]"),
    ("time", -12.5, r"training_time = -12.5 outside \[0.0, inf\]"),
    ("time", float("inf"), "training_time = inf is not a finite number"),
  ],
)
def test_impossible_values_name_file_record_and_value(nb101_cells, tmp_path, field, value, message):
  # Cell 4, run 1 is record 4 * 3 + 1 = 13.
  def edit(c, k, ep, v):
    return {**v, field: value} if (c, k) == (4, 1) else v

  path, offsets = _write_edited(tmp_path, nb101_cells, edit)
  with pytest.raises(
    ValueError,
    match=rf"^{path}: record 13 at byte offset {offsets[13]}: "
    rf"evaluation_data\[-1\]\.{message}$",
  ):
    tfrecord.read_nb101_tfrecord(path, allow_subset=True)


def test_cut_at_a_record_boundary_is_a_cell_with_fewer_runs(nb101_file, tmp_path, nb101_cells):
  path, offsets, _ = nb101_file
  cut = _corrupt(
    path, tmp_path / "cut.tfrecord", lambda d: d[: offsets[-1]]
  )  # the last cell's third run is gone
  last = nb101_cells[-1]["hash"]
  n = len(nb101_cells)
  with pytest.raises(
    ValueError,
    match=rf"^{cut}: cell {last} \(first record {len(offsets) - 3} at byte offset "
    rf"{offsets[-3]}\) has 2 run\(s\), but {n - 1} of the {n} cells have 3: a truncated",
  ):
    tfrecord.read_nb101_tfrecord(cut, allow_subset=True)


def test_a_cell_written_twice_has_too_many_runs(nb101_cells, tmp_path):
  cells = nb101_cells + [nb101_cells[3]]
  path, offsets = _write_edited(tmp_path, cells, None)
  with pytest.raises(
    ValueError,
    match=rf"cell {cells[3]['hash']} \(first record 9 at byte offset {offsets[9]}\) "
    rf"has 6 run\(s\), but {len(nb101_cells) - 1} of the {len(nb101_cells)} cells have 3",
  ):
    tfrecord.read_nb101_tfrecord(path, allow_subset=True)


def test_a_cell_missing_a_run_anywhere(nb101_cells, tmp_path):
  path, _ = _write_edited(
    tmp_path, nb101_cells, lambda c, k, ep, v: None if (c, k) == (0, 2) else v
  )
  with pytest.raises(
    ValueError,
    match=rf"cell {nb101_cells[0]['hash']} \(first record 0 at byte offset 0\) has 2 run",
  ):
    tfrecord.read_nb101_tfrecord(path, allow_subset=True)


def test_size_of_the_space_unless_a_subset_is_asked_for(nb101_file, nb101_cells, tmp_path, caplog):
  path, _, _ = nb101_file
  n = len(nb101_cells)
  with pytest.raises(
    ValueError,
    match=rf"^{path}: {n} cells, but nb101 has 423624; a truncated or partial file\? "
    r"\(pass allow_subset=True to read a subset\)",
  ):
    tfrecord.read_nb101_tfrecord(path)
  with pytest.raises(ValueError, match="but nb101 has 423624"):
    loader.load_table(path, cache=str(tmp_path))
  with caplog.at_level("WARNING", logger="arch2vec_jax.benchmarks"):
    t = tfrecord.read_nb101_tfrecord(path, allow_subset=True)
  assert t.meta["subset"] == {"cells": n, "of": 423624} and t.meta["num_runs"] == 3
  assert f"a subset of nb101: {n} of its 423624 cells" in caplog.text
  assert f"a subset: {n} of the 423624 nb101 cells" in loader.summarize(t)
