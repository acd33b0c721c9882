"""analysis.pipeline end to end on the first 300 cells of the shared NB101 table, search traces included.

(The NB201 path reads the whole table; `test_analysis_protocol` runs it. The NB101 path accepts a
subset, so a head of nb101_subset.csv makes a tiny complete run.)
"""

import json
import pathlib

import numpy as np
import pytest

from arch2vec_jax import embed, model
from arch2vec_jax.analysis import pipeline, supervised
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import experiment, trace_stats

CELLS = 300


@pytest.fixture(scope="module")
def run(shared_data, tmp_path_factory):
  """(config, analysis.json content, the search's traces folder) of one tiny run."""
  root = tmp_path_factory.mktemp("pipeline")
  head = root / "nb101_head.csv"
  with open(shared_data / "nb101_subset.csv") as f:
    head.write_text("".join(next(f) for _ in range(CELLS + 1)))
  table = csv_data.read_nb101_csv(head, verify_hash=False, allow_subset=True)
  workdir = root / "wd"
  workdir.mkdir()
  emb = np.random.default_rng(0).normal(size=(len(table), 16)).astype(np.float32)
  embed.save_embeddings(workdir / "embeddings.npz", emb, table.ids)
  # A search experiment on the same cells, where the pipeline looks for it.
  search = root / "search" / "nb101" / "cifar10"
  problem = experiment.load_problem("nb101", str(head), None, None, ("rs",))
  experiment.run_experiment(
    problem, ("rs",), 6, experiment.make_budget(problem, 15), search, log=lambda _: None
  )
  config = pipeline.AnalysisConfig(
    space="nb101",
    workdir=str(workdir),
    benchmark=str(head),
    datasets=("cifar10",),
    out=str(root / "out"),
    train_sizes=(60,),
    num_splits=2,
    models=("blr",),
    encodings=("arch2vec", "supervised", "onehot"),
    supervised_sizes=(60,),
    smooth_cells=80,
    search_results=str(root / "search"),
    tsne_datasets=(),
    supervised=supervised.SupervisedConfig(
      epochs=1, min_steps=2, max_steps=2, model=model.ModelConfig(hidden=16, layers=2)
    ),
  )
  out = pipeline.run_analysis(config, command="test", log=None)
  return config, out, search


def test_writes_the_json_and_the_pictures(run):
  config, out, _ = run
  out_dir = config.out
  on_disk = json.loads((pathlib.Path(out_dir) / "analysis.json").read_text())
  assert on_disk["command"] == "test" and set(on_disk["datasets"]) == {"cifar10"}
  assert on_disk["datasets"] == json.loads(json.dumps(out["datasets"]))
  pngs = {p.name for p in pathlib.Path(out_dir).glob("*.png")}
  assert {"regret_cifar10.png", "regret_cdf_cifar10.png", "smoothness_cifar10.png"} <= pngs


def test_predictive_records_every_encoding_and_split(run):
  _, out, _ = run
  text = json.dumps(out["datasets"]["cifar10"])
  for encoding in ("arch2vec", "supervised", "onehot"):
    assert f'"{encoding}"' in text
  assert "NaN" not in text.replace('"NaN"', "")  # finite metrics


def test_search_regret_is_the_traces_own(run):
  _, out, search = run
  summary = json.loads((search / "summary.json").read_text())
  trace, _ = experiment.load_trace(search / "traces" / "rs.npz")
  optimum = summary["optimum"] / 100.0
  final = trace_stats.final_regret(trace._asdict(), optimum, "best_valid")
  got = out["search"]["cifar10"]
  assert got["optimum"] == pytest.approx(optimum)
  assert got["final_regret"]["rs"]["n"] == 6
  assert got["final_regret"]["rs"]["mean"] == pytest.approx(float(np.mean(final)))
  # The last slot of a query budget: the summary's final mean regret, in percent.
  assert got["final_regret"]["rs"]["mean"] == pytest.approx(
    summary["methods"]["rs"]["final"]["regret_mean"], abs=1e-9
  )
