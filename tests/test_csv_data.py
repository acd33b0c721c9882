"""Shared-CSV readers, `loader.load_table` (dispatch and cache) and `loader.prepare`."""

import csv
import os
import pathlib
import re
import subprocess
import sys
import time

import formats
import numpy as np
import pytest

from arch2vec_jax import BenchmarkTable
from arch2vec_jax.benchmarks import csv_data, loader
from arch2vec_jax.spaces import nb101, nb201

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# README: maxima of the 200-epoch test accuracy per dataset (percent).
MAX_TEST_200 = {"cifar10": 94.3733, "cifar100": 73.5133, "imagenet16": 47.3111}


@pytest.fixture(scope="module")
def nb201_csv(shared_data):
  return shared_data / "nb201_accuracies.csv"


@pytest.fixture(scope="module")
def nb101_small(shared_data, tmp_path_factory):
  """The first 400 rows of nb101_subset.csv (the full file is read in a slow test)."""
  path = tmp_path_factory.mktemp("csv") / "nb101_small.csv"
  with open(shared_data / "nb101_subset.csv") as f:
    lines = [next(f) for _ in range(401)]
  path.write_text("".join(lines))
  return path


@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "imagenet16"])
def test_read_nb201_csv(nb201_csv, dataset):
  t = csv_data.read_nb201_csv(nb201_csv, dataset)
  assert t.space == "nb201" and len(t) == nb201.NUM_CELLS
  np.testing.assert_array_equal(t.index, np.arange(nb201.NUM_CELLS))
  assert list(t.ids[:5]) == nb201.arch_strings()[:5]
  adj, ops = nb201.all_cells()
  np.testing.assert_array_equal(t.adjacency, adj)
  np.testing.assert_array_equal(t.ops, ops)
  assert t.test_acc.max() == pytest.approx(MAX_TEST_200[dataset] / 100, abs=1e-9)
  assert 0 < t.valid_acc.min() and t.valid_acc.max() < 1
  assert np.isnan(t.cost).all() and "no training times" in t.meta["cost"]
  with open(nb201_csv) as f:
    first = next(csv.DictReader(f))
  assert t.valid_acc[0] == pytest.approx(float(first[f"{dataset}_valid_12ep"]) / 100, abs=1e-12)


def test_read_nb201_csv_other_columns(nb201_csv):
  t = csv_data.read_nb201_csv(nb201_csv, "ImageNet16-120", report="test_12ep")
  assert t.meta["test"] == "imagenet16_test_12ep"
  with pytest.raises(ValueError, match=r"missing column\(s\) \['cifar10_valid_200ep'\]"):
    csv_data.read_nb201_csv(nb201_csv, "cifar10", reward="valid_200ep")
  with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
    csv_data.read_nb201_csv(nb201_csv, "svhn")


def test_read_nb101_csv(nb101_small):
  t = csv_data.read_nb101_csv(nb101_small, allow_subset=True)
  assert t.space == "nb101" and len(t) == 400 and t.meta["hash_verified"]
  with open(nb101_small) as f:
    rows = list(csv.DictReader(f))
  assert list(t.ids) == [r["hash"] for r in rows]
  np.testing.assert_array_equal(t.valid_acc, [float(r["valid_acc_108ep"]) for r in rows])
  np.testing.assert_array_equal(t.cost, [float(r["training_time_108ep"]) for r in rows])
  assert np.isnan(t.test_acc).all()
  for k in (0, 17, 399):
    v = int(rows[k]["num_vertices"])
    a, o = nb101.encode(
      np.array([int(c) for c in rows[k]["adjacency"]]).reshape(v, v),
      rows[k]["operations"].split("|"),
    )
    np.testing.assert_array_equal(t.adjacency[k], a)
    np.testing.assert_array_equal(t.ops[k], o)
  t36 = csv_data.read_nb101_csv(nb101_small, epochs=36, verify_hash=False, allow_subset=True)
  np.testing.assert_array_equal(t36.valid_acc, [float(r["valid_acc_36ep"]) for r in rows])
  assert np.isnan(t36.cost).all()


@pytest.mark.slow
def test_read_nb101_csv_full_file(shared_data):
  t = csv_data.read_nb101_csv(shared_data / "nb101_subset.csv", allow_subset=True)
  assert len(t) == 30_001 and len(set(t.ids)) == 30_001


def _edit_csv(src, dst, line, fn):
  lines = pathlib.Path(src).read_text().splitlines(keepends=True)
  lines[line - 1] = fn(lines[line - 1])
  pathlib.Path(dst).write_text("".join(lines))
  return dst


