"""The space knows itself (issue 16, item 1): what `SearchSpace` carries for the search, the
analyses and `pretrained`, pinned to the values the per-space branches had before.

The expected numbers are written out here (from the code before the move); the neighbour
tables and edit codes on the real tables are pinned by the SHA-256 of their int32 bytes.
"""

import ast
import hashlib
import pathlib

import jax
import numpy as np
import pytest

from arch2vec_jax import spaces
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import baselines, dngo, gd, problem, reinforce, report, runner
from arch2vec_jax.search import supervised as supervised_search
from arch2vec_jax.spaces import darts, nb101, nb201

REPO = pathlib.Path(__file__).resolve().parents[1]


def _digest(a: np.ndarray) -> str:
  return hashlib.sha256(np.ascontiguousarray(a, "<i4").tobytes()).hexdigest()


# ----------------------------------------------------------------------------- the registry


def test_get_gives_each_space_and_rejects_others():
  for name in ("nb101", "nb201", "darts"):
    assert spaces.get(name).name == name
  assert spaces.get("nb201") is nb201.SPACE and spaces.get("darts") is darts.SPACE
  with pytest.raises(ValueError, match="unknown space 'nb102'"):
    spaces.get("nb102")


def test_spaces_are_still_hashable():
  """The mapping field is left out of the hash: a space can stay a static jit argument."""
  assert len({hash(spaces.get(n)) for n in spaces.NAMES}) == 3


def test_datasets():
  assert nb201.SPACE.datasets == ("cifar10", "cifar100", "imagenet16")
  assert nb101.SPACE.datasets == ("cifar10",)
  assert darts.SPACE.datasets == ()
  assert problem.DATASETS == {
    "nb201": ("cifar10", "cifar100", "imagenet16"),
    "nb101": ("cifar10",),
  }
  assert problem.check_dataset("nb201", "ImageNet16-120") == "imagenet16"
  with pytest.raises(ValueError, match="is not one of nb101: cifar10"):
    problem.check_dataset("nb101", "cifar100")


def test_capabilities():
  assert nb201.SPACE.ids_are_cells and not nb101.SPACE.ids_are_cells
  assert not darts.SPACE.ids_are_cells
  assert gd.has_table_decoder("nb201")
  assert not gd.has_table_decoder("nb101") and not gd.has_table_decoder("darts")
  assert not gd.has_table_decoder("nope")
  for field in ("neighbours", "edit_codes", "table_rows"):
    assert getattr(darts.SPACE, field) is None
  assert nb101.SPACE.table_rows is None
  assert darts.SPACE.search_defaults == {}
  assert report.PAPER == {"nb201": report.PAPER_NB201}


# ----------------------------------------------------------------------------- search defaults


def test_default_configs_are_the_old_ones():
  """Every method on NB201 and NB101, as `runner.default_config` built them by hand before."""
  expected = {
    "nb201": {
      "rl": reinforce.ReinforceConfig(baseline=0.4),
      "bo": dngo.BOConfig(top_k=1, target=1.0),
      "rs": None,
      "re": baselines.REConfig(population_size=10, sample_size=3),
      "gd": gd.GDConfig(),
      "sbo": supervised_search.SupervisedBOConfig(top_k=1),
      "srl": supervised_search.SupervisedRLConfig(policy=reinforce.ReinforceConfig(baseline=0.4)),
    },
    "nb101": {
      "rl": reinforce.ReinforceConfig(baseline=0.95),
      "bo": dngo.BOConfig(top_k=5, target=0.95),
      "rs": None,
      "re": baselines.REConfig(population_size=50, sample_size=10),
      "gd": gd.GDConfig(top_k=5),
      "sbo": supervised_search.SupervisedBOConfig(top_k=5),
      "srl": supervised_search.SupervisedRLConfig(policy=reinforce.ReinforceConfig(baseline=0.95)),
    },
  }
  for space, configs in expected.items():
    assert set(configs) == set(runner.METHODS)
    for method, config in configs.items():
      assert runner.default_config(method, space) == config, (space, method)
  assert gd.GDConfig().top_k == 1  # NB201's GD keeps the config's own top_k
  assert baselines.RE_DEFAULTS == {
    "nb201": baselines.REConfig(10, 3),
    "nb101": baselines.REConfig(50, 10),
  }


def test_default_config_errors():
  for space in ("darts", "nb102"):
    with pytest.raises(ValueError, match=f"no search defaults for space '{space}'"):
      runner.default_config("rl", space)
  with pytest.raises(ValueError, match="no search defaults for space 'darts'"):
    runner.default_config("zz", "darts")  # the space is checked first, as before
  with pytest.raises(ValueError, match="unknown method 'zz'"):
    runner.default_config("zz", "nb201")


