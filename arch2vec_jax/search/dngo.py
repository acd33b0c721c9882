"""Bayesian optimisation with DNGO (arch2vec-BO), one whole run as one compiled function.

The method of Yan et al. (NeurIPS 2020, §3.3; `search_methods/dngo*.py` of the
release, which uses pybnn's `DNGO(num_epochs=100, n_units=128, do_mcmc=False,
normalize_output=False)`), after Snoek et al. (ICML 2015):

- 16 distinct random cells first (counted in the budget).
- Each iteration, on all queried cells: fit a network Linear(D, 128) - tanh -
  Linear(128, 1) from a fresh initialisation with Adam (lr 0.01, 100 epochs,
  minibatches of 10 from a fresh shuffle every epoch, the incomplete last batch
  dropped as pybnn does; MSE; inputs standardised by the queried cells' mean
  and std, outputs not); the basis is its 128 tanh features; Bayesian linear
  regression on the basis with alpha, beta maximising the evidence (`blr`);
  predictive mean and variance of every unvisited cell; expected improvement
  over the incumbent (the best validation accuracy so far); query the top k
  (k = 1 NB201, 5 NB101).
- `surrogate='blr'`: the same loop with BLR directly on the standardised
  embeddings plus a constant feature (no network).

Release deviations behind flags (`launch/search.py --bo_acquisition=release
--bo_pybnn_mll --bo_revisit`): `acquisition='release'` (EI with the variance
in place of the standard deviation and a fixed `target`, 0.95 NB101, 1.0
NB201, instead of the incumbent, computed as the release computes it: plain
float32 EI, `release_expected_improvement`, which is exactly 0 for most cells
once the variances are small; ties go to the lowest cell index); `pybnn_mll`
(pybnn's evidence with the residual norm unsquared); `revisit` (the release's
visited check never fires, its keys are tensors hashed by identity: every
pick is taken over all cells, queried ones included, and a cell picked again
is queried and paid again, its value entering the data a second time; the
random initial design stays distinct). Speed options (not the paper's method):
`batch_size=0` trains full-batch (100 steps per fit); `warm_start` keeps the
network between iterations.

The acquisition sweep is exact but pruned (`acquire`): the features, the
predictive mean and an upper bound of the variance of every cell
(`blr.variance_upper_bound`, from the `bound_rank` best-determined posterior
directions) are computed in chunks of `predict_chunk` cells;
EI is increasing in the standard deviation, so EI at the bound is an upper
bound of each cell's EI. The exact variance is computed for the
`num_candidates` cells with the largest bound; when the k-th best exact EI
among them is at least the largest bound outside them, they hold the exact
top k. Otherwise (counted in `Trace`-side diagnostics by the tests) the exact
variance of every cell is computed, inside a `while_loop` so that under `vmap`
this costs only when some seed needs it. Ties go to the lowest cell index in
both paths.

Ask/tell (`bo_search`, the one implementation): `ask` proposes the random
initial cells, then the picks of the last fit, fitting anew when they are used
up; `tell` appends the values to the data. `make_bo` is `ask_tell.table_search`
over it. Static shapes: the evaluated cells live in a buffer of T rows (the
budget's query count) with a mask. With `sequential_seeds` (default) the
surrogate fit and the sweep run seed by seed inside the vmapped program: the
number of minibatches per epoch, floor(n / 10), is then each seed's own, and a
seed that needs no fit this round (an initial cell, picks left, a time budget
spent) skips it (`lax.cond`). Without it (batched seeds, for accelerators) a
fit's `lax.cond` becomes a select under `vmap`, so that every round computes one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from arch2vec_jax import perf
from arch2vec_jax.search import ask_tell, blr
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

__all__ = [
  "BOConfig",
  "BOState",
  "BOStats",
  "MLPParams",
  "Surrogate",
  "SurrogateFitConfig",
  "acquire",
  "acquisition_scores",
  "bo_search",
  "bound_scores",
  "exact_scores",
  "fit_mlp",
  "flops_per_seed",
  "init_mlp",
  "make_bo",
  "mlp_apply",
  "mlp_features",
  "release_expected_improvement",
  "top_k_fields",
  "top_k_slot",
]


@dataclasses.dataclass(frozen=True)
class SurrogateFitConfig:
  """The surrogate and its fit, shared by arch2vec-BO (`BOConfig`) and arch2vec-GD (`gd.GDConfig`).

  Attributes:
    surrogate: 'dngo' (network basis + BLR) or 'blr' (BLR on the embeddings).
    num_init: random cells queried first.
    hidden_dim: width of the network (number of basis functions).
    num_epochs: training epochs per fit.
    batch_size: minibatch size; 0 for full-batch training.
    learning_rate: Adam learning rate.
    normalize_input: standardise inputs by the queried cells' mean / std.
    normalize_output: standardise targets (pybnn default True; the release False).
  """

  surrogate: str = "dngo"
  num_init: int = 16
  hidden_dim: int = 128
  num_epochs: int = 100
  batch_size: int = 10
  learning_rate: float = 0.01
  normalize_input: bool = True
  normalize_output: bool = False

  def fit_fields(self) -> dict[str, object]:
    """The `SurrogateFitConfig` fields of this config (of a subclass too), by name."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(SurrogateFitConfig)}


