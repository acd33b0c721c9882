"""launch/search.py and `search.experiment`: files written, summaries that agree with the traces, clear errors.

Real data: the first 300 cells of ../shared/data/nb201_accuracies.csv (and 200 of
nb101_subset.csv), embeddings from a tiny random encoder (a fixed random
projection of each cell's one-hot operations). Searches are small (few seeds,
20 queries, tiny RL / BO configurations): compiles dominate.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import repo_scripts
from absl import app, flags
from absl.testing import flagsaver

from arch2vec_jax import cli, embed, pretrained
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import dngo, experiment, reinforce
from arch2vec_jax.search import env as env_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
search_launcher = repo_scripts.load("launch/search.py")
FLAGS = flags.FLAGS

NUM_CELLS, SEEDS, QUERIES = 300, 4, 20


def _head(src, dst, rows):
  with open(src) as f:
    lines = [next(f) for _ in range(rows + 1)]
  dst.write_text("".join(lines))
  return dst


def _random_encoder(ids, adjacency, ops, dim=16, seed=0):
  """A tiny random encoder: a fixed random projection of the flattened one-hot operations."""
  proj = np.random.default_rng(seed).normal(size=(ops.shape[1] * ops.shape[2], dim))
  return (
    ops.reshape(len(ops), -1) @ proj + 0.01 * adjacency.reshape(len(ops), -1).sum(1, keepdims=True)
  ).astype(np.float32)


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
  """Small real tables and their embeddings (in a shuffled order, with cells the table does not have)."""
  folder = tmp_path_factory.mktemp("search_data")
  old = os.environ.get("ARCH2VEC_CACHE")
  os.environ["ARCH2VEC_CACHE"] = str(folder / "cache")
  nb201_csv = _head(
    shared_data / "nb201_accuracies.csv", folder / "nb201_small.csv", NUM_CELLS + 50
  )
  table = csv_data.read_nb201_csv(nb201_csv, "cifar100", allow_subset=True)
  emb = _random_encoder(table.ids, table.adjacency, table.ops)
  order = np.random.default_rng(1).permutation(len(table))
  embed.save_embeddings(folder / "emb201.npz", emb[order], table.ids[order])
  # The table searched: the first NUM_CELLS cells (the embeddings file has 50 more).
  _head(shared_data / "nb201_accuracies.csv", folder / "nb201.csv", NUM_CELLS)
  nb101_csv = _head(shared_data / "nb101_subset.csv", folder / "nb101.csv", 200)
  t101 = csv_data.read_nb101_csv(nb101_csv, allow_subset=True)
  embed.save_embeddings(
    folder / "emb101.npz", _random_encoder(t101.ids, t101.adjacency, t101.ops), t101.ids
  )
  yield {
    "nb201": folder / "nb201.csv",
    "emb201": folder / "emb201.npz",
    "nb101": nb101_csv,
    "emb101": folder / "emb101.npz",
    "folder": folder,
  }
  if old is None:
    os.environ.pop("ARCH2VEC_CACHE", None)
  else:
    os.environ["ARCH2VEC_CACHE"] = old


def _main(**kwargs):
  """Runs launch/search.py's main with these flags (others at their defaults)."""
  argv = ["search.py"] + [f"--{k}={v}" for k, v in kwargs.items()]
  with flagsaver.flagsaver():
    FLAGS.unparse_flags()
    FLAGS(argv)
    search_launcher.main(["search.py"])


@pytest.fixture(scope="module")
def launched(data, tmp_path_factory):
  """launch/search.py with random search and evolution on CIFAR-100."""
  workdir = tmp_path_factory.mktemp("search_run")
  _main(
    space="nb201",
    benchmark=data["nb201"],
    dataset="cifar100",
    method="rs,re",
    seeds=SEEDS,
    budget=QUERIES,
    workdir=workdir,
    seed=3,
  )
  return workdir


