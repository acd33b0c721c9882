"""Ask/tell (RS, RE, RL, BO): an eager Python loop equals the compiled `run_seeds`, the compiled search
equals the pre-ask/tell programs (kept here) and the committed traces, checkpoints resume to the
same proposals, and the table example runs.

Tiny tables (`tiny_search`); jitted searches are shared per module (compiles dominate).
"""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import repo_scripts
from tiny_search import CONFIGS, make_table

from arch2vec_jax.search import ask_tell, baselines, dngo, reinforce, runner
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.batching import sequential_vmap

REPO = pathlib.Path(__file__).resolve().parents[1]
METHODS = ("rs", "re", "rl", "bo")
SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def table():
  env, neighbours = make_table()
  cand = ask_tell.candidates_from_env(env, neighbours)
  host = tuple(np.asarray(a) for a in (env.reward, env.report, env.cost))
  return env, neighbours, cand, host


_JITTED = {}


def search_of(method, k=1, budget=None):
  """The method's ask/tell search with the tiny config (BO: sized by `budget`, default the tiny one)."""
  config, queries = CONFIGS[method]
  budget = env_lib.Budget(queries) if budget is None else budget
  return runner.make_ask_tell(method, config, k, budget if method == "bo" else None)


def jitted(method, k=1, budget=None):
  """A jitted search per (method, k[, BO's budget]), shared by the tests of this module."""
  key = (method, k, budget if method == "bo" else None)
  if key not in _JITTED:
    _JITTED[key] = ask_tell.jit_search(search_of(method, k, budget))
  return _JITTED[key]


def eager_loop(search, key, cand, host, budget):
  """The search in a plain Python loop over the table: (trace rows, final state).

  The budget is kept on the host in float32 (summed in query order, as `env.query` does).
  """
  reward, report, cost = host
  state = search.init(key, cand)
  rows, made, spent, best = [], 0, np.float32(0.0), (-np.inf, np.nan)
  max_cost = np.float32(budget.max_cost)
  while made < budget.max_queries and spent < max_cost:
    cells, state = search.ask(state)
    cells = np.asarray(cells)
    values = np.full(len(cells), np.nan, np.float32)
    costs = np.zeros(len(cells), np.float32)
    for j, c in enumerate(cells.tolist()):
      if c < 0 or not (made < budget.max_queries and spent < max_cost):
        continue
      values[j], costs[j] = reward[c], cost[c]
      made, spent = made + 1, np.float32(spent + costs[j])
      if values[j] > best[0]:
        best = (values[j], report[c])
      rows.append((best[0], best[1], spent, made, c, values[j]))
    state = search.tell(state, cells, values, costs)
    if (cells < 0).all():
      break
  return rows, state


def assert_rows_equal_trace(rows, trace, s=None):
  """The eager rows equal the masked part of a compiled trace (seed `s` of [S, T]), bit for bit."""
  tr = jax.tree.map(lambda a: np.asarray(a) if s is None else np.asarray(a)[s], trace)
  n = int(tr.mask.sum())
  assert len(rows) == n and tr.mask[:n].all()
  cols = list(zip(*rows)) if rows else [()] * 6
  for name, col in zip(("best_valid", "best_test", "cost", "num_queries", "cell", "reward"), cols):
    want = getattr(tr, name)[:n]
    np.testing.assert_array_equal(np.asarray(col, want.dtype), want, err_msg=name)
  assert (tr.cell[n:] == -1).all() and np.isnan(tr.reward[n:]).all()


