"""Gradient-based search in arch2vec's latent space (arch2vec-GD), ask/tell and compiled.

The question of the paper's reviewers (how competitive is gradient-based
search in the continuous latent space, as in NAO?), answered with the same
embeddings, surrogate and protocol as arch2vec-RL / -BO:

- `num_init` distinct random cells first (counted in the budget, as BO's).
- Each round, on all queried cells (embedding e, validation accuracy y):
  fit the surrogate: DNGO (the network basis + BLR posterior of
  `dngo.fit_surrogate`, with the fit settings of this config), BLR on the
  embeddings (`surrogate='blr'`), or an ensemble of `ensemble` DNGO fits
  from different initialisations (the mixture of their Gaussian predictives:
  mean of means, variance = mean of (var + mean^2) - mean^2).
- Start points: the `num_incumbents` best queried cells and
  `num_starts - num_incumbents` uniformly random queried cells.
- `num_steps` Adam steps (lr `step_size`) per start on the acquisition a(z)
  ('mean': the posterior mean; 'ucb': mean + `ucb_beta` * std; 'ei': log EI
  over the incumbent, `blr.log_expected_improvement`), in standardised
  coordinates u = (z - mu) / sd of the queried embeddings; with `radius` > 0
  each point is kept within that distance (in u) of its start.
- The optimised points are ranked by a(z); the best k are mapped back to
  cells never proposed before, in that order: (a) `mapping='nearest'`: the
  nearest unvisited cell in embedding distance (`env.nearest_unvisited`);
  (b) `mapping='decoder'`: the pre-trained decoder's most likely cell, decoded
  from the start cell's per-node latents shifted by z - e_start (the
  embedding is the mean of the node latents, so the shifted nodes have mean
  z), when that cell is valid, in the table and unvisited; otherwise (a).
  `GDStats` counts how often (b) gave a valid new cell.

Shape of the program (as `reinforce` / `dngo`): `gd_search(config, budget, k)`
is the method as ask/tell (`ask_tell`: pure `init`, `ask`, `tell`; the fit and
the gradient steps run in `ask`); `make_gd(config, env, budget)` is
`ask_tell.table_search` over it, a pure `run(key) -> Trace`, seeds a `vmap`.
With `sequential_seeds` (default) the fit and the gradient steps run seed by
seed inside the vmapped program (`sequential_vmap`, faster on CPU), and in
the random initial rounds they are skipped (`lax.cond`).

Static shapes: the queried cells live in a buffer of `budget.max_queries` rows
(values told beyond it still count in the progress but not in the fit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from arch2vec_jax import metrics as metrics_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import spaces
from arch2vec_jax.search import ask_tell, blr, dngo
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

__all__ = [
  "GDConfig",
  "GDState",
  "GDStats",
  "TableDecoder",
  "acquisition",
  "ascend",
  "bo_config",
  "fit_ensemble",
  "gd_search",
  "has_table_decoder",
  "make_gd",
  "map_point",
  "nb201_decoder",
  "predict_ensemble",
  "run_with_stats",
  "table_decoder",
]

SURROGATES = ("dngo", "blr")
ACQUISITIONS = ("mean", "ucb", "ei")
MAPPINGS = ("nearest", "decoder")


@dataclasses.dataclass(frozen=True)
class GDConfig(dngo.SurrogateFitConfig):
  """arch2vec-GD settings (defaults: the NB201 CIFAR-10 sweep, results/search/shipped/gd_sweep).

  The sweep (100 seeds x 100 queries each, one knob at a time around a first guess with
  step_size 0.1) chose step_size 0.5 (0.1: 93.92, 0.3: 94.29, 0.5: 94.32, 1.0: 94.32 +- 0.02
  test accuracy at 100 queries, 0.5 ahead at 50 and 75) and kept EI over UCB / the mean
  (94.29 vs 94.25 / 94.23 at step 0.3), 8 starts with 4 incumbents (16 / 8: 94.01; 0
  incumbents: 93.93), one cell per round (top_k 2: 93.90), no radius (radius 1: 93.49), one
  DNGO fit (BLR on the embeddings 94.04, 3 fits of 30 epochs 93.86; 10 epochs 94.04 beat 100
  at step 0.1) and mapping (a): the decoder's cell was never a new one.

  The surrogate's fit: the fields of `dngo.SurrogateFitConfig` (shared with arch2vec-BO;
  `dngo.fit_mlp`).

  Attributes:
    batch_size: the fit's minibatch size, here 0 (full-batch, one step per epoch).
    ensemble: number of DNGO fits (different initialisations) whose predictives
      are mixed; 1 is plain DNGO.
    top_k: cells queried per round (the batch size of `make_gd`).
    acquisition: 'mean', 'ucb' or 'ei' (module doc).
    ucb_beta: the UCB's multiple of the standard deviation.
    num_starts: gradient-ascent start points per round (>= top_k).
    num_incumbents: how many of them are the best queried cells (the rest are
      random queried cells).
    num_steps: Adam steps per start.
    step_size: Adam's learning rate, in standardised latent units.
    radius: the largest distance (standardised units) from the start; 0: none.
    start_noise: Gaussian noise (standardised units) added to each start.
    mapping: 'nearest' or 'decoder' (module doc; 'decoder' needs a
      `TableDecoder`, which `runner.make_search` builds for NB201 from the
      shipped encoder named by `decoder`).
    decoder: the pre-trained weights for `mapping='decoder'` (a name of
      `pretrained.NAMES` or a path).
    sequential_seeds: under `vmap`, fit and ascend seed by seed.
    seed_group: with `sequential_seeds`, seeds per step of the loop over seeds.
  """

  batch_size: int = 0
  ensemble: int = 1
  top_k: int = 1
  acquisition: str = "ei"
  ucb_beta: float = 2.0
  num_starts: int = 8
  num_incumbents: int = 4
  num_steps: int = 20
  step_size: float = 0.5
  radius: float = 0.0
  start_noise: float = 0.0
  mapping: str = "nearest"
  decoder: str = "nb201"
  sequential_seeds: bool = True
  seed_group: int = 1

  def __post_init__(self):
    if self.surrogate not in SURROGATES:
      raise ValueError(f"surrogate must be one of {SURROGATES}, got {self.surrogate!r}")
    if self.acquisition not in ACQUISITIONS:
      raise ValueError(f"acquisition must be one of {ACQUISITIONS}, got {self.acquisition!r}")
    if self.mapping not in MAPPINGS:
      raise ValueError(f"mapping must be one of {MAPPINGS}, got {self.mapping!r}")
    if self.ensemble < 1 or self.num_init < 1 or self.top_k < 1 or self.batch_size < 0:
      raise ValueError(f"bad GDConfig {self}")
    if self.num_starts < self.top_k:
      raise ValueError(f"num_starts ({self.num_starts}) must be >= top_k ({self.top_k})")
    if not 0 <= self.num_incumbents <= self.num_starts:
      raise ValueError(f"num_incumbents must be in [0, num_starts], got {self.num_incumbents}")
    if self.num_steps < 0 or self.step_size < 0 or self.radius < 0 or self.start_noise < 0:
      raise ValueError(f"num_steps, step_size, radius and start_noise must be >= 0: {self}")
    if self.seed_group < 1:
      raise ValueError(f"seed_group must be >= 1, got {self.seed_group}")


def bo_config(config: GDConfig) -> dngo.BOConfig:
  """The `dngo.BOConfig` whose `fit_surrogate` is this config's surrogate fit."""
  return dngo.BOConfig(**config.fit_fields())


