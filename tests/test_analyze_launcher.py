"""launch/analyze.py: every default comes from the analysis configs; a flag given changes its field only."""

import dataclasses
import json
import pathlib
import subprocess
import sys

import pytest

from arch2vec_jax.analysis import dngo_pipeline, pipeline
from arch2vec_jax.benchmarks import csv_data

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Loads the launcher (its flags), parses argv and prints the config it would run, as JSON.
_PRINT_CONFIG = """
import dataclasses, json, sys
sys.path.insert(0, {tests!r})
import repo_scripts
launcher = repo_scripts.load("launch/analyze.py")
launcher.FLAGS(["analyze.py", *sys.argv[1:]])
make = launcher._dngo_config if launcher.FLAGS.protocol == "dngo" else launcher._regression_config
print(json.dumps(dataclasses.asdict(make())))
"""


def _launcher_config(*args):
  proc = subprocess.run(
    [sys.executable, "-c", _PRINT_CONFIG.format(tests=str(ROOT / "tests")), *args],
    cwd=ROOT,
    capture_output=True,
    check=True,
    text=True,
    timeout=300,
  )
  return json.loads(proc.stdout.strip().splitlines()[-1])


def _as_json(config):
  return json.loads(json.dumps(dataclasses.asdict(config)))


@pytest.mark.parametrize("space", ["nb201", "nb101"])
def test_regression_defaults_are_the_config(space):
  got = _launcher_config(f"--space={space}", "--workdir=w")
  want = dataclasses.replace(pipeline.analysis_config(space), workdir="w")
  assert got == _as_json(want)
  assert got["benchmark"] == csv_data.SHARED_CSV[space]
  assert tuple(got["datasets"]) == (
    ("cifar10", "cifar100", "imagenet16") if space == "nb201" else ("cifar10",)
  )


def test_regression_flags_change_their_fields_only():
  got = _launcher_config(
    "--space=nb101",
    "--workdir=w",
    "--dataset=cifar10",
    "--train_sizes=10,20",
    "--supervised_epochs=3",
    "--tsne_datasets=",
    "--seed=7",
    "--supervised_lr=0.005",
  )
  base = pipeline.analysis_config("nb101")
  want = dataclasses.replace(
    base,
    workdir="w",
    datasets=("cifar10",),
    train_sizes=(10, 20),
    supervised=dataclasses.replace(base.supervised, epochs=3, lr=0.005),
    tsne_datasets=(),
    seed=7,
  )
  assert got == _as_json(want)


def test_dngo_defaults_and_flags():
  assert _launcher_config("--protocol=dngo", "--space=nb101") == _as_json(
    dngo_pipeline.dngo_analysis_config("nb101")
  )
  got = _launcher_config(
    "--protocol=dngo",
    "--space=nb201",
    "--dataset=cifar100",
    "--protocol_sizes=16,32",
    "--seed=2",
    "--target=test",
    "--threshold=0.5",
  )
  base = dngo_pipeline.dngo_analysis_config("nb201")
  want = dataclasses.replace(
    base,
    dataset="cifar100",
    target="test",
    protocol=dataclasses.replace(base.protocol, train_sizes=(16, 32), seed=2, threshold=0.5),
  )
  assert got == _as_json(want)
  assert got["encoder"] == "nb201" and got["out"] == "results/analysis/nb201_dngo"


def test_unknown_space_is_refused():
  with pytest.raises(ValueError, match="no analysis of space 'darts'"):
    pipeline.analysis_config("darts")
  with pytest.raises(ValueError, match="no DNGO protocol for space 'darts'"):
    dngo_pipeline.dngo_analysis_config("darts")


def test_bad_flag_values_are_refused():
  for args, message in [
    (("--protocol=dngo", "--target=train"), "target"),
    (("--space=nb201", "--workdir=w", "--supervised_lr=x"), "supervised_lr"),
  ]:
    with pytest.raises(subprocess.CalledProcessError) as error:
      _launcher_config(*args)
    assert message in error.value.stderr
