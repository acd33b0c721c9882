"""REINFORCE in the embedding space (arch2vec-RL), one whole run as one compiled function.

The method of Yan et al. (NeurIPS 2020, §3.3; `search_methods/reinforce*.py` of
the release), after Williams (1992):

- Start at a uniformly random cell; it is free (not queried, not in the trace)
  but marked visited.
- Policy: an LSTM cell (input D = 16, hidden 128) and Linear(128, D) give the
  mean of a Gaussian with identity covariance. Its input is the embedding of the
  previously chosen cell; the LSTM state is reset to zeros at every episode.
- The sampled action is snapped to the nearest (L2) unvisited cell, which is
  queried (reward = its validation accuracy, a fraction).
- Episodes of 16 queries; after each, one Adam step (lr 1e-2) on
  mean_t(-log N(a_t; mu_t, I) * (r_t - b)) with a fixed baseline b (0.4 NB201,
  0.95 NB101). log_prob is the full 16-d Gaussian log density (the release takes
  `torch.mean` of a one-element batch of `MultivariateNormal.log_prob`, i.e. the
  sum over dimensions). The release computes discounted returns and then
  discards them, and its `EMA_momentum` flag is unused: rewards enter raw,
  baseline fixed. `baseline_decay` turns on a moving (EMA) baseline instead;
  `baseline_mode='mean'` a baseline in the reward's range: the mean of every
  reward told so far, the finished episode's included (the fixed 0.4 is above
  every 12-epoch validation accuracy of ImageNet16-120, whose best is 38.67%,
  so there every advantage is negative; the release's 199-epoch reward has
  about 26% of cells above 0.4). The default stays the release's constant:
  it is the paper's method and every committed result used it.
- Release deviation behind a flag: `skip_nearest` (the NB201 script starts its
  search at rank 1 of the distance order, so the cell nearest to the action is
  never taken).

Parameters are initialised as PyTorch does (U(-1/sqrt(128), 1/sqrt(128)) for
the LSTM and the Linear layer).

Shape of the program: `reinforce_search(config)` is the method as ask/tell
(`arch2vec_jax.search.ask_tell`: pure `init`, `ask`, `tell`, driven by any
evaluation; the Adam step runs in the `tell` that completes an episode);
`make_reinforce(config, env, budget)` is the compiled table search over it, one
`lax.scan` of ask -> table lookup -> tell returning a pure `run(key) -> Trace`,
and seeds a `vmap`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from arch2vec_jax.search import ask_tell
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

__all__ = [
  "PolicyParams",
  "RLState",
  "ReinforceConfig",
  "episode_reset",
  "init_policy",
  "last_told",
  "lstm_step",
  "make_reinforce",
  "policy_log_prob",
  "reinforce_loss",
  "reinforce_search",
  "tell_episode",
]


@dataclasses.dataclass(frozen=True)
class ReinforceConfig:
  """REINFORCE settings (defaults: the paper / release).

  Attributes:
    hidden_dim: LSTM hidden size.
    episode_length: queries per episode (policy update every this many).
    learning_rate: Adam learning rate.
    baseline: reward baseline (0.4 NB201, 0.95 NB101).
    baseline_decay: None for the fixed baseline (release); else the EMA decay of a
      moving baseline updated with each episode's mean reward.
    baseline_mode: 'constant' (`baseline`, with `baseline_decay` if set; the
      release) or 'mean' (the mean of all rewards told so far, this episode's
      included; `baseline` only until the first reward; module doc).
    action_std: standard deviation of the Gaussian policy (identity covariance: 1).
    skip_nearest: release NB201 quirk (see module doc).
    sequential_seeds: under `vmap`, run seed by seed (`sequential_vmap`): on
      CPU about twice as fast as the batched program (XLA's batched small
      LSTM matmuls); False keeps the seeds batched (accelerators).
  """

  hidden_dim: int = 128
  episode_length: int = 16
  learning_rate: float = 1e-2
  baseline: float = 0.4
  baseline_decay: float | None = None
  baseline_mode: str = "constant"
  action_std: float = 1.0
  skip_nearest: bool = False
  sequential_seeds: bool = True

  def __post_init__(self):
    if self.baseline_mode not in ("constant", "mean"):
      raise ValueError(f"baseline_mode must be 'constant' or 'mean', got {self.baseline_mode!r}")
    if self.baseline_mode == "mean" and self.baseline_decay is not None:
      raise ValueError("baseline_decay is for baseline_mode='constant' (an EMA from the constant)")


class PolicyParams(NamedTuple):
  """LSTM cell (PyTorch gate order i, f, g, o) and the output layer.

  Attributes:
    w_ih: [4H, D]; w_hh: [4H, H]; b_ih, b_hh: [4H]; w_out: [D, H]; b_out: [D].
  """

  w_ih: jax.Array
  w_hh: jax.Array
  b_ih: jax.Array
  b_hh: jax.Array
  w_out: jax.Array
  b_out: jax.Array


def init_policy(key: jax.Array, input_dim: int, hidden_dim: int) -> PolicyParams:
  """PyTorch's default initialisation of LSTMCell(input_dim, hidden_dim) + Linear(hidden_dim, input_dim)."""
  ks = jax.random.split(key, 6)
  s = 1.0 / math.sqrt(hidden_dim)
  u = lambda k, shape: jax.random.uniform(k, shape, jnp.float32, -s, s)
  return PolicyParams(
    w_ih=u(ks[0], (4 * hidden_dim, input_dim)),
    w_hh=u(ks[1], (4 * hidden_dim, hidden_dim)),
    b_ih=u(ks[2], (4 * hidden_dim,)),
    b_hh=u(ks[3], (4 * hidden_dim,)),
    w_out=u(ks[4], (input_dim, hidden_dim)),
    b_out=u(ks[5], (input_dim,)),
  )


