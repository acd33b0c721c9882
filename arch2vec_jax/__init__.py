"""arch2vec-jax: unsupervised architecture representation learning for NAS, in compiled JAX.

Public API (import what you need from here or from the submodules):

  spaces       `nb101`, `nb201`, `darts` search spaces (cells as padded graphs)
  benchmarks   readers of the original benchmark files into `BenchmarkTable`
  model        `Arch2Vec` (GIN VAE, Jraph + Flax), `ModelConfig`, `cells_to_graphs`
  configs      `TrainConfig` and `pretrain_config(space, variant)`: one per space, and a tiny one
  train        `pretrain` and its parts (setup, evaluator, checkpointer, embeddings, summary)
  train_step   the compiled core: `TrainState`, `create_optimizer`, `make_train_step`, the epoch
  embed        `encode(params, batch_stats, adjacency, ops)` -> [N, 16] embeddings
  metrics      reconstruction, validity and uniqueness
  parallel     several devices: data mesh, replication, `jax.distributed` start-up
  analysis     predictive power, smoothness and pictures of embeddings
  search       compiled REINFORCE, DNGO/BLR Bayesian optimisation, baselines
"""

import importlib
import os
from typing import Any

# XLA:CPU default of this package (set before JAX starts its backend; no effect
# on GPU/TPU): the classic fusion emitters. XLA's new emitters run BO about 2x
# faster, but with them XLA:CPU crashed writing the persistent compilation cache
# in the test suite (results/benchmarks/README.md). Opt out with
# ARCH2VEC_XLA_DEFAULTS=0, or set the flag yourself in XLA_FLAGS.
_CPU_FLAGS = ("--xla_cpu_use_fusion_emitters=false",)
if os.environ.get("ARCH2VEC_XLA_DEFAULTS", "1") != "0":
  _flags = os.environ.get("XLA_FLAGS", "")
  _missing = [f for f in _CPU_FLAGS if f.split("=")[0] not in _flags]
  if _missing:
    os.environ["XLA_FLAGS"] = " ".join([_flags, *_missing]).strip()

# Names resolved on first use (PEP 562), so that `import arch2vec_jax.spaces.nb101`
# (e.g. in the hashing worker processes) does not import JAX and Flax.
_SUBMODULES = (
  "analysis",
  "checkpoint",
  "configs",
  "embed",
  "fileio",
  "machine",
  "metrics",
  "model",
  "parallel",
  "pretrained",
  "train",
  "train_step",
  "search",
)
_SPACES = ("darts", "nb101", "nb201")
_ATTRIBUTES = {
  "BenchmarkTable": "arch2vec_jax.benchmarks.table",
  "encode": "arch2vec_jax.embed",
  "load_embeddings": "arch2vec_jax.embed",
  "save_embeddings": "arch2vec_jax.embed",
  "Arch2Vec": "arch2vec_jax.model",
  "ModelConfig": "arch2vec_jax.model",
  "cells_to_graphs": "arch2vec_jax.model",
  "vae_loss": "arch2vec_jax.model",
  "SearchSpace": "arch2vec_jax.spaces.base",
  "TrainConfig": "arch2vec_jax.train",
  "TrainState": "arch2vec_jax.train",
  "pretrain": "arch2vec_jax.train",
  "pretrain_config": "arch2vec_jax.configs",
}


def __getattr__(name: str) -> Any:
  if name in _SUBMODULES:
    value = importlib.import_module(f"arch2vec_jax.{name}")
  elif name in _SPACES:
    value = importlib.import_module(f"arch2vec_jax.spaces.{name}")
  elif name in _ATTRIBUTES:
    value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
  else:
    raise AttributeError(f"module 'arch2vec_jax' has no attribute {name!r}")
  globals()[name] = value
  return value


def __dir__() -> list[str]:
  return sorted(set(globals()) | set(__all__))


__all__ = [
  "Arch2Vec",
  "BenchmarkTable",
  "ModelConfig",
  "SearchSpace",
  "TrainConfig",
  "TrainState",
  "analysis",
  "cells_to_graphs",
  "checkpoint",
  "configs",
  "darts",
  "embed",
  "encode",
  "fileio",
  "load_embeddings",
  "machine",
  "metrics",
  "model",
  "nb101",
  "nb201",
  "parallel",
  "pretrain",
  "pretrain_config",
  "pretrained",
  "save_embeddings",
  "search",
  "train",
  "vae_loss",
]
