"""Atomic writes (arch2vec_jax.fileio)."""

import os
import stat

import numpy as np
import pytest

from arch2vec_jax import fileio


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "a.json"
  fileio.atomic_write_json(path, {"x": 1})
  with pytest.raises(RuntimeError), fileio.atomic_open(path, "w") as f:
    f.write("partial")
    raise RuntimeError("interrupted")
  assert path.read_text().startswith("{") and os.listdir(tmp_path) == ["a.json"]


def test_written_files_get_the_umask_permissions(tmp_path):
  old = os.umask(0o022)
  try:
    fileio.atomic_save_npz(tmp_path / "t.npz", x=np.arange(3))
  finally:
    os.umask(old)
  assert stat.S_IMODE((tmp_path / "t.npz").stat().st_mode) == 0o644
  np.testing.assert_array_equal(fileio.load_npz(tmp_path / "t.npz")["x"], np.arange(3))