@pytest.mark.parametrize(
  "line, fn, message",
  [
    (1, lambda s: s.replace("hash,", "digest,"), r"missing column\(s\) \['hash'\]"),
    (
      1,
      lambda s: s.replace(",valid_acc_108ep", ",valid_108"),
      r"missing column\(s\) \['valid_acc_108ep'\]",
    ),
    (5, lambda s: s.rsplit(",", 1)[0] + "\n", "line 5: 9 fields, header has 10"),
    (
      7,
      lambda s: s.replace(s.split(",")[7], "abc"),
      r"line 7: column 'valid_acc_108ep' is 'abc', not a number",
    ),
    (
      8,
      lambda s: s.replace(s.split(",")[7], "93.1"),
      r"line 8: column 'valid_acc_108ep' = 93.1 outside \[0.0, 1.0\]",
    ),
    (
      9,
      lambda s: s.replace(",7,", ",x,", 1) if ",7," in s else s.replace(",6,", ",x,", 1),
      "line 9: num_vertices 'x'",
    ),
    (10, lambda s: s.replace("output", "conv5x5"), "line 10: unknown operation 'conv5x5'"),
    (
      11,
      lambda s: "f" * 32 + s[32:],
      r"line 11: hash f{32} != [0-9a-f]{32}, the NAS-Bench-101 hash",
    ),
  ],
)
def test_nb101_csv_errors_name_line(nb101_small, tmp_path, line, fn, message):
  bad = _edit_csv(nb101_small, tmp_path / "bad.csv", line, fn)
  with pytest.raises(ValueError, match=rf"^{bad}: {message}"):
    csv_data.read_nb101_csv(bad, allow_subset=True)


@pytest.mark.parametrize(
  "line, fn, message",
  [
    (
      3,
      lambda s: s.replace(s.split(",")[2], "high"),
      r"line 3: column 'cifar10_valid_12ep' is 'high', not a number",
    ),
    (4, lambda s: "5" + s[1:], r"line 4: index 5 but .* is cell 2 of NAS-Bench-201"),
    (6, lambda s: s.replace("~0|", "~1|", 1), r"line 6: .*arch string"),
    (2, lambda s: s.rstrip("\n") + ",1.0\n", "line 2: 12 fields, header has 11"),
  ],
)
def test_nb201_csv_errors_name_line(nb201_csv, tmp_path, line, fn, message):
  bad = _edit_csv(nb201_csv, tmp_path / "bad.csv", line, fn)
  with pytest.raises(ValueError, match=rf"^{bad}: {message}"):
    csv_data.read_nb201_csv(bad)


def test_nb201_csv_subset_keeps_benchmark_index(nb201_csv, tmp_path):
  sub = _edit_csv(nb201_csv, tmp_path / "sub.csv", 2, lambda s: "")  # drop cell 0
  t = csv_data.read_nb201_csv(sub, allow_subset=True)
  assert len(t) == nb201.NUM_CELLS - 1 and t.index[0] == 1 and t.ids[0] == nb201.arch_strings()[1]


def test_csv_kind(nb201_csv, nb101_small, tmp_path):
  assert csv_data.csv_kind(nb201_csv) == "nb201" and csv_data.csv_kind(nb101_small) == "nb101"
  other = tmp_path / "other.csv"
  other.write_text("a,b\n1,2\n")
  with pytest.raises(ValueError, match="not a shared benchmark CSV"):
    loader.load_table(other, cache=False)


# ----------------------------------------------------------------------------- loader


def test_load_table_cache_roundtrip(nb201_csv, tmp_path):
  t1 = loader.load_table(nb201_csv, dataset="cifar100", cache=str(tmp_path))
  files = sorted((tmp_path / "tables").iterdir())
  assert len(files) == 1 and files[0].name.startswith("nb201_accuracies-")
  t2 = loader.load_table(
    nb201_csv, dataset="cifar100", cache=str(tmp_path)
  )  # served from the cache (checked below)
  for name in ("adjacency", "ops", "valid_acc", "test_acc", "index"):
    np.testing.assert_array_equal(getattr(t1, name), getattr(t2, name))
  assert np.isnan(t2.cost).all() and list(t1.ids) == list(t2.ids) and t1.meta == t2.meta
  # Other options -> another entry; the same options again -> no new entry.
  loader.load_table(nb201_csv, dataset="imagenet16", cache=str(tmp_path))
  loader.load_table(nb201_csv, dataset="cifar100", cache=str(tmp_path))
  assert len(list((tmp_path / "tables").iterdir())) == 2