def test_launcher_writes_traces_summary_and_plot(launched):
  assert sorted(os.listdir(launched / "traces")) == ["re.npz", "rs.npz"]
  assert (launched / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  summary = json.loads((launched / "summary.json").read_text())
  assert (
    "--method=rs,re" in summary["command"] and summary["seeds"] == SEEDS and summary["seed"] == 3
  )
  assert summary["budget"] == {"queries": QUERIES, "time_s": None}
  assert (
    summary["problem"]["reward"] == "cifar100_valid_12ep"
    and summary["problem"]["cells"] == NUM_CELLS
  )
  assert summary["paper"] == {"rs": 71.04, "re": 71.84}
  for m in ("rs", "re"):
    t = summary["methods"][m]["time"]
    assert t["compile_s"] > 0 and t["run_s"] > 0
    assert list(summary["methods"][m]["queries"]) == ["2", "5", "10", "15", "20"]


def test_summary_agrees_with_traces_and_table(launched, data):
  table = csv_data.read_nb201_csv(data["nb201"], "cifar100", allow_subset=True)
  summary = json.loads((launched / "summary.json").read_text())
  assert summary["optimum"] == pytest.approx(100 * table.test_acc.max(), abs=1e-9)
  best = np.argmax(table.valid_acc)
  assert summary["oracle_best_valid_cell"] == pytest.approx(100 * table.test_acc[best], abs=1e-9)
  keys = np.asarray(jax.random.split(jax.random.PRNGKey(3), SEEDS))
  for m in ("rs", "re"):
    trace, meta = experiment.load_trace(launched / "traces" / f"{m}.npz")
    assert meta["method"] == m and meta["dataset"] == "cifar100"
    assert trace.cell.shape == (SEEDS, QUERIES) and trace.mask.all()
    np.testing.assert_array_equal(np.load(launched / "traces" / f"{m}.npz")["seed_keys"], keys)
    # Each seed: distinct cells; best_test is the test accuracy of the best-validation cell so far.
    for s in range(SEEDS):
      cells = trace.cell[s]
      assert len(set(cells.tolist())) == QUERIES and cells.min() >= 0 and cells.max() < NUM_CELLS
      best_cells = [cells[np.argmax(table.valid_acc[cells[: t + 1]])] for t in range(QUERIES)]
      np.testing.assert_allclose(trace.best_test[s], table.test_acc[best_cells], rtol=1e-6)
    for q, entry in summary["methods"][m]["queries"].items():
      vals = 100 * trace.best_test[:, int(q) - 1].astype(np.float64)
      assert entry["mean"] == pytest.approx(vals.mean(), rel=1e-9) and entry["n"] == SEEDS
      assert entry["std"] == pytest.approx(vals.std(), rel=1e-9, abs=1e-12)
      assert entry["regret_mean"] == pytest.approx(summary["optimum"] - vals.mean(), rel=1e-6)
    assert (
      summary["methods"][m]["final"]["mean"]
      == summary["methods"][m]["queries"][str(QUERIES)]["mean"]
    )


def test_latent_space_methods_through_the_harness(data, tmp_path):
  """arch2vec-RL and -BO (tiny configurations) on the matched embeddings, through `run_experiment`."""
  problem = experiment.load_problem("nb201", data["nb201"], "cifar10", data["emb201"], ["rl", "bo"])
  # The embeddings were matched by arch string, not by position.
  table = csv_data.read_nb201_csv(data["nb201"], "cifar10", allow_subset=True)
  np.testing.assert_allclose(
    np.asarray(problem.env.embeddings),
    _random_encoder(table.ids, table.adjacency, table.ops),
    rtol=1e-6,
  )
  configs = {
    "rl": reinforce.ReinforceConfig(hidden_dim=8, episode_length=4),
    "bo": dngo.BOConfig(
      num_init=4,
      hidden_dim=8,
      num_epochs=3,
      batch_size=2,
      num_candidates=4,
      bound_rank=2,
      predict_chunk=64,
    ),
  }
  logs = []
  summary = experiment.run_experiment(
    problem, ["rl", "bo"], 2, env_lib.Budget(8), tmp_path, configs=configs, log=logs.append
  )
  assert (
    sorted(summary["methods"]) == ["bo", "rl"]
    and summary["methods"]["bo"]["config"]["hidden_dim"] == 8
  )
  assert any(line.startswith("[bo] compile") for line in logs) and logs[-1].startswith(
    "nb201 cifar10"
  )
  for m in ("rl", "bo"):
    trace, _ = experiment.load_trace(tmp_path / "traces" / f"{m}.npz")
    assert trace.mask.all() and all(len(set(c.tolist())) == 8 for c in trace.cell)


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"method": "rl,xx"}, "unknown method 'xx'"),
    ({"method": "rs", "dataset": "svhn"}, "dataset 'svhn' is not one of nb201"),
    ({"method": "rl"}, "need --embeddings"),
    ({"method": "bo", "embeddings": "/nonexistent/embeddings.npz"}, "no such embeddings file"),
    ({"method": "rs", "space": "nb101"}, "a nb201 source, but space='nb101'"),
    ({"method": "rs", "time_budget": 1000}, "a time budget needs the query cost"),
    ({"method": "rs", "seeds": 0}, "--seeds must be >= 1"),
    ({"method": "rs", "reward": "valid_200ep"}, r"missing column\(s\) \['cifar10_valid_200ep'\]"),
  ],
)
def test_launcher_errors(data, tmp_path, kwargs, message):
  args = {"space": "nb201", "benchmark": data["nb201"], "workdir": tmp_path}
  args.update(kwargs)
  with pytest.raises(app.UsageError, match=message):
    _main(**args)
  assert not os.path.exists(tmp_path / "summary.json")