def test_step_key_is_the_split_key():
  """What the ask/tell states rely on: `fold_in(key, t)` is `split(key, T)[t]` for every T > t."""
  for key in (jax.random.PRNGKey(3), jax.random.key(5)):
    for t_max in (1, 7, 100):
      ref = jax.random.split(key, t_max)
      for t in (0, t_max // 2, t_max - 1):
        np.testing.assert_array_equal(
          jax.random.key_data(ask_tell.step_key(key, t)), jax.random.key_data(ref[t])
        )


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("time_budget", [False, True])
def test_eager_loop_equals_run_seeds(table, method, time_budget):
  env, neighbours, cand, host = table
  config, queries = CONFIGS[method]
  budget = env_lib.Budget(12, 60.0) if time_budget else env_lib.Budget(queries)
  keys = jax.random.split(jax.random.PRNGKey(11), len(SEEDS))
  trace = runner.run_seeds(runner.make_search(method, config, env, budget, neighbours), keys)
  for s in range(len(SEEDS)):
    rows, state = eager_loop(jitted(method, 1, budget), keys[s], cand, host, budget)
    assert_rows_equal_trace(rows, trace, s)
    assert int(state.progress.num_told) == len(rows)
    assert not bool(ask_tell.within_budget(state, budget)) or len(rows) == env.num_cells


@pytest.mark.parametrize("method", METHODS)
def test_batched_asks(table, method):
  """k = 2 cells per ask: the eager loop equals the compiled scan; proposals distinct."""
  env, _, cand, host = table
  budget = env_lib.Budget(10)
  search = search_of(method, 2, budget)
  run = jax.jit(ask_tell.table_search(search, env, budget, cand))
  for seed in SEEDS[:2]:
    key = jax.random.PRNGKey(seed)
    rows, _ = eager_loop(jitted(method, 2, budget), key, cand, host, budget)
    trace = run(key)
    assert_rows_equal_trace(rows, trace)
    assert len({r[4] for r in rows}) == 10


def test_exhaustion_nan_and_foreign_cells():
  """-1 once nothing is left; a NaN value enters nothing; a told foreign cell is never proposed."""
  cand = ask_tell.make_candidates(
    np.eye(5, 2),
    available=[True, True, True, False, True],
    neighbours=np.array([[1], [2], [0], [0], [0]]),
  )
  for method in METHODS:
    config = {
      "rs": None,
      "re": baselines.REConfig(2, 1),
      "rl": reinforce.ReinforceConfig(hidden_dim=4, episode_length=2),
      "bo": dngo.BOConfig(
        num_init=1, hidden_dim=4, num_epochs=2, num_candidates=2, bound_rank=1, hyper_levels=1
      ),
    }[method]
    search = ask_tell.jit_search(runner.make_ask_tell(method, config, 2, env_lib.Budget(10)))
    state = search.init(jax.random.PRNGKey(0), cand)
    if method != "rl":  # a cell evaluated outside the search
      state = search.tell(state, [4], [0.5], [3.0])
      assert int(state.progress.best_cell) == 4 and float(state.progress.total_cost) == 3.0
    proposed = []
    for _ in range(3):
      cells, state = search.ask(state)
      proposed += np.asarray(cells).tolist()
      state = search.tell(state, cells, [np.nan, 0.25], None)
    real = [c for c in proposed if c >= 0]
    assert len(real) == len(set(real)) and 3 not in real and (method == "rl" or 4 not in real)
    assert proposed[-1] == -1  # nothing left
    told = 1 if method == "rl" else 2
    assert int(state.progress.num_told) == told
    assert float(state.progress.best_value) == (0.25 if method == "rl" else 0.5)
    if method == "re":
      assert int(state.pop_valid.sum()) == 2  # the foreign cell and one 0.25; no NaN member


def test_unjitted_equals_jitted(table):
  """The pure functions run op by op from Python give the jitted proposals (RS, RE, BO)."""
  _, _, cand, host = table
  for method in ("rs", "re", "bo"):
    plain = search_of(method)
    out = []
    for search in (plain, jitted(method)):
      state, cells_seen = search.init(jax.random.PRNGKey(4), cand), []
      for _ in range(6):
        cells, state = search.ask(state)
        state = search.tell(state, cells, host[0][np.asarray(cells)], None)
        cells_seen.append(int(cells[0]))
      out.append(cells_seen)
    assert out[0] == out[1], method


@pytest.mark.parametrize("method", METHODS)
def test_checkpoint_resume(table, method, tmp_path):
  """Saved after a tell, the loop stopped, restored into a fresh state: the same proposals."""
  _, _, cand, host = table
  search = jitted(method, 1, env_lib.Budget(13))
  key = jax.random.key(7) if method == "rl" else jax.random.PRNGKey(7)  # typed keys too

  def loop(state, steps, save_at=None):
    out = []
    for t in range(steps):
      cells, state = search.ask(state)
      out.append(int(cells[0]))
      state = search.tell(state, cells, host[0][np.asarray(cells)], host[2][np.asarray(cells)])
      if t == save_at:
        ask_tell.save_state(tmp_path / "state.msgpack", state, extra={"step": t})
        return out, state
    return out, state

  full, _ = loop(search.init(key, cand), 13)
  first, saved = loop(search.init(key, cand), 13, save_at=5)  # stopped mid-episode for RL
  template = search.init(jax.random.PRNGKey(123) if method != "rl" else jax.random.key(1), cand)
  restored, extra = ask_tell.restore_state(tmp_path / "state.msgpack", template, with_extra=True)
  assert extra == {"step": 5}
  for a, b in zip(jax.tree.leaves(saved), jax.tree.leaves(restored)):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
      a, b = jax.random.key_data(a), jax.random.key_data(b)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  rest, _ = loop(restored, 13 - 6)
  assert first + rest == full
  # Saved without the candidates (the template's are used, and must be the same).
  small = tmp_path / "small.msgpack"
  ask_tell.save_state(small, saved, with_problem=False)
  assert small.stat().st_size < (tmp_path / "state.msgpack").stat().st_size
  rest, _ = loop(ask_tell.restore_state(small, template), 13 - 6)
  assert first + rest == full
  other = search.init(
    key,
    ask_tell.make_candidates(
      np.asarray(cand.embeddings) + 1.0, neighbours=np.asarray(cand.neighbours)
    ),
  )
  with pytest.raises(ask_tell.StateFileError, match="not the ones it was saved with"):
    ask_tell.restore_state(small, other)


def test_restore_refuses_other_states(table, tmp_path):
  _, _, cand, _ = table
  rs, re_ = jitted("rs"), jitted("re")
  path = tmp_path / "rs.msgpack"
  ask_tell.save_state(path, rs.init(jax.random.PRNGKey(0), cand))
  with pytest.raises(ask_tell.StateFileError, match="RSState state, but the template is a REState"):
    ask_tell.restore_state(path, re_.init(jax.random.PRNGKey(0), cand))
  small = ask_tell.make_candidates(num_cells=10)
  shapes = r"embeddings is float32\[96, 4\], the template's float32\[10, 1\]"
  with pytest.raises(ask_tell.StateFileError, match=shapes):
    ask_tell.restore_state(path, rs.init(jax.random.PRNGKey(0), small))
  data = bytearray(path.read_bytes())
  data[len(data) // 2] ^= 1
  (tmp_path / "bad.msgpack").write_bytes(bytes(data))
  with pytest.raises(ask_tell.StateFileError, match="checksum"):
    ask_tell.restore_state(tmp_path / "bad.msgpack", rs.init(jax.random.PRNGKey(0), cand))


def test_config_errors():
  with pytest.raises(ValueError, match="must divide episode_length"):
    reinforce.reinforce_search(reinforce.ReinforceConfig(episode_length=16), batch_size=3)
  with pytest.raises(ValueError, match="batch_size"):
    baselines.random_search(0)
  with pytest.raises(ValueError, match="mutation neighbours"):
    no_neighbours = ask_tell.make_candidates(num_cells=4)
    baselines.regularized_evolution(baselines.REConfig()).init(jax.random.PRNGKey(0), no_neighbours)
  with pytest.raises(ValueError, match="needs the search's budget"):
    runner.make_ask_tell("bo", dngo.BOConfig())


# ----- the programs before ask/tell: an independent reference for the compiled searches -----


def _old_random_step(env, budget):
  def step(state, key):
    cell = env_lib.random_unvisited(key, state.visited)
    active = env_lib.budget_active(state, budget) & ~state.visited[cell]
    return env_lib.query(env, state, cell, active)

  return step


def _old_random_search(env, budget):
  def run(key):
    keys = jax.random.split(key, budget.max_queries)
    return jax.lax.scan(_old_random_step(env, budget), env_lib.init_state(env), keys)[1]

  return run


def _old_evolution(config, env, budget, neighbours):
  t_max, neighbours = budget.max_queries, jnp.asarray(neighbours)
  pop = min(config.population_size, t_max)
  sample = min(config.sample_size, pop)

  def cycle(carry, _):
    state, pc, pr, pv, o, key = carry
    key, k_sample, k_mut, k_fb = jax.random.split(key, 4)
    members = jax.lax.top_k(jnp.where(pv, jax.random.gumbel(k_sample, (pop,)), -jnp.inf), sample)[1]
    ok = pv[members]
    parent = pc[members[jnp.argmax(jnp.where(ok, pr[members], -jnp.inf))]]
    nbrs = neighbours[parent]
    free = (nbrs >= 0) & ~state.visited[jnp.maximum(nbrs, 0)]
    pick = nbrs[jnp.argmax(jnp.where(free, jax.random.gumbel(k_mut, nbrs.shape), -jnp.inf))]
    child = jnp.where(jnp.any(free), pick, env_lib.random_unvisited(k_fb, state.visited))
    active = env_lib.budget_active(state, budget) & ~state.visited[child] & jnp.any(ok)
    state, row = env_lib.query(env, state, child, active)
    pc = pc.at[o].set(jnp.where(active, child, pc[o]))
    pr = pr.at[o].set(jnp.where(active, env.reward[child], pr[o]))
    pv = pv.at[o].set(pv[o] | active)
    return (state, pc, pr, pv, jnp.where(active, (o + 1) % pop, o), key), row

  def run(key):
    k_init, k_loop = jax.random.split(key)
    state, init = jax.lax.scan(
      _old_random_step(env, budget), env_lib.init_state(env), jax.random.split(k_init, pop)
    )
    if t_max <= pop:
      return init
    c = jnp.maximum(init.cell, 0)
    carry = (state, c, env.reward[c], init.mask, jnp.int32(0), k_loop)
    rows = jax.lax.scan(cycle, carry, None, length=t_max - pop)[1]
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), init, rows)

  return run