@dataclasses.dataclass(frozen=True)
class BOConfig(SurrogateFitConfig):
  """BO settings (defaults: the paper's DNGO for NB201); the surrogate's fit: `SurrogateFitConfig`.

  Attributes:
    top_k: cells queried per iteration (1 NB201, 5 NB101).
    acquisition: 'ei' (log EI over the incumbent) or 'release' (the release's
      float32 EI with the variance as scale and the fixed `target`; module doc).
    target: the release acquisition's fixed target.
    pybnn_mll: optimise pybnn's (unsquared-norm) evidence.
    revisit: release behaviour: picks over every cell, queried ones included;
      a repeated cell is queried, paid and added to the data again (module
      doc). Off: a cell is never proposed twice (the ask/tell convention).
    hyper_levels: zoom levels of the hyperparameter grid search.
    warm_start: keep the network parameters between iterations.
    predict_chunk: cells per chunk of the acquisition sweep.
    num_candidates: cells whose exact variance is computed in the pruned sweep;
      0 computes the exact variance of every cell (no pruning).
    bound_rank: posterior directions used by the variance bound of the pruned
      sweep (`blr.variance_upper_bound`).
    sequential_seeds: under `vmap`, fit and sweep seed by seed
      (`sequential_vmap`; faster on CPU, where XLA's batched small matmuls and
      batched table sweeps are slow); False keeps them batched (accelerators).
    seed_group: with `sequential_seeds`, this many seeds per step of the loop
      over seeds, batched together (1: one seed at a time, the default).
  """

  top_k: int = 1
  acquisition: str = "ei"
  target: float = 1.0
  pybnn_mll: bool = False
  revisit: bool = False
  hyper_levels: int = 3
  warm_start: bool = False
  predict_chunk: int = 512
  num_candidates: int = 64
  bound_rank: int = 16
  sequential_seeds: bool = True
  seed_group: int = 1

  def __post_init__(self):
    if self.surrogate not in ("dngo", "blr"):
      raise ValueError(f"surrogate must be 'dngo' or 'blr', got {self.surrogate!r}")
    if self.acquisition not in ("ei", "release"):
      raise ValueError(f"acquisition must be 'ei' or 'release', got {self.acquisition!r}")
    if self.top_k < 1 or self.num_init < 1 or self.batch_size < 0 or self.predict_chunk < 1:
      raise ValueError(f"bad BOConfig {self}")
    if self.seed_group < 1:
      raise ValueError(f"seed_group must be >= 1, got {self.seed_group}")
    if self.num_candidates and self.num_candidates < self.top_k:
      raise ValueError(f"num_candidates must be 0 or >= top_k, got {self}")


class MLPParams(NamedTuple):
  """Linear(D, H) - tanh - Linear(H, 1): w1 [D, H], b1 [H], w2 [H], b2 []."""

  w1: jax.Array
  b1: jax.Array
  w2: jax.Array
  b2: jax.Array


