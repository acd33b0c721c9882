"""arch2vec-GD (`search/gd.py`): acquisition gradients, the mapping back to cells, the compiled
search against a seed loop and an eager ask/tell loop, no retrace, the decoder mapping on the
shipped NB201 encoder, and the launcher path.

Tiny tables (`tiny_search`) and tiny configs: compiles dominate.
"""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import repo_scripts
from absl import flags
from absl.testing import flagsaver
from tiny_search import N, make_table

from arch2vec_jax import embed
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import ask_tell, gd, runner
from arch2vec_jax.search import env as env_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERIES = 10
CONFIG = gd.GDConfig(
  num_init=3, hidden_dim=8, num_epochs=3, num_starts=4, num_incumbents=2, num_steps=3
)


@pytest.fixture(scope="module")
def table():
  env, _ = make_table()
  return env


@pytest.fixture(scope="module")
def surrogate(table):
  """A 2-member ensemble fitted on 12 cells of the tiny table, and the data it saw."""
  rows = 16
  cells = np.arange(12)
  x = jnp.zeros((rows, table.embeddings.shape[1])).at[:12].set(table.embeddings[cells])
  y = jnp.zeros((rows,)).at[:12].set(table.reward[cells])
  mask = jnp.arange(rows) < 12
  config = gd.GDConfig(hidden_dim=8, num_epochs=5, ensemble=2)
  sur = gd.fit_ensemble(jax.random.PRNGKey(0), config, x, y, mask, jnp.int32(12))
  return sur, x, y, mask


@pytest.mark.parametrize("acq", gd.ACQUISITIONS)
def test_acquisition_gradient_matches_finite_differences(surrogate, table, acq):
  sur, _, y, _ = surrogate
  config = gd.GDConfig(hidden_dim=8, ensemble=2, acquisition=acq)
  best = jnp.max(y)
  z = np.asarray(table.embeddings[40], np.float64) + 0.1
  with jax.enable_x64(True):
    sur64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), sur)
    fn = lambda v: gd.acquisition(sur64, v[None], jnp.float64(best), config)[0]
    g = np.asarray(jax.grad(fn)(jnp.asarray(z)))
    eps = 1e-6
    fd = np.array(
      [
        (fn(jnp.asarray(z + eps * e)) - fn(jnp.asarray(z - eps * e))) / (2 * eps)
        for e in np.eye(len(z))
      ]
    )
  assert np.all(np.isfinite(g)) and np.linalg.norm(g) > 0
  np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-8)
  # And in float32, as the search runs it: finite, and agrees to float32 rounding.
  g32 = np.asarray(
    jax.grad(lambda v: gd.acquisition(sur, v[None], best, config)[0])(jnp.asarray(z, jnp.float32))
  )
  assert np.all(np.isfinite(g32))
  np.testing.assert_allclose(g32, g, rtol=2e-2, atol=1e-3 * np.abs(g).max())


def test_ascent_increases_the_acquisition(surrogate):
  sur, x, y, _mask = surrogate
  config = gd.GDConfig(hidden_dim=8, ensemble=2, acquisition="mean", num_steps=10, step_size=0.05)
  mu, sd = jnp.mean(x[:12], 0), jnp.std(x[:12], 0)
  z0 = x[:4]
  _z, a = gd.ascend(sur, z0, mu, sd, jnp.max(y), config)
  a0 = gd.acquisition(sur, z0, jnp.max(y), config)
  assert np.all(np.asarray(a) >= np.asarray(a0) - 1e-6) and np.any(np.asarray(a) > np.asarray(a0))
  radius = gd.GDConfig(
    hidden_dim=8, ensemble=2, acquisition="mean", num_steps=10, step_size=1.0, radius=0.5
  )
  zr, _ = gd.ascend(sur, z0, mu, sd, jnp.max(y), radius)
  assert np.all(
    np.linalg.norm((np.asarray(zr) - np.asarray(z0)) / np.asarray(sd), axis=1) <= 0.5 + 1e-5
  )


def test_map_point_never_returns_a_visited_or_unavailable_cell(table):
  rng = np.random.default_rng(0)
  available = rng.random(N) > 0.2
  cand = ask_tell.make_candidates(np.asarray(table.embeddings), available)
  lookups = {
    "invalid": -1,
    "visited": 0,
    "unavailable": int(np.flatnonzero(~available)[0]),
    "new": None,
  }
  for trial in range(20):
    visited = jnp.asarray(~available | (rng.random(N) > 0.5)).at[0].set(True)
    z = jnp.asarray(rng.normal(size=table.embeddings.shape[1]), jnp.float32)
    cell, _, _ = gd.map_point(cand, visited, z, jnp.int32(3), None)
    assert not visited[cell]
    for what, row in lookups.items():
      target = int(np.flatnonzero(~np.asarray(visited))[trial % 3]) if row is None else row
      dec = gd.TableDecoder(
        jnp.zeros((N, 2, table.embeddings.shape[1])), lambda _, r=target: jnp.int32(r)
      )
      cell, valid, new = gd.map_point(cand, visited, z, jnp.int32(3), dec)
      assert not visited[cell] and available[int(cell)], what
      assert bool(new) == (what == "new") and bool(valid) == (what in ("new", "visited"))
      if what == "new":
        assert int(cell) == target