def lstm_step(params: PolicyParams, x: jax.Array, carry: tuple[jax.Array, jax.Array]):
  """One LSTM cell step and the policy mean.

  Args:
    params: the policy.
    x: float32 [D], the previous cell's embedding.
    carry: (h [H], c [H]).

  Returns:
    ((h', c'), mean [D]).
  """
  h, c = carry
  gates = params.w_ih @ x + params.b_ih + params.w_hh @ h + params.b_hh
  i, f, g, o = jnp.split(gates, 4)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return (h, c), params.w_out @ h + params.b_out


def policy_log_prob(mean: jax.Array, action: jax.Array, std: float = 1.0) -> jax.Array:
  """log N(action; mean, std^2 I), summed over dimensions: [] from [D], [D]."""
  chex.assert_equal_shape([mean, action])
  d = mean.shape[-1]
  return -0.5 * jnp.sum(((action - mean) / std) ** 2, axis=-1) - d * (
    math.log(std) + 0.5 * math.log(2 * math.pi)
  )


def reinforce_loss(
  params: PolicyParams,
  inputs: jax.Array,
  actions: jax.Array,
  advantages: jax.Array,
  mask: jax.Array,
  std: float = 1.0,
) -> jax.Array:
  """REINFORCE loss of one episode: mean over valid steps of -log_prob * advantage.

  The LSTM is re-run from a zero state over the episode's inputs, so the
  gradient flows through every step's mean.

  Args:
    params: the policy.
    inputs: float32 [L, D], the inputs fed at each step.
    actions: float32 [L, D], the sampled actions.
    advantages: float32 [L], reward - baseline.
    mask: bool [L], steps that were real queries.
    std: the policy's standard deviation.

  Returns:
    float32 [] loss.
  """
  chex.assert_rank([inputs, actions, advantages, mask], [2, 2, 1, 1])
  h0 = jnp.zeros(params.w_hh.shape[1], inputs.dtype)

  def step(carry, x):
    carry, mean = lstm_step(params, x, carry)
    return carry, mean

  _, means = jax.lax.scan(step, (h0, h0), inputs)
  logp = policy_log_prob(means, actions, std)
  w = mask.astype(logp.dtype)
  return -jnp.sum(w * logp * advantages) / jnp.maximum(jnp.sum(w), 1.0)


class RLState(NamedTuple):
  """arch2vec-RL's ask/tell state (H = hidden_dim, L = episode_length, D = embedding dim).

  Attributes:
    problem: the candidates (their embeddings are the search space).
    progress: proposals and values told.
    params: the policy.
    opt_state: Adam's state.
    baseline: float32 [], the reward baseline.
    key: the key that the next episode's key is split from.
    episode_key: this episode's key (the Gaussian noise [L, D] of its actions).
    x: float32 [D], the embedding of the last evaluated cell (the next input).
    lstm: (h [H], c [H]), the LSTM state (zeros at an episode's start).
    step: int32 [], the episode position of the next proposal.
    inputs: float32 [L, D], this episode's inputs.
    actions: float32 [L, D], its sampled actions.
    rewards: float32 [L], the values told (0 where none).
    mask: bool [L], steps with a value told.
  """

  problem: ask_tell.Candidates
  progress: ask_tell.Progress
  params: PolicyParams
  opt_state: optax.OptState
  baseline: jax.Array
  key: jax.Array
  episode_key: jax.Array
  x: jax.Array
  lstm: tuple[jax.Array, jax.Array]
  step: jax.Array
  inputs: jax.Array
  actions: jax.Array
  rewards: jax.Array
  mask: jax.Array


