"""Search in the latent space (arch2vec-RL, -BO) and baselines, one compiled program per method.

`runner.make_search(method, config, env, budget)` gives a pure `run(key) ->
Trace`; `runner.run_seeds(run, keys)` runs every seed in one jitted call.
`runner.make_ask_tell(method, config, batch_size, budget)` gives every method as pure
ask/tell functions driven by any evaluation (`ask_tell`: `init(key, candidates)`,
`ask(state)`, `tell(state, cells, values, costs)`, `save_state` / `restore_state`).
"""

from arch2vec_jax.search import ask_tell, baselines, batching, blr, dngo, env, reinforce, runner
from arch2vec_jax.search.ask_tell import (
  AskTell,
  Candidates,
  Progress,
  StateFileError,
  candidates_from_env,
  jit_search,
  make_candidates,
  restore_state,
  save_state,
  table_search,
  within_budget,
)
from arch2vec_jax.search.baselines import (
  RE_DEFAULTS,
  REConfig,
  REState,
  RSState,
  make_random_search,
  make_regularized_evolution,
  neighbour_table,
  random_search,
  regularized_evolution,
)
from arch2vec_jax.search.batching import sequential_vmap
from arch2vec_jax.search.dngo import BOConfig, BOState, bo_search, make_bo
from arch2vec_jax.search.env import (
  Budget,
  EnvState,
  SearchEnv,
  Trace,
  make_env,
  max_queries_for_cost,
)
from arch2vec_jax.search.reinforce import ReinforceConfig, RLState, make_reinforce, reinforce_search
from arch2vec_jax.search.runner import (
  METHODS,
  default_config,
  make_ask_tell,
  make_search,
  match_embeddings,
  run_seeds,
  run_seeds_loop,
  summarize,
)

__all__ = [
  "METHODS",
  "RE_DEFAULTS",
  "AskTell",
  "BOConfig",
  "BOState",
  "Budget",
  "Candidates",
  "EnvState",
  "Progress",
  "REConfig",
  "REState",
  "RLState",
  "RSState",
  "ReinforceConfig",
  "SearchEnv",
  "StateFileError",
  "Trace",
  "ask_tell",
  "baselines",
  "batching",
  "blr",
  "bo_search",
  "candidates_from_env",
  "default_config",
  "dngo",
  "env",
  "jit_search",
  "make_ask_tell",
  "make_bo",
  "make_candidates",
  "make_env",
  "make_random_search",
  "make_regularized_evolution",
  "make_reinforce",
  "make_search",
  "match_embeddings",
  "max_queries_for_cost",
  "neighbour_table",
  "random_search",
  "regularized_evolution",
  "reinforce",
  "reinforce_search",
  "restore_state",
  "run_seeds",
  "run_seeds_loop",
  "runner",
  "save_state",
  "sequential_vmap",
  "summarize",
  "table_search",
  "within_budget",
]
