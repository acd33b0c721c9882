"""Launchers report errors as one line (`cli.run`), the traceback only with --debug, and check outputs first;
launch/pretrain.py's flags are generated from the config."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from absl import flags

from arch2vec_jax import cli, configs

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _launch(*args):
  proc = subprocess.run(
    [sys.executable, str(ROOT / "launch" / "pretrain.py"), *args],
    cwd=ROOT,
    capture_output=True,
    check=False,
    text=True,
    timeout=300,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
  )
  errors = [line for line in proc.stderr.splitlines() if "error:" in line]
  return proc, errors


@pytest.mark.parametrize(
  "args, rc, message",
  [
    (["--batch_size=0"], 2, "pretrain.py: error: batch_size must be >= 1, got 0"),
    (["--seeds=0,x"], 2, "pretrain.py: error: --seeds must be integers"),
  ],
)
def test_bad_values_are_one_line_usage_errors(tmp_path, args, rc, message):
  proc, errors = _launch("--space=nb201", f"--workdir={tmp_path / 'w'}", *args)
  assert proc.returncode == rc and len(errors) == 1 and errors[0].startswith(message), proc.stderr
  assert (
    "Traceback" not in proc.stderr and "--space" not in proc.stderr + proc.stdout
  )  # no help dump


def test_unusable_workdir_is_found_before_any_work(tmp_path):
  afile = tmp_path / "afile"
  afile.write_text("x")
  proc, errors = _launch("--space=nb201", f"--workdir={afile}")
  assert proc.returncode == 1 and errors == [
    f"pretrain.py: error: workdir {afile} is a file, not a folder"
  ]
  assert "epoch" not in proc.stdout and "Traceback" not in proc.stderr
  proc, _ = _launch("--space=nb201", f"--workdir={afile}", "--debug")
  assert (
    proc.returncode != 0 and "Traceback" in proc.stderr and "is a file, not a folder" in proc.stderr
  )


def test_launcher_flags_are_the_generated_ones():
  """`launch/pretrain.py --helpxml`: one flag per config field, with the config's default."""
  proc, _ = _launch("--helpxml")
  root = ET.fromstring(proc.stdout)
  shown = {f.findtext("name"): f.findtext("default") for f in root.iter("flag")}
  fv = flags.FlagValues()  # one flag per config field (tests/test_configs.py checks that)
  for name in cli.define_config_flags(configs.pretrain_config(), fv):
    default = fv[name].default
    want = (
      None
      if default is None
      else str(default).lower()
      if isinstance(default, bool)
      else str(default)
    )
    assert (shown[name] or None) == want, (name, shown[name], default)
  for name in ("workdir", "variant", "seeds", "resume", "overwrite", "cpu_devices", "debug"):
    assert name in shown


def test_launcher_tiny_variant_end_to_end(tmp_path):
  """`--variant=tiny`: the flags not given take the tiny config's values."""
  work = tmp_path / "w"
  proc, _ = _launch("--space=nb201", "--variant=tiny", "--epochs=1", f"--workdir={work}")
  assert proc.returncode == 0, proc.stderr[-2000:]
  metrics = json.loads((work / "metrics.json").read_text())
  want = dataclasses.replace(configs.pretrain_config("nb201", "tiny"), epochs=1).to_dict()
  assert metrics["config"] == json.loads(json.dumps(want))
  assert metrics["command"].endswith(f"--space=nb201 --epochs=1 --workdir={work} --variant=tiny")
  assert len(metrics["epochs"]) == 1 and (work / "embeddings.npz").exists()