def tell_episode(
  progress: ask_tell.Progress,
  step: jax.Array,
  rewards: jax.Array,
  mask: jax.Array,
  cells,
  values,
  costs,
  k: int,
):
  """The bookkeeping of a REINFORCE `tell` (arch2vec-RL and supervised-RL): the k told rewards into the episode.

  Args:
    progress: the search's `ask_tell.Progress`.
    step: int32 [], the episode position of the first of the k cells.
    rewards: float32 [length]; mask: bool [length]: the episode so far.
    cells, values, costs: what `tell` got (`ask_tell.as_batch`), k of them.
    k: cells per ask.

  Returns:
    (progress, told bool [k], cells int32 [k], rewards [length], mask [length]);
    an untold cell's reward is 0 and its mask False.

  Raises:
    ValueError: not k cells.
  """
  progress, told = ask_tell.record(progress, cells, values, costs)
  cells, values, _ = ask_tell.as_batch(cells, values, costs)
  if cells.shape[0] != k:
    raise ValueError(f"tell needs the {k} cells of the last ask, got {cells.shape[0]}")
  for j in range(k):
    pos = step + j
    rewards = rewards.at[pos].set(jnp.where(told[j], values[j], 0.0))
    mask = mask.at[pos].set(told[j])
  return progress, told, cells, rewards, mask


def last_told(told: jax.Array, rows: jax.Array, current: jax.Array) -> jax.Array:
  """The row of the last told cell (told bool [k], rows [k, ...]), else `current` [...]."""
  for j in range(told.shape[0]):
    current = jnp.where(told[j], rows[j], current)
  return current


def episode_reset(state: Any, hidden: int) -> dict[str, Any]:
  """The fields a new episode starts with (a state with key, lstm, step, rewards, mask): `_replace` kwargs.

  The key is split for the next episode's noise; the LSTM state, the position and the rewards restart.
  """
  key, k_ep = jax.random.split(state.key)
  h0 = jnp.zeros(hidden, jnp.float32)
  return {
    "key": key,
    "episode_key": k_ep,
    "lstm": (h0, h0),
    "step": jnp.zeros_like(state.step),
    "rewards": jnp.zeros_like(state.rewards),
    "mask": jnp.zeros_like(state.mask),
  }


