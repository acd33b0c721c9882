"""Baselines in the same harness: random search and regularized evolution.

Random search queries distinct uniformly random cells.

Regularized (aging) evolution (Real et al., AAAI 2019), on the discrete cells of
the table: a population of the last `population_size` queried cells (the first
ones random, counted in the budget); each cycle samples `sample_size` distinct
members, mutates the best of them (by validation accuracy) and queries the
child; the child replaces the oldest member. Defaults per space, from the
benchmarks' own scripts: NB201 population 10, sample 3
(`AutoDL-Projects/scripts-search/algos/R-EA.sh`); NB101 population 50,
tournament 10 (the NAS-Bench-101 notebook's `run_evolution_search`). With the
100-query NB201 budget, a population of 100 would leave no cycle at all.

A mutation moves to a neighbour in a precomputed table [N, K] (-1 padded):

- NB201: the 24 cells that differ in exactly one of the 6 edge ops (the NB201
  script's `mutate_arch`: a random edge, a different op).
- NB101: the cells of the table one mutation away: one edge of the stored
  V-node matrix flipped (upper triangle) or one inner op changed to another, the
  result valid and its NAS-Bench-101 hash in the table (the parent's own hash
  excluded; duplicates merged).

Each space computes its own (`SearchSpace.neighbours`: `spaces.nb201_tables` /
`spaces.nb101_tables.mutation_neighbours`); `neighbour_table(table)` asks the
table's space, `nb201_neighbours` / `nb101_neighbours` are the old names.

Never re-query (the reference scripts may draw a cell again and pay for it):
the child is drawn uniformly among the parent's unvisited neighbours. Fallback
when there is none (every neighbour visited, or a cell of an NB101 subset with
no neighbour inside the subset): a uniformly random unvisited cell.

Both are ask/tell methods (`arch2vec_jax.search.ask_tell`): `random_search()`
and `regularized_evolution(config)` give pure `init` / `ask` / `tell`, driven
by any evaluation; `make_random_search` and `make_regularized_evolution` are the
compiled table searches over them (`ask_tell.table_search`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import spaces
from arch2vec_jax.search import ask_tell
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.spaces import nb101_tables, nb201_tables

__all__ = [
  "RE_DEFAULTS",
  "REConfig",
  "REState",
  "RSState",
  "make_random_search",
  "make_regularized_evolution",
  "nb101_neighbours",
  "nb201_neighbours",
  "neighbour_table",
  "random_search",
  "regularized_evolution",
]


@dataclasses.dataclass(frozen=True)
class REConfig:
  """Regularized evolution settings (defaults: NB201, see module doc).

  Attributes:
    population_size: cells kept (the first ones random and counted in the budget).
    sample_size: tournament size.
  """

  population_size: int = 10
  sample_size: int = 3

  def __post_init__(self):
    if not 1 <= self.sample_size <= self.population_size:
      raise ValueError(f"need 1 <= sample_size <= population_size, got {self}")


# Per-space defaults (module doc), from the spaces' `search_defaults`.
RE_DEFAULTS = {
  name: REConfig(**spaces.get(name).search_defaults["re"])
  for name in spaces.NAMES
  if "re" in spaces.get(name).search_defaults
}


# Jitted once: run op by op (an eager ask), `random_unvisited`'s `while_loop` would be traced
# and compiled anew at every call; inside a jitted program it is inlined.
_random_unvisited = jax.jit(env_lib.random_unvisited, static_argnames="tries")


class RSState(NamedTuple):
  """Random search's ask/tell state.

  Attributes:
    problem: the candidates.
    progress: proposals and values told.
    key: the stream key; the t-th draw uses `ask_tell.step_key(key, t)`.
    num_drawn: int32 [], draws made.
  """

  problem: ask_tell.Candidates
  progress: ask_tell.Progress
  key: jax.Array
  num_drawn: jax.Array


def random_search(batch_size: int = 1) -> ask_tell.AskTell:
  """Random search as ask/tell: each `ask` draws `batch_size` distinct random unvisited cells.

  The t-th draw (over all asks) is `env.random_unvisited(step_key(key, t), visited)`.
  """
  k = ask_tell.check_batch_size(batch_size)

  def init(key: jax.Array, problem: ask_tell.Candidates) -> RSState:
    return RSState(problem, ask_tell.init_progress(problem), key, jnp.array(0, jnp.int32))

  def ask(state: RSState) -> tuple[jax.Array, RSState]:
    visited = state.progress.visited
    cells = []
    for j in range(k):
      cell = _random_unvisited(ask_tell.step_key(state.key, state.num_drawn + j), visited)
      visited, cell = ask_tell.propose(visited, cell)
      cells.append(cell)
    progress = state.progress._replace(visited=visited)
    return jnp.stack(cells), state._replace(progress=progress, num_drawn=state.num_drawn + k)

  def tell(state: RSState, cells, values, costs=None) -> RSState:
    return state._replace(progress=ask_tell.record(state.progress, cells, values, costs)[0])

  return ask_tell.AskTell(init, ask, tell, k, "rs")


def make_random_search(
  env: env_lib.SearchEnv, budget: env_lib.Budget
) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (length `budget.max_queries`): distinct random cells.

  `ask_tell.table_search` over `random_search()`.
  """
  table_run = ask_tell.table_search(random_search(), env, budget)

  def run(key: jax.Array) -> env_lib.Trace:  # a function of its own per method (e.g. for chex)
    """Random search on the table, one seed."""
    return table_run(key)

  return run


