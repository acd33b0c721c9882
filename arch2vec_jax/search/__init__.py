"""Search in the latent space (arch2vec-RL, arch2vec-BO) and baselines, one compiled program per method.

`runner.make_search(method, config, env, budget)` gives a pure `run(key) ->
Trace`; `runner.run_seeds(run, keys)` runs every seed in one jitted call.
"""

from arch2vec_jax.search import baselines, batching, blr, dngo, env, reinforce, runner
from arch2vec_jax.search.baselines import RE_DEFAULTS, REConfig, make_random_search, make_regularized_evolution, neighbour_table
from arch2vec_jax.search.batching import sequential_vmap
from arch2vec_jax.search.dngo import BOConfig, make_bo
from arch2vec_jax.search.env import Budget, EnvState, SearchEnv, Trace, make_env, max_queries_for_cost
from arch2vec_jax.search.reinforce import ReinforceConfig, make_reinforce
from arch2vec_jax.search.runner import (METHODS, default_config, make_search, match_embeddings, run_seeds, run_seeds_loop,
                                        summarize)

__all__ = [
  "BOConfig",
  "Budget",
  "EnvState",
  "METHODS",
  "REConfig",
  "RE_DEFAULTS",
  "ReinforceConfig",
  "SearchEnv",
  "Trace",
  "baselines",
  "batching",
  "blr",
  "default_config",
  "dngo",
  "env",
  "make_bo",
  "make_env",
  "make_random_search",
  "make_regularized_evolution",
  "make_reinforce",
  "make_search",
  "match_embeddings",
  "max_queries_for_cost",
  "neighbour_table",
  "reinforce",
  "run_seeds",
  "run_seeds_loop",
  "runner",
  "sequential_vmap",
  "summarize",
]
