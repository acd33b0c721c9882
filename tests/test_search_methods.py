"""Every method in the harness: vmapped seeds equal a loop, no retracing, same key same trace, valid traces.

Small tables and budgets (`tiny_search`; compiles dominate); the real-data runs are in results/search.
"""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_search import CONFIGS, D, N, make_table

from arch2vec_jax.search import ask_tell, baselines, blr, dngo, runner
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.spaces import nb201


@pytest.fixture(scope="module")
def table():
  return make_table()


@pytest.fixture(scope="module", params=list(CONFIGS))
def method_runs(request, table):
  """(method, run, vmapped traces of 3 seeds twice, the loop's traces, keys)."""
  method = request.param
  env, neighbours = table
  config, queries = CONFIGS[method]
  run = runner.make_search(method, config, env, env_lib.Budget(queries), neighbours)
  counted = chex.assert_max_traces(run, n=1)  # the batched program is traced once
  keys = jax.random.split(jax.random.PRNGKey(42), 3)
  first = runner.run_seeds(counted, keys)
  second = runner.run_seeds(counted, keys)  # same keys, and no second trace
  other = runner.run_seeds(counted, jax.random.split(jax.random.PRNGKey(7), 3))
  loop = runner.run_seeds_loop(run, keys)
  return method, queries, first, second, other, loop


def _assert_traces_equal(a, b):
  for name, x, y in zip(env_lib.Trace._fields, a, b):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-7, err_msg=name)


def test_vmapped_equals_loop(method_runs):
  _, _, first, _, _, loop = method_runs
  _assert_traces_equal(first, loop)


def test_same_key_same_trace_no_retrace(method_runs):
  _, _, first, second, other, _ = method_runs
  _assert_traces_equal(first, second)
  assert not np.array_equal(np.asarray(first.cell), np.asarray(other.cell))


def test_trace_is_a_valid_search(method_runs, table):
  method, queries, trace, _, _, _ = method_runs
  env, _ = table
  reward, report, cost = (np.asarray(a) for a in (env.reward, env.report, env.cost))
  assert trace.cell.shape == (3, queries)
  for s in range(3):
    cells = np.asarray(trace.cell[s])
    mask = np.asarray(trace.mask[s])
    assert mask.all(), method  # a query budget smaller than the table: every slot is a query
    assert len(set(cells.tolist())) == queries  # never re-queried
    np.testing.assert_allclose(trace.best_valid[s], np.maximum.accumulate(reward[cells]), rtol=1e-6)
    best_cells = cells[[np.argmax(reward[cells[: t + 1]]) for t in range(queries)]]
    np.testing.assert_allclose(trace.best_test[s], report[best_cells], rtol=1e-6)
    np.testing.assert_allclose(trace.cost[s], np.cumsum(cost[cells]), rtol=1e-5)
    np.testing.assert_array_equal(trace.num_queries[s], np.arange(1, queries + 1))


def test_time_budget_stops_every_method(table):
  env, neighbours = table
  budget = env_lib.Budget(max_queries=12, max_cost=60.0)  # 3 to 6 queries of 10-20 s
  for method in ("rs", "re"):
    config = CONFIGS[method][0]
    trace = jax.jit(runner.make_search(method, config, env, budget, neighbours))(
      jax.random.PRNGKey(0)
    )
    made = int(np.asarray(trace.mask).sum())
    assert 3 <= made <= 6
    assert float(trace.cost[made - 2]) < 60.0 <= float(trace.cost[-1])
    assert not np.asarray(trace.mask)[made:].any()


def test_regularized_evolution_children_are_neighbours(table):
  env, neighbours = table
  config, queries = CONFIGS["re"]
  trace = jax.jit(runner.make_search("re", config, env, env_lib.Budget(queries), neighbours))(
    jax.random.PRNGKey(1)
  )
  cells = np.asarray(trace.cell)
  for t in range(config.population_size, queries):
    # The child mutates a member of the last `population_size` queries (aging).
    population = cells[t - config.population_size : t]
    assert any(cells[t] in neighbours[p] for p in population), t


def test_nb201_mutation_neighbours():
  ids = np.asarray(nb201.arch_strings())
  table = baselines.nb201_neighbours(ids)
  assert table.shape == (len(ids), 24) and (table >= 0).all()
  rng = np.random.default_rng(0)
  for i in rng.choice(len(ids), 50, replace=False):
    ops = nb201.parse_arch(ids[i])
    nbr_ops = [nb201.parse_arch(ids[j]) for j in table[i]]
    assert len(set(table[i].tolist())) == 24
    for o in nbr_ops:  # exactly one of the 6 edges changed
      assert sum(a != b for a, b in zip(ops, o)) == 1
    assert all(i in table[j] for j in table[i])  # symmetric
  # A subset table: neighbours outside it are -1, indices are into the subset.
  sub = baselines.nb201_neighbours(ids[:500])
  assert sub.shape == (500, 24) and sub.max() < 500 and (sub == -1).any()
  for i in range(0, 500, 50):
    for j in sub[i][sub[i] >= 0]:
      assert sum(a != b for a, b in zip(nb201.parse_arch(ids[i]), nb201.parse_arch(ids[j]))) == 1