# ----------------------------------------------------------------------------- tables


@pytest.fixture(scope="module")
def nb201_table(shared_data):
  return csv_data.read_nb201_csv(shared_data / "nb201_accuracies.csv")


@pytest.fixture(scope="module")
def nb101_head(shared_data, tmp_path_factory):
  """The first 2,000 cells of nb101_subset.csv."""
  head = tmp_path_factory.mktemp("nb101") / "head.csv"
  with open(shared_data / "nb101_subset.csv") as f:
    head.write_text("".join(next(f) for _ in range(2001)))
  return csv_data.read_nb101_csv(head, verify_hash=False, allow_subset=True)


def test_nb201_neighbours_are_the_old_ones(nb201_table):
  table = baselines.neighbour_table(nb201_table)
  assert table.shape == (15625, 24) and table.dtype == np.int32
  assert _digest(table) == "aee40d159f74d57ccb6df87c8b7cd01c7afc3089da2aa0564b39cd640e0e278d"
  np.testing.assert_array_equal(baselines.nb201_neighbours(nb201_table.ids), table)
  # Brute force for a few rows: every other op on every edge, looked up by arch string.
  row_of = {s: i for i, s in enumerate(nb201_table.ids)}
  for i in (0, 1, 777, 15624):
    ops6 = nb201.parse_arch(nb201_table.ids[i])
    want = [
      row_of[nb201.to_arch_str(ops6[:e] + (op,) + ops6[e + 1 :])]
      for e in range(6)
      for op in nb201.EDGE_OPS
      if op != ops6[e]
    ]
    assert sorted(table[i].tolist()) == sorted(want)


def test_nb101_neighbours_are_the_old_ones(nb101_head):
  table = baselines.neighbour_table(nb101_head)
  assert table.shape == (2000, 2) and table.dtype == np.int32 and (table >= 0).sum() == 172
  assert _digest(table) == "5594e5e8ec1e491d506bace6e9e09da92fae656f8d411a82636a6526b1b06f43"
  np.testing.assert_array_equal(
    baselines.nb101_neighbours(nb101_head.adjacency, nb101_head.ops, nb101_head.ids), table
  )


def test_neighbour_table_of_a_space_without_mutation():
  class Table:
    space, ids, adjacency, ops = "darts", (), None, None

  with pytest.raises(ValueError, match="no mutation neighbours for space 'darts'"):
    baselines.neighbour_table(Table())


def test_edit_codes_are_the_old_ones(nb201_table, nb101_head):
  from arch2vec_jax.analysis import smoothness  # pylint: disable=import-outside-toplevel

  t = nb201_table
  codes, group = nb201.SPACE.edit_codes(t.ids, t.adjacency, t.ops)
  assert group is None and codes.shape == (15625, 6) and codes.dtype == np.int32
  assert _digest(codes) == "e691ed088d409cc0f82dc9c742b8eff5fd89188df295cdfb646a6c447966d5ec"
  np.testing.assert_array_equal(smoothness.nb201_codes(t.ids), codes)
  t = nb101_head
  codes, group = nb101.SPACE.edit_codes(t.ids, t.adjacency, t.ops)
  assert codes.shape == (2000, 28) and codes.dtype == group.dtype == np.int32
  assert _digest(codes) == "142b0254b358dd7e27ebbdf6e336cd91bc1469c02c2db9330f9d05e54b5088ec"
  assert _digest(group) == "19604f9f126d8a7928781c8c60aae7d724ea444269403c7d505558e5cb5424c0"
  old_codes, old_group = smoothness.nb101_codes(t.adjacency, t.ops)
  np.testing.assert_array_equal(old_codes, codes)
  np.testing.assert_array_equal(old_group, group)


def test_nb201_table_rows(nb201_table):
  ids = list(nb201_table.ids[::-1][:300])  # a subset in another order
  adj, ops = nb201.encode_batch(ids)
  row = jax.jit(jax.vmap(nb201.SPACE.table_rows(ids)))
  np.testing.assert_array_equal(np.asarray(row(adj, ops)), np.arange(300))
  other = nb201.encode_batch(list(nb201_table.ids[:5]))
  assert (np.asarray(row(*other)) == -1).all()  # not among `ids`
  bad_adj = adj[:3].copy()
  bad_adj[:, 0, 7] = 1
  assert (np.asarray(row(bad_adj, ops[:3])) == -1).all()  # not the fixed adjacency
  bad_ops = ops[:3].copy()
  bad_ops[:, 1] = np.eye(7, dtype=np.int8)[0]  # an edge node with the input op
  assert (np.asarray(row(adj[:3], bad_ops)) == -1).all()


