"""NB201 `.pth` (legacy and zip torch formats) and NATS-Bench `.pickle.pbz2` readers."""

import collections
import csv
import os
import pathlib
import pickle
import re
import shutil
import subprocess
import sys
import zipfile

import formats
import numpy as np
import pytest

from arch2vec_jax.benchmarks import csv_data, loader, nb201_pickle
from arch2vec_jax.spaces import nb201

SEEDS = (777, 888, 999)
PICK = (0, 1, 7, 100, 2024, 15624)
# (CSV prefix, NB201 dataset, valid split, test split) of the 12-epoch results in the files.
DATASETS = [
  ("cifar10", "cifar10-valid", "x-valid", "ori-test"),
  ("cifar100", "cifar100", "x-valid", "x-test"),
  ("imagenet16", "ImageNet16-120", "x-valid", "x-test"),
]
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST200 = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16": "ImageNet16-120"}


@pytest.fixture(scope="module")
def rows(shared_data):
  with open(shared_data / "nb201_accuracies.csv", newline="") as f:
    return list(csv.DictReader(f))


def _content(rows, hp12="less", hp200="full", all_datasets=True, weights=True):
  """NB201 benchmark content for the PICK cells whose seed means equal the CSV numbers.

  Seeds get accuracy +d, 0, -d around the CSV value; training epochs take 10 + seed rank
  seconds (12 epochs) and 20 s (200 epochs), so the cost is 12 * 11 = 132 s and 4000 s.
  """
  arch2infos = {}
  for i in PICK:
    r, arch = rows[i], rows[i]["arch_str"]
    less, full = {}, {}
    for k, seed in enumerate(SEEDS):
      d = (k - 1) * 0.37
      for prefix, ds, vs, ts in DATASETS if all_datasets else DATASETS[:1]:
        final = {vs: float(r[f"{prefix}_valid_12ep"]) + d, ts: float(r[f"{prefix}_test_12ep"]) - d}
        less[(ds, seed)] = formats.nb201_run(
          arch, ds, seed, 12, final, 10.0 + k, eval_epoch_time=0.5
        )
      for prefix, ds in TEST200.items():
        test_split = "ori-test" if ds == "cifar10" else "x-test"
        final = {test_split: float(r[f"{prefix}_test_200ep"]) + d}
        if ds != "cifar10":
          final["x-valid"] = 50.0
        w = None
        if weights:
          w = collections.OrderedDict(
            [
              ("stem.weight", formats.FakeTensor.of(np.full((4, 3), k, np.float32))),
              ("cells.0.bias", formats.FakeTensor.of(np.arange(5.0), "DoubleStorage")),
              ("steps", formats.FakeTensor.of(np.array(7), "LongStorage")),
            ]
          )
        full[(ds, seed)] = formats.nb201_run(arch, ds, seed, 200, final, 20.0, weights=w)
    arch2infos[i] = {
      hp12: formats.nb201_results(i, arch, less),
      hp200: formats.nb201_results(i, arch, full),
    }
  return {
    "meta_archs": [r["arch_str"] for r in rows],
    "arch2infos": arch2infos,
    "evaluated_indexes": list(PICK),
  }


@pytest.fixture(scope="module")
def files(tmp_path_factory, rows):
  d = tmp_path_factory.mktemp("nb201")
  obj = _content(rows)
  paths = {
    "legacy": d / "NAS-Bench-201-v1_0-e61699.pth",
    "zip": d / "NAS-Bench-201-zip.pth",
    "pbz2": d / "NATS-tss-v1_0-3ffb9.pickle.pbz2",
    "archive": d / "NATS-tss-v1_0-3ffb9-simple",
  }
  formats.write_torch_legacy(paths["legacy"], obj)
  formats.write_torch_zip(paths["zip"], obj)
  nats = _content(rows, "12", "200", weights=False)
  formats.write_nats_pbz2(paths["pbz2"], nats)
  formats.write_nats_archive(paths["archive"], nats["meta_archs"], nats["arch2infos"])
  return paths