def test_embeddings_of_another_space_are_refused(data):
  with pytest.raises(ValueError, match="have no embedding"):
    experiment.load_problem("nb201", data["nb201"], "cifar10", data["emb101"], ["rl"])


def test_shipped_encoder_by_name(data):
  """--embeddings=<space> embeds the table's cells with the shipped encoder; another space's name is refused."""
  problem = experiment.load_problem("nb201", data["nb201"], "cifar10", "nb201", ["rl"])
  enc = pretrained.load("nb201")
  expected = enc.embed((problem.table.adjacency, problem.table.ops))
  np.testing.assert_array_equal(np.asarray(problem.env.embeddings), expected)
  assert problem.meta["embeddings"] == "shipped nb201 encoder"
  with open(pretrained.weights_path("nb201"), "rb") as f:
    assert problem.meta["embeddings_sha256"] == hashlib.sha256(f.read()).hexdigest()
  assert problem.meta["embedding_rows_sha256"] == hashlib.sha256(expected).hexdigest()
  with pytest.raises(ValueError, match="is a nb101 encoder, but the benchmark is a nb201 table"):
    experiment.load_problem("nb201", data["nb201"], "cifar10", "nb101", ["rl"])


def test_per_node_features_search(data, tmp_path):
  """--per_node: the latent-space methods search every node's mu concatenated; merges keep one kind."""
  problem = experiment.load_problem(
    "nb201", data["nb201"], "cifar10", "nb201", ["rl"], per_node=True
  )
  table, enc = problem.table, pretrained.load("nb201")
  nodes = np.asarray(problem.env.embeddings)
  assert nodes.shape == (len(table), 8 * 16)
  assert problem.meta["embedding_features"] == "per-node mu, 128-d"
  # The mean over the real node slots is the pooled embedding (NB201 cells use all 8 slots).
  pooled = enc.embed((table.adjacency, table.ops))
  np.testing.assert_allclose(nodes.reshape(len(table), 8, 16).mean(1), pooled, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="per-node features need an encoder"):
    experiment.load_problem(
      "nb201", data["nb201"], "cifar10", data["emb201"], ["rl"], per_node=True
    )
  common = {"space": "nb201", "benchmark": data["nb201"], "budget": 8, "seeds": 2}
  common |= {"embeddings": "nb201", "workdir": tmp_path}
  _main(method="rl", per_node=True, **common)
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["problem"]["embedding_features"] == "per-node mu, 128-d"
  trace, _ = experiment.load_trace(tmp_path / "traces" / "rl.npz")
  assert trace.mask.all() and all(len(set(c.tolist())) == 8 for c in trace.cell)
  with pytest.raises(
    app.UsageError, match="cannot merge: its methods searched other embedding rows"
  ):
    _main(method="gd", merge=True, **common)


def test_nb101_problem_reports_validation_regret_and_time_budgets(data):
  problem = experiment.load_problem("nb101", data["nb101"], None, data["emb101"], ["bo", "re"])
  table = csv_data.read_nb101_csv(data["nb101"], allow_subset=True)
  assert problem.field == "best_valid" and problem.optimum == pytest.approx(table.valid_acc.max())
  assert np.isnan(problem.oracle) and problem.neighbours.shape[0] == len(table)
  budget = experiment.make_budget(problem, time_budget=20_000.0)
  assert budget.is_time and budget.max_queries == env_lib.max_queries_for_cost(
    np.asarray(problem.env.cost), 20_000.0
  )
  assert experiment.cost_points(budget) == [2000.0, 5000.0, 10000.0, 15000.0, 20000.0]
  with pytest.raises(ValueError, match="is not one of nb101"):
    experiment.load_problem("nb101", data["nb101"], "cifar100", None, ["rs"])
  # A fixed cost per query makes a time budget possible on the NB201 CSV (no training times).
  p201 = experiment.load_problem(
    "nb201", data["nb201"], "cifar10", None, ["rs"], cost_per_query=100.0
  )
  assert experiment.make_budget(p201, time_budget=1000.0).max_queries == 10