def test_cache_is_reused_and_invalidated(nb101_small, tmp_path, monkeypatch):
  src = tmp_path / "copy.csv"
  src.write_text(pathlib.Path(nb101_small).read_text())
  first = loader.load_table(src, cache=str(tmp_path / "c"), allow_subset=True)
  calls = []
  real = csv_data.read_nb101_csv
  monkeypatch.setattr(csv_data, "read_nb101_csv", lambda *a, **k: calls.append(1) or real(*a, **k))
  loader.load_table(src, cache=str(tmp_path / "c"), allow_subset=True)
  assert calls == []  # served from the cache
  os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))  # the source changed
  again = loader.load_table(src, cache=str(tmp_path / "c"), allow_subset=True)
  assert calls == [1] and list(again.ids) == list(first.ids)
  loader.load_table(src, cache=False, allow_subset=True)
  assert calls == [1, 1]
  # A corrupt cache entry is rebuilt.
  for f in (tmp_path / "c" / "tables").iterdir():
    f.write_bytes(b"junk")
  loader.load_table(src, cache=str(tmp_path / "c"), allow_subset=True)
  assert calls == [1, 1, 1]


def test_cache_dir_default_and_npz(nb101_small, tmp_path, monkeypatch):
  monkeypatch.setenv("ARCH2VEC_CACHE", str(tmp_path / "env"))
  t = loader.load_table(nb101_small, space="nb101", allow_subset=True)
  assert len(list((tmp_path / "env" / "tables").iterdir())) == 1
  out = tmp_path / "t.npz"
  t.save(out)
  again = loader.load_table(out)
  assert isinstance(again, BenchmarkTable) and list(again.ids) == list(t.ids)
  with pytest.raises(ValueError, match="a nb101 table, but space='nb201'"):
    loader.load_table(out, space="nb201")
  with pytest.raises(ValueError, match="NAS-Bench-101 has only cifar10"):
    loader.load_table(nb101_small, dataset="cifar100")
  with pytest.raises(FileNotFoundError):
    loader.load_table(tmp_path / "missing.csv")
  with pytest.raises(ValueError, match="a folder, but not a NATS-Bench archive"):
    loader.load_table(tmp_path)
  (tmp_path / "x.json").write_text("{}")
  with pytest.raises(ValueError, match="unknown benchmark file type"):
    loader.load_table(tmp_path / "x.json")


def test_prepare_and_summary(nb201_csv, tmp_path):
  lines = []
  out = tmp_path / "out.npz"
  t = loader.prepare(
    nb201_csv, dataset="imagenet16", out=out, cache_dir=str(tmp_path), log=lines.append
  )
  assert out.exists() and len(BenchmarkTable.load(out)) == len(t)
  assert lines[0].startswith(f"reading {nb201_csv} (csv-nb201); cache ")
  text = loader.summarize(t)
  assert text.startswith("nb201: 15625 cells, adjacency (8, 8), ops (8, 7)")
  assert "cost (s)  n/a" in text and "imagenet16_test_200ep" in text
  loader.prepare(
    nb201_csv, dataset="imagenet16", cache_dir=str(tmp_path), refresh=True, log=lines.append
  )
  assert "(exists)" not in lines[-1]


