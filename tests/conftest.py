"""Shared fixtures: the real benchmark data in ../shared/data (never copied into the repo)."""

import os
import pathlib

import pytest

import arch2vec_jax  # noqa: F401  (sets the package's XLA:CPU defaults before JAX starts a backend)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = pathlib.Path(os.environ.get("ARCH2VEC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
  """The folder with nb201_accuracies.csv and nb101_subset.csv; skips if absent (CI has it)."""
  if not (SHARED_DATA / "nb201_accuracies.csv").exists():
    if os.environ.get("CI"):
      pytest.fail(f"shared data not found at {SHARED_DATA} (CI must have it)")
    pytest.skip(f"shared data not found at {SHARED_DATA}")
  return SHARED_DATA


@pytest.fixture(scope="session", autouse=True)
def _compilation_cache(tmp_path_factory):
  """A persistent XLA cache for the session: identical programs compile once."""
  import jax  # pylint: disable=import-outside-toplevel

  jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  yield