def reinforce_search(config: ReinforceConfig, batch_size: int = 1) -> ask_tell.AskTell:
  """arch2vec-RL as ask/tell (module doc).

  `init` picks the free start cell and the policy; each `ask` runs the LSTM
  `batch_size` steps (k must divide `episode_length`; within a batch each
  step's input is the previous proposal's embedding) and snaps each action to
  the nearest unvisited cell; `tell` records the values (NaN: not evaluated,
  left out of the loss, and the input stays the last evaluated cell) and, once
  an episode's `episode_length` steps are told, takes the Adam step and starts
  the next episode. `tell` needs the cells of the preceding `ask`, in order.
  """
  k = ask_tell.check_batch_size(batch_size)
  length = int(config.episode_length)
  if length % k:
    raise ValueError(f"batch_size {k} must divide episode_length {length}")
  hidden = int(config.hidden_dim)
  optimizer = optax.adam(config.learning_rate)
  std = float(config.action_std)

  def init(key: jax.Array, problem: ask_tell.Candidates) -> RLState:
    k_start, k_params, k_loop = jax.random.split(key, 3)
    progress = ask_tell.init_progress(problem)
    start = env_lib.random_unvisited(k_start, progress.visited)
    progress = progress._replace(visited=progress.visited.at[start].set(True))  # free start
    dim = problem.embeddings.shape[1]
    params = init_policy(k_params, dim, hidden)
    key, k_ep = jax.random.split(k_loop)
    h0 = jnp.zeros(hidden, jnp.float32)
    return RLState(
      problem,
      progress,
      params,
      optimizer.init(params),
      jnp.float32(config.baseline),
      key,
      k_ep,
      problem.embeddings[start],
      (h0, h0),
      jnp.array(0, jnp.int32),
      jnp.zeros((length, dim), jnp.float32),
      jnp.zeros((length, dim), jnp.float32),
      jnp.zeros((length,), jnp.float32),
      jnp.zeros((length,), bool),
    )

  def ask(state: RLState) -> tuple[jax.Array, RLState]:
    dim = state.problem.embeddings.shape[1]
    noise = jax.random.normal(state.episode_key, (length, dim))
    visited, x, lstm = state.progress.visited, state.x, state.lstm
    inputs, actions, cells = state.inputs, state.actions, []
    for j in range(k):
      pos = state.step + j
      lstm, mean = lstm_step(state.params, x, lstm)
      action = mean + std * noise[pos]
      cell = env_lib.nearest_unvisited(state.problem, visited, action, config.skip_nearest)
      visited, cell = ask_tell.propose(visited, cell)
      inputs, actions = inputs.at[pos].set(x), actions.at[pos].set(action)
      x = jnp.where(cell >= 0, state.problem.embeddings[jnp.maximum(cell, 0)], x)
      cells.append(cell)
    progress = state.progress._replace(visited=visited)
    state = state._replace(progress=progress, lstm=lstm, inputs=inputs, actions=actions)
    return jnp.stack(cells), state

  def end_episode(state: RLState) -> RLState:
    advantages = state.rewards - state.baseline
    loss_grad = jax.grad(reinforce_loss)
    grads = loss_grad(state.params, state.inputs, state.actions, advantages, state.mask, std)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    baseline = state.baseline
    if config.baseline_decay is not None and config.baseline_mode == "constant":
      n = jnp.sum(state.mask)
      mean_r = jnp.sum(state.rewards) / jnp.maximum(n, 1)
      decayed = config.baseline_decay * baseline + (1.0 - config.baseline_decay) * mean_r
      baseline = jnp.where(n > 0, decayed, baseline)
    return state._replace(
      params=params, opt_state=opt_state, baseline=baseline, **episode_reset(state, hidden)
    )

  def keep(state: RLState) -> RLState:  # one function object: eager `lax.cond` calls hit its cache
    return state

  def tell(state: RLState, cells, values, costs=None) -> RLState:
    progress, told, cells, rewards, mask = tell_episode(
      state.progress, state.step, state.rewards, state.mask, cells, values, costs, k
    )
    x = last_told(told, state.problem.embeddings[jnp.maximum(cells, 0)], state.x)
    # The candidates and the [N] mask stay out of the branch (a conditional's outputs are copies).
    learner = state._replace(
      problem=None, progress=None, x=x, rewards=rewards, mask=mask, step=state.step + k
    )
    if config.baseline_mode == "mean":
      # `baseline` holds the mean of the rewards told before this episode (all told values
      # but this episode's); the update uses the mean with this episode's rewards added.
      n_ep = jnp.sum(mask.astype(jnp.int32))
      n_before = progress.num_told - n_ep
      total = n_before + n_ep
      mean = (
        state.baseline * n_before.astype(jnp.float32) + jnp.sum(jnp.where(mask, rewards, 0.0))
      ) / jnp.maximum(total, 1).astype(jnp.float32)
      learner = learner._replace(
        baseline=jnp.where((learner.step >= length) & (total > 0), mean, state.baseline)
      )
    learner = jax.lax.cond(learner.step >= length, end_episode, keep, learner)
    return learner._replace(problem=state.problem, progress=progress)

  return ask_tell.AskTell(init, ask, tell, k, "rl")


def make_reinforce(
  config: ReinforceConfig, env: env_lib.SearchEnv, budget: env_lib.Budget
) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (trace length `budget.max_queries`).

  `ask_tell.table_search` over `reinforce_search(config)`.

  Args:
    config: REINFORCE settings.
    env: the environment (its embeddings are the search space).
    budget: queries and optional time.

  Returns:
    `run(key)`; vmap it over keys for seeds.
  """
  table_run = ask_tell.table_search(reinforce_search(config), env, budget)

  def run(key: jax.Array) -> env_lib.Trace:  # a function of its own per method (e.g. for chex)
    """arch2vec-RL on the table, one seed."""
    return table_run(key)

  return sequential_vmap(run) if config.sequential_seeds else run