@pytest.fixture(scope="module")
def csv_tables(shared_data):
  return {
    p: csv_data.read_nb201_csv(shared_data / "nb201_accuracies.csv", p) for p, _, _, _ in DATASETS
  }


def _check_against_csv(table, csv_table):
  idx = np.asarray(PICK)
  np.testing.assert_array_equal(table.index, idx)
  assert list(table.ids) == [csv_table.ids[i] for i in PICK]
  np.testing.assert_allclose(table.valid_acc, csv_table.valid_acc[idx], rtol=0, atol=1e-12)
  np.testing.assert_allclose(table.test_acc, csv_table.test_acc[idx], rtol=0, atol=1e-12)
  np.testing.assert_array_equal(table.adjacency, csv_table.adjacency[idx])
  np.testing.assert_array_equal(table.ops, csv_table.ops[idx])


@pytest.mark.parametrize("kind", ["legacy", "zip"])
def test_pth_matches_csv(files, csv_tables, kind):
  t = nb201_pickle.read_nb201_pth(
    files[kind],
    dataset="cifar10-valid",
    epochs=12,
    test_dataset="cifar10",
    test_epochs=200,
    allow_subset=True,
  )
  _check_against_csv(t, csv_tables["cifar10"])
  np.testing.assert_allclose(t.cost, 12 * 11.0)  # mean over seeds of summed train_times
  assert (
    t.space == "nb201" and t.meta["format"] == "nb201-pth" and t.meta["valid_split"] == "x-valid"
  )


@pytest.mark.parametrize("prefix, ds, vs, ts", DATASETS)
@pytest.mark.parametrize("kind", ["legacy", "pbz2", "archive"])
def test_all_datasets_through_loader(files, csv_tables, tmp_path, kind, prefix, ds, vs, ts):
  t = loader.load_table(files[kind], dataset=prefix, cache=str(tmp_path), allow_subset=True)
  _check_against_csv(t, csv_tables[prefix])
  assert (
    t.meta["dataset"] == ds
    and t.meta["test_dataset"] == TEST200[prefix]
    and t.meta["test_epochs"] == 200
  )


def test_twelve_epoch_test_split_and_simulated_cost(files, rows):
  t = nb201_pickle.read_nats_pbz2(
    files["pbz2"], dataset="cifar100", epochs=12, cost="simulated", allow_subset=True
  )
  want = [float(rows[i]["cifar100_test_12ep"]) / 100 for i in PICK]
  np.testing.assert_allclose(t.test_acc, want, atol=1e-12)
  np.testing.assert_allclose(t.cost, 12 * 11.0 + 0.5)  # + one epoch of x-valid time
  t200 = nb201_pickle.read_nats_pbz2(
    files["pbz2"], dataset="ImageNet16-120", epochs=200, allow_subset=True
  )
  np.testing.assert_allclose(t200.valid_acc, 0.5)
  np.testing.assert_allclose(t200.cost, 200 * 20.0)
  np.testing.assert_allclose(
    t200.test_acc, [float(rows[i]["imagenet16_test_200ep"]) / 100 for i in PICK], atol=1e-12
  )


def test_tensors_become_placeholders_without_reading_storage(files, tmp_path):
  for kind in ("legacy", "zip"):
    obj = nb201_pickle.load_torch_file(files[kind])
    w = obj["arch2infos"][7]["full"]["all_results"][("cifar100", 888)]["net_state_dict"]
    assert isinstance(w, collections.OrderedDict) and list(w) == [
      "stem.weight",
      "cells.0.bias",
      "steps",
    ]
    t = w["stem.weight"]
    assert isinstance(t, nb201_pickle.TensorRef) and t.shape == (4, 3) and t.stride == (3, 1)
    assert (
      t.storage.storage_type == "FloatStorage"
      and t.storage.numel == 12
      and t.storage.location == "cpu"
    )
    assert w["cells.0.bias"].storage.storage_type == "DoubleStorage" and w["steps"].shape == ()
  # Storage bytes are never read: drop them and the files still load.
  legacy = pathlib.Path(files["legacy"]).read_bytes()
  cut = tmp_path / "no_storages.pth"
  cut.write_bytes(legacy[: _end_of_object_pickle(legacy)])
  assert nb201_pickle.read_nb201_pth(
    cut, test_epochs=200, test_dataset="cifar10", allow_subset=True
  ).index.tolist() == list(PICK)
  slim = tmp_path / "slim.pth"
  with zipfile.ZipFile(files["zip"]) as src, zipfile.ZipFile(slim, "w") as dst:
    for name in src.namelist():
      if "/data/" not in name:
        dst.writestr(name, src.read(name))
  assert len(nb201_pickle.read_nb201_pth(slim, allow_subset=True)) == len(PICK)


