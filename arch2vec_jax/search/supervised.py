"""Supervised-search baselines (the paper's RQ4): the encoder is learned during the search.

The release's `search_methods/supervised_dngo.py` and `supervised_reinforce.py`:
the same GIN encoder as arch2vec (`model.Arch2Vec.encode`: 4 GIN layers, hidden
128, a per-node 16-d mu head), but never pre-trained: it is trained only on the
cells the search queries, jointly with the search's own model.

- **supervised-BO** (`supervised_bo_search`, 'sbo'): arch2vec-BO's loop
  (`dngo.bo_search`: 16 distinct random cells, then each iteration a fit on every
  queried cell and the top-k of EI over the unvisited cells), with the surrogate
  of `search.joint`: `joint.GINDNGO` (basis tanh(mean over real nodes of mu),
  Linear(16, 1)) trained from a fresh initialisation on the queried cells (Adam
  lr 1e-2, 100 epochs, minibatches of 10 from a fresh shuffle each epoch, the
  incomplete last batch dropped, MSE on the raw accuracies, BatchNorm with
  minibatch statistics), then the search's BLR on the basis of the queried cells
  (eval mode) and log EI over the incumbent (the project's default acquisition)
  for every cell, whose basis is recomputed by the new encoder each iteration.
- **supervised-RL** (`supervised_rl_search`, 'srl'): arch2vec-RL
  (`reinforce`: LSTM policy, Gaussian actions, episodes of 16, the nearest
  unvisited cell, a fixed baseline) where the space is the GIN's pooled mu (mean
  over real nodes, as the release's `extract_feature`), recomputed for every cell
  at the start of each episode, and the policy's input is the GIN encoding of the
  previous cell; at the end of an episode the REINFORCE loss is differentiated
  through the GIN as well (Adam lr 1e-3 for the GIN, 1e-2 for the policy, as the
  release).

Deviations, on purpose: supervised-RL uses BatchNorm in eval mode with its
initial statistics (the release runs the GIN in train mode on one cell at a time,
so its statistics are those of a single cell's nodes); BatchNorm statistics skip
padding nodes (`ModelConfig.bn_include_padding=False`).

Both are ask/tell methods (`ask_tell`) over `GraphCandidates` (the cells'
adjacency and operations; the accuracy table only through `tell`), and
`make_supervised_bo` / `make_supervised_rl` are `ask_tell.table_search` over them
(one compiled program per method, seeds a `vmap`; `sequential_seeds` runs the
heavy parts seed by seed under `vmap`, as BO does).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from arch2vec_jax import model as model_lib
from arch2vec_jax.search import ask_tell, blr, dngo, joint, reinforce
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

__all__ = [
  "GINEncoder",
  "GraphCandidates",
  "SBOState",
  "SRLState",
  "SupervisedBOConfig",
  "SupervisedRLConfig",
  "graph_candidates",
  "make_supervised_bo",
  "make_supervised_rl",
  "supervised_bo_search",
  "supervised_rl_search",
]


class GraphCandidates(NamedTuple):
  """The candidate cells as graphs (the "problem" of the supervised searches).

  Attributes:
    adjacency: int8 [N, n, n], strictly upper triangular.
    ops: int8 [N, n, d], one-hot operations (padding rows zero, trailing).
    n_node: int32 [N], real nodes per cell.
    available: bool [N], cells that may be proposed.
  """

  adjacency: jax.Array
  ops: jax.Array
  n_node: jax.Array
  available: jax.Array

  @property
  def num_cells(self) -> int:
    return self.available.shape[0]


def graph_candidates(adjacency, ops, available=None) -> GraphCandidates:
  """`GraphCandidates` from host arrays [N, n, n], [N, n, d] (and bool [N], default all)."""
  adjacency, ops = np.asarray(adjacency), np.asarray(ops)
  if adjacency.ndim != 3 or ops.ndim != 3 or adjacency.shape[:2] != ops.shape[:2]:
    raise ValueError(
      f"adjacency [N, n, n] and ops [N, n, d] expected, got {adjacency.shape}, {ops.shape}"
    )
  n = len(ops)
  avail = np.ones(n, bool) if available is None else np.asarray(available, bool)
  if avail.shape != (n,) or not avail.any():
    raise ValueError(f"available must be bool [{n}] with at least one True")
  return GraphCandidates(
    jnp.asarray(adjacency, jnp.int8),
    jnp.asarray(ops, jnp.int8),
    jnp.asarray(model_lib.count_nodes(ops), jnp.int32),
    jnp.asarray(avail),
  )


def _graphs(problem: GraphCandidates, cells: jax.Array, n_node: jax.Array | None = None):
  """The graphs of `cells` [B] (n_node overrides the node counts: 0 makes a padding graph)."""
  nn_ = problem.n_node[cells] if n_node is None else n_node
  return model_lib.cells_to_graphs(problem.adjacency[cells], problem.ops[cells], nn_)


def _chunked(fn: Callable, problem: GraphCandidates, chunk: int) -> jax.Array:
  """fn(graphs of a chunk of cells) [chunk, ...] over every cell, in chunks (`lax.map`): [N, ...]."""
  n = problem.num_cells
  chunk = min(int(chunk), n)
  num = -(-n // chunk)
  cells = jnp.arange(num * chunk, dtype=jnp.int32)
  real = cells < n
  cells = jnp.where(real, cells, 0).reshape(num, chunk)
  counts = jnp.where(real.reshape(num, chunk), problem.n_node[cells], 0)
  out = jax.lax.map(lambda a: fn(_graphs(problem, a[0], a[1])), (cells, counts))
  return out.reshape((num * chunk,) + out.shape[2:])[:n]


# ----- supervised-BO -----


@dataclasses.dataclass(frozen=True)
class SupervisedBOConfig:
  """Supervised-BO settings (defaults: the release's `supervised_dngo`, NB201's top-k).

  Attributes:
    joint: the joint GIN + DNGO training (`search.joint.JointConfig`).
    num_init: random cells queried first.
    top_k: cells queried per iteration (1 NB201, 5 NB101).
    predict_chunk: cells per chunk of the sweep (the encoder over every cell).
    sequential_seeds: under `vmap`, fit and sweep seed by seed.
  """

  joint: joint.JointConfig = dataclasses.field(default_factory=joint.JointConfig)
  num_init: int = 16
  top_k: int = 1
  predict_chunk: int = 1024
  sequential_seeds: bool = True

  def __post_init__(self):
    if self.num_init < 2 or self.top_k < 1 or self.predict_chunk < 1:
      raise ValueError(f"bad SupervisedBOConfig {self}")


class SBOState(NamedTuple):
  """Supervised-BO's ask/tell state (R = the budget's query count, k = top_k).

  Attributes:
    problem: the candidates (graphs).
    progress: proposals and values told.
    init_key, fit_key: the random initial design's and the fits' key streams (`ask_tell.step_key`).
    num_asked: int32 [], proposals made; num_fits: int32 [], fits made.
    cells: int32 [R], the evaluated cells in the order told; y: float32 [R], their values.
    picks: int32 [k], the last fit's cells; picks_ok: bool [k]; next_pick: int32 [].
    log_alpha, log_beta: float32 [], the last fit's BLR hyperparameters (NaN before).
  """

  problem: GraphCandidates
  progress: ask_tell.Progress
  init_key: jax.Array
  fit_key: jax.Array
  num_asked: jax.Array
  num_fits: jax.Array
  cells: jax.Array
  y: jax.Array
  picks: jax.Array
  picks_ok: jax.Array
  next_pick: jax.Array
  log_alpha: jax.Array
  log_beta: jax.Array


def _fit_joint_masked(
  key, config: joint.JointConfig, net: joint.GINDNGO, problem: GraphCandidates, cells, y, num_rows
):
  """The joint GIN + DNGO fit on the first `num_rows` of `cells` [R] / `y` [R] (dynamic count): variables."""
  rows = cells.shape[0]
  bs = min(int(config.batch_size), rows)
  tx = optax.adam(config.learning_rate)
  k_init, k_shuf = jax.random.split(key)
  variables = net.init(k_init, _graphs(problem, cells[:bs]), train=False)
  params, stats = variables["params"], variables["batch_stats"]
  mask = jnp.arange(rows) < num_rows
  this_bs = jnp.minimum(num_rows, bs)
  num_batches = jnp.maximum(num_rows // bs, 1)
  lane = jnp.arange(bs)

  def step_fn(carry, idx):
    params, stats, opt = carry
    real = lane < this_bs
    graph = _graphs(problem, cells[idx], jnp.where(real, problem.n_node[cells[idx]], 0))
    w = real.astype(jnp.float32)

    def loss_fn(p):
      (pred, _), upd = net.apply(
        {"params": p, "batch_stats": stats}, graph, train=True, mutable=["batch_stats"]
      )
      return jnp.sum(w * jnp.square(pred - y[idx])) / jnp.maximum(jnp.sum(w), 1.0), upd[
        "batch_stats"
      ]

    (_, stats_new), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(grads, opt, params)
    return optax.apply_updates(params, updates), stats_new, opt

  def epoch(e, carry):
    order = jnp.argsort(
      jnp.where(mask, jax.random.uniform(jax.random.fold_in(k_shuf, e), (rows,)), 2.0)
    )
    return jax.lax.fori_loop(
      0, num_batches, lambda j, c: step_fn(c, jax.lax.dynamic_slice(order, (j * bs,), (bs,))), carry
    )

  params, stats, _ = jax.lax.fori_loop(
    0, config.num_epochs, epoch, (params, stats, tx.init(params))
  )
  return {"params": params, "batch_stats": stats}


def supervised_bo_search(
  config: SupervisedBOConfig, budget: env_lib.Budget, batch_size: int = 1
) -> ask_tell.AskTell:
  """Supervised-BO as ask/tell (module doc; the proposal logic of `dngo.bo_search`).

  Args:
    config: the settings.
    budget: the search's budget (its query count sizes the data buffer; no fit past it).
    batch_size: cells per `ask` (static).

  Returns:
    The method (`ask_tell.AskTell`, name 'sbo'); `init(key, GraphCandidates)`.
  """
  b = ask_tell.check_batch_size(batch_size)
  k, n0 = int(config.top_k), int(config.num_init)
  rows = max(int(budget.max_queries), 1)
  jc = config.joint

  def think(key, cells, y, num_rows, visited, best, active, problem):
    net = joint.GINDNGO(problem.ops.shape[2], jc.model)

    def fit_and_pick(_):
      variables = _fit_joint_masked(key, jc, net, problem, cells, y, num_rows)
      basis = lambda g: net.apply(variables, g, train=False)[1]
      mask = jnp.arange(rows) < num_rows
      phi = basis(_graphs(problem, cells, jnp.where(mask, problem.n_node[cells], 0)))
      post = blr.fit(phi, y, mask)
      mean, var = blr.predict(post, _chunked(basis, problem, config.predict_chunk))
      scores = jnp.where(visited, -jnp.inf, blr.log_expected_improvement(mean, jnp.sqrt(var), best))
      top_s, top = jax.lax.top_k(scores, k)
      return top.astype(jnp.int32), top_s, post.log_alpha, post.log_beta

    def skip(_):
      nan = jnp.float32(jnp.nan)
      return jnp.zeros((k,), jnp.int32), jnp.full((k,), -jnp.inf), nan, nan

    return jax.lax.cond(active, fit_and_pick, skip, None)

  if config.sequential_seeds:
    think = sequential_vmap(think)

  def init(key: jax.Array, problem: GraphCandidates) -> SBOState:
    k_init, k_loop = jax.random.split(key)
    nan = jnp.float32(jnp.nan)
    return SBOState(
      **dngo.top_k_fields(problem, k_init, k_loop, k),
      cells=jnp.zeros((rows,), jnp.int32),
      y=jnp.zeros((rows,), jnp.float32),
      log_alpha=nan,
      log_beta=nan,
    )

  def ask(state: SBOState) -> tuple[jax.Array, SBOState]:
    problem = state.problem
    in_budget = ask_tell.within_budget(state, budget)
    learner = state._replace(problem=None)

    def refit(st: SBOState, due: jax.Array, active: jax.Array):
      cells, scores, la, lb = think(
        ask_tell.step_key(st.fit_key, st.num_fits),
        st.cells,
        st.y,
        st.progress.num_told,
        st.progress.visited,
        st.progress.best_value,
        active,
        problem,
      )
      la, lb = jnp.where(due, la, st.log_alpha), jnp.where(due, lb, st.log_beta)
      return cells, scores, st._replace(log_alpha=la, log_beta=lb)

    def slot(st: SBOState, _):
      return dngo.top_k_slot(st, refit, n0, k, in_budget)

    learner, cells = jax.lax.scan(slot, learner, None, length=b)
    return cells, learner._replace(problem=problem)

  def tell(state: SBOState, cells, values, costs=None) -> SBOState:
    start = state.progress.num_told
    progress, told = ask_tell.record(state.progress, cells, values, costs)
    cells, values, _ = ask_tell.as_batch(cells, values, costs)
    new = (jnp.maximum(cells, 0), values)
    (buf, y), _ = ask_tell.append_told((state.cells, state.y), start, told, new)
    return state._replace(progress=progress, cells=buf, y=y)

  return ask_tell.AskTell(init, ask, tell, b, "sbo")


def make_supervised_bo(
  config: SupervisedBOConfig,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  problem: GraphCandidates,
) -> Callable[[jax.Array], env_lib.Trace]:
  """A pure `run(key) -> Trace` on the table: `ask_tell.table_search` over `supervised_bo_search`."""
  table_run = ask_tell.table_search(supervised_bo_search(config, budget), env, budget, problem)

  def run(key: jax.Array) -> env_lib.Trace:
    """Supervised-BO on the table, one seed."""
    return table_run(key)

  return run


# ----- supervised-RL -----


class GINEncoder(nn.Module):
  """The arch2vec GIN encoder, pooled: mean over real nodes of mu, [B, latent] (no tanh)."""

  num_ops: int
  config: model_lib.ModelConfig = model_lib.ModelConfig()

  @nn.compact
  def __call__(self, graph, train: bool = False) -> jax.Array:
    mu, _ = model_lib.Arch2Vec(self.num_ops, self.config, name="encoder").encode(graph, train)
    w = model_lib.node_mask(graph.n_node, mu.shape[1]).astype(mu.dtype)[..., None]
    return (mu * w).sum(axis=1) / jnp.maximum(w.sum(axis=1), 1.0)


@dataclasses.dataclass(frozen=True)
class SupervisedRLConfig:
  """Supervised-RL settings (defaults: the release's `supervised_reinforce`, NB201's baseline).

  Attributes:
    policy: the REINFORCE settings (`reinforce.ReinforceConfig`: hidden size,
      episode length, policy learning rate, baseline, action std).
    encoder_learning_rate: Adam learning rate of the GIN (1e-3 in the release).
    model: the GIN's `ModelConfig`.
    feature_chunk: cells per chunk of the encoder over every cell.
    sequential_seeds: under `vmap`, recompute the features seed by seed.
  """

  policy: reinforce.ReinforceConfig = dataclasses.field(default_factory=reinforce.ReinforceConfig)
  encoder_learning_rate: float = 1e-3
  model: model_lib.ModelConfig = dataclasses.field(default_factory=model_lib.ModelConfig)
  feature_chunk: int = 1024
  sequential_seeds: bool = True

  def __post_init__(self):
    if self.policy.baseline_mode != "constant" or self.policy.baseline_decay is not None:
      raise ValueError("supervised-RL uses the fixed baseline (policy.baseline)")


class SRLState(NamedTuple):
  """Supervised-RL's ask/tell state (L = episode length, D = latent, H = LSTM hidden).

  Attributes:
    problem: the candidates (graphs).
    progress: proposals and values told.
    encoder: the GIN's variables; policy: the LSTM policy (`reinforce.PolicyParams`).
    enc_opt, pol_opt: their Adam states.
    key, episode_key: the episodes' key stream and this episode's key.
    features: float32 [N, D], every cell's encoding at this episode's start.
    sq_norms: float32 [N], their squared norms.
    cell: int32 [], the last evaluated cell (the next input).
    lstm: (h [H], c [H]); step: int32 [], the episode position of the next proposal.
    inputs: int32 [L], the input cell of each step; actions: float32 [L, D];
    rewards: float32 [L]; mask: bool [L], steps with a value told.
  """

  problem: GraphCandidates
  progress: ask_tell.Progress
  encoder: Any
  policy: reinforce.PolicyParams
  enc_opt: optax.OptState
  pol_opt: optax.OptState
  key: jax.Array
  episode_key: jax.Array
  features: jax.Array
  sq_norms: jax.Array
  cell: jax.Array
  lstm: tuple[jax.Array, jax.Array]
  step: jax.Array
  inputs: jax.Array
  actions: jax.Array
  rewards: jax.Array
  mask: jax.Array


class _Space(NamedTuple):  # what `env.nearest_unvisited` reads
  embeddings: jax.Array
  sq_norms: jax.Array


def supervised_rl_search(config: SupervisedRLConfig, batch_size: int = 1) -> ask_tell.AskTell:
  """Supervised-RL as ask/tell (module doc; the proposal logic of `reinforce.reinforce_search`).

  Args:
    config: the settings.
    batch_size: cells per `ask` (static; must divide the episode length).

  Returns:
    The method (`ask_tell.AskTell`, name 'srl'); `init(key, GraphCandidates)`.
  """
  pc = config.policy
  k = ask_tell.check_batch_size(batch_size)
  length, hidden, std = int(pc.episode_length), int(pc.hidden_dim), float(pc.action_std)
  if length % k:
    raise ValueError(f"batch_size {k} must divide episode_length {length}")
  pol_tx, enc_tx = optax.adam(pc.learning_rate), optax.adam(config.encoder_learning_rate)
  latent = int(config.model.latent)

  def encoder(problem: GraphCandidates) -> GINEncoder:
    return GINEncoder(problem.ops.shape[2], config.model)

  def features_of(new, variables, problem, old, old_sq):
    """Every cell encoded by the current GIN at an episode's start (`new`), else the episode's features."""

    def compute(_):
      net = encoder(problem)
      f = _chunked(lambda g: net.apply(variables, g, train=False), problem, config.feature_chunk)
      return f, jnp.sum(f * f, axis=1)

    return jax.lax.cond(new, compute, lambda _: (old, old_sq), None)

  feats = sequential_vmap(features_of) if config.sequential_seeds else features_of

  def init(key: jax.Array, problem: GraphCandidates) -> SRLState:
    k_start, k_enc, k_pol, k_loop = jax.random.split(key, 4)
    progress = ask_tell.init_progress(problem)
    start = env_lib.random_unvisited(k_start, progress.visited)
    progress = progress._replace(visited=progress.visited.at[start].set(True))  # free start
    variables = encoder(problem).init(k_enc, _graphs(problem, start[None]), train=False)
    policy = reinforce.init_policy(k_pol, latent, hidden)
    key, k_ep = jax.random.split(k_loop)
    h0 = jnp.zeros(hidden, jnp.float32)
    n = problem.num_cells
    return SRLState(
      problem,
      progress,
      variables,
      policy,
      enc_tx.init(variables["params"]),
      pol_tx.init(policy),
      key,
      k_ep,
      jnp.zeros((n, latent), jnp.float32),
      jnp.zeros((n,), jnp.float32),
      start,
      (h0, h0),
      jnp.array(0, jnp.int32),
      jnp.zeros((length,), jnp.int32),
      jnp.zeros((length, latent), jnp.float32),
      jnp.zeros((length,), jnp.float32),
      jnp.zeros((length,), bool),
    )

  def ask(state: SRLState) -> tuple[jax.Array, SRLState]:
    problem = state.problem
    # A new episode: every cell encoded by the current GIN (the space the actions are snapped in).
    features, sq = feats(state.step == 0, state.encoder, problem, state.features, state.sq_norms)
    space = _Space(features, sq)
    noise = jax.random.normal(state.episode_key, (length, latent))
    visited, cell_in, lstm = state.progress.visited, state.cell, state.lstm
    inputs, actions, cells = state.inputs, state.actions, []
    for j in range(k):
      pos = state.step + j
      lstm, mean = reinforce.lstm_step(state.policy, features[cell_in], lstm)
      action = mean + std * noise[pos]
      cell = env_lib.nearest_unvisited(space, visited, action, pc.skip_nearest)
      visited, cell = ask_tell.propose(visited, cell)
      inputs, actions = inputs.at[pos].set(cell_in), actions.at[pos].set(action)
      cell_in = jnp.where(cell >= 0, cell, cell_in)
      cells.append(cell)
    state = state._replace(
      progress=state.progress._replace(visited=visited),
      features=features,
      sq_norms=sq,
      lstm=lstm,
      inputs=inputs,
      actions=actions,
    )
    return jnp.stack(cells), state

  def loss_fn(enc_params, policy, stats, problem, inputs, actions, advantages, mask):
    x = encoder(problem).apply(
      {"params": enc_params, "batch_stats": stats}, _graphs(problem, inputs), train=False
    )
    return reinforce.reinforce_loss(policy, x, actions, advantages, mask, std)

  def end_episode(state: SRLState, problem: GraphCandidates) -> SRLState:
    enc_params, stats = state.encoder["params"], state.encoder["batch_stats"]
    g_enc, g_pol = jax.grad(loss_fn, argnums=(0, 1))(
      enc_params,
      state.policy,
      stats,
      problem,
      state.inputs,
      state.actions,
      state.rewards - jnp.float32(pc.baseline),
      state.mask,
    )
    upd, pol_opt = pol_tx.update(g_pol, state.pol_opt, state.policy)
    policy = optax.apply_updates(state.policy, upd)
    upd, enc_opt = enc_tx.update(g_enc, state.enc_opt, enc_params)
    enc_params = optax.apply_updates(enc_params, upd)
    return state._replace(
      encoder={"params": enc_params, "batch_stats": stats},
      policy=policy,
      enc_opt=enc_opt,
      pol_opt=pol_opt,
      **reinforce.episode_reset(state, hidden),
    )

  def keep(state: SRLState) -> SRLState:
    return state

  def tell(state: SRLState, cells, values, costs=None) -> SRLState:
    progress, told, cells, rewards, mask = reinforce.tell_episode(
      state.progress, state.step, state.rewards, state.mask, cells, values, costs, k
    )
    cell = reinforce.last_told(told, jnp.maximum(cells, 0), state.cell)
    # The candidates and the [N] arrays stay out of the branch (a conditional's outputs are copies).
    learner = state._replace(
      problem=None,
      progress=None,
      features=None,
      sq_norms=None,
      cell=cell,
      rewards=rewards,
      mask=mask,
      step=state.step + k,
    )
    learner = jax.lax.cond(
      learner.step >= length, lambda s: end_episode(s, state.problem), keep, learner
    )
    return learner._replace(
      problem=state.problem, progress=progress, features=state.features, sq_norms=state.sq_norms
    )

  return ask_tell.AskTell(init, ask, tell, k, "srl")


def make_supervised_rl(
  config: SupervisedRLConfig,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  problem: GraphCandidates,
) -> Callable[[jax.Array], env_lib.Trace]:
  """A pure `run(key) -> Trace` on the table: `ask_tell.table_search` over `supervised_rl_search`."""
  table_run = ask_tell.table_search(supervised_rl_search(config), env, budget, problem)

  def run(key: jax.Array) -> env_lib.Trace:
    """Supervised-RL on the table, one seed."""
    return table_run(key)

  return run