def _old_reinforce(config, env, budget):
  t_max, length, hidden = budget.max_queries, config.episode_length, config.hidden_dim
  num_episodes, dim = -(-t_max // length), env.embeddings.shape[1]
  opt = optax.adam(config.learning_rate)

  def run(key):
    k_start, k_params, k_loop = jax.random.split(key, 3)
    state = env_lib.init_state(env)
    start = env_lib.random_unvisited(k_start, state.visited)
    state = state._replace(visited=state.visited.at[start].set(True))
    params = reinforce.init_policy(k_params, dim, hidden)

    def episode(carry, _):
      params, opt_state, state, x, key = carry
      key, k_ep = jax.random.split(key)
      h0 = jnp.zeros(hidden, jnp.float32)

      def step(c, noise):
        lstm, x, state = c
        lstm, mean = reinforce.lstm_step(params, x, lstm)
        action = mean + config.action_std * noise
        cell = env_lib.nearest_unvisited(env, state.visited, action, config.skip_nearest)
        active = env_lib.budget_active(state, budget) & ~state.visited[cell]
        state, row = env_lib.query(env, state, cell, active)
        return (lstm, jnp.where(active, env.embeddings[cell], x), state), (x, action, row)

      noise = jax.random.normal(k_ep, (length, dim))
      (_, x, state), (inputs, actions, rows) = jax.lax.scan(step, ((h0, h0), x, state), noise)
      rewards = jnp.where(rows.mask, rows.reward, 0.0)
      grads = jax.grad(reinforce.reinforce_loss)(
        params, inputs, actions, rewards - config.baseline, rows.mask, config.action_std
      )
      updates, opt_state = opt.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state, state, x, key), rows

    carry = (params, opt.init(params), state, env.embeddings[start], k_loop)
    rows = jax.lax.scan(episode, carry, None, length=num_episodes)[1]
    return jax.tree.map(lambda a: a.reshape((num_episodes * length,) + a.shape[2:])[:t_max], rows)

  return run