def _end_of_object_pickle(data: bytes) -> int:
  """Offset where the legacy file's object pickle ends (storage keys and storages follow)."""
  import io

  f = io.BytesIO(data)
  for _ in range(3):
    pickle.load(f)
  nb201_pickle._TorchUnpickler(f).load()
  keys = pickle.load(io.BytesIO(data[f.tell() :]))
  assert keys and all(isinstance(k, str) for k in keys)
  return f.tell()


def test_plain_pickle_and_progress(tmp_path, rows):
  path = tmp_path / "plain.pth"
  path.write_bytes(pickle.dumps(_content(rows, weights=False), protocol=4))
  calls = []
  t = nb201_pickle.read_nb201_pth(path, progress=lambda *a: calls.append(a), allow_subset=True)
  assert len(t) == len(PICK) and calls and calls[0][2] == os.path.getsize(path)


def test_unpickler_never_runs_code(tmp_path):
  marker = tmp_path / "pwned"
  cmd = f"touch {marker}".encode()
  # Protocol 2: GLOBAL os.system, BINUNICODE cmd, TUPLE1, REDUCE, STOP.
  payload = b"\x80\x02cos\nsystem\nX" + len(cmd).to_bytes(4, "little") + cmd + b"\x85R."
  path = tmp_path / "evil.pth"
  path.write_bytes(payload)
  obj = nb201_pickle.load_torch_file(path)
  assert isinstance(obj, nb201_pickle.OpaqueObject) and not marker.exists()
  assert type(obj).__module__ == "os" and type(obj).__qualname__ == "system"
  with pytest.raises(ValueError, match=r"top level is a system, not a dict"):
    nb201_pickle.read_nb201_pth(path)


# ----------------------------------------------------------------------------- errors


def _write(tmp_path, obj, kind="legacy"):
  path = tmp_path / ("bad.pth" if kind != "pbz2" else "bad.pickle.pbz2")
  {
    "legacy": formats.write_torch_legacy,
    "zip": formats.write_torch_zip,
    "pbz2": formats.write_nats_pbz2,
  }[kind](path, obj)
  return path


def _edit(rows, fn):
  obj = _content(rows, weights=False)
  fn(obj)
  return obj