def _masked_table():
  env, _ = make_table()
  reward = np.asarray(env.reward).copy()
  reward[::7] = np.nan  # cells that may not be queried
  return env_lib.make_env(
    reward, np.asarray(env.report), np.asarray(env.cost), np.asarray(env.embeddings)
  )


@pytest.fixture(scope="module")
def runs():
  """The compiled GD on a table with unavailable cells: (env, counted run, traces twice, loop, keys)."""
  env = _masked_table()
  run = gd.make_gd(CONFIG, env, env_lib.Budget(QUERIES))
  counted = chex.assert_max_traces(run, n=1)
  keys = jax.random.split(jax.random.PRNGKey(3), 3)
  first = runner.run_seeds(counted, keys)
  second = runner.run_seeds(counted, keys)
  loop = runner.run_seeds_loop(run, keys)
  return env, first, second, loop, keys


def _equal(a, b):
  for name, x, y in zip(env_lib.Trace._fields, a, b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)


def test_vmapped_equals_loop_and_no_retrace(runs):
  _, first, second, loop, _ = runs
  _equal(first, loop)
  _equal(first, second)  # and `counted` was traced once


def test_end_to_end_trace_is_a_valid_search(runs):
  env, trace, _, _, _ = runs
  reward, available = np.asarray(env.reward), np.asarray(env.available)
  for s in range(3):
    cells = np.asarray(trace.cell[s])
    assert trace.mask[s].all() and len(set(cells.tolist())) == QUERIES
    assert available[cells].all()  # never an unavailable cell
    np.testing.assert_allclose(trace.best_valid[s], np.maximum.accumulate(reward[cells]), rtol=1e-6)
    np.testing.assert_array_equal(trace.num_queries[s], np.arange(1, QUERIES + 1))


def test_stats_run_equals_table_search(runs):
  env, first, _, _, keys = runs
  trace, stats = runner.run_seeds(gd.run_with_stats(CONFIG, env, env_lib.Budget(QUERIES)), keys)
  _equal(first, trace)
  np.testing.assert_array_equal(stats.mapped, QUERIES - CONFIG.num_init)
  np.testing.assert_array_equal(stats.decoded_valid, 0)


def test_eager_ask_tell_equals_compiled(runs):
  env, first, _, _, keys = runs
  reward = np.asarray(env.reward)
  budget = env_lib.Budget(QUERIES)
  search = ask_tell.jit_search(runner.make_ask_tell("gd", CONFIG, 1, budget))
  for s in range(2):
    state = search.init(keys[s], ask_tell.candidates_from_env(env))
    cells = []
    while ask_tell.within_budget(state, budget):
      c, state = search.ask(state)
      cells.append(int(c[0]))
      state = search.tell(state, c, [reward[int(c[0])]])
    np.testing.assert_array_equal(cells, np.asarray(first.cell[s]))
    assert int(state.progress.best_cell) == cells[int(np.argmax(reward[cells]))]


def test_batched_asks_give_distinct_cells(table):
  config = gd.GDConfig(
    num_init=4, hidden_dim=8, num_epochs=3, num_starts=4, num_incumbents=2, num_steps=2, top_k=3
  )
  trace = runner.run_seeds(
    gd.make_gd(config, table, env_lib.Budget(13)), jax.random.split(jax.random.PRNGKey(0), 2)
  )
  for s in range(2):
    assert len(set(np.asarray(trace.cell[s]).tolist())) == 13 and trace.mask[s].all()


def test_config_errors():
  with pytest.raises(ValueError, match="acquisition"):
    gd.GDConfig(acquisition="pi")
  with pytest.raises(ValueError, match="num_starts"):
    gd.GDConfig(num_starts=2, top_k=3, num_incumbents=1)
  with pytest.raises(ValueError, match="TableDecoder"):
    gd.gd_search(gd.GDConfig(mapping="decoder"), env_lib.Budget(10))


def test_nb201_decoder_reconstructs_table_cells(shared_data):
  from arch2vec_jax import pretrained

  table = csv_data.read_nb201_csv(
    _head(shared_data / "nb201_accuracies.csv", 64), "cifar10", allow_subset=True
  )
  enc = pretrained.load("nb201")
  dec = gd.nb201_decoder(enc, table.ids, chunk=32)
  assert dec.node_latents.shape == (64, 8, enc.latent)
  # The node latents' mean is the cell's embedding (what the search moves).
  np.testing.assert_allclose(
    np.asarray(dec.node_latents).mean(1), enc.embed(list(table.ids)), rtol=1e-4, atol=1e-5
  )
  rows = np.asarray(jax.vmap(dec.decode)(dec.node_latents))
  assert np.mean(rows == np.arange(64)) > 0.9  # the decoder reconstructs (almost) every cell
  assert int(dec.decode(jnp.zeros((8, enc.latent)))) == -1  # all-equal nodes: not a cell