def init_mlp(key: jax.Array, input_dim: int, hidden_dim: int) -> MLPParams:
  """PyTorch's default Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
  k1, k2, k3, k4 = jax.random.split(key, 4)
  s1, s2 = 1.0 / math.sqrt(input_dim), 1.0 / math.sqrt(hidden_dim)
  return MLPParams(
    w1=jax.random.uniform(k1, (input_dim, hidden_dim), jnp.float32, -s1, s1),
    b1=jax.random.uniform(k2, (hidden_dim,), jnp.float32, -s1, s1),
    w2=jax.random.uniform(k3, (hidden_dim,), jnp.float32, -s2, s2),
    b2=jax.random.uniform(k4, (), jnp.float32, -s2, s2),
  )


def mlp_features(params: MLPParams, x: jax.Array) -> jax.Array:
  """The basis: tanh(x W1 + b1), [M, H] from [M, D]."""
  return jnp.tanh(x @ params.w1 + params.b1)


def mlp_apply(params: MLPParams, x: jax.Array) -> jax.Array:
  """The network output, [M] from [M, D]."""
  return mlp_features(params, x) @ params.w2 + params.b2


def _masked_mse(params: MLPParams, x: jax.Array, y: jax.Array, w: jax.Array) -> jax.Array:
  err = mlp_apply(params, x) - y
  return jnp.sum(w * err * err) / jnp.maximum(jnp.sum(w), 1.0)


def _adam_step(optimizer: optax.GradientTransformation) -> Callable:
  """One minibatch step of the network fit: `update((params, opt_state), xb, yb, wb) -> (params, opt_state)`."""
  grad_fn = jax.grad(_masked_mse)

  def update(carry, xb, yb, wb):
    params, opt_state = carry
    grads = grad_fn(params, xb, yb, wb)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  return update


def fit_mlp(
  key: jax.Array,
  params: MLPParams,
  x: jax.Array,
  y: jax.Array,
  mask: jax.Array,
  num_rows: jax.Array | int,
  num_epochs: int,
  batch_size: int,
  learning_rate: float,
) -> MLPParams:
  """Trains the network with Adam on the masked rows (pybnn's DNGO loop).

  Each epoch shuffles the real rows and takes floor(num_rows / batch_size)
  minibatches (all rows in one batch if num_rows <= batch_size); the incomplete
  last batch is dropped. `batch_size=0`: one full-batch step per epoch.

  Args:
    key: PRNG key for the shuffles.
    params: initial parameters.
    x: float32 [B, D] (standardised) inputs; y: float32 [B]; mask: bool [B].
    num_rows: int32 [], the number of real rows (the first ones of the buffer).
      Under `vmap` without `sequential_vmap` it is batched and the loops run
      to the largest count, masked.
    num_epochs, batch_size, learning_rate: the training settings.

  Returns:
    The trained parameters.
  """
  optimizer = optax.adam(learning_rate)
  opt_state = optimizer.init(params)
  w_all = mask.astype(jnp.float32)
  update = _adam_step(optimizer)

  if batch_size == 0:
    params, _ = jax.lax.fori_loop(
      0, num_epochs, lambda _, c: update(c, x, y, w_all), (params, opt_state)
    )
    return params

  bs = min(batch_size, x.shape[0])
  num_batches = jnp.maximum(num_rows // bs, 1)
  this_bs = jnp.minimum(num_rows, bs)
  lane = jnp.arange(bs)

  def epoch(e, carry):
    # Real rows first, in random order; padded rows last.
    order = jnp.argsort(
      jnp.where(mask, jax.random.uniform(jax.random.fold_in(key, e), mask.shape), 2.0)
    )

    def step(j, carry):
      idx = jax.lax.dynamic_slice(order, (j * bs,), (bs,))
      return update(carry, x[idx], y[idx], w_all[idx] * (lane < this_bs))

    return jax.lax.fori_loop(0, num_batches, step, carry)

  params, _ = jax.lax.fori_loop(0, num_epochs, epoch, (params, opt_state))
  return params


class Surrogate(NamedTuple):
  """A fitted surrogate over raw embeddings (standardisation folded in).

  Attributes:
    w: float32 [D, H] and b: float32 [H]: features(e) = tanh(e w + b) (DNGO) or
      [e w + b, 1] (BLR on the embeddings, `linear` True).
    post: the BLR posterior on the features (in standardised-target units).
    y_mu, y_sd: float32 [], the target standardisation (0, 1 when off).
  """

  w: jax.Array
  b: jax.Array
  post: blr.BLRPosterior
  y_mu: jax.Array
  y_sd: jax.Array

  def features(self, e: jax.Array, linear: bool) -> jax.Array:
    """[M, H] from raw embeddings [M, D]."""
    z = jnp.dot(e, self.w) + self.b
    if linear:
      return jnp.concatenate([z, jnp.ones(z.shape[:-1] + (1,), z.dtype)], axis=-1)
    return jnp.tanh(z)


def release_expected_improvement(mean: jax.Array, var: jax.Array, target: float) -> jax.Array:
  """The release's acquisition, as it computes it: float32 EI with the variance as scale, [M].

  u = (mean - target) / var, EI = var * (pdf(u) + u * cdf(u)) with torch's
  `Normal(0, 1)`: cdf(u) = 0.5 (1 + erf(u / sqrt 2)), pdf(u) = exp(-u^2 / 2 -
  log sqrt(2 pi)). Plain float32, no log: for u below about -13 (a variance
  that is small against mean - target) it is exactly 0.

  Args:
    mean: float32 [M], predictive means; var: float32 [M] > 0, predictive
      variances (pybnn's `predict`'s second output); target: the fixed target.

  Returns:
    float32 [M], EI (>= 0 up to the formula's float32 cancellation).
  """
  mean, var = jnp.asarray(mean, jnp.float32), jnp.asarray(var, jnp.float32)
  u = (mean - jnp.float32(target)) / var
  cdf = 0.5 * (1.0 + jax.lax.erf(u / jnp.float32(math.sqrt(2.0))))
  pdf = jnp.exp(-(u * u) / 2.0 - jnp.float32(math.log(math.sqrt(2.0 * math.pi))))
  return var * (pdf + u * cdf)


def acquisition_scores(
  mean: jax.Array, var: jax.Array, best: jax.Array, acquisition: str, target: float
) -> jax.Array:
  """Acquisition values (model units) from predictive mean / variance: [M]; increasing in `var`.

  'ei': log EI over the incumbent `best` (scale: the standard deviation);
  'release': `release_expected_improvement` (plain float32 EI, scale: the
  variance, fixed `target`; `best` unused).
  """
  if acquisition == "ei":
    return blr.log_expected_improvement(mean, jnp.sqrt(var), best)
  return release_expected_improvement(mean, var, target)


def _scores(
  sur: Surrogate, mean: jax.Array, var: jax.Array, best: jax.Array, config: BOConfig
) -> jax.Array:
  """Acquisition scores of predictions in standardised-target units (undone here): [M]."""
  return acquisition_scores(
    mean * sur.y_sd + sur.y_mu, var * sur.y_sd**2, best, config.acquisition, config.target
  )


def exact_scores(sur: Surrogate, e: jax.Array, best: jax.Array, config: BOConfig) -> jax.Array:
  """Acquisition values (`acquisition_scores`) of cells with embeddings e [M, D]: [M]."""
  return _scores(
    sur, *blr.predict(sur.post, sur.features(e, config.surrogate == "blr")), best, config
  )


def bound_scores(sur: Surrogate, e: jax.Array, best: jax.Array, config: BOConfig) -> jax.Array:
  """An upper bound of `exact_scores` [M] (the variance bound of `bound_rank` directions; module doc)."""
  phi = sur.features(e, config.surrogate == "blr")
  mean = jnp.dot(phi, sur.post.mean_w)
  return _scores(
    sur, mean, blr.variance_upper_bound(sur.post, phi, config.bound_rank), best, config
  )


def acquire(
  sur: Surrogate,
  embeddings: jax.Array,
  visited: jax.Array,
  best: jax.Array,
  k: int,
  config: BOConfig,
  chunk_embeddings: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The k unvisited cells of largest acquisition value (exact; pruned sweep, module doc).

  Args:
    sur: the fitted surrogate.
    embeddings: float32 [N, D], every cell.
    visited: bool [N].
    best: float32 [], the incumbent (ignored by the release acquisition).
    k: cells to pick.
    config: `acquisition`, `target`, `predict_chunk`, `num_candidates`, `surrogate`.
    chunk_embeddings: optional [C, chunk, D] zero-padded view of `embeddings`
      (precomputed once by `make_bo`).

  Returns:
    (cells int32 [k], their acquisition values [k] (log EI, or the release's
    EI; -inf: no unvisited cell left),
    pruned bool []: whether the pruned sweep was exact without the full pass).
  """
  n, dim = embeddings.shape
  if chunk_embeddings is None:
    chunk = min(config.predict_chunk, n)
    pad = -(-n // chunk) * chunk - n
    chunk_embeddings = jnp.pad(embeddings, ((0, pad), (0, 0))).reshape(-1, chunk, dim)

  exact = lambda sur, e: exact_scores(sur, e, best, config)
  bound = lambda sur, e: bound_scores(sur, e, best, config)

  def sweep(fn, sur, chunks, visited):
    s = jax.lax.map(lambda e: fn(sur, e), chunks).reshape(-1)[:n]
    return jnp.where(visited, -jnp.inf, s)

  m = int(config.num_candidates)
  if m == 0 or m >= n:
    top_s, top = jax.lax.top_k(sweep(exact, sur, chunk_embeddings, visited), k)
    return top, top_s, jnp.bool_(False)

  ub = sweep(bound, sur, chunk_embeddings, visited)
  _, cand = jax.lax.top_k(ub, m)
  # tau = the largest bound outside the candidates (the (m+1)-th largest). Not read off top_k(ub, m + 1):
  # using its values makes XLA:CPU rewrite the top_k into a sort of the whole table (3 ms per
  # iteration instead of 0.03), and an optimization_barrier against that crashes the SPMD
  # partitioner when the seeds are sharded over several devices.
  tau = jnp.max(ub.at[cand].set(-jnp.inf))
  cand = jnp.sort(cand)  # ascending index: ties go to the lowest index
  s_cand = jnp.where(visited[cand], -jnp.inf, exact(sur, embeddings[cand]))
  top_s, pos = jax.lax.top_k(s_cand, k)
  # The release's EI ties at exactly 0 for most cells: a tie with a bound outside the candidates
  # (a lower-index cell of equal value could be there) takes the full pass, so ties go to the lowest index.
  ok = top_s[k - 1] > tau if config.acquisition == "release" else top_s[k - 1] >= tau

  def full(carry):
    # The barrier makes the pass depend on the carry, so that XLA cannot hoist
    # it out of the loop (it would then run on every call).
    (sur_, chunks, visited_), (_, _, done) = jax.lax.optimization_barrier(
      ((sur, chunk_embeddings, visited), carry)
    )
    top_s, top = jax.lax.top_k(sweep(exact, sur_, chunks, visited_), k)
    return top, top_s, ~done

  top, top_s, _ = jax.lax.while_loop(lambda c: ~c[2], full, (cand[pos], top_s, ok))
  return top, top_s, ok


class BOStats(NamedTuple):
  """Diagnostics of a surrogate fit (`BOState.stats`: the last fit's).

  Attributes:
    pruned: bool [], the pruned sweep was exact without the full pass.
    log_alpha, log_beta: float32 [], the BLR hyperparameters (NaN: no fit yet).
  """

  pruned: jax.Array
  log_alpha: jax.Array
  log_beta: jax.Array


def _masked_moments(a: jax.Array, mask: jax.Array):
  w = mask.astype(a.dtype).reshape((-1,) + (1,) * (a.ndim - 1))
  n = jnp.maximum(jnp.sum(w), 1.0)
  mu = jnp.sum(a * w, axis=0) / n
  sd = jnp.sqrt(jnp.sum(((a - mu) * w) ** 2, axis=0) / n)
  return mu, jnp.where(sd > 1e-12, sd, 1.0)


def fit_surrogate(
  key: jax.Array,
  config: BOConfig,
  x: jax.Array,
  y: jax.Array,
  mask: jax.Array,
  num_rows,
  net: MLPParams,
) -> tuple[Surrogate, MLPParams]:
  """Fits the network (DNGO) and the BLR on the masked rows.

  Args:
    key: PRNG key (network initialisation and shuffles).
    config: BO settings.
    x: float32 [B, D] raw embeddings; y: float32 [B] rewards; mask: bool [B].
    num_rows: int32 [], the number of real rows (see `fit_mlp`).
    net: the previous network (initialisation when `warm_start`).

  Returns:
    (the surrogate, the trained network).
  """
  mu, sd = _masked_moments(x, mask)
  if not config.normalize_input:
    mu, sd = jnp.zeros_like(mu), jnp.ones_like(sd)
  y_mu, y_sd = _masked_moments(y, mask)
  if not config.normalize_output:
    y_mu, y_sd = jnp.zeros_like(y_mu), jnp.ones_like(y_sd)
  xs, ys = (x - mu) / sd, (y - y_mu) / y_sd
  dim = x.shape[1]
  if config.surrogate == "dngo":
    k_init, k_fit = jax.random.split(key)
    init = net if config.warm_start else init_mlp(k_init, dim, config.hidden_dim)
    net = fit_mlp(
      k_fit,
      init,
      xs,
      ys,
      mask,
      num_rows,
      config.num_epochs,
      config.batch_size,
      config.learning_rate,
    )
    w, b = net.w1, net.b1
  else:
    w, b = jnp.eye(dim, dtype=jnp.float32), jnp.zeros((dim,), jnp.float32)
  # Fold the standardisation into the first layer: features of raw embeddings.
  w, b = w / sd[:, None], b - (mu / sd) @ w
  sur = Surrogate(w, b, None, y_mu, y_sd)
  phi = sur.features(x, config.surrogate == "blr")
  return sur._replace(post=blr.fit(phi, ys, mask, config.pybnn_mll)), net


def flops_per_seed(
  config: BOConfig, env: env_lib.SearchEnv, budget: env_lib.Budget
) -> dict[str, float]:
  """The FLOPs of one seed of `make_bo` with a query budget, from XLA's counts of its parts.

  Parts: the network fit (XLA's count of one Adam minibatch step x the steps
  of every iteration: `num_epochs` x floor(n / batch_size) at n queried
  cells), the BLR fit on the T-row buffer, and the pruned acquisition sweep
  (the bound over every cell in `predict_chunk` chunks plus the exact scores
  of `num_candidates` cells; the rare full pass is not counted). A time budget
  can stop seeds earlier: this counts every iteration.

  Returns:
    {"fit", "blr", "sweep", "total"} FLOPs per seed.
  """
  t_max, k = int(budget.max_queries), int(config.top_k)
  n0 = min(int(config.num_init), t_max)
  sizes = [n0 + i * k for i in range(max(0, -(-(t_max - n0) // k)))]
  n_cells, dim = env.embeddings.shape
  f32 = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
  optimizer = optax.adam(config.learning_rate)
  params = jax.eval_shape(lambda: init_mlp(jax.random.PRNGKey(0), dim, config.hidden_dim))
  carry = (params, jax.eval_shape(optimizer.init, params))
  bs = config.batch_size or t_max
  step = perf.compiled_flops(
    _adam_step(optimizer), carry, f32(min(bs, t_max), dim), f32(min(bs, t_max)), f32(min(bs, t_max))
  )
  steps = [
    config.num_epochs * (1 if config.batch_size == 0 else max(n // min(bs, t_max), 1))
    for n in sizes
  ]
  mask = jax.ShapeDtypeStruct((t_max,), jnp.bool_)
  blr_flops = 0.0
  sur = None
  if config.surrogate == "dngo":
    sur = jax.eval_shape(
      lambda x, y, m: fit_surrogate(
        jax.random.PRNGKey(0),
        config,
        x,
        y,
        m,
        t_max,
        init_mlp(jax.random.PRNGKey(1), dim, config.hidden_dim),
      )[0],
      f32(t_max, dim),
      f32(t_max),
      mask,
    )
    blr_flops = perf.compiled_flops(
      lambda phi, y, m: blr.fit(phi, y, m, config.pybnn_mll),
      f32(t_max, config.hidden_dim),
      f32(t_max),
      mask,
    )
  chunk = min(int(config.predict_chunk), n_cells)
  chunks = -(-n_cells // chunk)
  best = jax.ShapeDtypeStruct((), jnp.float32)
  m = int(config.num_candidates)
  if m == 0 or m >= n_cells:
    sweep = chunks * perf.compiled_flops(
      lambda su, e, b: exact_scores(su, e, b, config), sur, f32(chunk, dim), best
    )
  else:
    sweep = chunks * perf.compiled_flops(
      lambda su, e, b: bound_scores(su, e, b, config), sur, f32(chunk, dim), best
    ) + perf.compiled_flops(lambda su, e, b: exact_scores(su, e, b, config), sur, f32(m, dim), best)
  out = {"fit": step * sum(steps), "blr": blr_flops * len(sizes), "sweep": sweep * len(sizes)}
  out["total"] = sum(out.values())
  out["adam_step"] = step
  out["fit_steps"] = float(sum(steps))
  return out


class BOState(NamedTuple):
  """arch2vec-BO's ask/tell state (R = the budget's query count, D = embedding dim, k = top_k).

  Attributes:
    problem: the candidates (their embeddings are the surrogate's inputs).
    progress: proposals and values told.
    init_key: the t-th random initial proposal uses `step_key(init_key, t)`.
    fit_key: the i-th surrogate fit uses `step_key(fit_key, i)`.
    num_asked: int32 [], proposals made.
    num_fits: int32 [], surrogate fits made (skipped ones past the budget included).
    x: float32 [R, D], the embeddings of the evaluated cells, in the order told.
    y: float32 [R], their values.
    net: the last network (the initialisation when `warm_start`).
    picks: int32 [k], the last fit's cells, in the order they are proposed.
    picks_ok: bool [k], picks with a finite acquisition value (others are not proposed).
    next_pick: int32 [], the next pick to propose (k: a new fit is due).
    stats: the last fit's `BOStats` (scalars).
  """

  problem: ask_tell.Candidates
  progress: ask_tell.Progress
  init_key: jax.Array
  fit_key: jax.Array
  num_asked: jax.Array
  num_fits: jax.Array
  x: jax.Array
  y: jax.Array
  net: MLPParams
  picks: jax.Array
  picks_ok: jax.Array
  next_pick: jax.Array
  stats: BOStats


def top_k_fields(problem: Any, init_key: jax.Array, fit_key: jax.Array, k: int) -> dict[str, Any]:
  """The fields `top_k_slot` reads, at the start of a search (nothing asked, no fit, no picks).

  Returns:
    {problem, progress, init_key, fit_key, num_asked: 0, num_fits: 0, picks: int32 [k],
    picks_ok: bool [k], next_pick: k (a fit is due)}: keywords of a `BOState`-like state.
  """
  return {
    "problem": problem,
    "progress": ask_tell.init_progress(problem),
    "init_key": init_key,
    "fit_key": fit_key,
    "num_asked": jnp.array(0, jnp.int32),
    "num_fits": jnp.array(0, jnp.int32),
    "picks": jnp.zeros((k,), jnp.int32),
    "picks_ok": jnp.zeros((k,), bool),
    "next_pick": jnp.array(k, jnp.int32),
  }


def top_k_slot(
  st: NamedTuple,
  refit: Callable,
  num_init: int,
  k: int,
  in_budget: jax.Array,
  revisit: bool = False,
) -> tuple[NamedTuple, jax.Array]:
  """One proposal of a top-k BO (`bo_search`, `supervised.supervised_bo_search`).

  The first `num_init` proposals are random unvisited cells; after them a proposal takes the
  next of the last fit's k picks, and when none is left `refit` picks k more.

  Args:
    st: the method's state (`BOState`-like: progress, init_key, num_asked, num_fits, picks,
      picks_ok, next_pick).
    refit: `(st, due, active) -> (cells int32 [k], scores [k], st)`: the fit (made only
      where `active`: due and in budget), which stores its own results in `st` where `due`.
    num_init, k: the initial design's size; picks per fit.
    in_budget: bool []: false proposes -1.
    revisit: a pick may be a cell proposed before (the initial design stays distinct).
  Returns:
    (the state after the proposal, the cell proposed: int32 [], -1 for none).
  """
  in_init = st.num_asked < num_init
  due = ~in_init & (st.next_pick >= k)
  visited = st.progress.visited
  cells, scores, st = refit(st, due, due & in_budget)
  st = st._replace(
    picks=jnp.where(due, cells, st.picks),
    picks_ok=jnp.where(due, jnp.isfinite(scores), st.picks_ok),
    next_pick=jnp.where(due, 0, st.next_pick),
    num_fits=st.num_fits + due.astype(jnp.int32),
  )
  pos = jnp.minimum(st.next_pick, k - 1)
  picked = jnp.where(st.picks_ok[pos] & in_budget, st.picks[pos], -1)
  random = env_lib.random_unvisited(ask_tell.step_key(st.init_key, st.num_asked), visited)
  proposal = jnp.where(in_init, jnp.where(in_budget, random, -1), picked)
  if revisit:
    fresh_visited, fresh = ask_tell.propose(visited, proposal)
    cell = jnp.where(in_init, fresh, proposal)
    safe = jnp.maximum(cell, 0)
    visited = fresh_visited.at[safe].set(fresh_visited[safe] | (cell >= 0))
  else:
    visited, cell = ask_tell.propose(visited, proposal)
  st = st._replace(
    progress=st.progress._replace(visited=visited),
    num_asked=st.num_asked + 1,
    next_pick=st.next_pick + (~in_init).astype(jnp.int32),
  )
  return st, cell


def bo_search(config: BOConfig, budget: env_lib.Budget, batch_size: int = 1) -> ask_tell.AskTell:
  """arch2vec-BO as ask/tell (module doc).

  The first `num_init` proposals are random distinct cells. After them, a
  proposal takes the next of the last fit's `top_k` picks; when none is left,
  the surrogate is fitted on every value told so far (a proposal not told yet
  is visited but not data) and `acquire` picks the next `top_k`. `batch_size`
  cells per `ask` are proposed this way one after another (so k = top_k asks
  exactly one fit's picks). With `batch_size` 1 over a table this is the paper's
  loop (`make_bo`). With `config.revisit` (the release) a pick may be a cell
  proposed before: the ask/tell convention that proposals never repeat is
  dropped for the picks (not for the initial design), and `table_search`
  queries and charges the cell again.

  Args:
    config: BO settings.
    budget: the search's budget: its query count is the data buffer's size R
      (values told beyond R enter the progress, not the surrogate), and once
      `ask_tell.within_budget` is false no fit is made and `ask` proposes -1.
    batch_size: cells per `ask` (static).

  Returns:
    The method (`ask_tell.AskTell`, name 'bo').
  """
  b = ask_tell.check_batch_size(batch_size)
  k = int(config.top_k)
  n0 = int(config.num_init)
  rows = max(int(budget.max_queries), 1)
  hidden = int(config.hidden_dim)

  def think(key, x, y, num_rows, net, visited, best, active, embeddings, chunks):
    """Fits the surrogate and picks the next k cells (one seed; skipped unless `active`)."""

    def fit_and_pick(net):
      mask = jnp.arange(rows) < num_rows
      sur, net = fit_surrogate(key, config, x, y, mask, num_rows, net)
      cells, scores, pruned = acquire(sur, embeddings, visited, best, k, config, chunks)
      return cells, scores, net, BOStats(pruned, sur.post.log_alpha, sur.post.log_beta)

    def skip(net):
      nan = jnp.float32(jnp.nan)
      return (
        jnp.zeros((k,), jnp.int32),
        jnp.full((k,), -jnp.inf),
        net,
        BOStats(jnp.bool_(False), nan, nan),
      )

    return jax.lax.cond(active, fit_and_pick, skip, net)

  if config.sequential_seeds:
    think = sequential_vmap(think, config.seed_group)

  def init(key: jax.Array, problem: ask_tell.Candidates) -> BOState:
    k_init, k_net, k_loop = jax.random.split(key, 3)
    dim = problem.embeddings.shape[1]
    nan = jnp.float32(jnp.nan)
    return BOState(
      **top_k_fields(problem, k_init, k_loop, k),
      x=jnp.zeros((rows, dim), jnp.float32),
      y=jnp.zeros((rows,), jnp.float32),
      net=init_mlp(k_net, dim, hidden),
      stats=BOStats(jnp.bool_(False), nan, nan),
    )

  def ask(state: BOState) -> tuple[jax.Array, BOState]:
    embeddings = state.problem.embeddings
    n, dim = embeddings.shape
    chunk = min(int(config.predict_chunk), n)
    chunks = jnp.pad(embeddings, ((0, -(-n // chunk) * chunk - n), (0, 0))).reshape(-1, chunk, dim)
    in_budget = ask_tell.within_budget(state, budget)
    learner = state._replace(problem=None)
    unavailable = ~state.problem.available  # the only cells the release's acquisition excludes

    def refit(st: BOState, due: jax.Array, active: jax.Array):
      cells, scores, net, stats = think(
        ask_tell.step_key(st.fit_key, st.num_fits),
        st.x,
        st.y,
        st.progress.num_told,
        st.net,
        unavailable if config.revisit else st.progress.visited,
        st.progress.best_value,
        active,
        embeddings,
        chunks,
      )
      stats = jax.tree.map(lambda new, old: jnp.where(due, new, old), stats, st.stats)
      return cells, scores, st._replace(net=net, stats=stats)

    def slot(st: BOState, _):
      return top_k_slot(st, refit, n0, k, in_budget, config.revisit)

    learner, cells = jax.lax.scan(slot, learner, None, length=b)
    return cells, learner._replace(problem=state.problem)

  def tell(state: BOState, cells, values, costs=None) -> BOState:
    start = state.progress.num_told
    progress, told = ask_tell.record(state.progress, cells, values, costs)
    cells, values, _ = ask_tell.as_batch(cells, values, costs)
    new = (state.problem.embeddings[jnp.maximum(cells, 0)], values)
    (x, y), _ = ask_tell.append_told((state.x, state.y), start, told, new)
    return state._replace(progress=progress, x=x, y=y)

  return ask_tell.AskTell(init, ask, tell, b, "bo")


def make_bo(config: BOConfig, env: env_lib.SearchEnv, budget: env_lib.Budget) -> Callable:
  """Builds a pure `run(key) -> Trace` (trace length `budget.max_queries`).

  `ask_tell.table_search` over `bo_search(config, budget)`: one cell per round.

  Args:
    config: BO settings.
    env: the environment (embeddings are the surrogate's inputs).
    budget: queries and optional time.

  Returns:
    `run(key)`; vmap it over keys for seeds. With `sequential_seeds` the
    surrogate fit and the sweep run seed by seed under `vmap`, the rest batched.
  """
  table_run = ask_tell.table_search(bo_search(config, budget), env, budget)

  def run(key: jax.Array) -> env_lib.Trace:  # a function of its own per method (e.g. for chex)
    """arch2vec-BO on the table, one seed."""
    return table_run(key)

  return run