class REState(NamedTuple):
  """Regularized evolution's ask/tell state (population of P = `population_size`).

  Attributes:
    problem: the candidates (with the mutation neighbours).
    progress: proposals and values told.
    init_key: the key of the first P (random) proposals: the t-th uses `step_key(init_key, t)`.
    key: the key of the next cycle (split in four at every cycle).
    num_random: int32 [], random proposals made (P of them before the first cycle).
    pop_cells: int32 [P], population members (the cells told, oldest replaced first).
    pop_value: float32 [P], their values.
    pop_valid: bool [P], positions holding a member.
    oldest: int32 [], the position the next told cell takes.
  """

  problem: ask_tell.Candidates
  progress: ask_tell.Progress
  init_key: jax.Array
  key: jax.Array
  num_random: jax.Array
  pop_cells: jax.Array
  pop_value: jax.Array
  pop_valid: jax.Array
  oldest: jax.Array


def regularized_evolution(config: REConfig, batch_size: int = 1) -> ask_tell.AskTell:
  """Regularized evolution as ask/tell (module doc).

  The first `population_size` proposals are random; every later one is a
  cycle: a tournament of `sample_size` distinct members (the best by value),
  whose child (a random unvisited neighbour, else a random unvisited cell) is
  proposed. Told cells enter the population in order, each replacing the oldest
  member. With `batch_size` k > 1 one ask runs k cycles on the same population
  (distinct children); a tournament with no member yet (values not told) falls
  back to a random cell.

  `init` needs `problem.neighbours` ([N, K], K >= 1).
  """
  k = ask_tell.check_batch_size(batch_size)
  pop = int(config.population_size)
  sample = int(config.sample_size)

  def init(key: jax.Array, problem: ask_tell.Candidates) -> REState:
    if problem.neighbours.ndim != 2 or problem.neighbours.shape[1] < 1:
      raise ValueError(
        "regularized evolution needs the mutation neighbours: Candidates."
        "neighbours [N, K], K >= 1 (baselines.neighbour_table), got "
        f"{problem.neighbours.shape}"
      )
    k_init, k_loop = jax.random.split(key)
    zero = jnp.array(0, jnp.int32)
    return REState(
      problem,
      ask_tell.init_progress(problem),
      k_init,
      k_loop,
      zero,
      jnp.zeros((pop,), jnp.int32),
      jnp.full((pop,), -jnp.inf, jnp.float32),
      jnp.zeros((pop,), bool),
      zero,
    )

  def random_cell(state: REState) -> tuple[jax.Array, jax.Array]:
    key = ask_tell.step_key(state.init_key, state.num_random)
    return env_lib.random_unvisited(key, state.progress.visited), state.key

  def cycle_cell(state: REState) -> tuple[jax.Array, jax.Array]:
    visited = state.progress.visited
    key, k_sample, k_mut, k_fallback = jax.random.split(state.key, 4)
    # Tournament: `sample` distinct members, the best by value (ties: the first drawn).
    g = jax.random.gumbel(k_sample, (pop,))
    members = jax.lax.top_k(jnp.where(state.pop_valid, g, -jnp.inf), sample)[1]
    ok = state.pop_valid[members]
    parent = state.pop_cells[members[jnp.argmax(jnp.where(ok, state.pop_value[members], -jnp.inf))]]
    # Mutation: a uniformly random unvisited neighbour, else a random unvisited cell.
    nbrs = state.problem.neighbours[parent]
    free = (nbrs >= 0) & ~visited[jnp.maximum(nbrs, 0)] & jnp.any(ok)
    pick = nbrs[jnp.argmax(jnp.where(free, jax.random.gumbel(k_mut, nbrs.shape), -jnp.inf))]
    return jnp.where(jnp.any(free), pick, env_lib.random_unvisited(k_fallback, visited)), key

  def ask(state: REState) -> tuple[jax.Array, REState]:
    cells = []
    for _ in range(k):
      # Only the choice is a branch: the [N] mask is updated outside (a conditional's
      # outputs are copies).
      is_random = state.num_random < pop
      cell, key = jax.lax.cond(is_random, random_cell, cycle_cell, state)
      visited, cell = ask_tell.propose(state.progress.visited, cell)
      state = state._replace(
        progress=state.progress._replace(visited=visited),
        key=key,
        num_random=state.num_random + is_random.astype(jnp.int32),
      )
      cells.append(cell)
    return jnp.stack(cells), state

  def tell(state: REState, cells, values, costs=None) -> REState:
    progress, mask = ask_tell.record(state.progress, cells, values, costs)
    cells, values, _ = ask_tell.as_batch(cells, values, costs)
    pc, pv, pm, o = state.pop_cells, state.pop_value, state.pop_valid, state.oldest
    for j in range(cells.shape[0]):  # aging: each told cell replaces the oldest member
      m = mask[j]
      pc = pc.at[o].set(jnp.where(m, cells[j], pc[o]))
      pv = pv.at[o].set(jnp.where(m, values[j], pv[o]))
      pm = pm.at[o].set(pm[o] | m)
      o = jnp.where(m, (o + 1) % pop, o)
    return state._replace(progress=progress, pop_cells=pc, pop_value=pv, pop_valid=pm, oldest=o)

  return ask_tell.AskTell(init, ask, tell, k, "re")


