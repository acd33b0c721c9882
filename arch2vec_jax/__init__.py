"""arch2vec-jax: unsupervised architecture representation learning for NAS, in compiled JAX.

Public API (import what you need from here or from the submodules):

  spaces       `nb101`, `nb201`, `darts` search spaces (cells as padded graphs)
  benchmarks   readers of the original benchmark files into `BenchmarkTable`
  model        `Arch2Vec` (GIN VAE, Jraph + Flax), `ModelConfig`, `cells_to_graphs`
  train        `TrainConfig`, `pretrain`, `make_train_step`, `make_train_epoch`
  embed        `encode(params, batch_stats, adjacency, ops)` -> [N, 16] embeddings
  metrics      reconstruction, validity and uniqueness
  search       compiled REINFORCE, DNGO/BLR Bayesian optimisation, baselines
"""

from arch2vec_jax import checkpoint, embed, fileio, metrics, model, train
from arch2vec_jax.benchmarks.table import BenchmarkTable
from arch2vec_jax.embed import encode, load_embeddings, save_embeddings
from arch2vec_jax.model import Arch2Vec, ModelConfig, cells_to_graphs, vae_loss
from arch2vec_jax.spaces import darts, nb101, nb201
from arch2vec_jax.spaces.base import SearchSpace
from arch2vec_jax.train import TrainConfig, TrainState, pretrain

__all__ = [
  "Arch2Vec",
  "BenchmarkTable",
  "ModelConfig",
  "SearchSpace",
  "TrainConfig",
  "TrainState",
  "cells_to_graphs",
  "checkpoint",
  "darts",
  "embed",
  "encode",
  "fileio",
  "load_embeddings",
  "metrics",
  "model",
  "nb101",
  "nb201",
  "pretrain",
  "save_embeddings",
  "train",
  "vae_loss",
]
