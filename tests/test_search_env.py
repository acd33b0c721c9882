"""The search environment on a hand-made 5-cell table: nearest unvisited, budget stop, trace, by value."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search import runner

# Five cells in a 2-d embedding space:
#   c3 (0,2)
#   c0 (0,0)  c1 (1,0)  .  c2 (3,0)        c4 (5,5)
EMB = np.array([[0, 0], [1, 0], [3, 0], [0, 2], [5, 5]], np.float32)
REWARD = np.array([0.5, 0.7, 0.6, 0.9, 0.8])
REPORT = np.array([0.51, 0.71, 0.61, 0.91, 0.81])
COST = np.array([10.0, 20.0, 30.0, 40.0, 50.0])


@pytest.fixture(scope="module")
def env():
  return env_lib.make_env(REWARD, REPORT, COST, EMB)


def _visited(*cells):
  v = np.zeros(5, bool)
  v[list(cells)] = True
  return jnp.asarray(v)


@pytest.mark.parametrize(
  "point, visited, expected",
  [
    ((0.9, 0.0), (), 1),  # c1 at 0.1
    ((0.9, 0.0), (1,), 0),  # then c0 at 0.9
    ((0.9, 0.0), (0, 1), 2),  # c2 at 2.1 beats c3 at 2.19
    ((0.5, 0.0), (), 0),  # tie between c0 and c1: the lowest index
    ((0.5, 0.0), (0,), 1),
    ((4.0, 4.0), (0, 1, 2, 3), 4),  # the only unvisited cell
    ((0.0, 2.1), (3,), 0),  # nearest overall is visited
  ],
)
def test_nearest_unvisited(env, point, visited, expected):
  cell = jax.jit(env_lib.nearest_unvisited)(
    env, _visited(*visited), jnp.asarray(point, jnp.float32)
  )
  assert int(cell) == expected


def test_nearest_unvisited_skip_nearest(env):
  # Release quirk: the overall nearest (c1) is skipped even though unvisited.
  cell = env_lib.nearest_unvisited(env, _visited(), jnp.asarray([0.9, 0.0]), skip_nearest=True)
  assert int(cell) == 0


def test_random_unvisited_and_distinct(env):
  keys = jax.random.split(jax.random.PRNGKey(0), 200)
  draw = jax.jit(jax.vmap(env_lib.random_unvisited, in_axes=(0, None)))
  cells = np.asarray(draw(keys, _visited(0, 2, 4)))
  assert set(cells.tolist()) == {1, 3}  # only unvisited cells, both drawn
  # All but one visited: the 8 rejection tries usually fail, the exact fallback runs.
  cells = np.asarray(draw(keys, _visited(0, 1, 2, 3)))
  assert set(cells.tolist()) == {4}
  d = np.asarray(
    jax.jit(env_lib.random_distinct, static_argnums=2)(jax.random.PRNGKey(1), _visited(2), 4)
  )
  assert sorted(d.tolist()) == [0, 1, 3, 4]


def _query_all(env, budget, cells):
  def step(state, cell):
    return env_lib.query(
      env, state, cell, env_lib.budget_active(state, budget) & ~state.visited[cell]
    )

  return jax.lax.scan(step, env_lib.init_state(env), jnp.asarray(cells, jnp.int32))


def test_time_budget_stop_and_trace(env):
  # Time budget 55 s: 40 (c3) -> 50 (+c0) -> 70 (+c1, crosses: still made) -> stop.
  budget = env_lib.Budget(max_queries=5, max_cost=55.0)
  state, trace = jax.jit(_query_all, static_argnums=1)(env, budget, [3, 0, 1, 2, 4])
  np.testing.assert_array_equal(trace.mask, [True, True, True, False, False])
  np.testing.assert_array_equal(trace.cell, [3, 0, 1, -1, -1])
  np.testing.assert_array_equal(trace.num_queries, [1, 2, 3, 3, 3])
  np.testing.assert_allclose(trace.cost, [40, 50, 70, 70, 70])
  np.testing.assert_allclose(trace.best_valid, [0.9] * 5)
  np.testing.assert_allclose(trace.best_test, [0.91] * 5)
  np.testing.assert_allclose(trace.reward, [0.9, 0.5, 0.7, np.nan, np.nan])
  np.testing.assert_array_equal(state.visited, [True, True, False, True, False])
  assert int(state.best_cell) == 3
  # The static bound on the queries a 55 s budget allows: 10 + 20 < 55, + 30 crosses.
  assert env_lib.max_queries_for_cost(COST, 55.0) == 3
  assert env_lib.max_queries_for_cost(COST, 60.0) == 3  # 10 + 20 + 30 = 60 is not below 60: stop
  assert env_lib.max_queries_for_cost(COST, 61.0) == 4
  assert env_lib.max_queries_for_cost(COST, 1e9) == 5


def test_query_budget_and_best_so_far(env):
  budget = env_lib.Budget(max_queries=3)
  _, trace = _query_all(env, budget, [0, 2, 1, 3, 4])
  np.testing.assert_array_equal(trace.mask, [True, True, True, False, False])
  np.testing.assert_allclose(trace.best_valid, [0.5, 0.6, 0.7, 0.7, 0.7])
  np.testing.assert_allclose(trace.best_test, [0.51, 0.61, 0.71, 0.71, 0.71])
  np.testing.assert_allclose(trace.cost, [10, 40, 60, 60, 60])
  # Summaries read the same trace: after 2 queries, after the last one, at 45 s.
  t = jax.tree.map(lambda a: a[None], trace)
  np.testing.assert_allclose(runner.value_at_queries(t, 2), [0.61])
  np.testing.assert_allclose(runner.value_at_queries(t, 10), [0.71])
  np.testing.assert_allclose(runner.value_at_cost(t, 45.0), [0.61])
  np.testing.assert_allclose(runner.value_at_cost(t, 5.0), [np.nan])


def test_revisit_is_not_a_query(env):
  _, trace = _query_all(env, env_lib.Budget(5), [1, 1, 4])
  np.testing.assert_array_equal(trace.mask, [True, False, True])
  np.testing.assert_array_equal(trace.num_queries, [1, 1, 2])


def test_random_search_visits_every_cell_once(env):
  run = runner.make_search("rs", None, env, env_lib.Budget(7))
  trace = jax.jit(run)(jax.random.PRNGKey(3))
  np.testing.assert_array_equal(trace.mask, [True] * 5 + [False] * 2)
  assert sorted(np.asarray(trace.cell[:5]).tolist()) == [0, 1, 2, 3, 4]
  np.testing.assert_allclose(trace.best_valid[-1], 0.9)
  np.testing.assert_allclose(trace.cost[-1], COST.sum())


def test_make_env_checks():
  with pytest.raises(ValueError, match="embeddings"):
    env_lib.make_env(REWARD, embeddings=np.zeros((4, 2)))
  with pytest.raises(ValueError, match="NaN costs"):
    env_lib.check_budget(env_lib.Budget(5, 100.0), np.full(5, np.nan))
  nan_env = env_lib.make_env(np.array([0.1, np.nan, 0.3]))
  np.testing.assert_array_equal(env_lib.init_state(nan_env).visited, [False, True, False])


def test_match_embeddings():
  emb = np.arange(8, dtype=np.float32).reshape(4, 2)
  out = runner.match_embeddings(np.array(["c", "a"]), np.array(["a", "b", "c", "d"]), emb)
  np.testing.assert_array_equal(out, emb[[2, 0]])
  with pytest.raises(ValueError, match="1 of 2 table cells have no embedding"):
    runner.match_embeddings(np.array(["c", "z"]), np.array(["a", "b", "c", "d"]), emb)