_TMP = {}


def _head(src, rows):
  import tempfile

  if src not in _TMP:
    _TMP[src] = tempfile.mkdtemp()
  dst = os.path.join(_TMP[src], f"head{rows}.csv")
  with open(src) as f, open(dst, "w") as g:
    g.writelines(next(f) for _ in range(rows + 1))
  return dst


def test_launcher_runs_gd(shared_data, tmp_path):
  launcher = repo_scripts.load("launch/search.py")  # defines the flags once per session
  csv = _head(shared_data / "nb201_accuracies.csv", 200)
  table = csv_data.read_nb201_csv(csv, "cifar10", allow_subset=True)
  emb = np.random.default_rng(0).normal(size=(len(table), 6)).astype(np.float32)
  embed.save_embeddings(tmp_path / "emb.npz", emb, table.ids)
  argv = [
    "search.py",
    "--space=nb201",
    f"--benchmark={csv}",
    "--dataset=cifar10",
    "--method=gd,rs",
    "--seeds=2",
    "--budget=8",
    f"--embeddings={tmp_path / 'emb.npz'}",
    f"--workdir={tmp_path / 'out'}",
    "--gd_num_init=3",
    "--gd_hidden_dim=8",
    "--gd_num_epochs=2",
    "--gd_num_starts=3",
    "--gd_num_incumbents=1",
    "--gd_acquisition=ucb",
    "--gd_sequential_seeds=false",
  ]
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    launcher.main(["search.py"])
  summary = json.loads((tmp_path / "out" / "summary.json").read_text())
  cfg = summary["methods"]["gd"]["config"]
  assert cfg["acquisition"] == "ucb" and cfg["hidden_dim"] == 8 and cfg["sequential_seeds"] is False
  assert len(summary["problem"]["embeddings_sha256"]) == 64
  trace, _ = __import__("arch2vec_jax.search.experiment", fromlist=["x"]).load_trace(
    tmp_path / "out/traces/gd.npz"
  )
  assert trace.mask.all() and all(len(set(c.tolist())) == 8 for c in trace.cell)


def test_fit_on_fewer_padded_rows_is_the_same_fit(table):
  """The bucketed fit (the told rows plus fewer padding rows) predicts as the fit on the whole buffer."""
  config = gd.GDConfig(hidden_dim=4, num_epochs=20)
  cells = np.arange(7)
  x = jnp.zeros((40, table.embeddings.shape[1])).at[:7].set(table.embeddings[cells])
  y = jnp.zeros((40,)).at[:7].set(table.reward[cells])
  full = gd.fit_ensemble(jax.random.PRNGKey(1), config, x, y, jnp.arange(40) < 7, jnp.int32(7))
  part = gd.fit_ensemble(
    jax.random.PRNGKey(1), config, x[:8], y[:8], jnp.arange(8) < 7, jnp.int32(7)
  )
  z = table.embeddings[20:30]
  for a, b in zip(gd.predict_ensemble(full, z, False), gd.predict_ensemble(part, z, False)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


def test_bucketed_long_budget_runs(table):
  """A budget of 4x the hidden width: the fit switches buckets (8, 16, 32 rows); a valid search."""
  config = gd.GDConfig(
    num_init=3, hidden_dim=4, num_epochs=2, num_starts=2, num_incumbents=1, num_steps=1, top_k=2
  )
  budget = env_lib.Budget(40)
  trace = runner.run_seeds(
    gd.make_gd(config, table, budget), jax.random.split(jax.random.PRNGKey(5), 2)
  )
  for s in range(2):
    assert trace.mask[s].all() and len(set(np.asarray(trace.cell[s]).tolist())) == 40


def test_time_budget_stops_the_search_and_its_fits(table):
  """A time budget: the queries stop where the cost crosses it, and no fit runs past it."""
  budget = env_lib.Budget(30, max_cost=100.0)
  keys = jax.random.split(jax.random.PRNGKey(2), 2)
  trace, stats = runner.run_seeds(gd.run_with_stats(CONFIG, table, budget), keys)
  cost = np.asarray(table.cost)
  for s in range(2):
    mask = np.asarray(trace.mask[s])
    made = int(mask.sum())
    assert 0 < made < 30 and mask[:made].all() and not mask[made:].any()
    cells = np.asarray(trace.cell[s])[:made]
    assert len(set(cells.tolist())) == made
    assert np.sum(cost[cells[:-1]]) < 100.0 <= np.sum(cost[cells]) + 1e-3
    assert (
      int(stats.mapped[s]) == made - CONFIG.num_init
    )  # one fit per query after the initial design