class TableDecoder(NamedTuple):
  """The pre-trained decoder as a map from latent points to table rows (mapping (b)).

  Attributes:
    node_latents: float32 [N, n, L], every table cell's per-node encoder means
      (their mean over the nodes is the cell's embedding).
    decode: pure `decode(z [n, L]) -> int32 []`, the table row of the decoder's
      most likely cell, -1 when it is not a valid cell of the table.
  """

  node_latents: jax.Array
  decode: Callable[[jax.Array], jax.Array]


class GDStats(NamedTuple):
  """How the optimised points were mapped back (int32 [] counts over a run).

  Attributes:
    mapped: proposals made from optimised points.
    decoded_valid: of them, the decoder's cell was a valid cell of the table
      (mapping 'decoder' only; 0 otherwise).
    decoded_new: of them, it was also unvisited and so proposed.
  """

  mapped: jax.Array
  decoded_valid: jax.Array
  decoded_new: jax.Array


class GDState(NamedTuple):
  """arch2vec-GD's ask/tell state (B = buffer rows, the budget's queries; D = embedding dim).

  Attributes:
    problem: the candidates (embeddings: the latent space).
    progress: proposals and values told.
    key: the run's key (round r uses `step_key(key, r)`).
    round: int32 [], asks made.
    asked: int32 [], cells proposed.
    x: float32 [B, D], embeddings of the told cells; y: float32 [B] their values;
      c: int32 [B] the cells.
    num_rows: int32 [], rows of the buffer in use.
    stats: the mapping counts.
  """

  problem: ask_tell.Candidates
  progress: ask_tell.Progress
  key: jax.Array
  round: jax.Array
  asked: jax.Array
  x: jax.Array
  y: jax.Array
  c: jax.Array
  num_rows: jax.Array
  stats: GDStats


