"""Tiny search problems and method configs shared by tests/test_search_methods.py and tests/sharded_checks.py.

Small tables and budgets: compiles dominate; the real-data runs are in results/search.
"""

import numpy as np

from arch2vec_jax.search import baselines, dngo, reinforce
from arch2vec_jax.search import env as env_lib

N, D = 96, 4  # cells, embedding dimension
CONFIGS = {  # method -> (config, query budget)
  "rs": (None, 10),
  "re": (baselines.REConfig(population_size=4, sample_size=2), 14),
  "rl": (reinforce.ReinforceConfig(hidden_dim=8, episode_length=4), 10),
  "bo": (
    dngo.BOConfig(
      num_init=3,
      hidden_dim=8,
      num_epochs=3,
      batch_size=2,
      num_candidates=4,
      bound_rank=2,
      hyper_levels=1,
      predict_chunk=32,
    ),
    8,
  ),
}


def make_table(seed: int = 0) -> tuple[env_lib.SearchEnv, np.ndarray]:
  """(env over N random D-d embeddings with a smooth reward, neighbours int32 [N, 6])."""
  rng = np.random.default_rng(seed)
  emb = rng.normal(size=(N, D)).astype(np.float32)
  reward = 0.9 - 0.05 * np.sum((emb - 0.5) ** 2, axis=1) / D + 0.01 * rng.normal(size=N)
  report = reward + 0.005 * rng.normal(size=N)
  cost = rng.uniform(10, 20, size=N)
  neighbours = np.stack([rng.choice(N, 6, replace=False) for _ in range(N)]).astype(np.int32)
  return env_lib.make_env(reward, report, cost, emb), neighbours
