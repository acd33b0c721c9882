"""Launchers report errors as one line (`cli.run`), the traceback only with --debug, and check outputs first."""

import os
import pathlib
import subprocess
import sys

import pytest

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
