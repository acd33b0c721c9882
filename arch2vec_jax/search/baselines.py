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

- NB201 (`nb201_neighbours`): the 24 cells that differ in exactly one of the 6
  edge ops (the NB201 script's `mutate_arch`: a random edge, a different op).
- NB101 (`nb101_neighbours`): the cells of the table one mutation away: one
  edge of the stored V-node matrix flipped (upper triangle) or one inner op
  changed to another, the result valid and its NAS-Bench-101 hash in the table
  (the parent's own hash excluded; duplicates merged).

Never re-query (the reference scripts may draw a cell again and pay for it):
the child is drawn uniformly among the parent's unvisited neighbours. Fallback
when there is none (every neighbour visited, or a cell of an NB101 subset with
no neighbour inside the subset): a uniformly random unvisited cell.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax.search import env as env_lib

__all__ = [
  "REConfig",
  "RE_DEFAULTS",
  "make_random_search",
  "make_regularized_evolution",
  "nb201_neighbours",
  "nb101_neighbours",
  "neighbour_table",
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


# Per-space defaults (module doc).
RE_DEFAULTS = {"nb201": REConfig(10, 3), "nb101": REConfig(50, 10)}


def _random_step(env: env_lib.SearchEnv, budget: env_lib.Budget):
  """scan body: query one uniformly random unvisited cell if the budget allows."""

  def step(state: env_lib.EnvState, key: jax.Array):
    cell = env_lib.random_unvisited(key, state.visited)
    active = env_lib.budget_active(state, budget) & ~state.visited[cell]
    return env_lib.query(env, state, cell, active)

  return step


def make_random_search(env: env_lib.SearchEnv, budget: env_lib.Budget) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (length `budget.max_queries`): distinct uniformly random cells."""
  t_max = int(budget.max_queries)

  def run(key: jax.Array) -> env_lib.Trace:
    _, rows = jax.lax.scan(_random_step(env, budget), env_lib.init_state(env), jax.random.split(key, t_max))
    return rows

  return run


class _RECarry(NamedTuple):
  state: env_lib.EnvState
  pop_cells: jax.Array  # [P] int32
  pop_reward: jax.Array  # [P] float32
  pop_valid: jax.Array  # [P] bool, members that were really queried
  oldest: jax.Array  # [] int32, position of the oldest member
  key: jax.Array


def make_regularized_evolution(config: REConfig, env: env_lib.SearchEnv, budget: env_lib.Budget,
                               neighbours: np.ndarray | jax.Array) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (length `budget.max_queries`).

  Args:
    config: population and tournament sizes.
    env: the environment.
    budget: queries and optional time.
    neighbours: int [N, K], the mutation neighbours of every cell, -1 padded.

  Returns:
    `run(key)`; vmap it over keys for seeds.
  """
  t_max = int(budget.max_queries)
  neighbours = jnp.asarray(neighbours, jnp.int32)
  if neighbours.ndim != 2 or neighbours.shape[0] != env.num_cells:
    raise ValueError(f"neighbours must be [{env.num_cells}, K], got {neighbours.shape}")
  pop = min(int(config.population_size), t_max)
  sample = min(int(config.sample_size), pop)
  cycles = t_max - pop

  def cycle(carry: _RECarry, _):
    key, k_sample, k_mut, k_fallback = jax.random.split(carry.key, 4)
    # Tournament: `sample` distinct live members, the best by reward (ties: the first drawn).
    g = jax.random.gumbel(k_sample, (pop,))
    members = jax.lax.top_k(jnp.where(carry.pop_valid, g, -jnp.inf), sample)[1]
    ok = carry.pop_valid[members]
    parent = carry.pop_cells[members[jnp.argmax(jnp.where(ok, carry.pop_reward[members], -jnp.inf))]]
    # Mutation: a uniformly random unvisited neighbour, else a random unvisited cell.
    nbrs = neighbours[parent]
    free = (nbrs >= 0) & ~carry.state.visited[jnp.maximum(nbrs, 0)]
    pick = nbrs[jnp.argmax(jnp.where(free, jax.random.gumbel(k_mut, nbrs.shape), -jnp.inf))]
    child = jnp.where(jnp.any(free), pick, env_lib.random_unvisited(k_fallback, carry.state.visited))
    active = env_lib.budget_active(carry.state, budget) & ~carry.state.visited[child] & jnp.any(ok)
    state, row = env_lib.query(env, carry.state, child, active)
    # Aging: the child replaces the oldest member.
    o = carry.oldest
    carry = _RECarry(
      state,
      carry.pop_cells.at[o].set(jnp.where(active, child, carry.pop_cells[o])),
      carry.pop_reward.at[o].set(jnp.where(active, env.reward[child], carry.pop_reward[o])),
      carry.pop_valid.at[o].set(carry.pop_valid[o] | active),
      jnp.where(active, (o + 1) % pop, o),
      key,
    )
    return carry, row

  def run(key: jax.Array) -> env_lib.Trace:
    k_init, k_loop = jax.random.split(key)
    # The first `pop` queries: random cells, in query order = age order.
    state, init_rows = jax.lax.scan(_random_step(env, budget), env_lib.init_state(env), jax.random.split(k_init, pop))
    if cycles <= 0:
      return init_rows
    carry = _RECarry(state, jnp.maximum(init_rows.cell, 0), env.reward[jnp.maximum(init_rows.cell, 0)],
                     init_rows.mask, jnp.int32(0), k_loop)
    _, rows = jax.lax.scan(cycle, carry, None, length=cycles)
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), init_rows, rows)

  return run


def _pad_lists(lists: list[np.ndarray]) -> np.ndarray:
  width = max([len(x) for x in lists] + [1])
  out = np.full((len(lists), width), -1, np.int32)
  for i, x in enumerate(lists):
    out[i, : len(x)] = x
  return out


def nb201_neighbours(ids) -> np.ndarray:
  """NB201 mutation neighbours: cells differing in exactly one of the 6 edge ops.

  Args:
    ids: [N] NB201 arch strings (the table's cells, any order / subset).

  Returns:
    int32 [N, 24]: row indices into `ids`, -1 where the neighbour is not in the table.
  """
  from arch2vec_jax.spaces import nb201

  n_ops, n_edges = len(nb201.EDGE_OPS), nb201.NUM_EDGES
  op_index = {op: i for i, op in enumerate(nb201.EDGE_OPS)}
  codes = np.array([[op_index[op] for op in nb201.parse_arch(str(s))] for s in ids], np.int64)  # [N, 6]
  weights = n_ops ** np.arange(n_edges - 1, -1, -1)
  number = codes @ weights
  lookup = np.full(n_ops**n_edges, -1, np.int64)
  lookup[number] = np.arange(len(ids))
  out = []
  for e in range(n_edges):
    for delta in range(1, n_ops):
      new_op = (codes[:, e] + delta) % n_ops
      out.append(lookup[number + (new_op - codes[:, e]) * weights[e]])
  return np.stack(out, axis=1).astype(np.int32)


def nb101_neighbours(adjacency: np.ndarray, ops: np.ndarray, ids) -> np.ndarray:
  """NB101 mutation neighbours within a table (see module doc).

  Args:
    adjacency: int8 [N, 7, 7], the table's cells (arch2vec encoding, padding last).
    ops: int8 [N, 7, 5] one-hot over `nb101.OPS`.
    ids: [N] their NAS-Bench-101 hashes.

  Returns:
    int32 [N, K], -1 padded (K the largest neighbour count; 0 neighbours is possible).
  """
  from arch2vec_jax.spaces import nb101

  adjacency = np.asarray(adjacency, np.int8)
  ops = np.asarray(ops, np.int8)
  ids = np.asarray(ids).astype(str)
  n, v_max = adjacency.shape[:2]
  num_nodes = ops.sum(axis=2).astype(bool).sum(axis=1)  # V per cell
  lookup = {h: i for i, h in enumerate(ids)}
  parents, mut_adj, mut_ops = [], [], []
  iu, ju = np.triu_indices(v_max, k=1)
  for i_, j_ in zip(iu, ju):  # edge flips inside the stored V-node matrix
    sel = np.flatnonzero(j_ < num_nodes)
    a = adjacency[sel].copy()
    a[:, i_, j_] = 1 - a[:, i_, j_]
    parents.append(sel), mut_adj.append(a), mut_ops.append(ops[sel])
  inner = [nb101.OPS.index(op) for op in nb101.LABEL_OPS]
  for node in range(1, v_max - 1):  # op changes of inner nodes
    sel_node = np.flatnonzero(node < num_nodes - 1)
    cur = ops[sel_node, node].argmax(axis=1)
    for new in inner:
      sel = sel_node[cur != new]
      o = ops[sel].copy()
      o[:, node, :] = 0
      o[:, node, new] = 1
      parents.append(sel), mut_adj.append(adjacency[sel]), mut_ops.append(o)
  parents = np.concatenate(parents)
  hashes = nb101.hash_batch(np.concatenate(mut_adj), np.concatenate(mut_ops))
  found = np.array([lookup.get(h, -1) for h in hashes], np.int64)
  keep = (found >= 0) & (found != parents)
  lists: list[set] = [set() for _ in range(n)]
  for p, c in zip(parents[keep], found[keep]):
    lists[p].add(int(c))
  return _pad_lists([np.array(sorted(s), np.int32) for s in lists])


def neighbour_table(table) -> np.ndarray:
  """The mutation neighbours of a `BenchmarkTable` ('nb201' or 'nb101')."""
  if table.space == "nb201":
    return nb201_neighbours(table.ids)
  if table.space == "nb101":
    return nb101_neighbours(table.adjacency, table.ops, table.ids)
  raise ValueError(f"no mutation neighbours for space {table.space!r}")
