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
  baseline fixed. `baseline_decay` turns on a moving (EMA) baseline instead.
- Release deviation behind a flag: `skip_nearest` (the NB201 script starts its
  search at rank 1 of the distance order, so the cell nearest to the action is
  never taken).

Parameters are initialised as PyTorch does (U(-1/sqrt(128), 1/sqrt(128)) for
the LSTM and the Linear layer).

Shape of the program (purejaxrl style): `make_reinforce(config, env, budget)`
does the static setup and returns a pure `run(key) -> Trace`; the episodes are a
`lax.scan`, the 16 steps of an episode an inner `lax.scan`, and seeds a `vmap`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

__all__ = ["ReinforceConfig", "PolicyParams", "init_policy", "lstm_step", "policy_log_prob", "reinforce_loss", "make_reinforce"]


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
  action_std: float = 1.0
  skip_nearest: bool = False
  sequential_seeds: bool = True


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
  return -0.5 * jnp.sum(((action - mean) / std) ** 2, axis=-1) - d * (math.log(std) + 0.5 * math.log(2 * math.pi))


def reinforce_loss(params: PolicyParams, inputs: jax.Array, actions: jax.Array, advantages: jax.Array,
                   mask: jax.Array, std: float = 1.0) -> jax.Array:
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


class _RLCarry(NamedTuple):
  params: PolicyParams
  opt_state: optax.OptState
  state: env_lib.EnvState
  x: jax.Array  # [D] embedding of the previous cell
  baseline: jax.Array  # []
  key: jax.Array


def make_reinforce(config: ReinforceConfig, env: env_lib.SearchEnv, budget: env_lib.Budget) -> Callable[[jax.Array], env_lib.Trace]:
  """Builds a pure `run(key) -> Trace` (trace length `budget.max_queries`).

  Args:
    config: REINFORCE settings.
    env: the environment (its embeddings are the search space).
    budget: queries and optional time.

  Returns:
    `run(key)`; vmap it over keys for seeds.
  """
  t_max = int(budget.max_queries)
  length = int(config.episode_length)
  num_episodes = -(-t_max // length)
  dim = env.embeddings.shape[1]
  optimizer = optax.adam(config.learning_rate)
  std = float(config.action_std)

  def run(key: jax.Array) -> env_lib.Trace:
    k_start, k_params, k_loop = jax.random.split(key, 3)
    state = env_lib.init_state(env)
    start = env_lib.random_unvisited(k_start, state.visited)
    state = state._replace(visited=state.visited.at[start].set(True))  # free start
    params = init_policy(k_params, dim, config.hidden_dim)
    carry = _RLCarry(params, optimizer.init(params), state, env.embeddings[start], jnp.float32(config.baseline), k_loop)

    def episode(carry: _RLCarry, _):
      key, k_ep = jax.random.split(carry.key)
      h0 = jnp.zeros(config.hidden_dim, jnp.float32)

      def step(c, noise):
        lstm, x, state = c
        lstm, mean = lstm_step(carry.params, x, lstm)
        action = mean + std * noise
        cell = env_lib.nearest_unvisited(env, state.visited, action, config.skip_nearest)
        active = env_lib.budget_active(state, budget) & ~state.visited[cell]
        state, row = env_lib.query(env, state, cell, active)
        x_next = jnp.where(active, env.embeddings[cell], x)
        return (lstm, x_next, state), (x, action, row)

      (_, x, state), (inputs, actions, rows) = jax.lax.scan(
          step, ((h0, h0), carry.x, carry.state), jax.random.normal(k_ep, (length, dim)))
      rewards = jnp.where(rows.mask, rows.reward, 0.0)
      grads = jax.grad(reinforce_loss)(carry.params, inputs, actions, rewards - carry.baseline, rows.mask, std)
      updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
      params = optax.apply_updates(carry.params, updates)
      baseline = carry.baseline
      if config.baseline_decay is not None:
        n = jnp.sum(rows.mask)
        mean_r = jnp.sum(rewards) / jnp.maximum(n, 1)
        decayed = config.baseline_decay * baseline + (1.0 - config.baseline_decay) * mean_r
        baseline = jnp.where(n > 0, decayed, baseline)
      return _RLCarry(params, opt_state, state, x, baseline, key), rows

    _, rows = jax.lax.scan(episode, carry, None, length=num_episodes)
    return jax.tree.map(lambda a: a.reshape((num_episodes * length,) + a.shape[2:])[:t_max], rows)

  return sequential_vmap(run) if config.sequential_seeds else run