def make_regularized_evolution(
  config: REConfig,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  neighbours: np.ndarray | jax.Array,
) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (length `budget.max_queries`).

  `ask_tell.table_search` over `regularized_evolution(config)`.

  Args:
    config: population and tournament sizes.
    env: the environment.
    budget: queries and optional time.
    neighbours: int [N, K], the mutation neighbours of every cell, -1 padded.

  Returns:
    `run(key)`; vmap it over keys for seeds.
  """
  neighbours = np.asarray(neighbours)
  if neighbours.ndim != 2 or neighbours.shape[0] != env.num_cells:
    raise ValueError(f"neighbours must be [{env.num_cells}, K], got {neighbours.shape}")
  problem = ask_tell.candidates_from_env(env, neighbours)
  table_run = ask_tell.table_search(regularized_evolution(config), env, budget, problem)

  def run(key: jax.Array) -> env_lib.Trace:
    """Regularized evolution on the table, one seed."""
    return table_run(key)

  return run


def nb201_neighbours(ids) -> np.ndarray:
  """NB201 mutation neighbours of arch strings `ids` [N]: int32 [N, 24], -1 outside `ids`.

  `spaces.nb201_tables.mutation_neighbours`.
  """
  return nb201_tables.mutation_neighbours(ids)


def nb101_neighbours(adjacency: np.ndarray, ops: np.ndarray, ids) -> np.ndarray:
  """NB101 mutation neighbours within a table: int32 [N, K], -1 padded.

  `spaces.nb101_tables.mutation_neighbours(ids, adjacency, ops)`.
  """
  return nb101_tables.mutation_neighbours(ids, adjacency, ops)


def neighbour_table(table) -> np.ndarray:
  """The mutation neighbours of a `BenchmarkTable` (`SearchSpace.neighbours` of its space).

  Returns:
    int32 [N, K], row indices into the table, -1 padded.

  Raises:
    ValueError: for a space without mutation neighbours.
  """
  space = spaces.get(table.space) if table.space in spaces.NAMES else None
  if space is None or space.neighbours is None:
    raise ValueError(f"no mutation neighbours for space {table.space!r}")
  return space.neighbours(table.ids, table.adjacency, table.ops)
