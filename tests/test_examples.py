"""examples/embed_cells.py runs with the shipped encoders (the other example runs in tests/test_ask_tell.py)."""

import importlib.util
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _load(name):
  spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_embed_cells_with_the_shipped_encoders(capsys):
  example = _load("embed_cells")
  out = example.main([])
  assert out["nb201"]["embeddings"].shape == (4, 16) and out["nb101"]["embeddings"].shape == (3, 16)
  # The two cells one op apart are each other's nearest (margins far above rounding: 0.31 vs 0.58 and more).
  np.testing.assert_array_equal(out["nb201"]["nearest"][:2], [1, 0])
  np.testing.assert_array_equal(out["nb101"]["nearest"][:2], [1, 0])
  # The example's embeddings are the encoder's, cell by cell.
  enc = out["nb201"]["encoder"]
  np.testing.assert_array_equal(
    np.asarray(enc.embed(example.NB201_CELLS[:1])), out["nb201"]["embeddings"][:1]
  )
  assert "nb201 (python launch/pretrain.py" in capsys.readouterr().out