def test_pruned_acquisition_equals_full():
  """The pruned sweep (bound + candidates + fallback) picks exactly the full sweep's top k."""
  env, _ = make_table(1)
  config = dngo.BOConfig(hidden_dim=8, num_epochs=5, batch_size=4, predict_chunk=32)
  rng = np.random.default_rng(3)

  @jax.jit
  def both(key, rows, visited):
    mask = jnp.arange(20) < 20
    sur, _ = dngo.fit_surrogate(
      key, config, env.embeddings[rows], env.reward[rows], mask, 20, dngo.init_mlp(key, D, 8)
    )
    best = jnp.max(env.reward[rows])
    outs = []
    for m, rank, k in [(40, 8, 1), (6, 0, 3), (0, 0, 3)]:
      cfg = dngo.BOConfig(num_candidates=m, bound_rank=rank, predict_chunk=32)
      outs.append(dngo.acquire(sur, env.embeddings, visited, best, k, cfg))
    return outs

  pruned_ok = []
  for s in range(6):
    rows = rng.choice(N, 20, replace=False)
    visited = np.zeros(N, bool)
    visited[rows] = True
    (c1, _s1, ok1), (c3, s3, ok3), (f3, fs3, _) = both(
      jax.random.PRNGKey(s), jnp.asarray(rows), jnp.asarray(visited)
    )
    np.testing.assert_array_equal(c3, f3)
    np.testing.assert_array_equal(c1, f3[:1])
    np.testing.assert_allclose(s3, fs3, rtol=1e-5)
    assert not visited[np.asarray(f3)].any()
    pruned_ok += [bool(ok1), bool(ok3)]
  assert any(pruned_ok) and not all(
    pruned_ok
  )  # both paths (pruned and full fallback) were exercised


def test_bo_variants_run(table):
  """BLR on the embeddings, top-k = 2 and the release acquisition, with per-iteration statistics."""
  env, _ = table
  config = dngo.BOConfig(
    surrogate="blr",
    top_k=2,
    acquisition="release",
    target=1.0,
    num_init=3,
    num_candidates=4,
    hyper_levels=1,
    predict_chunk=32,
  )
  trace = jax.jit(dngo.make_bo(config, env, env_lib.Budget(9)))(jax.random.PRNGKey(0))
  assert np.asarray(trace.mask).all() and len(set(np.asarray(trace.cell).tolist())) == 9
  # The fits' statistics, through ask/tell (the same search: `make_bo` is its table loop).
  search = ask_tell.jit_search(dngo.bo_search(config, env_lib.Budget(9), batch_size=2))
  state, log_alpha = search.init(jax.random.PRNGKey(0), ask_tell.candidates_from_env(env)), []
  for _ in range(4):
    cells, state = search.ask(state)
    state = search.tell(state, cells, np.asarray(env.reward)[np.asarray(cells)])
    log_alpha.append(float(state.stats.log_alpha))
  assert int(state.num_fits) == 3 and int(state.num_asked) == 8
  assert np.isnan(log_alpha[0]) and np.isfinite(log_alpha[1:]).all()  # no fit in the initial design
  assert all(blr.LOG_BOUNDS[0] <= a <= blr.LOG_BOUNDS[1] for a in log_alpha[1:])


@pytest.mark.parametrize("group", [2, 4])
def test_bo_seed_groups_equal_one_seed_at_a_time(table, group):
  """`seed_group` batches the per-seed fit and sweep of a few seeds (5 seeds: the last group padded)."""
  import dataclasses  # pylint: disable=import-outside-toplevel

  env, neighbours = table
  config, queries = CONFIGS["bo"]
  keys = jax.random.split(jax.random.PRNGKey(3), 5)
  one = runner.run_seeds(
    runner.make_search("bo", config, env, env_lib.Budget(queries), neighbours), keys
  )
  grouped_run = runner.make_search(
    "bo", dataclasses.replace(config, seed_group=group), env, env_lib.Budget(queries), neighbours
  )
  chex.clear_trace_counter()  # the counter is keyed by the function's code, shared by every make_bo
  counted = chex.assert_max_traces(grouped_run, n=1)
  grouped = runner.run_seeds(counted, keys)
  _assert_traces_equal(grouped, one)
  runner.run_seeds(counted, keys)  # no retrace
  with pytest.raises(ValueError, match="seed_group"):
    dngo.BOConfig(seed_group=0)
