"""The search environment as pure functions over device arrays.

A search queries cells of a fixed table: querying a cell reveals its reward (the
validation accuracy, a fraction) and adds its cost (simulated training time, in
seconds). Every method in `arch2vec_jax.search` runs on the same three pieces:

  `SearchEnv`  the table on the device: embeddings [N, D], reward [N], report
               [N] (test accuracy of the cell, what the paper reports), cost [N]
               and the cells that may be queried at all.
  `EnvState`   one search's progress: the visited mask, the best validation
               accuracy so far, the report of that cell, the summed cost and the
               number of queries.
  `Trace`      what a run returns: one row per query slot (a fixed number T of
               them), with `mask` False for slots past the budget.

The budget is a number of queries (`Budget.max_queries`, also the static trace
length T) and optionally a total cost (`Budget.max_cost`, seconds): a query is
made while fewer than `max_queries` were made and the summed cost is still below
`max_cost`, so the query that crosses a time budget is counted (as in the
release: `while rt < MAX_BUDGET`). Slots past the budget leave the state as it
is and repeat the last values in the trace.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
  "Budget",
  "EnvState",
  "SearchEnv",
  "Trace",
  "budget_active",
  "check_budget",
  "init_state",
  "make_env",
  "masked_argmax",
  "max_queries_for_cost",
  "nearest_unvisited",
  "query",
  "random_distinct",
  "random_unvisited",
]


@dataclasses.dataclass(frozen=True)
class Budget:
  """A search budget.

  Attributes:
    max_queries: the most queries (and the static trace length T).
    max_cost: the summed cost (seconds) at which the search stops; the query
      that crosses it is still made. `inf` for a pure query budget.
  """

  max_queries: int
  max_cost: float = math.inf

  def __post_init__(self):
    if int(self.max_queries) < 1:
      raise ValueError(f"max_queries must be >= 1, got {self.max_queries}")
    if not self.max_cost > 0:
      raise ValueError(f"max_cost must be > 0, got {self.max_cost}")

  @property
  def is_time(self) -> bool:
    """Whether the budget is in simulated seconds."""
    return math.isfinite(self.max_cost)


class SearchEnv(NamedTuple):
  """A benchmark table on the device.

  Attributes:
    embeddings: float32 [N, D], the cell embeddings (search space of RL / BO).
    sq_norms: float32 [N], squared L2 norms of the embeddings.
    reward: float32 [N], validation accuracy (fraction); what the search sees.
    report: float32 [N], test accuracy (fraction) of the cell; NaN if unknown.
    cost: float32 [N], query cost in seconds (0 where the source has none).
    available: bool [N], cells that may be queried (finite reward).
  """

  embeddings: jax.Array
  sq_norms: jax.Array
  reward: jax.Array
  report: jax.Array
  cost: jax.Array
  available: jax.Array

  @property
  def num_cells(self) -> int:
    return self.reward.shape[0]


class EnvState(NamedTuple):
  """The progress of one search.

  Attributes:
    visited: bool [N], cells already queried (or excluded, e.g. RL's free start).
    best_valid: float32 [], the best reward so far (-inf before any query).
    best_test: float32 [], the report of the best-reward cell (NaN before).
    best_cell: int32 [], that cell (-1 before).
    total_cost: float32 [], summed cost of the queries.
    num_queries: int32 [], queries made.
  """

  visited: jax.Array
  best_valid: jax.Array
  best_test: jax.Array
  best_cell: jax.Array
  total_cost: jax.Array
  num_queries: jax.Array


class Trace(NamedTuple):
  """One run's record, one row per query slot (leading axis T; seeds add a leading axis).

  Attributes:
    best_valid: float32 [T], best validation accuracy after the slot.
    best_test: float32 [T], test accuracy of the best-validation cell.
    cost: float32 [T], summed cost after the slot.
    num_queries: int32 [T], queries made after the slot (the release's counter).
    cell: int32 [T], the cell queried in the slot (-1 past the budget).
    reward: float32 [T], its validation accuracy (NaN past the budget).
    mask: bool [T], whether the slot is a query within the budget.
  """

  best_valid: jax.Array
  best_test: jax.Array
  cost: jax.Array
  num_queries: jax.Array
  cell: jax.Array
  reward: jax.Array
  mask: jax.Array


def make_env(reward, report=None, cost=None, embeddings=None) -> SearchEnv:
  """Builds a `SearchEnv` from host arrays.

  Args:
    reward: [N] validation accuracy as a fraction; NaN marks cells that cannot
      be queried (they are never chosen).
    report: [N] test accuracy as a fraction (NaN where unknown); defaults to NaN.
    cost: [N] query cost in seconds; NaN (unknown) is stored as 0 (a query
      budget does not need it; `check_budget` refuses a time budget then).
    embeddings: [N, D] float; defaults to a [N, 1] zero column (RS / RE do not
      use embeddings).

  Returns:
    The environment (float32 device arrays).
  """
  reward = np.asarray(reward, np.float64)
  if reward.ndim != 1 or len(reward) == 0:
    raise ValueError(f"reward must be a non-empty [N] array, got shape {reward.shape}")
  n = len(reward)
  report = np.full(n, np.nan) if report is None else np.asarray(report, np.float64)
  cost = np.full(n, np.nan) if cost is None else np.asarray(cost, np.float64)
  embeddings = np.zeros((n, 1)) if embeddings is None else np.asarray(embeddings, np.float64)
  if report.shape != (n,) or cost.shape != (n,):
    raise ValueError(f"report {report.shape} and cost {cost.shape} must be [{n}]")
  if embeddings.ndim != 2 or embeddings.shape[0] != n:
    raise ValueError(f"embeddings must be [{n}, D], got {embeddings.shape}")
  if not np.all(np.isfinite(embeddings)):
    raise ValueError("embeddings contain NaN or inf")
  available = np.isfinite(reward)
  if not available.any():
    raise ValueError("no cell has a finite reward")
  emb = embeddings.astype(np.float32)
  return SearchEnv(
    embeddings=jnp.asarray(emb),
    sq_norms=jnp.asarray(np.sum(emb.astype(np.float64) ** 2, axis=1).astype(np.float32)),
    reward=jnp.asarray(np.where(available, reward, -np.inf).astype(np.float32)),
    report=jnp.asarray(report.astype(np.float32)),
    cost=jnp.asarray(np.nan_to_num(cost, nan=0.0).astype(np.float32)),
    available=jnp.asarray(available),
  )


def check_budget(budget: Budget, cost: np.ndarray) -> None:
  """Raises ValueError if a time budget is asked for but some costs are unknown."""
  if budget.is_time and not np.all(np.isfinite(np.asarray(cost, np.float64))):
    raise ValueError(
      "a time budget needs the query cost of every cell, but the table has NaN costs "
      "(the shared NB201 CSV has none): use a query budget or a source with times"
    )


def max_queries_for_cost(cost: np.ndarray, max_cost: float, cap: int | None = None) -> int:
  """An upper bound on the queries a time budget allows (for the static trace length).

  The cheapest cells first: the count until their summed cost reaches `max_cost`,
  plus the one that crosses it.

  Args:
    cost: [N] seconds (finite).
    max_cost: the budget in seconds.
    cap: optional upper limit (e.g. memory); at most N.

  Returns:
    The number of query slots T.
  """
  c = np.sort(np.asarray(cost, np.float64))
  below = int(np.searchsorted(np.cumsum(c), max_cost, side="left"))  # prefixes with sum < max_cost
  t = min(len(c), below + 1)
  return max(1, min(t, cap) if cap else t)


def init_state(env: SearchEnv) -> EnvState:
  """The state before any query: unavailable cells count as visited."""
  return EnvState(
    visited=~env.available,
    best_valid=jnp.array(-jnp.inf, jnp.float32),
    best_test=jnp.array(jnp.nan, jnp.float32),
    best_cell=jnp.array(-1, jnp.int32),
    total_cost=jnp.array(0.0, jnp.float32),
    num_queries=jnp.array(0, jnp.int32),
  )


def budget_active(state: EnvState, budget: Budget) -> jax.Array:
  """bool []: whether one more query fits the budget."""
  active = state.num_queries < budget.max_queries
  if budget.is_time:
    active = active & (state.total_cost < budget.max_cost)
  return active


def query(
  env: SearchEnv, state: EnvState, cell: jax.Array, active: jax.Array
) -> tuple[EnvState, Trace]:
  """Queries `cell` if `active` (else leaves the state unchanged).

  Args:
    env: the environment.
    state: the current state.
    cell: int32 [], the cell. A visited cell is queried again when active
      (BO's `revisit`, the release's behaviour): its cost is added again and
      it counts as another query.
    active: bool [], whether the query happens (budget and method masks).

  Returns:
    (new state, the trace row of this slot: a `Trace` of scalars).
  """
  chex.assert_rank([cell, active], 0)
  cell = jnp.asarray(cell, jnp.int32)
  r = env.reward[cell]
  better = active & (r > state.best_valid)
  new = EnvState(
    visited=state.visited.at[cell].set(state.visited[cell] | active),
    best_valid=jnp.where(better, r, state.best_valid),
    best_test=jnp.where(better, env.report[cell], state.best_test),
    best_cell=jnp.where(better, cell, state.best_cell),
    total_cost=state.total_cost + jnp.where(active, env.cost[cell], 0.0),
    num_queries=state.num_queries + active.astype(jnp.int32),
  )
  row = Trace(
    best_valid=new.best_valid,
    best_test=new.best_test,
    cost=new.total_cost,
    num_queries=new.num_queries,
    cell=jnp.where(active, cell, -1),
    reward=jnp.where(active, r, jnp.nan),
    mask=active,
  )
  return new, row


def masked_argmax(values: jax.Array, mask: jax.Array) -> jax.Array:
  """Index of the largest of `values` where `mask` is True (ties: the lowest index): int32 [].

  `lax.top_k` with k = 1 (a partial sort, fast on CPU) rather than `argmax`
  (a variadic reduction that XLA:CPU does not vectorise). If no entry is
  masked in the result is arbitrary.
  """
  return jax.lax.top_k(jnp.where(mask, values, -jnp.inf), 1)[1][0].astype(jnp.int32)


def nearest_unvisited(
  env: SearchEnv, visited: jax.Array, point: jax.Array, skip_nearest: bool = False
) -> jax.Array:
  """The unvisited cell nearest (L2) to `point`: one masked argmin, no sort of the table.

  Args:
    env: the environment.
    visited: bool [N].
    point: float32 [D].
    skip_nearest: release quirk of `reinforce_search_NB201_8x8.py` (its search
      starts at rank 1 of the distance order): the cell nearest to `point`
      overall is never returned, visited or not.

  Returns:
    int32 [], the cell (ties: the lowest index). If every cell is visited the
    result is arbitrary; callers mask such steps with the budget.
  """
  chex.assert_rank(point, 1)
  # ||e - p||^2 = ||e||^2 - 2 e.p + ||p||^2; the last term does not change the argmin.
  neg_d = 2.0 * jnp.dot(env.embeddings, point) - env.sq_norms
  if skip_nearest:
    visited = visited.at[masked_argmax(neg_d, jnp.ones_like(visited))].set(True)
  return masked_argmax(neg_d, ~visited)


def random_unvisited(key: jax.Array, visited: jax.Array, tries: int = 8) -> jax.Array:
  """A uniformly random unvisited cell: int32 [].

  Rejection sampling: `tries` uniform draws from all N cells, the first
  unvisited one wins (uniform over the unvisited cells). Only if all of them are
  visited (rare: a search visits a small part of the table) an exact Gumbel-max
  over the whole mask is drawn, inside a `while_loop` so that under `vmap` it
  runs only when some seed needs it. If every cell is visited the result is
  arbitrary; callers mask such steps with the budget.
  """
  k_try, k_full = jax.random.split(key)
  n = visited.shape[0]
  cand = jax.random.randint(k_try, (tries,), 0, n, jnp.int32)
  free = ~visited[cand]
  cell = cand[jnp.argmax(free)]

  def full(carry):
    # The key depends on the carry so that XLA cannot hoist this out of the loop
    # (loop-invariant code motion would run it on every call).
    g = jax.random.gumbel(jax.random.fold_in(k_full, carry[0]), visited.shape)
    return masked_argmax(g, ~visited), jnp.bool_(True)

  cell, _ = jax.lax.while_loop(lambda c: ~c[1], full, (cell, jnp.any(free)))
  return cell


def random_distinct(key: jax.Array, visited: jax.Array, k: int) -> jax.Array:
  """`k` distinct uniformly random unvisited cells, in random order: int32 [k].

  Sequential `random_unvisited` draws (no full-table random numbers). If fewer
  than `k` cells are unvisited the tail repeats cells; callers mask those
  steps with the budget.
  """

  def draw(visited, key):
    cell = random_unvisited(key, visited)
    return visited.at[cell].set(True), cell

  return jax.lax.scan(draw, visited, jax.random.split(key, k))[1]