def _old_bo(config, env, budget):
  t_max, k, n0 = budget.max_queries, config.top_k, min(config.num_init, budget.max_queries)
  num_iters, (n, dim) = max(0, -(-(t_max - n0) // k)), env.embeddings.shape
  chunk = min(config.predict_chunk, n)
  chunks = jnp.pad(env.embeddings, ((0, -(-n // chunk) * chunk - n), (0, 0))).reshape(
    -1, chunk, dim
  )

  def think(key, x, y, num_rows, net, visited, best, active):
    def fit(net):
      sur, net = dngo.fit_surrogate(key, config, x, y, jnp.arange(t_max) < num_rows, num_rows, net)
      return (*dngo.acquire(sur, env.embeddings, visited, best, k, config, chunks)[:2], net)

    skip = lambda net: (jnp.zeros((k,), jnp.int32), jnp.full((k,), -jnp.inf), net)
    return jax.lax.cond(active, fit, skip, net)

  think = sequential_vmap(think) if config.sequential_seeds else think

  def query_and_write(carry, cell, ok):
    state, x, y, net = carry
    active = env_lib.budget_active(state, budget) & ~state.visited[cell] & ok
    row = jnp.where(active, state.num_queries, t_max)
    state, trace_row = env_lib.query(env, state, cell, active)
    x = x.at[row].set(env.embeddings[cell], mode="drop")
    return (state, x, y.at[row].set(env.reward[cell], mode="drop"), net), trace_row

  def iteration(carry, key):
    state, x, y, net = carry
    cells, scores, net = think(
      key,
      x,
      y,
      state.num_queries,
      net,
      state.visited,
      state.best_valid,
      env_lib.budget_active(state, budget),
    )
    carry, out = (state, x, y, net), []
    for j in range(k):
      carry, row = query_and_write(carry, cells[j], jnp.isfinite(scores[j]))
      out.append(row)
    return carry, jax.tree.map(lambda *a: jnp.stack(a), *out)

  def run(key):
    k_init, k_net, k_loop = jax.random.split(key, 3)
    net = dngo.init_mlp(k_net, dim, config.hidden_dim)
    carry = (env_lib.init_state(env), jnp.zeros((t_max, dim)), jnp.zeros((t_max,)), net)
    step = lambda c, key: query_and_write(c, env_lib.random_unvisited(key, c[0].visited), True)
    carry, trace = jax.lax.scan(step, carry, jax.random.split(k_init, n0))
    if num_iters:
      rows = jax.lax.scan(iteration, carry, jax.random.split(k_loop, num_iters))[1]
      rows = jax.tree.map(lambda a: a.reshape((num_iters * k,) + a.shape[2:]), rows)
      trace = jax.tree.map(lambda a, b: jnp.concatenate([a, b])[:t_max], trace, rows)
    return trace

  return run


@pytest.mark.parametrize("method", METHODS)
def test_compiled_equals_the_pre_ask_tell_program(table, method):
  """The compiled search (ask -> lookup -> tell) gives the old programs' traces, bit for bit."""
  env, neighbours, _, _ = table
  config, queries = CONFIGS[method]
  old = {
    "rs": lambda b: _old_random_search(env, b),
    "re": lambda b: _old_evolution(config, env, b, neighbours),
    "rl": lambda b: _old_reinforce(config, env, b),
    "bo": lambda b: _old_bo(config, env, b),
  }[method]
  keys = jax.random.split(jax.random.PRNGKey(42), 3)
  for budget in (env_lib.Budget(queries), env_lib.Budget(12, 60.0)):
    new = runner.run_seeds(runner.make_search(method, config, env, budget, neighbours), keys)
    ref = runner.run_seeds_loop(old(budget), keys)
    for name, a, b in zip(env_lib.Trace._fields, new, ref):
      msg = f"{method} {budget} {name}"
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=msg)
  if method == "bo":  # several picks per fit, the last fit's picks cut by the budget
    config = dataclasses.replace(config, top_k=3)
    budget = env_lib.Budget(queries + 3)
    new = runner.run_seeds(runner.make_search(method, config, env, budget), keys)
    ref = runner.run_seeds_loop(_old_bo(config, env, budget), keys)
    for name, a, b in zip(env_lib.Trace._fields, new, ref):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=f"bo top_k=3 {name}")


def test_compiled_equals_committed_traces(shared_data):
  """RS and RE on the NB201 CSV: the first seeds of results/search/nb201/cifar10/traces, exactly."""
  from arch2vec_jax.search import experiment  # pylint: disable=import-outside-toplevel

  problem = experiment.load_problem(
    "nb201", shared_data / "nb201_accuracies.csv", "cifar10", methods=("rs", "re")
  )
  for method in ("rs", "re"):
    ref = np.load(REPO / "results" / "search" / "nb201" / "cifar10" / "traces" / f"{method}.npz")
    keys = jnp.asarray(ref["seed_keys"][:4])
    run = runner.make_search(
      method,
      runner.default_config(method, "nb201"),
      problem.env,
      env_lib.Budget(100),
      problem.neighbours,
    )
    trace = runner.run_seeds(run, keys)
    for name in env_lib.Trace._fields:
      np.testing.assert_array_equal(np.asarray(getattr(trace, name)), ref[name][:4], err_msg=name)


# ----- the example -----


def _example():
  return repo_scripts.load("examples/search_table_ask_tell.py", cache=False)


def test_example_search_table_ask_tell(shared_data, tmp_path, capsys):
  """examples/search_table_ask_tell.py on the first 300 NB201 rows: the loop matches the compiled
  run, also when interrupted and resumed from its checkpoint."""
  lines = (shared_data / "nb201_accuracies.csv").read_text().splitlines()[:301]
  csv = tmp_path / "nb201_head.csv"
  csv.write_text("\n".join(lines) + "\n")
  ids = [line.split(",")[1] for line in lines[1:]]
  emb = tmp_path / "embeddings.npz"
  np.savez(
    emb,
    embeddings=np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32),
    ids=np.asarray(ids),
    index=np.arange(300),
  )
  example = _example()
  base = ["--benchmark", str(csv), "--print_every", "5"]
  out = example.main(base + ["--method", "re", "--queries", "20"])
  assert out["matches_compiled"] and out["made"] == 20
  out = example.main(
    base
    + [
      "--method",
      "rs",
      "--queries",
      "30",
      "--time_budget",
      "150",
      "--cost_per_query",
      "20",
      "--batch_size",
      "2",
    ]
  )
  assert out["matches_compiled"] and out["made"] == 8  # 7 x 20 s < 150 s, the 8th crosses it
  ck = tmp_path / "rl_state.msgpack"
  rl = base + ["--method", "rl", "--embeddings", str(emb), "--queries", "20"]
  rl += ["--checkpoint", str(ck)]
  out = example.main(rl + ["--stop_after", "7"])
  assert out["made"] == 7 and "matches_compiled" not in out
  out = example.main(rl + ["--resume", "--trace", str(tmp_path / "rl_trace.npz")])
  assert out["matches_compiled"] and out["made"] == 20
  printed = capsys.readouterr().out
  assert "resumed from" in printed and "gives the same trace: True" in printed
  assert (tmp_path / "rl_trace.npz").exists()
  # arch2vec-BO, 2 cells per ask, interrupted after 19 evaluations (mid-batch of picks) and resumed.
  bo = base + ["--method", "bo", "--embeddings", str(emb), "--queries", "24", "--batch_size", "2"]
  bo += ["--checkpoint", str(tmp_path / "bo_state.msgpack")]
  assert example.main(bo + ["--stop_after", "19"])["made"] == 20  # stops between asks
  out = example.main(bo + ["--resume"])
  assert out["matches_compiled"] and out["made"] == 24


# ----- candidates added between asks -----


@pytest.mark.parametrize("method", METHODS)
def test_add_candidates_between_asks(table, method):
  """A pool of 60 cells grown to all 96 after 5 evaluations: the told values stay, the new cells
  are proposed, nothing twice; the grown pool equals the one built whole."""
  _env, neighbours, cand, host = table
  nb = np.where(neighbours[:60] < 60, neighbours[:60], -1) if method == "re" else None
  first = ask_tell.make_candidates(np.asarray(cand.embeddings)[:60], neighbours=nb)
  search = search_of(method, 1, env_lib.Budget(40))
  state = search.init(jax.random.PRNGKey(2), first)
  proposed = []
  for t in range(40):
    if t == 5:
      state = ask_tell.add_candidates(  # RE: the whole mutation table, old cells reach new ones
        state, np.asarray(cand.embeddings)[60:], neighbours if method == "re" else None
      )
      whole = ask_tell.make_candidates(np.asarray(cand.embeddings))
      np.testing.assert_array_equal(np.asarray(state.problem.embeddings), whole.embeddings)
      np.testing.assert_array_equal(np.asarray(state.problem.sq_norms), whole.sq_norms)
      assert int(state.progress.num_told) == 5
      assert int(state.progress.visited.sum()) == 5 + (method == "rl")  # RL: its free start cell
    cells, state = search.ask(state)
    proposed += np.asarray(cells).tolist()
    state = search.tell(state, cells, host[0][np.asarray(cells)])
  assert len(set(proposed)) == 40 and min(proposed) >= 0
  assert all(c < 60 for c in proposed[:5]) and any(c >= 60 for c in proposed[5:])


def test_enable_candidates_does_not_recompile(table):
  """Spare rows (unavailable) of a fixed-size pool enabled between asks: one trace of `ask`."""
  _env, _, cand, host = table
  spare = np.arange(96) >= 60
  pool = ask_tell.make_candidates(np.asarray(cand.embeddings) * 0.0, available=~spare)
  base = search_of("bo", 1, env_lib.Budget(30))
  traced = []

  def ask(state):
    traced.append(1)
    return base.ask(state)

  search = ask_tell.jit_search(base._replace(ask=ask))
  state, proposed = search.init(jax.random.PRNGKey(0), pool), []
  for t in range(30):
    if t == 8:  # the real embeddings of every row arrive; the spare rows become candidates
      state = ask_tell.enable_candidates(
        state, np.flatnonzero(spare), np.asarray(cand.embeddings)[60:]
      )
      state = state._replace(
        problem=state.problem._replace(embeddings=cand.embeddings, sq_norms=cand.sq_norms)
      )
    cells, state = search.ask(state)
    proposed += np.asarray(cells).tolist()
    state = search.tell(state, cells, host[0][np.asarray(cells)])
  assert len(traced) == 1
  assert (
    len(set(proposed)) == 30
    and all(c < 60 for c in proposed[:8])
    and any(c >= 60 for c in proposed[8:])
  )
  with pytest.raises(ValueError, match="spare"):
    ask_tell.enable_candidates(state, [3])
  with pytest.raises(ValueError, match=r"\[2, 4\]"):
    ask_tell.enable_candidates(search.init(jax.random.PRNGKey(0), pool), [70, 71], np.zeros((2, 3)))
  with pytest.raises(ValueError, match="mutation neighbours"):
    ask_tell.add_candidates(jitted("re").init(jax.random.PRNGKey(0), cand), np.zeros((2, 4)))
  with pytest.raises(ValueError, match=r"\[M, 4\]"):
    ask_tell.add_candidates(state, np.zeros((2, 3)))


def test_append_told_writes_the_told_rows_in_order_and_drops_past_the_end():
  buffers = (jnp.zeros((3, 2)), jnp.full((3,), -1, jnp.int32))
  told = jnp.array([True, False, True, True])
  new = (jnp.arange(8.0).reshape(4, 2), jnp.array([10, 11, 12, 13], jnp.int32))
  (x, c), row = ask_tell.append_told(buffers, jnp.int32(1), told, new)
  np.testing.assert_array_equal(x, [[0, 0], [0, 1], [4, 5]])  # rows 1, 2; the third told dropped
  np.testing.assert_array_equal(c, [-1, 10, 12])
  assert int(row) == 4  # not clipped: 1 + 3 told
  (_, c), row = ask_tell.append_told(buffers, jnp.int32(0), ~told, new)
  np.testing.assert_array_equal(c, [11, -1, -1])
  assert int(row) == 1
