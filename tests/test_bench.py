"""`arch2vec_jax.bench` and launch/benchmark.py: a tiny benchmark in process and end to end, generated flags.

Tiny runs: 256 NB201 cells, batch 32, one timed epoch, one epoch's metrics, embeddings of the 15,625
cells, random search (2 seeds x 5 queries) on the first 300 cells of the shared
NB201 table with this run's embeddings. The figures are the machine's; the
tests check the keys and that each figure is positive and consistent.
"""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from absl import flags

from arch2vec_jax import bench, cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOP_KEYS = [
  "command",
  "machine",
  "load_average_at_start",
  "space",
  "cells_per_epoch",
  "training_devices",
  "matmul_rates",
  "training",
  "metrics_s",
  "metrics_first_s",
  "metrics_breakdown_s",
  "embedding",
  "search",
  "peak_host_rss_mib",
  "peak_device_mib",
  "load_average_at_end",
]
TRAINING_KEYS = {
  "batch_size",
  "devices",
  "flops_per_graph",
  "gflops",
  "compile_s",
  "epoch_s",
  "graphs_per_s",
  "steps_per_s",
  "program_memory_mib",
  "device_peak_mib",
  "fraction_of_peak",
}


@pytest.fixture(scope="module")
def table(shared_data, tmp_path_factory):
  """The first 300 cells of the NB201 table (csv)."""
  path = tmp_path_factory.mktemp("bench_table") / "nb201_300.csv"
  with open(shared_data / "nb201_accuracies.csv") as f:
    path.write_text("".join(next(f) for _ in range(301)))
  return path


def _tiny(table, out):
  return bench.BenchConfig(
    cells=256,
    batch_sizes=(32,),
    epochs=1,
    parts=("training", "metrics", "embedding", "profile", "search"),
    search_methods=("rs",),
    search_seeds=(2,),
    search_queries=5,
    search_benchmark=str(table),
    search_embeddings=str(out.parent / "absent.npz"),  # this run's embeddings
    out=str(out),
  )


@pytest.fixture(scope="module")
def tiny_run(table, tmp_path_factory):
  out = tmp_path_factory.mktemp("bench_run") / "result.json"
  lines = []
  config = _tiny(table, out)
  return config, bench.run_benchmark(config, log=lines.append), lines, out


def _check(result, config):
  assert list(result) == TOP_KEYS
  peak = result["matmul_rates"]["peak_gflops"]
  assert peak > 0 and result["machine"]["backend"] == "cpu"
  assert result["space"] == "nb201" and result["cells_per_epoch"] == config.cells
  (row,) = result["training"]
  assert set(row) == TRAINING_KEYS | {"profile"} and row["batch_size"] == 32
  prof = row["profile"]  # XLA's trace of one epoch: the matmuls hold most of XLA's FLOP count
  assert 0 < prof["categories"]["matmul"]["share"] < 1
  epoch_flops = row["flops_per_graph"] * config.cells
  assert 0.5 * epoch_flops < prof["matmul_flops_per_call"] <= 1.01 * epoch_flops
  assert prof["matmul_fraction_of_peak"] == pytest.approx(prof["matmul_gflops"] / peak)
  assert prof["fraction_if_only_matmuls"] > 0
  for key in ("flops_per_graph", "gflops", "compile_s", "graphs_per_s", "steps_per_s"):
    assert row[key] > 0, key
  assert len(row["epoch_s"]) == config.epochs and min(row["epoch_s"]) > 0
  assert row["fraction_of_peak"] == pytest.approx(row["gflops"] / peak)
  assert row["graphs_per_s"] == pytest.approx(config.cells / min(row["epoch_s"]))
  assert 0 < result["metrics_s"] and set(result["metrics_breakdown_s"]) >= {"recon_s"}
  emb = result["embedding"]
  assert emb["cells"] == 15625 and emb["seconds"] > 0 and emb["cells_per_s"] > 0
  search = result["search"]
  assert search["dataset"] == "cifar10" and search["queries"] == 5
  assert search["embeddings"].startswith("this benchmark's model")
  (srow,) = search["rows"]
  assert srow["method"] == "rs" and srow["seeds"] == 2 and srow["seed_queries_per_s"] > 0
  assert srow["compile_s"] > 0 and 0 < srow["final_test_mean"] <= 100
  assert result["peak_host_rss_mib"] > 0


def test_run_benchmark_tiny(tiny_run):
  config, result, lines, out = tiny_run
  _check(result, config)
  assert result["command"] == bench.command_for(config)
  assert json.loads(out.read_text()) == json.loads(json.dumps(result))
  table = "\n".join(lines)
  assert "| profile | batch 32 | matmuls " in table and "    profile: matmul " in table
  assert "| training | batch 32, 1 device(s) |" in table and "| search rs | 2 seeds x 5" in table
  assert lines[-1] == f"wrote {out}"


