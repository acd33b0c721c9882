"""Ask/tell search (optax / evosax style): pure `init`, `ask`, `tell` over a candidate set.

A search method is an `AskTell` of three pure functions and two static values:

  search = baselines.random_search(batch_size=1)       # or regularized_evolution, reinforce_search,
                                                       # dngo.bo_search(config, budget), gd.gd_search
  state = search.init(key, problem)                    # problem: the `Candidates`
  cells, state = search.ask(state)                     # int32 [k], -1 where nothing is left
  values = ...                                         # evaluate: anything (a training run)
  state = search.tell(state, cells, values, costs)     # float [k]; NaN = not evaluated

The "problem" a method sees is the candidate set (`Candidates`: the cells'
embeddings, which cells may be proposed, and for evolution the mutation
neighbours), never the accuracy table: values come only through `tell`. Every
state is a pytree of NamedTuples holding its `problem` and its `Progress` (the
proposed cells, the values told, the best so far); `init`, `ask` and `tell` are
jit-able (`jit_search` jits all three) and also run eagerly from a plain Python
loop. `save_state` / `restore_state` checkpoint any state atomically;
`add_candidates` (a pool that grows) and `enable_candidates` (spare rows of a
fixed-size pool, no recompile) add cells between asks. A search driven by your
own training:

  from arch2vec_jax.search import Budget, ask_tell, runner
  candidates = ask_tell.make_candidates(embeddings)   # [N, D], e.g. an encoder's embed(pool)
  config = runner.default_config("rl", "nb201")
  search = ask_tell.jit_search(runner.make_ask_tell("rl", config, batch_size=4))  # "bo": also budget=
  state = search.init(jax.random.PRNGKey(0), candidates)
  while ask_tell.within_budget(state, Budget(100)):
    cells, state = search.ask(state)                   # 4 cells: train them in parallel
    state = search.tell(state, cells, [train(pool[c]) if c >= 0 else np.nan for c in cells])
    ask_tell.save_state("search.msgpack", state)       # resume: restore_state(path, template)
  best = pool[int(state.progress.best_cell)]

Conventions:

- `ask` marks the cells it proposes as visited: they are never proposed again,
  also when they are never told (a failed evaluation). A proposal of -1 means
  that no candidate was left.
- `tell` takes the cells of the last `ask`, in order (RL needs that: its
  episode records the action of each proposal; random search and evolution
  take any cells). A NaN (or infinite) value is a cell that was not evaluated
  (failed, or past the budget): it enters nothing but stays visited.
- The batch size k is static (`AskTell.batch_size`): one `ask` proposes k
  distinct cells for parallel evaluation. k = 1 is the sequential method.

`table_search(search, env, budget)` is the compiled search on a benchmark
table: one `lax.scan` over ask -> table lookup (`env.query`) -> tell, so that
each method has one implementation; `make_random_search`,
`make_regularized_evolution` and `make_reinforce` are built on it and give the
same traces as before ask/tell existed (tests/test_ask_tell.py).

Step keys: a method that drew its t-th random number from `split(key, T)[t]` in
a scan of static length T draws it from `step_key(key, t) = fold_in(key, t)`,
which is the same key with JAX's partitionable Threefry (`jax_threefry_partitionable`,
the default since JAX 0.5), for every T > t: the ask/tell state needs no budget.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax import fileio
from arch2vec_jax.search import env as env_lib

__all__ = [
  "AskTell",
  "Candidates",
  "Progress",
  "StateFileError",
  "add_candidates",
  "append_told",
  "as_batch",
  "candidates_from_env",
  "check_batch_size",
  "enable_candidates",
  "init_progress",
  "jit_search",
  "make_candidates",
  "propose",
  "record",
  "restore_state",
  "save_state",
  "step_key",
  "table_search",
  "within_budget",
]


class Candidates(NamedTuple):
  """The candidate set a search proposes from (the "problem" of `init`).

  Attributes:
    embeddings: float32 [N, D], the cells' embeddings (RL's search space); a
      zero column [N, 1] where the method needs none.
    sq_norms: float32 [N], squared L2 norms of the embeddings.
    available: bool [N], cells that may be proposed.
    neighbours: int32 [N, K], mutation neighbours (row indices, -1 padded);
      K = 0 where there are none (evolution needs them).
  """

  embeddings: jax.Array
  sq_norms: jax.Array
  available: jax.Array
  neighbours: jax.Array

  @property
  def num_cells(self) -> int:
    return self.available.shape[0]


class Progress(NamedTuple):
  """What every ask/tell state records about its search.

  Attributes:
    visited: bool [N], cells proposed or told (or not available): never proposed again.
    num_told: int32 [], evaluated cells told (finite values).
    best_value: float32 [], the best value told (-inf before any).
    best_cell: int32 [], its cell (-1 before).
    total_cost: float32 [], the summed costs told.
  """

  visited: jax.Array
  num_told: jax.Array
  best_value: jax.Array
  best_cell: jax.Array
  total_cost: jax.Array


class AskTell(NamedTuple):
  """A search method as pure functions (like `optax.GradientTransformation`).

  Attributes:
    init: `init(key, problem: Candidates) -> state`.
    ask: `ask(state) -> (cells int32 [batch_size], state)`; -1 where no candidate is left.
    tell: `tell(state, cells [batch_size], values [batch_size], costs=None) -> state`.
    batch_size: k, the cells per `ask` (static).
    name: the method ('rs', 're', 'rl').
  """

  init: Callable[[jax.Array, Candidates], Any]
  ask: Callable[[Any], tuple[jax.Array, Any]]
  tell: Callable[..., Any]
  batch_size: int
  name: str


class StateFileError(ValueError):
  """A search-state file that is damaged, not a search state, or does not match the template."""


def check_batch_size(batch_size: int) -> int:
  """`batch_size` as an int >= 1 (ValueError otherwise)."""
  k = int(batch_size)
  if k < 1 or k != batch_size:
    raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
  return k


def _neighbour_array(neighbours, n: int) -> np.ndarray:
  if neighbours is None:
    return np.zeros((n, 0), np.int32)
  nb = np.asarray(neighbours)
  if nb.ndim != 2 or nb.shape[0] != n or not np.issubdtype(nb.dtype, np.integer):
    raise ValueError(f"neighbours must be an integer [{n}, K] array, got {nb.dtype} {nb.shape}")
  if nb.size and (nb.min() < -1 or nb.max() >= n):
    raise ValueError(f"neighbours must be row indices in [0, {n}) or -1 (padding)")
  return nb.astype(np.int32)


def make_candidates(
  embeddings=None, available=None, neighbours=None, num_cells: int | None = None
) -> Candidates:
  """Builds `Candidates` from host arrays.

  Args:
    embeddings: [N, D] float (RL); None for a zero column (random search, evolution).
    available: bool [N], cells that may be proposed (default: all).
    neighbours: int [N, K] mutation neighbours, -1 padded (evolution;
      `baselines.neighbour_table`).
    num_cells: N, needed only when no array gives it.

  Returns:
    The candidates (device arrays; norms computed as `env.make_env` does).
  """
  sizes = {len(np.asarray(a)) for a in (embeddings, available, neighbours) if a is not None}
  if num_cells is not None:
    sizes.add(int(num_cells))
  if len(sizes) != 1:
    raise ValueError(
      f"need one cell count N from embeddings, available, neighbours or "
      f"num_cells, got {sorted(sizes)}"
    )
  n = sizes.pop()
  if n < 1:
    raise ValueError("the candidate set is empty")
  emb = np.zeros((n, 1)) if embeddings is None else np.asarray(embeddings, np.float64)
  if emb.ndim != 2 or not np.all(np.isfinite(emb)):
    raise ValueError(f"embeddings must be a finite [{n}, D] array, got shape {emb.shape}")
  avail = np.ones(n, bool) if available is None else np.asarray(available, bool)
  if avail.shape != (n,) or not avail.any():
    raise ValueError(
      f"available must be bool [{n}] with at least one True, got shape {avail.shape}"
    )
  emb32 = emb.astype(np.float32)
  return Candidates(
    embeddings=jnp.asarray(emb32),
    sq_norms=jnp.asarray(np.sum(emb32.astype(np.float64) ** 2, axis=1).astype(np.float32)),
    available=jnp.asarray(avail),
    neighbours=jnp.asarray(_neighbour_array(neighbours, n)),
  )


def candidates_from_env(env: env_lib.SearchEnv, neighbours=None) -> Candidates:
  """The candidate set of a benchmark table: its embeddings and available cells (no accuracies)."""
  nb = jnp.asarray(
    _neighbour_array(None if neighbours is None else np.asarray(neighbours), env.num_cells)
  )
  return Candidates(env.embeddings, env.sq_norms, env.available, nb)


def add_candidates(state: Any, embeddings, neighbours=None) -> Any:
  """The state with M more candidates appended to its pool (visited: no; available: yes).

  For a pool that grows between asks (new cells sampled or generated during
  the search). The new rows get indices N..N+M-1; everything told so far is
  kept. The [N]-sized parts of a state are its `problem` and
  `progress.visited` (true of RS, RE, RL, BO and GD). A jitted search
  compiles once more for each new pool size; to avoid that, make the pool
  with spare rows marked unavailable and use `enable_candidates` instead.

  Args:
    state: an ask/tell state.
    embeddings: float [M, D], the new cells' embeddings (the pool's D).
    neighbours: mutation neighbours (indices into the grown pool, -1 padded):
      int [M, K'] for the new cells only, or [N + M, K'] replacing the whole
      table (so that old cells can mutate into new ones); needed when the pool
      has neighbours (evolution).

  Returns:
    The state over N + M candidates.
  """
  problem = state.problem
  n, dim = problem.embeddings.shape
  emb = np.asarray(embeddings, np.float32)
  if emb.ndim != 2 or emb.shape[1] != dim or not len(emb) or not np.all(np.isfinite(emb)):
    raise ValueError(
      f"new candidates must be a finite [M, {dim}] array with M >= 1, got {emb.shape}"
    )
  m = len(emb)
  old_nb = np.asarray(problem.neighbours)
  if neighbours is None:
    if old_nb.shape[1]:
      raise ValueError("this pool has mutation neighbours: pass the new cells' `neighbours` [M, K]")
    nb = np.zeros((n + m, 0), np.int32)
  else:
    new_nb = np.asarray(neighbours)
    if (
      new_nb.ndim != 2
      or new_nb.shape[0] not in (m, n + m)
      or not np.issubdtype(new_nb.dtype, np.integer)
      or (new_nb.size and (new_nb.min() < -1 or new_nb.max() >= n + m))
    ):
      raise ValueError(
        f"neighbours must be int [{m}, K] (the new cells) or [{n + m}, K] (the grown pool) "
        f"indices in [0, {n + m}) or -1, got {new_nb.dtype} {new_nb.shape}"
      )
    if len(new_nb) == n + m:
      nb = new_nb.astype(np.int32)
    else:
      width = max(old_nb.shape[1], new_nb.shape[1])
      pad = lambda a: np.pad(a, ((0, 0), (0, width - a.shape[1])), constant_values=-1)
      nb = np.concatenate([pad(old_nb), pad(new_nb)]).astype(np.int32)
  grown = Candidates(
    embeddings=jnp.concatenate([problem.embeddings, jnp.asarray(emb)]),
    sq_norms=jnp.concatenate(
      [
        problem.sq_norms,
        jnp.asarray(np.sum(emb.astype(np.float64) ** 2, axis=1).astype(np.float32)),
      ]
    ),
    available=jnp.concatenate([problem.available, jnp.ones((m,), bool)]),
    neighbours=jnp.asarray(nb),
  )
  visited = jnp.concatenate([state.progress.visited, jnp.zeros((m,), bool)])
  return state._replace(problem=grown, progress=state.progress._replace(visited=visited))


def enable_candidates(state: Any, cells, embeddings=None) -> Any:
  """The state with spare (unavailable, never proposed) rows of its pool made candidates.

  The fixed-size way to grow a pool: `make_candidates(..., available=mask)`
  with spare rows False, then fill them here between asks; shapes do not
  change, so a jitted search does not recompile.

  Args:
    state: an ask/tell state.
    cells: int [M], the spare rows to enable.
    embeddings: float [M, D] their embeddings (None: keep the rows' current ones).

  Returns:
    The state with those rows available and unvisited.
  """
  cells = np.asarray(cells, np.int64).reshape(-1)
  problem = state.problem
  n, dim = problem.embeddings.shape
  avail = np.asarray(problem.available)
  if cells.size and (cells.min() < 0 or cells.max() >= n):
    raise ValueError(f"cells to enable must be rows in [0, {n}), got {cells.min()}..{cells.max()}")
  if avail[cells].any() or len(set(cells.tolist())) != len(cells):
    raise ValueError(
      f"cells to enable must be distinct spare (unavailable) rows; {cells[avail[cells]][:5].tolist()} "
      "are candidates already"
    )
  idx = jnp.asarray(cells)
  emb, sq = problem.embeddings, problem.sq_norms
  if embeddings is not None:
    new = np.asarray(embeddings, np.float32)
    if new.shape != (len(cells), dim) or not np.all(np.isfinite(new)):
      raise ValueError(f"embeddings must be a finite [{len(cells)}, {dim}] array, got {new.shape}")
    emb = emb.at[idx].set(jnp.asarray(new))
    sq = sq.at[idx].set(jnp.asarray(np.sum(new.astype(np.float64) ** 2, axis=1).astype(np.float32)))
  problem = problem._replace(
    embeddings=emb, sq_norms=sq, available=problem.available.at[idx].set(True)
  )
  visited = state.progress.visited.at[idx].set(False)
  return state._replace(problem=problem, progress=state.progress._replace(visited=visited))


def init_progress(problem: Candidates) -> Progress:
  """The progress before any proposal: unavailable cells count as visited."""
  return Progress(
    visited=~jnp.asarray(problem.available),
    num_told=jnp.array(0, jnp.int32),
    best_value=jnp.array(-jnp.inf, jnp.float32),
    best_cell=jnp.array(-1, jnp.int32),
    total_cost=jnp.array(0.0, jnp.float32),
  )


def step_key(key: jax.Array, index: jax.Array | int) -> jax.Array:
  """The `index`-th key of a stream: `fold_in(key, index)` (=`split(key, T)[index]`)."""
  return jax.random.fold_in(key, index)


def propose(visited: jax.Array, cell: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Marks `cell` proposed: (visited', the cell, or -1 if it was visited already or is -1).

  Search helpers (`env.random_unvisited`, `env.nearest_unvisited`) return an
  arbitrary cell when every cell is visited; this turns that into -1.
  """
  cell = jnp.asarray(cell, jnp.int32)
  safe = jnp.maximum(cell, 0)
  fresh = (cell >= 0) & ~visited[safe]
  # `.set(visited[safe] | fresh)` rather than `.set(True)`: XLA:CPU copies the whole
  # mask for a scatter of a constant inside a loop (5x slower random search over NB201).
  return visited.at[safe].set(visited[safe] | fresh), jnp.where(fresh, cell, -1)


def as_batch(cells, values, costs=None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(cells int32 [k], values float32 [k], costs float32 [k] (zeros if None)), of one shape."""
  cells = jnp.asarray(cells, jnp.int32)
  values = jnp.asarray(values, jnp.float32)
  costs = jnp.zeros_like(values) if costs is None else jnp.asarray(costs, jnp.float32)
  if cells.ndim != 1 or values.shape != cells.shape or costs.shape != cells.shape:
    raise ValueError(
      f"tell needs cells, values and costs of one shape [k], got {cells.shape}, "
      f"{values.shape}, {costs.shape}"
    )
  return cells, values, costs


def record(progress: Progress, cells, values, costs=None) -> tuple[Progress, jax.Array]:
  """Enters told values into the progress, in order (the first of equal best values wins).

  Args:
    progress: the progress.
    cells: int [k] (-1: nothing proposed).
    values: float [k]; NaN / inf: not evaluated (enters nothing).
    costs: float [k] or None (zeros); NaN costs count as 0.

  Returns:
    (progress', bool [k] mask of the cells that were evaluated).
  """
  cells, values, costs = as_batch(cells, values, costs)
  mask = (cells >= 0) & jnp.isfinite(values)
  safe = jnp.maximum(cells, 0)
  p = progress
  for j in range(cells.shape[0]):
    better = mask[j] & (values[j] > p.best_value)
    p = Progress(
      visited=p.visited.at[safe[j]].set(p.visited[safe[j]] | mask[j]),
      num_told=p.num_told + mask[j].astype(jnp.int32),
      best_value=jnp.where(better, values[j], p.best_value),
      best_cell=jnp.where(better, cells[j], p.best_cell),
      total_cost=p.total_cost + jnp.where(mask[j] & jnp.isfinite(costs[j]), costs[j], 0.0),
    )
  return p, mask


def append_told(
  buffers: tuple[jax.Array, ...], start: jax.Array, told: jax.Array, new: tuple[jax.Array, ...]
) -> tuple[tuple[jax.Array, ...], jax.Array]:
  """Appends the told rows of a batch to a method's data buffers (the rows past R are dropped).

  Args:
    buffers: arrays [R, ...], rows `start ..` free.
    start: int32 [], the first free row.
    told: bool [B], which of the batch's rows are data (`record`).
    new: one [B, ...] array per buffer.
  Returns:
    (the buffers with the told rows written at `start, start + 1, ..` in batch order,
    the next free row: `start` + the number told, not clipped to R).
  """
  out, row, size = list(buffers), start, buffers[0].shape[0]
  for j in range(told.shape[0]):
    at = jnp.where(told[j], row, size)  # out of bounds: not written
    out = [b.at[at].set(v[j], mode="drop") for b, v in zip(out, new, strict=True)]
    row = row + told[j].astype(jnp.int32)
  return tuple(out), row


def within_budget(state: Any, budget: env_lib.Budget) -> jax.Array:
  """bool []: whether one more evaluation fits `budget` (as `env.budget_active`, on what was told).

  Args:
    state: an ask/tell state (or its `Progress`).
    budget: queries and optional time (the cost told).
  """
  p = state if isinstance(state, Progress) else state.progress
  active = p.num_told < budget.max_queries
  if budget.is_time:
    active = active & (p.total_cost < budget.max_cost)
  return active


def table_search(
  search: AskTell, env: env_lib.SearchEnv, budget: env_lib.Budget, problem: Candidates | None = None
) -> Callable[[jax.Array], env_lib.Trace]:
  """The compiled search on a benchmark table: `lax.scan` over ask -> `env.query` -> tell.

  Each round asks k cells, queries them in order while the budget allows (a
  proposal of -1, or one past the budget, is not queried and is told as NaN)
  and tells the values (the table's reward) and costs.

  Args:
    search: the method.
    env: the table (reward, report, cost; the accuracies never reach the method
      except through `tell`).
    budget: queries and optional time; the trace has `budget.max_queries` rows.
    problem: the candidates (default `candidates_from_env(env)`).

  Returns:
    A pure `run(key) -> Trace`; vmap it over keys for seeds.
  """
  problem = candidates_from_env(env) if problem is None else problem
  if problem.num_cells != env.num_cells:
    raise ValueError(f"{problem.num_cells} candidates for a table of {env.num_cells} cells")
  t_max = int(budget.max_queries)
  k = int(search.batch_size)
  rounds = -(-t_max // k)

  def round_(carry, _):
    state, env_state = carry
    # The candidates stay closed-over constants rather than loop state, and the
    # table's visited mask is the method's own (one [N] mask in the loop state):
    # a proposal (not -1) is a cell never proposed before.
    state = state._replace(problem=problem)
    cells, state = search.ask(state)
    rows = []
    for j in range(k):
      active = env_lib.budget_active(env_state, budget) & (cells[j] >= 0)
      env_state, row = env_lib.query(
        env, env_state._replace(visited=state.progress.visited), jnp.maximum(cells[j], 0), active
      )
      env_state = env_state._replace(visited=None)
      rows.append(row)
    rows = jax.tree.map(lambda *a: jnp.stack(a), *rows)
    costs = jnp.where(rows.mask, env.cost[jnp.maximum(cells, 0)], 0.0)
    state = search.tell(state, cells, rows.reward, costs)
    return (state._replace(problem=None), env_state), rows

  def run(key: jax.Array) -> env_lib.Trace:
    state = search.init(key, problem)
    env_state = env_lib.init_state(env)._replace(visited=None)
    _, rows = jax.lax.scan(round_, (state._replace(problem=None), env_state), None, length=rounds)
    return jax.tree.map(lambda a: a.reshape((rounds * k,) + a.shape[2:])[:t_max], rows)

  return run


def _signature(leaves) -> tuple:
  return tuple((tuple(x.shape), str(x.dtype)) for x in leaves)


def _forwarding_jit(fn: Callable) -> Callable:
  """`jax.jit(fn)` that hands back inputs returned unchanged as the input arrays themselves.

  A compiled call copies every output, also one that is an input passed
  through (the candidates, RL's policy in `ask`); here the compiled program
  returns only the leaves that changed, found when tracing (an output tracer
  that is an input tracer), and the rest are the caller's arrays.
  """
  # (input treedef, shapes and dtypes) -> (output treedef, the input each output leaf is, or -1)
  plans = {}

  def flat(*args):
    in_leaves, in_tree = jax.tree.flatten(args)
    out_leaves, out_tree = jax.tree.flatten(fn(*args))
    where = {id(x): i for i, x in enumerate(in_leaves)}
    src = tuple(where.get(id(x), -1) for x in out_leaves)
    plans[(in_tree, _signature(in_leaves))] = (out_tree, src)
    return tuple(x for x, i in zip(out_leaves, src) if i < 0)

  compiled = jax.jit(flat)

  def call(*args):
    in_leaves, in_tree = jax.tree.flatten(args)
    changed = iter(compiled(*args))
    out_tree, src = plans[(in_tree, _signature(in_leaves))]
    return jax.tree.unflatten(out_tree, [in_leaves[i] if i >= 0 else next(changed) for i in src])

  return call


def jit_search(search: AskTell, donate: bool = False) -> AskTell:
  """The same search with `init`, `ask` and `tell` jitted (host values become arrays first).

  Parts of the state that a call leaves unchanged (the candidates, the policy
  in RL's `ask`) come back as the same arrays, not as copies.

  Args:
    search: the method.
    donate: donate the state's buffers to `ask` / `tell` instead (XLA updates
      them in place; the state passed in is invalid afterwards).
  """
  if donate:
    ask = jax.jit(search.ask, donate_argnums=0)
    tell_jit = jax.jit(search.tell, donate_argnums=0)
  else:
    ask, tell_jit = _forwarding_jit(search.ask), _forwarding_jit(search.tell)

  def tell(state, cells, values, costs=None):
    values = np.asarray(values, np.float32)
    costs = None if costs is None else np.asarray(costs, np.float32)
    return tell_jit(state, np.asarray(cells, np.int32), values, costs)

  return AskTell(jax.jit(search.init), ask, tell, search.batch_size, search.name)


# ----- checkpoints of a search state -----

_FORMAT = "arch2vec-search-state"
_VERSION = 1
_MAGIC = b"arch2vec-sha256\x00"  # 16 bytes, then the SHA-256 of the msgpack bytes


def _is_key(x) -> bool:
  return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _to_host(state: Any) -> Any:
  return jax.tree.map(lambda x: np.asarray(jax.random.key_data(x) if _is_key(x) else x), state)


def _digest(tree: Any) -> str:
  """SHA-256 over the shapes, dtypes and bytes of a pytree's leaves."""
  h = hashlib.sha256()
  for x in jax.tree.leaves(_to_host(tree)):
    h.update(f"{x.dtype}{x.shape}".encode())
    h.update(np.ascontiguousarray(x).tobytes())
  return h.hexdigest()


def save_state(
  path: str | os.PathLike, state: Any, extra: Any = None, with_problem: bool = True
) -> str:
  """Saves an ask/tell state (any pytree of arrays) atomically as msgpack with a SHA-256 trailer.

  Args:
    path: the file (its folder is created); written to a temporary name, then renamed.
    state: the state (device arrays are fetched; typed PRNG keys are stored as key data).
    extra: JSON-serialisable data stored beside it (e.g. the loop's step, a trace).
    with_problem: also store the candidates (`state.problem`; for a large pool
      most of the file). False stores only their SHA-256: `restore_state` then
      takes them from the template and refuses other candidates.

  Returns:
    The path.
  """
  payload = {"format": _FORMAT, "version": _VERSION, "type": type(state).__name__}
  if not with_problem:
    payload["problem_sha256"] = _digest(state.problem)
    state = state._replace(problem=None)
  payload["state"] = flax.serialization.to_state_dict(_to_host(state))
  payload["extra"] = json.dumps(extra)
  data = flax.serialization.msgpack_serialize(payload)
  fileio.atomic_write_bytes(path, data + _MAGIC + hashlib.sha256(data).digest())
  return os.fspath(path)


def _read(path: str) -> dict[str, Any]:
  with open(path, "rb") as f:
    data = f.read()
  n = len(_MAGIC) + 32
  if len(data) < n or data[-n:-32] != _MAGIC:
    raise StateFileError(f"{path}: not a search-state file (no checksum trailer; truncated?)")
  body = data[:-n]
  if hashlib.sha256(body).digest() != data[-32:]:
    raise StateFileError(f"{path}: damaged search-state file: SHA-256 checksum mismatch")
  try:
    payload = flax.serialization.msgpack_restore(body)
  except Exception as e:  # noqa: BLE001  (msgpack's ExtraData, FormatError, ...)
    raise StateFileError(
      f"{path}: search-state file cannot be decoded ({type(e).__name__}: {e})"
    ) from None
  if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
    raise StateFileError(f"{path}: not a search-state file")
  if int(payload.get("version", -1)) != _VERSION:
    raise StateFileError(
      f"{path}: search-state version {payload.get('version')}, this code reads {_VERSION}"
    )
  return payload


def restore_state(path: str | os.PathLike, template: Any, with_extra: bool = False) -> Any:
  """Restores a state saved by `save_state` into the structure of `template`.

  Args:
    path: the file.
    template: a state of the same method and shapes (e.g. `search.init(key, problem)`
      with any key); its leaves give the structure, dtypes and key types.
    with_extra: also return the `extra` saved beside the state.

  Returns:
    The state (device arrays), or (state, extra).

  Raises:
    StateFileError: naming the file, if it is damaged, of another method or
      does not match the template's shapes.
  """
  path = os.fspath(path)
  payload = _read(path)
  if payload["type"] != type(template).__name__:
    raise StateFileError(
      f"{path}: a {payload['type']} state, but the template is a {type(template).__name__}"
    )
  problem = None
  if "problem_sha256" in payload:  # saved without the candidates: the template's, if the same
    if _digest(template.problem) != payload["problem_sha256"]:
      raise StateFileError(
        f"{path}: saved without its candidates, and the template's candidates "
        "are not the ones it was saved with"
      )
    problem, template = template.problem, template._replace(problem=None)
  host = _to_host(template)
  try:
    restored = flax.serialization.from_state_dict(host, payload["state"])
  except (ValueError, KeyError, TypeError) as e:
    raise StateFileError(f"{path}: the saved state does not match the template: {e}") from None
  want, _ = jax.tree_util.tree_flatten_with_path(host)
  got = jax.tree_util.tree_leaves(restored)
  if len(got) != len(want):
    raise StateFileError(f"{path}: {len(got)} arrays saved, the template has {len(want)}")
  leaves = []
  for (where, t), x, orig in zip(want, got, jax.tree_util.tree_leaves(template)):
    x = np.asarray(x)
    if x.shape != t.shape or x.dtype != t.dtype:
      raise StateFileError(
        f"{path}: {jax.tree_util.keystr(where)} is {x.dtype}{list(x.shape)}, "
        f"the template's {t.dtype}{list(t.shape)}"
      )
    leaves.append(
      jax.random.wrap_key_data(x, impl=jax.random.key_impl(orig))
      if _is_key(orig)
      else jnp.asarray(x)
    )
  state = jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)
  if problem is not None:
    state = state._replace(problem=problem)
  return (state, json.loads(payload["extra"])) if with_extra else state