def test_curves_and_trace_roundtrip(tmp_path):
  # Two seeds, 4 slots; seed 1 stops after 2 queries (time budget).
  trace = env_lib.Trace(
    best_valid=np.array([[0.5, 0.6, 0.6, 0.7], [0.4, 0.8, 0.8, 0.8]], np.float32),
    best_test=np.array([[0.51, 0.61, 0.61, 0.71], [0.41, 0.81, 0.81, 0.81]], np.float32),
    cost=np.array([[10, 20, 30, 40], [5, 50, 50, 50]], np.float32),
    num_queries=np.array([[1, 2, 3, 4], [1, 2, 2, 2]], np.int32),
    cell=np.array([[0, 1, 2, 3], [4, 5, -1, -1]], np.int32),
    reward=np.array([[0.5, 0.6, 0.55, 0.7], [0.4, 0.8, np.nan, np.nan]], np.float32),
    mask=np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool),
  )
  c = experiment.curve(trace, "best_test", optimum=0.9)
  np.testing.assert_allclose(c["mean"], [46.0, 71.0, 71.0, 76.0], rtol=1e-6)
  np.testing.assert_allclose(c["regret_mean"], [44.0, 19.0, 19.0, 14.0], rtol=1e-5)
  t = experiment.curve(trace, "best_valid", x="cost", grid=[4, 10, 25, 45])
  np.testing.assert_allclose(
    t["mean"], [np.nan, 45.0, 50.0, 55.0], rtol=1e-6
  )  # nobody has queried by t = 4
  assert t["n"] == [0, 2, 2, 2]
  experiment.save_trace(
    tmp_path / "t.npz", trace, jax.random.split(jax.random.key(0), 2), {"method": "rs"}
  )
  back, meta = experiment.load_trace(tmp_path / "t.npz")
  assert meta == {"method": "rs"} and np.load(tmp_path / "t.npz")["seed_keys"].shape == (2, 2)
  for a, b in zip(trace, back):
    np.testing.assert_array_equal(a, b)
  # Slots no seed used (a time budget's spare room) are not written.
  spare = env_lib.Trace(*(np.concatenate([a, a[:, -1:]], axis=1) for a in trace))._replace(
    mask=np.concatenate([trace.mask, np.zeros((2, 1), bool)], axis=1)
  )
  experiment.save_trace(tmp_path / "s.npz", spare)
  np.testing.assert_array_equal(experiment.load_trace(tmp_path / "s.npz")[0].cell, trace.cell)
  experiment.plot_curves(
    tmp_path / "c.png", {"rs": c}, "t", "queries", "acc", optimum=90.0, oracle=80.0
  )
  assert (tmp_path / "c.png").stat().st_size > 1000
  with pytest.raises(ValueError, match="unknown method"):
    experiment.parse_methods("rs,bogus")
  assert experiment.parse_methods(" rl, rs,rl ") == ("rl", "rs")