def _launch(*args):
  """launch/benchmark.py with `args` in a subprocess on the CPU (the completed process)."""
  return subprocess.run(
    [sys.executable, str(ROOT / "launch" / "benchmark.py"), *args],
    cwd=ROOT,
    capture_output=True,
    check=False,
    text=True,
    timeout=600,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )


def test_launcher_end_to_end(tiny_run, table, tmp_path):
  """launch/benchmark.py in a subprocess: the same keys as the library's result."""
  config, _, _, _ = tiny_run
  out = tmp_path / "x.json"
  config = dataclasses.replace(config, search_embeddings=str(tmp_path / "absent.npz"), out=str(out))
  args = [f"--{name}={value}" for name, value in _flag_args(config).items()]
  proc = _launch(*args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads(out.read_text())
  _check(result, config)
  assert result["command"] == "python launch/benchmark.py " + " ".join(args)
  assert "| embedding | 15,625 cells |" in proc.stdout and f"wrote {out}" in proc.stdout


def _flag_args(config):
  """{flag: text} for the fields that differ from the defaults."""
  default, out = bench.BenchConfig(), {}
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    if value != getattr(default, f.name):
      out[f.name] = ",".join(map(str, value)) if isinstance(value, tuple) else value
  return out


def test_launcher_flags_are_the_generated_ones():
  """`launch/benchmark.py --helpxml`: one flag per BenchConfig field, with its default."""
  proc = subprocess.run(
    [sys.executable, str(ROOT / "launch" / "benchmark.py"), "--helpxml"],
    cwd=ROOT,
    capture_output=True,
    check=False,  # absl exits 1 after --helpxml
    text=True,
    timeout=300,
  )
  shown = {
    f.findtext("name"): f.findtext("default") for f in ET.fromstring(proc.stdout).iter("flag")
  }
  config = bench.BenchConfig()
  for field in dataclasses.fields(config):
    default = getattr(config, field.name)
    want = (
      None
      if default is None
      else ",".join(map(str, default))
      if isinstance(default, tuple)
      else str(default)
    )
    assert (shown[field.name] or None) == want, (field.name, shown[field.name], default)
  assert shown["batch_sizes"] == "32,256,1024,4096" and shown["parts"] == ",".join(bench.PARTS)
  for name in ("cpu_devices", "distributed", "debug"):
    assert name in shown


def test_generated_flags_parse_back_to_the_config():
  fv = flags.FlagValues()
  names = cli.define_config_flags(bench.BenchConfig(), fv)
  assert names == [f.name for f in dataclasses.fields(bench.BenchConfig)]
  docs = cli.field_help(bench.BenchConfig)
  assert all(fv[n].help.endswith(docs[n]) and docs[n] for n in names)
  fv(["prog"])
  assert cli.config_from_flags(bench.BenchConfig(), fv) == bench.BenchConfig()
  fv.unparse_flags()
  fv(["prog", "--batch_sizes=32,64", "--search_seeds=3", "--parts=training", "--space=nb101"])
  got = cli.config_from_flags(bench.BenchConfig(), fv)
  want = bench.BenchConfig(
    batch_sizes=(32, 64), search_seeds=(3,), parts=("training",), space="nb101"
  )
  assert got == want and type(got.batch_sizes[0]) is int
  fv.unparse_flags()
  fv(["prog", "--batch_sizes=32,x"])
  with pytest.raises(ValueError, match="--batch_sizes must be a list of int"):
    cli.config_from_flags(bench.BenchConfig(), fv)


def test_config_checks():
  with pytest.raises(ValueError, match="--parts search needs --space nb201"):
    bench.BenchConfig(space="nb101")
  bench.BenchConfig(space="nb101", parts=("training", "embedding"))
  with pytest.raises(ValueError, match="--parts profile needs training"):
    bench.BenchConfig(parts=("profile", "embedding"))
  with pytest.raises(ValueError, match=r"--parts: unknown \['bogus'\]"):
    bench.BenchConfig(parts=("training", "bogus"))
  with pytest.raises(ValueError, match="--search_queries must be >= 1"):
    bench.BenchConfig(search_queries=0)
  assert bench.command_for(bench.BenchConfig()) == "python launch/benchmark.py"
  assert bench.command_for(bench.BenchConfig(batch_sizes=(32,), cells=8)) == (
    "python launch/benchmark.py --batch_sizes=32 --cells=8"
  )


def test_launcher_bad_flag_is_a_one_line_usage_error():
  proc = _launch("--space=nb101")
  errors = [line for line in proc.stderr.splitlines() if "error:" in line]
  assert proc.returncode == 2 and errors == [
    "benchmark.py: error: --parts search needs --space nb201 (the search runs on the NB201 table)"
  ], proc.stderr
  assert "matmul" not in proc.stdout