# ----------------------------------------------------------------------------- native cells


def test_native_cells_round_trip():
  arch = list(nb201.arch_strings()[:4])
  adj, ops = nb201.SPACE.native.encode(arch)
  want = nb201.encode_batch(arch)
  np.testing.assert_array_equal(adj, want[0])
  np.testing.assert_array_equal(ops, want[1])
  assert nb201.SPACE.native.from_cells(adj, ops) == arch

  spec = (np.array([[0, 1, 1], [0, 0, 1], [0, 0, 0]]), ["input", "maxpool3x3", "output"])
  adj, ops = nb101.SPACE.native.encode([spec, spec])
  np.testing.assert_array_equal(adj[0], nb101.encode(*spec)[0])
  np.testing.assert_array_equal(ops[1], nb101.encode(*spec)[1])
  (matrix, labels), _ = nb101.SPACE.native.from_cells(adj, ops)
  np.testing.assert_array_equal(matrix, spec[0])
  assert labels == spec[1]

  adj, ops = darts.SPACE.native.encode([darts.DARTS_V2, darts.genotype_to_str(darts.DARTS_V2)])
  np.testing.assert_array_equal(adj[0], adj[1])
  np.testing.assert_array_equal(adj[0], darts.genotype_to_cell(darts.DARTS_V2)[0])
  assert darts.SPACE.native.from_cells(adj, ops)[0] == darts.validate_genotype(darts.DARTS_V2)


def test_native_parse_errors():
  with pytest.raises(TypeError, match="expected a NAS-Bench-201 arch string"):
    nb201.SPACE.native.parse(("a", "b"))
  with pytest.raises(ValueError):
    nb201.SPACE.native.parse("|none~0|")
  with pytest.raises(TypeError, match=r"expected a NAS-Bench-101 \(matrix, ops\) spec"):
    nb101.SPACE.native.parse("a string")
  with pytest.raises(ValueError, match="same input 0 twice"):
    darts.SPACE.native.parse([("sep_conv_3x3", 0)] * 8)


# ----------------------------------------------------------------------------- layering


def _py_files(*folders):
  return [p for d in folders for p in (REPO / d).rglob("*.py")]


def test_spaces_import_no_upper_layer():
  """spaces/ may use numpy, jax and itself, never search/, analysis/, benchmarks/ or pretrained."""
  banned = ("search", "analysis", "benchmarks", "pretrained")
  for path in _py_files("arch2vec_jax/spaces"):
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom) and node.module:
        names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
      for name in names:
        parts = name.split(".")
        assert not (parts[0] == "arch2vec_jax" and len(parts) > 1 and parts[1] in banned), (
          f"{path.name}: imports {name}"
        )


def test_no_space_name_comparison_outside_spaces():
  """No code outside spaces/ compares a space name to a literal (ask the `SearchSpace`)."""
  names = {"nb101", "nb201", "darts"}
  found = []
  for path in _py_files("arch2vec_jax", "launch"):
    if "spaces" in path.relative_to(REPO).parts:
      continue
    for node in ast.walk(ast.parse(path.read_text())):
      if not isinstance(node, ast.Compare):
        continue
      values = [node.left, *node.comparators]
      values += [e for v in values if isinstance(v, (ast.Tuple, ast.List, ast.Set)) for e in v.elts]
      if any(isinstance(v, ast.Constant) and v.value in names for v in values):
        found.append(f"{path.relative_to(REPO)}:{node.lineno}")
  assert not found, found


# ----------------------------------------------------------------------------- analyses


def test_analysis_readers_and_reported_field():
  from arch2vec_jax.analysis import pipeline  # pylint: disable=import-outside-toplevel

  assert csv_data.ANALYSIS_SPACES == ("nb201", "nb101")
  with pytest.raises(ValueError, match="no shared CSV reader for space 'darts'"):
    csv_data.read_analysis_table("unused.csv", "darts")
  with pytest.raises(ValueError, match="no analysis for space 'darts'"):
    pipeline.load_data(pipeline.AnalysisConfig(space="darts"), "cifar10")
  finite = {"rs": {"best_test": np.full((2, 3), 0.9), "best_valid": np.full((2, 3), 0.8)}}
  nan = {"rs": {"best_test": np.full((2, 3), np.nan), "best_valid": np.full((2, 3), 0.8)}}
  assert pipeline._reported_field(finite) == "best_test"  # pylint: disable=protected-access
  assert pipeline._reported_field(nan) == "best_valid"  # pylint: disable=protected-access