def fit_ensemble(
  key: jax.Array, config: GDConfig, x: jax.Array, y: jax.Array, mask: jax.Array, num_rows: jax.Array
) -> dngo.Surrogate:
  """`config.ensemble` surrogates fitted on the masked rows (a leading [E] axis on every leaf).

  Args:
    key: PRNG key (member e uses fold_in(key, e)).
    config: the fit settings.
    x: float32 [B, D] raw embeddings; y: float32 [B]; mask: bool [B]; num_rows: int32 [].
  """
  bo = bo_config(config)
  dim = x.shape[1]

  def one(k):
    net = dngo.init_mlp(k, dim, config.hidden_dim)
    return dngo.fit_surrogate(k, bo, x, y, mask, num_rows, net)[0]

  keys = jnp.stack([jax.random.fold_in(key, e) for e in range(config.ensemble)])
  if config.ensemble == 1:
    return jax.tree.map(lambda a: a[None], one(keys[0]))
  return jax.lax.map(one, keys)


def predict_ensemble(
  sur: dngo.Surrogate, z: jax.Array, linear: bool
) -> tuple[jax.Array, jax.Array]:
  """The mixture predictive (mean [M], variance [M]) of an ensemble [E] at raw points z [M, D]."""

  def one(s):
    mean, var = blr.predict(s.post, s.features(z, linear))
    return mean * s.y_sd + s.y_mu, var * s.y_sd**2

  means, vars_ = jax.vmap(one)(sur)  # [E, M]
  mean = jnp.mean(means, axis=0)
  var = jnp.mean(vars_ + means**2, axis=0) - mean**2
  return mean, jnp.maximum(var, jnp.min(vars_, axis=0))


def acquisition(sur: dngo.Surrogate, z: jax.Array, best: jax.Array, config: GDConfig) -> jax.Array:
  """The acquisition a(z) to maximise, [M] at raw latent points z [M, D] (module doc)."""
  mean, var = predict_ensemble(sur, z, config.surrogate == "blr")
  if config.acquisition == "mean":
    return mean
  if config.acquisition == "ucb":
    return mean + config.ucb_beta * jnp.sqrt(var)
  return blr.log_expected_improvement(mean, jnp.sqrt(var), best)


def ascend(
  sur: dngo.Surrogate,
  z0: jax.Array,
  mu: jax.Array,
  sd: jax.Array,
  best: jax.Array,
  config: GDConfig,
) -> tuple[jax.Array, jax.Array]:
  """Adam ascent of the acquisition from each start (module doc).

  Args:
    sur: the surrogate ensemble.
    z0: float32 [S, D] raw start points.
    mu, sd: float32 [D], the standardisation of the latent coordinates.
    best: float32 [], the incumbent (EI).
    config: `num_steps`, `step_size`, `radius`, `acquisition`, `ucb_beta`.

  Returns:
    (the optimised raw points [S, D], their acquisition [S]).
  """
  optimizer = optax.adam(config.step_size)
  u0 = (z0 - mu) / sd
  value = lambda u: acquisition(sur, (mu + sd * u)[None], best, config)[0]
  grad = jax.grad(lambda u: -value(u))

  def project(u, start):
    if config.radius <= 0:
      return u
    d = u - start
    n = jnp.sqrt(jnp.sum(d * d))
    return start + d * jnp.minimum(1.0, config.radius / jnp.maximum(n, 1e-12))

  def one(start):
    def step(_, carry):
      u, opt = carry
      g = grad(u)
      g = jnp.where(jnp.isfinite(g), g, 0.0)
      upd, opt = optimizer.update(g, opt, u)
      return project(optax.apply_updates(u, upd), start), opt

    u, _ = jax.lax.fori_loop(0, config.num_steps, step, (start, optimizer.init(start)))
    return mu + sd * u

  z = jax.vmap(one)(u0)
  a = acquisition(sur, z, best, config)
  return z, jnp.where(jnp.isnan(a), -jnp.inf, a)