@pytest.mark.parametrize(
  "fn, message",
  [
    (lambda o: o.pop("arch2infos"), r"missing top level\['arch2infos'\]"),
    (lambda o: o.pop("meta_archs"), r"missing top level\['meta_archs'\]"),
    (lambda o: o["arch2infos"].pop(100), r"missing \['arch2infos'\]\[100\]"),
    (lambda o: o["evaluated_indexes"].append(20000), r"missing \['meta_archs'\]\[20000\]"),
    (
      lambda o: o["arch2infos"][7].pop("less"),
      r"missing \['arch2infos'\]\[7\]\['12'\] \(the 12-epoch schedule; has \['full'\]\)",
    ),
    (
      lambda o: o["arch2infos"][7]["less"]["dataset_seed"].pop("cifar10-valid"),
      r"missing \['arch2infos'\]\[7\]\['less'\]\['dataset_seed'\]\['cifar10-valid'\]",
    ),
    (
      lambda o: o["arch2infos"][7]["less"]["all_results"].pop(("cifar10-valid", 888)),
      r"missing \['arch2infos'\]\[7\]\['less'\]\['all_results'\]\[\('cifar10-valid', 888\)\]",
    ),
    (
      lambda o: o["arch2infos"][1]["less"]["all_results"][("cifar10-valid", 999)][
        "eval_acc1es"
      ].pop("x-valid@11"),
      r"missing \['arch2infos'\]\[1\]\['less'\]\['all_results'\]\[\('cifar10-valid', 999\)\]\['eval_acc1es'\]\['x-valid@11'\]",
    ),
    (
      lambda o: o["arch2infos"][1]["less"]["all_results"][("cifar10-valid", 999)][
        "eval_acc1es"
      ].update({"x-valid@11": "91"}),
      r"\['eval_acc1es'\]\['x-valid@11'\] is a str, not a number",
    ),
    (
      lambda o: o["meta_archs"].reverse(),
      r"\['meta_archs'\]\[0\] is .*, which is cell 15624 of NAS-Bench-201",
    ),
    (lambda o: o.update(meta_archs=o["meta_archs"][:50]), r"missing \['meta_archs'\]\[100\]"),
  ],
)
@pytest.mark.parametrize("kind", ["legacy", "zip", "pbz2"])
def test_wrong_structure_names_file_and_key(tmp_path, rows, fn, message, kind):
  obj = _edit(rows, fn)
  if kind == "pbz2":  # NATS keys
    for v in obj.get("arch2infos", {}).values():
      for old, new in (("less", "12"), ("full", "200")):
        if old in v:
          v[new] = v.pop(old)
    message = message.replace(r"\['less'\]", r"\['12'\]").replace(
      r"has \['full'\]", r"has \['200'\]"
    )
  path = _write(tmp_path, obj, kind)
  read = nb201_pickle.read_nats_pbz2 if kind == "pbz2" else nb201_pickle.read_nb201_pth
  with pytest.raises(ValueError, match=rf"^{path}: .*{message}"):
    read(path, dataset="cifar10-valid", epochs=12, test_dataset="cifar10", test_epochs=200)


def test_v1_0_has_no_twelve_epoch_cifar100(tmp_path, rows):
  path = _write(tmp_path, _content(rows, all_datasets=False, weights=False))
  with pytest.raises(
    ValueError,
    match=r"missing \['arch2infos'\]\[0\]\['less'\]\['dataset_seed'\]\['cifar100'\] \(has \['cifar10-valid'\]\)",
  ):
    loader.load_table(path, dataset="cifar100", cache=False, allow_subset=True)
  t = loader.load_table(
    path, dataset="cifar100", epochs=200, cache=False, allow_subset=True
  )  # arch2vec's v1_0 protocol for CIFAR-100
  np.testing.assert_allclose(t.valid_acc, 0.5)


@pytest.mark.parametrize(
  "data, message",
  [
    (b"", "not a readable torch file"),
    (b"garbage that is not a pickle", "not a readable torch file"),
    (
      pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(999, protocol=2),
      "torch legacy protocol version 999, expected 1001",
    ),
    (
      pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2),
      "not a readable torch file",
    ),
  ],
)
def test_unreadable_torch_files(tmp_path, data, message):
  path = tmp_path / "x.pth"
  path.write_bytes(data)
  with pytest.raises(ValueError, match=rf"^{path}: {message}"):
    nb201_pickle.read_nb201_pth(path)


def test_zip_without_data_pkl(tmp_path):
  path = tmp_path / "script.pth"
  with zipfile.ZipFile(path, "w") as zf:
    zf.writestr("archive/constants.pkl", b"x")
  with pytest.raises(ValueError, match=rf"^{path}: zip archive without <name>/data.pkl"):
    nb201_pickle.load_torch_file(path)


def test_not_bz2(tmp_path):
  path = tmp_path / "x.pickle.pbz2"
  path.write_bytes(b"not bz2 at all")
  with pytest.raises(ValueError, match=rf"^{path}: not a readable .pickle.pbz2"):
    nb201_pickle.read_nats_pbz2(path)


