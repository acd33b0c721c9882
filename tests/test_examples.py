"""examples/embed_cells.py and examples/search_own_training.py run (examples/search_table_ask_tell.py runs in
tests/test_ask_tell.py)."""

import json
import pathlib

import numpy as np
import pytest
import repo_scripts

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(name):
  return repo_scripts.load(f"examples/{name}.py", cache=False)


def test_embed_cells_with_the_shipped_encoders(capsys):
  example = _load("embed_cells")
  out = example.main([])
  assert out["nb201"]["embeddings"].shape == (4, 16) and out["nb101"]["embeddings"].shape == (3, 16)
  assert out["darts"]["embeddings"].shape == (3, 16)
  # The two cells one op apart are each other's nearest (margins far above rounding: 0.31 vs 0.58 and more).
  np.testing.assert_array_equal(out["nb201"]["nearest"][:2], [1, 0])
  np.testing.assert_array_equal(out["nb101"]["nearest"][:2], [1, 0])
  np.testing.assert_array_equal(out["darts"]["nearest"][:2], [1, 0])
  # The example's embeddings are the encoder's, cell by cell.
  enc = out["nb201"]["encoder"]
  np.testing.assert_array_equal(
    np.asarray(enc.embed(example.NB201_CELLS[:1])), out["nb201"]["embeddings"][:1]
  )
  assert "nb201 (python launch/pretrain.py" in capsys.readouterr().out


def test_search_own_training_trains_every_proposed_cell(tmp_path, capsys):
  """examples/search_own_training.py, shortened: BO and RL through ask/tell, each value a real
  training run; the trace file; the exhaustive pass gives the same values and the pool's best."""
  pytest.importorskip("sklearn")
  example = _load("search_own_training")
  out_file = tmp_path / "trace.json"
  args = ["--method", "bo,rl", "--budget", "5", "--pool", "12", "--steps", "20", "--exhaustive"]
  args += ["--search_seeds", "0,1"]
  out = example.main(args + ["--out", str(out_file)])
  assert json.loads(out_file.read_text())["pool"]["best"] == out["pool"]["best"]
  values = np.asarray(out["pool"]["values"])
  assert values.shape == (12,) and ((values >= 0) & (values <= 1)).all() and values.std() > 0
  for method in ("bo", "rl"):
    res = out["searches"][method]
    assert [run["seed"] for run in res["runs"]] == [0, 1]
    for run in res["runs"]:
      cells = [r["cell"] for r in run["rows"]]
      assert len(cells) == 5 and len(set(cells)) == 5  # five distinct cells trained
      assert run["values_match_pool"]  # a cell's training is deterministic: the same value twice
      assert run["best"] == max(values[cells]) and 1 <= run["rank_of_best"] <= 12
    assert res["best_mean"] == np.mean([run["best"] for run in res["runs"]])
  printed = capsys.readouterr().out
  assert "bo   5/5" in printed and "over 2 seeds" in printed


def test_expected_best_of_random_equals_brute_force():
  import itertools  # pylint: disable=import-outside-toplevel

  example = _load("search_own_training")
  v = np.random.default_rng(0).uniform(size=9)
  for k in (1, 3, 9):
    ref = np.mean([max(c) for c in itertools.combinations(v, k)])
    np.testing.assert_allclose(example.expected_best_of_random(v, k), ref, rtol=1e-12)