def map_point(
  problem: ask_tell.Candidates,
  visited: jax.Array,
  z: jax.Array,
  start: jax.Array,
  decoder: TableDecoder | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The cell an optimised point is mapped to (module doc).

  Args:
    problem: the candidates.
    visited: bool [N].
    z: float32 [D], the optimised point.
    start: int32 [], the cell its ascent started from.
    decoder: None for mapping (a), else the table decoder (b, falling back to a).

  Returns:
    (cell int32 [] (unvisited unless every cell is), decoded_valid bool [],
    decoded_new bool []).
  """
  near = env_lib.nearest_unvisited(problem, visited, z)
  if decoder is None:
    return near, jnp.bool_(False), jnp.bool_(False)
  nodes = decoder.node_latents[start] + (z - problem.embeddings[start])[None, :]
  row = decoder.decode(nodes)
  safe = jnp.maximum(row, 0)
  valid = (row >= 0) & problem.available[safe]
  new = valid & ~visited[safe]
  return jnp.where(new, safe, near), valid, new


def gd_search(
  config: GDConfig,
  budget: env_lib.Budget,
  batch_size: int | None = None,
  decoder: TableDecoder | None = None,
) -> ask_tell.AskTell:
  """arch2vec-GD as ask/tell (module doc).

  Args:
    config: the settings.
    budget: the search's budget: its `max_queries` sizes the data buffer.
    batch_size: cells per `ask` (default `config.top_k`).
    decoder: needed for `mapping='decoder'` (`table_decoder`).

  Returns:
    The method: `init(key, problem)`, `ask(state)` (random cells while fewer
    than `num_init` were proposed, then one fit + ascent per ask while `budget` lasts; past it
    random cells, unfitted), `tell`.
  """
  k = ask_tell.check_batch_size(config.top_k if batch_size is None else batch_size)
  if config.num_starts < k:
    raise ValueError(f"num_starts ({config.num_starts}) must be >= the batch size {k}")
  if config.mapping == "decoder" and decoder is None:
    raise ValueError("mapping='decoder' needs a TableDecoder (gd.table_decoder)")
  if config.mapping == "nearest":
    decoder = None
  rows = max(int(budget.max_queries), 1)
  starts, incumbents = int(config.num_starts), int(config.num_incumbents)

  def init(key: jax.Array, problem: ask_tell.Candidates) -> GDState:
    dim = problem.embeddings.shape[1]
    zero = jnp.array(0, jnp.int32)
    return GDState(
      problem,
      ask_tell.init_progress(problem),
      key,
      zero,
      zero,
      jnp.zeros((rows, dim), jnp.float32),
      jnp.zeros((rows,), jnp.float32),
      jnp.zeros((rows,), jnp.int32),
      zero,
      GDStats(zero, zero, zero),
    )

  # The fit on the first `bucket` rows of the buffer (the told cells are its first rows), for the
  # smallest bucket holding them: buckets of hidden_dim * 2^i rows (one shape of BLR posterior, its
  # primal form) when the buffer is larger than that, picked by `lax.switch` seed by seed
  # (`sequential_seeds`; batched seeds would run every bucket). The same fit on fewer padded rows.
  hidden = int(config.hidden_dim) if config.surrogate == "dngo" else 0
  if config.sequential_seeds and hidden and rows > 2 * hidden:
    buckets = [hidden * 2**i for i in range(32) if hidden * 2**i < rows] + [rows]
  else:
    buckets = [rows]

  def fit_bucketed(k_fit, x, y, num_rows):
    def fit_on(b):
      return lambda: fit_ensemble(k_fit, config, x[:b], y[:b], jnp.arange(b) < num_rows, num_rows)

    if len(buckets) == 1:
      return fit_on(rows)()
    index = jnp.sum(jnp.asarray(buckets[:-1]) < num_rows)
    return jax.lax.switch(index, [fit_on(b) for b in buckets])

  def think(key, problem, x, y, c, num_rows, visited, best, active):
    """Fit, ascend and map k points (one seed; random cells while not `active`)."""

    def gradient(visited):
      k_fit, k_start, k_noise = jax.random.split(key, 3)
      mask = jnp.arange(rows) < num_rows
      sur = fit_bucketed(k_fit, x, y, num_rows)
      mu, sd = dngo._masked_moments(x, mask)  # pylint: disable=protected-access
      top = jax.lax.top_k(jnp.where(mask, y, -jnp.inf), max(incumbents, 1))[1][:incumbents]
      rand = jax.random.randint(k_start, (starts - incumbents,), 0, jnp.maximum(num_rows, 1))
      start_rows = jnp.concatenate([top, rand]).astype(jnp.int32)
      z0 = x[start_rows] + config.start_noise * sd * jax.random.normal(
        k_noise, (starts, x.shape[1])
      )
      z, a = ascend(sur, z0, mu, sd, best, config)
      order = jnp.argsort(-a)  # stable: ties to the lower start
      cells, valid, new = [], [], []
      for j in range(k):
        i = order[j]
        cell, v, n = map_point(problem, visited, z[i], c[start_rows[i]], decoder)
        visited = visited.at[cell].set(True)
        cells.append(cell)
        valid.append(v)
        new.append(n)
      return jnp.stack(cells), jnp.stack(valid), jnp.stack(new)

    def random(visited):
      cells = []
      for j in range(k):
        cell = env_lib.random_unvisited(jax.random.fold_in(key, j), visited)
        visited = visited.at[cell].set(True)
        cells.append(cell)
      false = jnp.zeros((k,), bool)
      return jnp.stack(cells), false, false

    return jax.lax.cond(active, gradient, random, visited)

  if config.sequential_seeds:
    think = sequential_vmap(think, config.seed_group)

  def ask(state: GDState) -> tuple[jax.Array, GDState]:
    # Fit and ascend after the initial design and while the budget lasts (past it: cheap random cells,
    # which `table_search` does not query).
    active = (state.asked >= config.num_init) & ask_tell.within_budget(state, budget)
    key = ask_tell.step_key(state.key, state.round)
    raw, valid, new = think(
      key,
      state.problem,
      state.x,
      state.y,
      state.c,
      state.num_rows,
      state.progress.visited,
      state.progress.best_value,
      active,
    )
    visited, cells = state.progress.visited, []
    for j in range(k):
      visited, cell = ask_tell.propose(visited, raw[j])
      cells.append(cell)
    cells = jnp.stack(cells)
    made = (cells >= 0) & active
    count = lambda m: jnp.sum(m & made).astype(jnp.int32)
    stats = GDStats(
      state.stats.mapped + count(made),
      state.stats.decoded_valid + count(valid),
      state.stats.decoded_new + count(new),
    )
    state = state._replace(
      progress=state.progress._replace(visited=visited),
      round=state.round + 1,
      asked=state.asked + k,
      stats=stats,
    )
    return cells, state

  def tell(state: GDState, cells, values, costs=None) -> GDState:
    progress, told = ask_tell.record(state.progress, cells, values, costs)
    cells, values, _ = ask_tell.as_batch(cells, values, costs)
    new = (state.problem.embeddings[jnp.maximum(cells, 0)], values, cells)
    (x, y, c), n = ask_tell.append_told((state.x, state.y, state.c), state.num_rows, told, new)
    return state._replace(progress=progress, x=x, y=y, c=c, num_rows=jnp.minimum(n, rows))

  return ask_tell.AskTell(init, ask, tell, k, "gd")


def make_gd(
  config: GDConfig,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  decoder: TableDecoder | None = None,
) -> Callable[[jax.Array], env_lib.Trace]:
  """A pure `run(key) -> Trace` (length `budget.max_queries`): `ask_tell.table_search` over
  `gd_search(config, budget, config.top_k, decoder)`; vmap it over keys for seeds."""
  table_run = ask_tell.table_search(gd_search(config, budget, config.top_k, decoder), env, budget)

  def run(key: jax.Array) -> env_lib.Trace:
    """arch2vec-GD on the table, one seed."""
    return table_run(key)

  return run


def run_with_stats(
  config: GDConfig,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  decoder: TableDecoder | None = None,
) -> Callable[[jax.Array], tuple[env_lib.Trace, GDStats]]:
  """`run(key) -> (Trace, GDStats)`: the loop of `ask_tell.table_search` (ask -> `env.query`
  -> tell, k cells per round) keeping the final state's mapping counts; the trace equals
  `make_gd`'s (tests/test_gd.py)."""
  search = gd_search(config, budget, config.top_k, decoder)
  problem = ask_tell.candidates_from_env(env)
  t_max, k = int(budget.max_queries), search.batch_size
  rounds = -(-t_max // k)

  def round_(carry, _):
    state, env_state = carry
    cells, state = search.ask(state._replace(problem=problem))
    rows = []
    for j in range(k):
      active = env_lib.budget_active(env_state, budget) & (cells[j] >= 0)
      env_state, row = env_lib.query(
        env, env_state._replace(visited=state.progress.visited), jnp.maximum(cells[j], 0), active
      )
      rows.append(row)
    rows = jax.tree.map(lambda *a: jnp.stack(a), *rows)
    costs = jnp.where(rows.mask, env.cost[jnp.maximum(cells, 0)], 0.0)
    state = search.tell(state, cells, rows.reward, costs)
    return (state._replace(problem=None), env_state), rows

  def run(key):
    state = search.init(key, problem)._replace(problem=None)
    (state, _), rows = jax.lax.scan(round_, (state, env_lib.init_state(env)), None, length=rounds)
    trace = jax.tree.map(lambda a: a.reshape((rounds * k,) + a.shape[2:])[:t_max], rows)
    return trace, state.stats

  return run


def has_table_decoder(space: str) -> bool:
  """Whether `table_decoder` works for a space (its `SearchSpace.table_rows` and ids-are-cells)."""
  if space not in spaces.NAMES:
    return False
  space_obj = spaces.get(space)
  return space_obj.table_rows is not None and space_obj.ids_are_cells


def table_decoder(encoder: Any, table_ids: Any, chunk: int = 1024) -> TableDecoder:
  """The table decoder (mapping (b)) of a pre-trained encoder over a table's cells.

  Args:
    encoder: a `pretrained.Encoder` of a space whose ids are its cells and whose
      decoded cells map to table rows (`has_table_decoder`: NB201, e.g.
      `pretrained.load('nb201')`).
    table_ids: N ids (NB201 arch strings), the table's cells in table order.
    chunk: cells per encoder call for the node latents.

  Returns:
    The decoder: node latents [N, n, L] (the encoder's mu, eval mode) and
    `decode(z [n, L])`, the table row of the decoded cell (`SearchSpace.table_rows`:
    NB201, when its adjacency is the fixed one and its ops are input, six edge
    ops, output); else -1.

  Raises:
    ValueError: for an encoder of a space without table rows (`has_table_decoder`).
  """
  if not has_table_decoder(encoder.space):
    raise ValueError(
      "the table decoder needs an encoder of a space whose ids are its cells and whose "
      f"decoded cells map to table rows (nb201), got {encoder.space!r}"
    )
  space = encoder.search_space
  ids = [str(s) for s in table_ids]
  adj, ops = space.native.encode(ids)
  n_node = np.asarray(model_lib.count_nodes(ops), np.int32)
  module, variables = encoder.module, encoder.variables

  @jax.jit
  def node_mu(a, o, nn):
    graph = model_lib.cells_to_graphs(a, o, nn)
    return module.apply(variables, graph, train=False, method=model_lib.Arch2Vec.encode)[0]

  parts = []
  for s in range(0, len(ids), chunk):
    a, o, nn = adj[s : s + chunk], ops[s : s + chunk], n_node[s : s + chunk]
    pad = chunk - len(a)
    if pad:
      a, o, nn = (np.concatenate([v, np.repeat(v[-1:], pad, axis=0)]) for v in (a, o, nn))
    parts.append(np.asarray(node_mu(a, o, nn))[: chunk - pad])
  latents = np.concatenate(parts).astype(np.float32)
  row = space.table_rows(ids)

  def decode(z: jax.Array) -> jax.Array:
    a, o = metrics_lib.decode_latents(module, variables, z[None])
    return row(a[0], o[0])

  return TableDecoder(jnp.asarray(latents), decode)


# The NB201 name of `table_decoder` (NB201 is the space it serves).
nb201_decoder = table_decoder