def test_dataset_names():
  assert nb201_pickle.canonical_dataset("imagenet16") == "ImageNet16-120"
  assert nb201_pickle.canonical_dataset("cifar10-valid") == "cifar10-valid"
  with pytest.raises(ValueError, match="unknown NAS-Bench-201 dataset 'svhn'"):
    nb201_pickle.canonical_dataset("svhn")
  assert nb201.index_of(nb201.arch_strings()[42]) == 42


# ----------------------------------------------------------------------------- impossible values, shape gaps

KINDS = ["legacy", "zip", "pbz2", "archive"]
_HP = {
  "legacy": ("less", "full"),
  "zip": ("less", "full"),
  "pbz2": ("12", "200"),
  "archive": ("12", "200"),
}


def _write_kind(tmp_path, obj, kind):
  if kind == "archive":
    path = tmp_path / "archive"
    formats.write_nats_archive(path, obj["meta_archs"], obj["arch2infos"])
    return path
  return _write(tmp_path, obj, kind)


def _read_kind(path, kind, **kwargs):
  read = {
    "legacy": nb201_pickle.read_nb201_pth,
    "zip": nb201_pickle.read_nb201_pth,
    "pbz2": nb201_pickle.read_nats_pbz2,
    "archive": nb201_pickle.read_nats_archive,
  }[kind]
  return read(
    path, dataset="cifar10-valid", epochs=12, test_dataset="cifar10", test_epochs=200, **kwargs
  )


@pytest.mark.parametrize(
  "schedule, dataset, split, accuracy, train_time, message",
  [
    (
      0,
      "cifar10-valid",
      "x-valid",
      9.4e78,
      None,
      r"accuracy \(percent\) = 9.4e\+78 outside \[0.0, 100.0\]",
    ),
    (
      0,
      "cifar10-valid",
      "x-valid",
      -81.43,
      None,
      r"accuracy \(percent\) = -81.43 outside \[0.0, 100.0\]",
    ),
    (
      0,
      "cifar10-valid",
      "x-valid",
      100.5,
      None,
      r"accuracy \(percent\) = 100.5 outside \[0.0, 100.0\]",
    ),
    (
      0,
      "cifar10-valid",
      "x-valid",
      float("nan"),
      None,
      r"accuracy \(percent\) = nan is not a finite number",
    ),
    (1, "cifar10", "ori-test", -0.3, None, r"accuracy \(percent\) = -0.3 outside \[0.0, 100.0\]"),
    (0, "cifar10-valid", None, None, -3.0, r"training time \(s\) = -36.0 outside \[0.0, inf\]"),
    (
      0,
      "cifar10-valid",
      None,
      None,
      float("inf"),
      r"training time \(s\) = inf is not a finite number",
    ),
  ],
)
@pytest.mark.parametrize("kind", KINDS)
def test_impossible_values_name_file_key_and_value(
  tmp_path, rows, kind, schedule, dataset, split, accuracy, train_time, message
):
  hp = _HP[kind]
  obj = _content(rows, *hp, weights=False)
  where = formats.set_nb201_run(obj, 7, hp[schedule], dataset, 888, split, accuracy, train_time)
  path = _write_kind(tmp_path, obj, kind)
  with pytest.raises(ValueError) as e:
    _read_kind(path, kind, allow_subset=True)
  assert str(e.value).startswith(f"{path}: {where}: ")
  assert re.search(rf": {message}$", str(e.value)), str(e.value)


@pytest.mark.parametrize("kind", ["legacy", "zip", "pbz2"])
def test_a_cell_listed_twice(tmp_path, rows, kind):
  obj = _content(rows, *_HP[kind], weights=False)
  obj["evaluated_indexes"].append(7)
  path = _write_kind(tmp_path, obj, kind)
  with pytest.raises(
    ValueError,
    match=rf"^{path}: cell {re.escape(rows[7]['arch_str'])} appears twice: "
    r"\['evaluated_indexes'\]\[2\] = 7 and \['evaluated_indexes'\]\[6\] = 7$",
  ):
    _read_kind(path, kind, allow_subset=True)