def test_prepare_data_launcher(nb101_small, tmp_path):
  out = tmp_path / "launch.npz"
  env = dict(os.environ, PYTHONPATH=REPO, ARCH2VEC_CACHE=str(tmp_path / "cache"))
  proc = subprocess.run(
    [
      sys.executable,
      os.path.join(REPO, "launch", "prepare_data.py"),
      f"--source={nb101_small}",
      f"--out={out}",
      "--allow_subset",
      "--logtostderr",
    ],
    env=env,
    check=False,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  assert "nb101: 400 cells" in proc.stderr and "done in" in proc.stderr
  assert len(BenchmarkTable.load(out)) == 400


# ----------------------------------------------------------------------------- impossible values, shape gaps


def _column(path, name):
  with open(path) as f:
    return next(f).rstrip("\n").split(",").index(name)


def _set_field(path, line, name, value):
  col = _column(path, name)

  def edit(lines):
    fields = lines[line - 1].rstrip("\n").split(",")
    fields[col] = value
    lines[line - 1] = ",".join(fields) + "\n"
    return lines

  return edit


@pytest.mark.parametrize(
  "column, value, message",
  [
    ("cifar10_valid_12ep", "101.0", r"= 101.0 outside \[0.0, 100.0\]"),
    ("cifar10_valid_12ep", "-0.5", r"= -0.5 outside \[0.0, 100.0\]"),
    ("cifar10_test_200ep", "9.4e78", r"= 9.4e\+78 outside \[0.0, 100.0\]"),
    ("cifar10_test_200ep", "nan", "= nan is not a finite number"),
  ],
)
def test_nb201_csv_impossible_values(nb201_csv, tmp_path, column, value, message):
  bad = formats.write_csv_lines(
    nb201_csv, tmp_path / "bad.csv", _set_field(nb201_csv, 9, column, value)
  )
  with pytest.raises(ValueError, match=rf"^{bad}: line 9: column '{column}' {message}$"):
    csv_data.read_nb201_csv(bad)


def test_nb201_csv_duplicated_row(nb201_csv, tmp_path):
  bad = formats.write_csv_lines(
    nb201_csv, tmp_path / "dup.csv", lambda lines: lines[:7] + lines[6:]
  )
  arch = nb201.arch_strings()[5]
  with pytest.raises(
    ValueError, match=rf"^{bad}: cell {re.escape(arch)} appears twice: line 7 and line 8$"
  ):
    csv_data.read_nb201_csv(bad)
  with pytest.raises(ValueError, match="appears twice: line 7 and line 8"):
    csv_data.read_nb201_csv(bad, allow_subset=True)


def test_nb201_csv_too_short_unless_a_subset_is_asked_for(nb201_csv, tmp_path):
  short = formats.write_csv_lines(nb201_csv, tmp_path / "short.csv", lambda lines: lines[:-1])
  with pytest.raises(
    ValueError,
    match=rf"^{short}: 15624 cells, but nb201 has 15625; a truncated or partial file\? "
    r"\(pass allow_subset=True to read a subset\)$",
  ):
    csv_data.read_nb201_csv(short)
  with pytest.raises(ValueError, match="15624 cells, but nb201 has 15625"):
    loader.load_table(short, cache=False)
  t = csv_data.read_nb201_csv(short, allow_subset=True)
  assert len(t) == 15624 and t.meta["subset"] == {"cells": 15624, "of": 15625}
  assert "subset" not in csv_data.read_nb201_csv(nb201_csv).meta


@pytest.mark.parametrize(
  "column, value, message",
  [
    ("valid_acc_108ep", "-0.3", r"= -0.3 outside \[0.0, 1.0\]"),
    ("valid_acc_108ep", "inf", "= inf is not a finite number"),
    ("training_time_108ep", "-81.43", r"= -81.43 outside \[0.0, inf\]"),
    ("training_time_108ep", "inf", "= inf is not a finite number"),
  ],
)
def test_nb101_csv_impossible_values(nb101_small, tmp_path, column, value, message):
  bad = formats.write_csv_lines(
    nb101_small, tmp_path / "bad.csv", _set_field(nb101_small, 12, column, value)
  )
  with pytest.raises(ValueError, match=rf"^{bad}: line 12: column '{column}' {message}$"):
    csv_data.read_nb101_csv(bad, allow_subset=True)


def test_nb101_csv_duplicated_row(nb101_small, tmp_path):
  bad = formats.write_csv_lines(
    nb101_small, tmp_path / "dup.csv", lambda lines: lines[:5] + lines[4:]
  )
  with open(nb101_small) as f:
    digest = list(csv.DictReader(f))[3]["hash"]
  with pytest.raises(ValueError, match=rf"^{bad}: cell {digest} appears twice: line 5 and line 6$"):
    csv_data.read_nb101_csv(bad, allow_subset=True)


def test_nb101_csv_is_a_subset_only_when_asked(nb101_small, tmp_path):
  with pytest.raises(
    ValueError, match=rf"^{nb101_small}: 400 cells, but nb101 has 423624; a truncated or partial"
  ):
    csv_data.read_nb101_csv(nb101_small)
  with pytest.raises(ValueError, match="400 cells, but nb101 has 423624"):
    loader.load_table(nb101_small, cache=str(tmp_path))
  t = loader.load_table(nb101_small, cache=str(tmp_path), allow_subset=True)
  assert t.meta["subset"] == {"cells": 400, "of": 423624} and t.meta["num_runs"] == 1
  # allow_subset=False is the default, so the same cache entry.
  assert loader.cache_path(
    nb101_small, "csv-nb101", loader._options("csv-nb101", None, None, {"allow_subset": False})
  ) == loader.cache_path(nb101_small, "csv-nb101", loader._options("csv-nb101", None, None, {}))