def test_merge_adds_a_method_with_its_own_seed_count(data, tmp_path):
  common = {
    "space": "nb201",
    "benchmark": data["nb201"],
    "dataset": "cifar100",
    "budget": QUERIES,
    "workdir": tmp_path,
    "seed": 3,
  }
  _main(method="rs", seeds=SEEDS, **common)
  before = np.load(tmp_path / "traces" / "rs.npz")["cell"]
  _main(method="re", seeds=2, merge=True, **common)
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert sorted(summary["methods"]) == ["re", "rs"] and summary["paper"] == {
    "rs": 71.04,
    "re": 71.84,
  }
  assert summary["methods"]["rs"]["seeds"] == SEEDS and summary["methods"]["re"]["seeds"] == 2
  assert (
    len(summary["commands"]) == 2
    and "--merge" in summary["commands"][1]
    and "--method=rs" in summary["commands"][0]
  )
  np.testing.assert_array_equal(
    np.load(tmp_path / "traces" / "rs.npz")["cell"], before
  )  # kept, not rerun
  assert experiment.format_summary(summary).splitlines()[0].endswith("over 2/4 seeds)")
  with pytest.raises(app.UsageError, match="cannot merge: its budget"):
    _main(method="re", seeds=2, merge=True, **{**common, "budget": QUERIES // 2})
  with pytest.raises(app.UsageError, match="cannot merge: its dataset"):
    _main(method="re", seeds=2, merge=True, **{**common, "dataset": "cifar10"})


def test_merge_runs_adds_a_folder_as_merge_would(data, tmp_path):
  """experiment.merge_runs: a method run in a folder of its own lands beside the others, as --merge."""
  common = {"space": "nb201", "benchmark": data["nb201"], "dataset": "cifar10", "budget": QUERIES}
  common |= {"embeddings": data["emb201"]}
  _main(method="rl", seeds=SEEDS, workdir=tmp_path / "a", **common)
  _main(method="rs", seeds=2, workdir=tmp_path / "b", **common)
  _main(method="rl", seeds=SEEDS, workdir=tmp_path / "m", **common)
  _main(method="rs", seeds=2, merge=True, workdir=tmp_path / "m", **common)
  merged = experiment.merge_runs(
    tmp_path / "b", tmp_path / "a", command="merge", log=lambda _: None
  )
  via_flag = json.loads((tmp_path / "m" / "summary.json").read_text())
  assert merged == json.loads((tmp_path / "a" / "summary.json").read_text())
  assert sorted(merged["methods"]) == ["rl", "rs"] and merged["methods"]["rs"]["seeds"] == 2
  for m in ("rl", "rs"):
    got, want = merged["methods"][m], via_flag["methods"][m]
    assert got["queries"] == want["queries"] and got["config"] == want["config"]
    a = np.load(tmp_path / "a" / "traces" / f"{m}.npz")
    np.testing.assert_array_equal(
      a["cell"], np.load(tmp_path / "m" / "traces" / f"{m}.npz")["cell"]
    )
  # rs loads no embeddings: both merges keep the record of the ones rl searched.
  assert merged["problem"]["embeddings_sha256"] == via_flag["problem"]["embeddings_sha256"]
  assert via_flag["problem"]["embeddings_sha256"] is not None
  assert merged["methods"]["rs"]["machine"] and "machine" not in merged["methods"]["rl"]
  assert len(merged["commands"]) == 3 and merged["commands"][-1] == "merge"
  assert (tmp_path / "a" / "curves.png").stat().st_size > 0
  _main(method="rs", seeds=2, workdir=tmp_path / "c", **{**common, "budget": QUERIES // 2})
  with pytest.raises(ValueError, match="cannot merge: its budget"):
    experiment.merge_runs(tmp_path / "c", tmp_path / "a", log=lambda _: None)


def test_benchmark_search_runs_and_records(data, tmp_path):
  """launch/benchmark_search.py end to end on a tiny problem (a subprocess: its flags share names with search.py's)."""
  out = tmp_path / "bench.json"
  cmd = [
    sys.executable,
    os.path.join(REPO, "launch", "benchmark_search.py"),
    f"--benchmark={data['nb201']}",
    f"--embeddings={data['emb201']}",
    "--method=rs,re",
    "--seeds=3",
    "--budget=12",
    "--max_loop_s=30",
    "--nobo_parts",
    f"--out={out}",
  ]
  env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
  proc = subprocess.run(
    cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO, check=False
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  result = json.loads(out.read_text())
  assert (
    result["command"].startswith("python launch/benchmark_search.py")
    and result["machine"]["backend"] == "cpu"
  )
  assert result["matmul_rates"]["peak_gflops"] > 0 and result["machine"]["cpu_isa"]["effective"]
  for m in ("rs", "re"):
    row = result["methods"][m]
    assert (
      row["loop_equals_batched"]
      and row["loop"]["seeds_run"] == 3
      and not row["loop"]["extrapolated"]
    )
    assert row["batched_s"] > 0 and row["compile_s"] > 0


def _search_subprocess(data, workdir, *extra):
  """launch/search.py in a subprocess (the device flags must act before JAX starts): rc, stdout, stderr."""
  cmd = [
    sys.executable,
    os.path.join(REPO, "launch", "search.py"),
    "--space=nb201",
    f"--benchmark={data['nb201']}",
    "--dataset=cifar100",
    f"--embeddings={data['emb201']}",
    f"--seeds={SEEDS + 1}",  # 5: not a multiple of 2 (padded)
    f"--budget={QUERIES}",
    f"--workdir={workdir}",
    *extra,
  ]
  env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
  env.pop("JAX_NUM_CPU_DEVICES", None)
  proc = subprocess.run(
    cmd, capture_output=True, text=True, env=env, timeout=600, cwd=REPO, check=False
  )
  return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_local_processes_equal_the_same_devices_in_one_process(data, tmp_path):
  """--local_processes 2 (two pinned processes, a localhost job) writes the traces of --cpu_devices 2."""
  rc, out, err = _search_subprocess(data, tmp_path / "lp", "--method=rs,rl", "--local_processes=2")
  assert rc == 0, err[-3000:]
  assert out.count("[rl] compile") == 1  # only process 0 logs
  rc, _, err = _search_subprocess(data, tmp_path / "cd", "--method=rs,rl", "--cpu_devices=2")
  assert rc == 0, err[-3000:]
  for m in ("rs", "rl"):
    a, b = (np.load(tmp_path / d / "traces" / f"{m}.npz") for d in ("lp", "cd"))
    assert a["cell"].shape == (SEEDS + 1, QUERIES)
    # The same per-device program on the same machine: the same cells, the same rewards.
    assert np.array_equal(a["cell"], b["cell"]) and np.allclose(a["best_test"], b["best_test"]), m
  summary = json.loads((tmp_path / "lp" / "summary.json").read_text())
  assert summary["command"].endswith("--local_processes=2")  # without the job's own flags
  assert "--process_id" not in summary["command"]


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_local_processes_fail_together_with_the_error(data, tmp_path):
  rc, _, err = _search_subprocess(
    data, tmp_path, "--method=rl", "--local_processes=2", "--embeddings=/nonexistent/e.npz"
  )
  assert rc == 2 and "no such embeddings file" in err
  assert not os.path.exists(tmp_path / "summary.json")


@pytest.mark.parametrize(
  "kwargs, message",
  [
    ({"local_processes": 0}, "--local_processes must be >= 1"),
    ({"local_processes": 2, "distributed": True}, "starts its own --distributed job"),
    ({"local_processes": 4096}, r"--local_processes must be in \[1, "),
  ],
)
def test_local_processes_errors(data, tmp_path, kwargs, message):
  with pytest.raises(app.UsageError, match=message):
    _main(space="nb201", benchmark=data["nb201"], method="rs", workdir=tmp_path, **kwargs)


def test_core_groups_split_the_cores_contiguously():
  assert cli.core_groups(2, [5, 1, 3, 7]) == [[1, 3], [5, 7]]
  assert cli.core_groups(3, range(8)) == [[0, 1, 2], [3, 4, 5], [6, 7]]
  assert cli.core_groups(1, [4]) == [[4]]
  with pytest.raises(ValueError, match=r"must be in \[1, 2\]"):
    cli.core_groups(3, [0, 1])


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_spawn_local_processes_pins_numbers_and_stops_the_job(tmp_path):
  """Each process: its core group, its index, the job flags; a failure stops the others with its status."""
  env, folder = repr(cli.LOCAL_PROCESS_ENV), repr(str(tmp_path))
  report = (
    f"import json, os, sys; i = os.environ[{env}]; open(os.path.join({folder}, i), 'w')"
    ".write(json.dumps([sorted(os.sched_getaffinity(0)), sys.argv[1:]]))"
  )
  assert cli.spawn_local_processes(2, ["-c", report]) == 0
  groups = cli.core_groups(2)
  for i in range(2):
    cores, args = json.loads((tmp_path / str(i)).read_text())
    assert cores == groups[i]
    assert args[0] == "--distributed" and args[2:] == ["--num_processes=2", f"--process_id={i}"]
  assert os.sched_getaffinity(0) == {
    c for g in groups for c in g
  }  # the parent's own affinity restored
  fail = f"import os, sys, time; time.sleep(60) if os.environ[{env}] == '0' else sys.exit(3)"
  start = time.monotonic()
  assert cli.spawn_local_processes(2, ["-c", fail]) == 3
  assert time.monotonic() - start < 30  # process 0 was stopped, not waited for