def test_a_cell_file_twice_in_an_archive(tmp_path, files, rows):
  folder = tmp_path / "archive"
  shutil.copytree(files["archive"], folder)
  shutil.copy(folder / "000007.pickle.pbz2", folder / "7.pickle.pbz2")
  with pytest.raises(
    ValueError,
    match=rf"^{folder}: cell {re.escape(rows[7]['arch_str'])} appears twice: "
    r"file 000007.pickle.pbz2 = 7 and file 7.pickle.pbz2 = 7$",
  ):
    _read_kind(folder, "archive", allow_subset=True)


@pytest.mark.parametrize("kind", KINDS)
def test_size_of_the_space_unless_a_subset_is_asked_for(files, tmp_path, kind):
  with pytest.raises(
    ValueError,
    match=rf"^{files[kind]}: 6 cells, but nb201 has 15625; a truncated or partial "
    r"file\? \(pass allow_subset=True to read a subset\)$",
  ):
    _read_kind(files[kind], kind)
  with pytest.raises(ValueError, match="6 cells, but nb201 has 15625"):
    loader.load_table(files[kind], dataset="cifar10", cache=str(tmp_path))
  t = _read_kind(files[kind], kind, allow_subset=True)
  assert t.meta["subset"] == {"cells": 6, "of": 15625} and t.meta["num_runs"] == 3


def test_cells_may_have_two_or_three_seeds(tmp_path, rows):
  # NAS-Bench-201 has 2 seeds for some cells and 3 for others (the official API averages what is there).
  obj = _content(rows, weights=False)
  results = obj["arch2infos"][100]["less"]
  results["dataset_seed"]["cifar10-valid"].remove(999)
  del results["all_results"][("cifar10-valid", 999)]
  t = _read_kind(_write(tmp_path, obj), "legacy", allow_subset=True)
  assert t.meta["num_runs"] == {"min": 2, "max": 3}


_BOMB_CHILD = """
import resource, sys, time
from arch2vec_jax.benchmarks import nb201_pickle
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
  nb201_pickle.read_nats_pbz2(sys.argv[1])
  print("LOADED")
except ValueError as e:
  print("ERROR", e)
print("SECONDS", time.perf_counter() - start)
print("RSS_MB", (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def test_bz2_bomb_stops_early_with_bounded_memory(tmp_path):
  path = tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2"
  size = formats.write_bz2_bomb(path, size=1 << 30)  # 1.2 KB -> 1 GiB
  assert size < 2000
  env = dict(os.environ, PYTHONPATH=REPO)
  proc = subprocess.run(
    [sys.executable, "-c", _BOMB_CHILD, str(path)],
    capture_output=True,
    text=True,
    check=False,
    env=env,
    timeout=300,
  )
  assert proc.returncode == 0, proc.stderr
  out = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
  assert out["ERROR"].startswith(
    f"{path}: decompressed data passed the cap of 67,108,864 bytes (the file has {size:,} bytes;"
  ), out
  assert "a bz2 bomb" in out["ERROR"]
  assert float(out["RSS_MB"]) < 300, out
  assert float(out["SECONDS"]) < 30, out


def test_pbz2_cap_is_a_ratio_of_the_file_size(tmp_path, rows):
  assert (
    nb201_pickle.pbz2_limit(1000) == 64 << 20 and nb201_pickle.pbz2_limit(10 << 20) == 1000 << 20
  )
  path = _write(tmp_path, _content(rows, "12", "200", weights=False), "pbz2")
  assert len(_read_kind(path, "pbz2", allow_subset=True)) == len(PICK)
  with pytest.raises(
    nb201_pickle.DecompressionLimitError,
    match=rf"^{path}: decompressed data passed the cap of "
    "10,000 bytes",
  ):
    nb201_pickle.load_pbz2(path, max_bytes=10_000)
