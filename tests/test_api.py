"""The public API: every name in `arch2vec_jax.__all__` resolves, and the spaces import without JAX."""

import os
import subprocess
import sys

import pytest

import arch2vec_jax


def test_every_public_name_resolves():
  for name in arch2vec_jax.__all__:
    assert getattr(arch2vec_jax, name) is not None, name
  from arch2vec_jax import TrainConfig, encode, nb101, pretrain  # noqa: F401

  assert arch2vec_jax.nb101 is nb101 and set(arch2vec_jax.__all__) <= set(dir(arch2vec_jax))
  with pytest.raises(AttributeError, match="no attribute 'nb102'"):
    arch2vec_jax.nb102  # noqa: B018


def test_spaces_import_without_jax():
  code = (
    "import sys, arch2vec_jax.spaces.nb101, arch2vec_jax.spaces.darts; print('jax' in sys.modules)"
  )
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"


def test_xla_cpu_defaults_respect_the_user():
  code = "import os, arch2vec_jax; print(os.environ.get('XLA_FLAGS', ''))"
  run = lambda env: subprocess.run(
    [sys.executable, "-c", code],
    capture_output=True,
    text=True,
    check=True,
    env={**{k: v for k, v in os.environ.items() if k != "ARCH2VEC_XLA_DEFAULTS"}, **env},
  ).stdout.strip()
  assert "--xla_cpu_use_fusion_emitters=false" in run({"XLA_FLAGS": "--xla_dump_to=/tmp/x"}).split()
  assert (
    run({"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}) == "--xla_cpu_use_fusion_emitters=true"
  )
  assert run({"XLA_FLAGS": "", "ARCH2VEC_XLA_DEFAULTS": "0"}) == ""
