"""The release's behaviours as flags (issue 17, item 5).

BO's release acquisition against the release's float32 formula computed here in
numpy, revisiting (a repeated cell queried and paid twice), REINFORCE's
baselines, and launch/search.py's flags reaching the configs (defaults unchanged).
"""

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import repo_scripts
import scipy.special
from absl import flags
from absl.testing import flagsaver
from tiny_search import CONFIGS, make_table

from arch2vec_jax import embed
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import ask_tell, dngo, reinforce, runner
from arch2vec_jax.search import env as env_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _release_ei_numpy(mean, var, target):
  """The release's EI step by step in float32 numpy (torch's Normal(0, 1) cdf / log_prob)."""
  mean, var = np.float32(mean), np.float32(var)
  u = (mean - np.float32(target)) / var
  # erf in float64, rounded to float32: the correctly rounded float32 erf.
  erf = scipy.special.erf((u / np.float32(math.sqrt(2.0))).astype(np.float64)).astype(np.float32)
  cdf = np.float32(0.5) * (np.float32(1.0) + erf)
  pdf = np.exp(-(u * u) / np.float32(2.0) - np.float32(math.log(math.sqrt(2.0 * math.pi))))
  return (var * (pdf + u * cdf)).astype(np.float32), u


def test_release_acquisition_is_the_release_float32_formula():
  mean = np.array([0.93, 0.95, 0.99, 1.0, 1.02, 0.90, 0.70, 0.94, 0.999], np.float32)
  var = np.array([0.05, 0.02, 0.01, 0.03, 0.02, 1e-3, 1e-3, 4e-3, 1e-4], np.float32)
  want, u = _release_ei_numpy(mean, var, 1.0)
  got = np.asarray(dngo.release_expected_improvement(jnp.asarray(mean), jnp.asarray(var), 1.0))
  assert got.dtype == np.float32
  # Equal up to the rounding of float32 erf (one ulp of the cdf, times var |u|).
  tol = var * (np.abs(u) + 1.0) * 4 * np.finfo(np.float32).eps
  np.testing.assert_array_less(np.abs(got - want), tol + 1e-30)
  near = u > -1.0  # no cancellation in pdf + u cdf: equal to float32 precision
  np.testing.assert_allclose(got[near], want[near], rtol=2e-6, atol=0)
  # Small variances against mean - target: exactly 0, as in the release (not log-EI's finite ranking).
  assert np.all(got[5:7] == 0.0) and np.all(want[5:7] == 0.0)
  # The same through BO's scoring, and not the log-EI of the default.
  scores = np.asarray(
    dngo.acquisition_scores(jnp.asarray(mean), jnp.asarray(var), jnp.float32(0.9), "release", 1.0)
  )
  np.testing.assert_array_equal(scores, got)
  log_ei = np.asarray(
    dngo.acquisition_scores(jnp.asarray(mean), jnp.asarray(var), jnp.float32(0.9), "ei", 1.0)
  )
  assert np.all(np.isfinite(log_ei)) and not np.allclose(log_ei, got)


def test_release_target_and_scale():
  """Scale = the variance (not its square root), target fixed (the incumbent is unused)."""
  mean, var = np.float32([1.01]), np.float32([0.04])
  for target in (0.95, 1.0):
    want, _ = _release_ei_numpy(mean, var, target)
    got = dngo.acquisition_scores(
      jnp.asarray(mean), jnp.asarray(var), jnp.float32(0.5), "release", target
    )
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
  with_std, _ = _release_ei_numpy(mean, np.sqrt(var), 1.0)
  assert not np.allclose(
    np.asarray(dngo.release_expected_improvement(mean, var, 1.0)), with_std, rtol=1e-3
  )


def _surrogate(env, config, cells):
  """A surrogate fitted on these cells (the search's code)."""
  rows = len(cells)
  x = env.embeddings[cells]
  y = env.reward[cells]
  net = dngo.init_mlp(jax.random.PRNGKey(1), x.shape[1], config.hidden_dim)
  sur, _ = dngo.fit_surrogate(jax.random.PRNGKey(2), config, x, y, jnp.ones(rows, bool), rows, net)
  return sur


@pytest.mark.parametrize("target", [1.0, 0.905])
def test_bo_release_picks_the_largest_release_ei_lowest_index_on_ties(target):
  """The pruned sweep with the release's EI picks what a numpy argmax over the formula picks."""
  env, _ = make_table()
  config = dataclasses.replace(
    CONFIGS["bo"][0], acquisition="release", target=target, top_k=2, num_candidates=4
  )
  cells = np.arange(0, 40, 3)
  sur = _surrogate(env, config, cells)
  mean, var = dngo.blr.predict(sur.post, sur.features(env.embeddings, False))
  var = np.asarray(var) * float(sur.y_sd) ** 2
  want, u = _release_ei_numpy(np.asarray(mean) * float(sur.y_sd) + float(sur.y_mu), var, target)
  tol = (
    var * (np.abs(u) + 1.0) * 8 * np.finfo(np.float32).eps + 1e-30
  )  # float32 erf rounding (cancellation)
  visited = np.zeros(env.num_cells, bool)
  visited[cells] = True
  picked, values, _ = dngo.acquire(
    sur, env.embeddings, jnp.asarray(visited), jnp.float32(0.0), 2, config
  )
  picked = np.asarray(picked)
  masked = np.where(visited, -np.inf, want)
  order = np.lexsort((np.arange(len(masked)), -masked))  # largest first, ties: lowest index
  assert not visited[picked].any() and len(set(picked.tolist())) == 2
  np.testing.assert_array_less(
    np.abs(np.asarray(values) - want[picked]), tol[picked]
  )  # the formula's values
  np.testing.assert_array_less(
    masked[order[:2]] - tol[order[:2]], masked[picked] + tol[picked]
  )  # the largest
  gap = masked[order[:3]][:-1] - masked[order[1:3]]
  if np.all(gap > 2 * tol[order[:2]]):  # well separated: exactly the same cells, in order
    assert picked.tolist() == order[:2].tolist()
  if target == 1.0:  # the release's situation: most cells exactly 0
    assert np.mean(want == 0.0) > 0.3


def test_bo_release_ties_at_zero_go_to_the_lowest_index():
  """All EI exactly 0 (a target far above every prediction): the lowest unvisited indices, pruned or not."""
  env, _ = make_table()
  base = dataclasses.replace(CONFIGS["bo"][0], acquisition="release", target=50.0, top_k=2)
  cells = np.array([0, 2, 5, 7, 9, 11])
  sur = _surrogate(env, base, cells)
  visited = np.zeros(env.num_cells, bool)
  visited[cells] = True
  for m in (0, 4):
    picked, values, _ = dngo.acquire(
      sur,
      env.embeddings,
      jnp.asarray(visited),
      jnp.float32(0.0),
      2,
      dataclasses.replace(base, num_candidates=m),
    )
    assert np.asarray(values).tolist() == [0.0, 0.0]
    assert np.asarray(picked).tolist() == [1, 3]


def _run(config, queries, key=0):
  env, _ = make_table()
  return env, jax.jit(dngo.make_bo(config, env, env_lib.Budget(queries)))(jax.random.PRNGKey(key))


def test_bo_revisit_queries_and_pays_a_cell_again():
  """With revisit a pick may repeat a cell; each query of it is charged (trace and ask/tell progress)."""
  config = dataclasses.replace(
    CONFIGS["bo"][0], acquisition="release", target=50.0, revisit=True, num_init=3
  )
  env, trace = _run(config, 12)
  cells = np.asarray(trace.cell)
  cost = np.asarray(env.cost)
  assert np.asarray(trace.mask).all()
  assert len(set(cells[:3].tolist())) == 3  # the initial design stays distinct
  assert len(set(cells.tolist())) < len(cells)  # EI 0 everywhere: the lowest index, again and again
  np.testing.assert_allclose(np.asarray(trace.cost), np.cumsum(cost[cells]), rtol=1e-5)
  np.testing.assert_array_equal(np.asarray(trace.num_queries), np.arange(1, 13))
  # Without revisit the same search never repeats a cell.
  _, plain = _run(dataclasses.replace(config, revisit=False), 12)
  assert len(set(np.asarray(plain.cell).tolist())) == 12
  # The ask/tell state counts every told value (the buffer holds the repeats as data).
  budget = env_lib.Budget(12)
  search = ask_tell.jit_search(dngo.bo_search(config, budget))
  state = search.init(jax.random.PRNGKey(0), ask_tell.candidates_from_env(env))
  told = []
  while bool(ask_tell.within_budget(state, budget)):
    c, state = search.ask(state)
    assert int(c[0]) >= 0
    told.append(int(c[0]))
    state = search.tell(state, c, np.asarray(env.reward)[np.asarray(c)], cost[np.asarray(c)])
  assert told == cells.tolist()
  assert int(state.progress.num_told) == 12
  np.testing.assert_allclose(float(state.progress.total_cost), cost[cells].sum(), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(state.y), np.asarray(env.reward)[cells])


def test_env_query_charges_a_repeated_cell_again():
  env, _ = make_table()
  state = env_lib.init_state(env)
  state, _ = env_lib.query(env, state, jnp.int32(4), jnp.bool_(True))
  state, row = env_lib.query(env, state, jnp.int32(4), jnp.bool_(True))
  assert int(state.num_queries) == 2 and int(row.cell) == 4 and bool(row.mask)
  np.testing.assert_allclose(float(state.total_cost), 2 * float(env.cost[4]), rtol=1e-6)


def test_bo_release_flags_vmapped_equal_loop():
  config = dataclasses.replace(
    CONFIGS["bo"][0], acquisition="release", pybnn_mll=True, revisit=True
  )
  env, _ = make_table()
  run = dngo.make_bo(config, env, env_lib.Budget(10))
  keys = jax.random.split(jax.random.PRNGKey(5), 3)
  a, b = runner.run_seeds(run, keys), runner.run_seeds_loop(run, keys)
  np.testing.assert_array_equal(np.asarray(a.cell), np.asarray(b.cell))
  np.testing.assert_allclose(np.asarray(a.best_test), np.asarray(b.best_test))


def test_reinforce_mean_baseline_is_the_mean_of_the_rewards_told():
  env, _ = make_table()
  config = dataclasses.replace(CONFIGS["rl"][0], baseline=5.0, baseline_mode="mean")
  search = reinforce.reinforce_search(config)
  state = search.init(jax.random.PRNGKey(0), ask_tell.candidates_from_env(env))
  told = []
  for step in range(12):
    c, state = search.ask(state)
    v = np.asarray(env.reward)[np.asarray(c)]
    if step == 5:
      v = np.array([np.nan], np.float32)  # not evaluated: not in the mean
    else:
      told.append(float(v[0]))
    state = search.tell(state, c, v)
    if (step + 1) % config.episode_length == 0:
      np.testing.assert_allclose(float(state.baseline), np.mean(told), rtol=1e-6)
    elif step < config.episode_length:
      assert float(state.baseline) == 5.0  # the constant until the first episode ends
  # The constant baseline (default) never moves.
  default = reinforce.reinforce_search(CONFIGS["rl"][0])
  s = default.init(jax.random.PRNGKey(0), ask_tell.candidates_from_env(env))
  for _ in range(8):
    c, s = default.ask(s)
    s = default.tell(s, c, np.asarray(env.reward)[np.asarray(c)])
  assert float(s.baseline) == np.float32(CONFIGS["rl"][0].baseline)
  with pytest.raises(ValueError, match="baseline_mode"):
    reinforce.ReinforceConfig(baseline_mode="median")


def test_reinforce_mean_baseline_changes_the_search_and_vmaps():
  env, _ = make_table()
  config = dataclasses.replace(CONFIGS["rl"][0], baseline_mode="mean", skip_nearest=True)
  run = reinforce.make_reinforce(config, env, env_lib.Budget(12))
  keys = jax.random.split(jax.random.PRNGKey(1), 3)
  a, b = runner.run_seeds(run, keys), runner.run_seeds_loop(run, keys)
  np.testing.assert_array_equal(np.asarray(a.cell), np.asarray(b.cell))
  const = runner.run_seeds(
    reinforce.make_reinforce(CONFIGS["rl"][0], env, env_lib.Budget(12)), keys
  )
  assert not np.array_equal(np.asarray(a.cell), np.asarray(const.cell))


# ----- launch/search.py -----


def _launcher():
  return repo_scripts.load("launch/search.py")  # the flags are defined once per session


def _parse(launcher, *extra):
  flags.FLAGS.unparse_flags()
  flags.FLAGS(["search.py", "--benchmark=x", "--workdir=y", *extra])
  return launcher.bo_config("nb201"), launcher.rl_config("nb201")


def test_flags_reach_the_configs_and_defaults_are_unchanged():
  launcher = _launcher()
  with flagsaver.flagsaver():
    bo, rl = _parse(launcher)
    assert bo == runner.default_config("bo", "nb201") and rl == runner.default_config("rl", "nb201")
    bo, rl = _parse(
      launcher,
      "--bo_acquisition=release",
      "--bo_pybnn_mll",
      "--bo_revisit",
      "--rl_skip_nearest",
      "--rl_baseline=release",
    )
    assert (bo.acquisition, bo.pybnn_mll, bo.revisit, bo.target) == ("release", True, True, 1.0)
    assert rl.skip_nearest and rl.baseline_mode == "constant" and rl.baseline == 0.4
    _, rl = _parse(launcher, "--rl_baseline=mean")
    assert rl.baseline_mode == "mean"
    bo, rl = _parse(launcher, "--rl_baseline=0.3", "--bo_target=0.97")
    assert rl.baseline == 0.3 and rl.baseline_mode == "constant" and bo.target == 0.97
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["search.py", "--benchmark=x", "--workdir=y"])
    assert (
      launcher.bo_config("nb101").target == 0.95 and launcher.rl_config("nb101").baseline == 0.95
    )
    with pytest.raises(ValueError, match="rl_baseline"):
      _parse(launcher, "--rl_baseline=high")


def test_every_config_field_is_a_flag_over_the_spaces_config():
  launcher = _launcher()
  for config, prefix in ((dngo.BOConfig(), "bo_"), (reinforce.ReinforceConfig(), "rl_")):
    for field in dataclasses.fields(config):
      name = "rl_baseline" if field.name == "baseline_mode" else prefix + field.name
      assert name in flags.FLAGS, name  # RL's baseline and its mode: the one --rl_baseline
  with flagsaver.flagsaver():
    bo, rl = _parse(launcher, "--bo_num_init=3", "--bo_sequential_seeds=false", "--rl_hidden_dim=8")
    want_bo = dataclasses.replace(
      runner.default_config("bo", "nb201"), num_init=3, sequential_seeds=False
    )
    assert bo == want_bo
    assert rl == dataclasses.replace(runner.default_config("rl", "nb201"), hidden_dim=8)
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["search.py", "--benchmark=x", "--workdir=y", "--bo_top_k=2"])
    assert launcher.bo_config("nb101") == dataclasses.replace(
      runner.default_config("bo", "nb101"), top_k=2
    )  # the space's other values (target 0.95) stay
    with pytest.raises(ValueError, match="acquisition must be 'ei' or 'release'"):
      _parse(launcher, "--bo_acquisition=pi")


def test_launcher_runs_with_release_flags(shared_data, tmp_path):
  launcher = _launcher()
  csv = tmp_path / "nb201.csv"
  with open(shared_data / "nb201_accuracies.csv") as f:
    csv.write_text("".join(next(f) for _ in range(201)))
  table = csv_data.read_nb201_csv(csv, "cifar10", allow_subset=True)
  emb = np.random.default_rng(0).normal(size=(len(table), 4)).astype(np.float32)
  embed.save_embeddings(tmp_path / "emb.npz", emb, table.ids)
  argv = [
    "search.py",
    "--space=nb201",
    f"--benchmark={csv}",
    "--dataset=cifar10",
    "--method=rl,bo",
    "--seeds=2",
    "--budget=20",
    f"--embeddings={tmp_path / 'emb.npz'}",
    f"--workdir={tmp_path / 'out'}",
    "--bo_acquisition=release",
    "--bo_pybnn_mll",
    "--bo_revisit",
    "--rl_skip_nearest",
    "--rl_baseline=mean",
  ]
  with flagsaver.flagsaver():
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    launcher.main(["search.py"])
  summary = json.loads((tmp_path / "out" / "summary.json").read_text())
  bo, rl = summary["methods"]["bo"]["config"], summary["methods"]["rl"]["config"]
  assert bo["acquisition"] == "release" and bo["pybnn_mll"] and bo["revisit"]
  assert rl["skip_nearest"] and rl["baseline_mode"] == "mean"
  assert "--bo_revisit" in summary["command"]


def test_compare_runs_pairs_seeds_and_counts_repeats(shared_data, tmp_path):
  """launch/compare_runs.py on two tiny experiments: the numbers are the traces' own."""
  from arch2vec_jax.search import experiment  # pylint: disable=import-outside-toplevel

  cmp = repo_scripts.load("launch/compare_runs.py", cache=False)
  csv = tmp_path / "nb201.csv"
  with open(shared_data / "nb201_accuracies.csv") as f:
    csv.write_text("".join(next(f) for _ in range(81)))
  prob = experiment.load_problem("nb201", str(csv), "cifar10", None, ("rs",))
  rng = np.random.default_rng(0)
  env = prob.env._replace(
    embeddings=jnp.asarray(rng.normal(size=(prob.env.num_cells, 4)), jnp.float32)
  )
  env = env._replace(sq_norms=jnp.sum(env.embeddings**2, axis=1))
  prob = dataclasses.replace(prob, env=env)
  budget = experiment.make_budget(prob, 10)
  base = CONFIGS["bo"][0]
  release = dataclasses.replace(base, acquisition="release", target=50.0, revisit=True)
  for name, cfg in (("a", release), ("b", base)):
    experiment.run_experiment(
      prob, ("bo",), 3, budget, tmp_path / name, configs={"bo": cfg}, log=lambda _: None
    )
  result = cmp.compare(str(tmp_path / "a"), str(tmp_path / "b"), (5, 10))
  ta, _ = experiment.load_trace(tmp_path / "a" / "traces" / "bo.npz")
  tb, _ = experiment.load_trace(tmp_path / "b" / "traces" / "bo.npz")
  va, vb = 100 * np.asarray(ta.best_test)[:, -1], 100 * np.asarray(tb.best_test)[:, -1]
  at = result["methods"]["bo"]["at"]["10"]
  np.testing.assert_allclose(at["a"]["mean"], va.mean(), rtol=1e-6)
  np.testing.assert_allclose(at["a_minus_b"]["mean"], (va - vb).mean(), atol=1e-6)
  np.testing.assert_allclose(at["b"]["se"], vb.std(ddof=1) / np.sqrt(3), rtol=1e-6)
  rep = [10 - len(set(c.tolist())) for c in np.asarray(ta.cell)]
  assert result["methods"]["bo"]["revisits"]["a"]["repeated_queries"]["mean"] == pytest.approx(
    np.mean(rep)
  )
  assert max(rep) > 0 and result["methods"]["bo"]["revisits"]["b"]["repeated_queries"]["mean"] == 0
  assert "| bo | 10 |" in cmp.markdown(result)
  # A pair of differently named methods (e.g. srl:rl), and a budget beyond an experiment's.
  experiment.run_experiment(prob, ("rs",), 3, budget, tmp_path / "c", log=lambda _: None)
  pair = cmp.compare(str(tmp_path / "c"), str(tmp_path / "b"), (10,), pairs=[("rs", "bo")])
  tc, _ = experiment.load_trace(tmp_path / "c" / "traces" / "rs.npz")
  vc = 100 * np.asarray(tc.best_test)[:, -1]
  at = pair["methods"]["rs vs bo"]["at"]["10"]
  np.testing.assert_allclose(at["a_minus_b"]["mean"], (vc - vb).mean(), atol=1e-6)
  with pytest.raises(ValueError, match="exceed an experiment's budget"):
    cmp.compare(str(tmp_path / "c"), str(tmp_path / "b"), (11,))
  with pytest.raises(ValueError, match="pair rl:bo"):
    cmp.compare(str(tmp_path / "c"), str(tmp_path / "b"), (10,), pairs=[("rl", "bo")])
  with pytest.raises(ValueError, match="exceed an experiment's time budget"):
    cmp.compare(str(tmp_path / "c"), str(tmp_path / "b"), (10,), times=(5.0,))
  # Time budgets: at 2 s per query, 10 s buy 5 queries.
  timed = experiment.load_problem("nb201", str(csv), "cifar10", None, ("rs",), cost_per_query=2.0)
  tb_budget = experiment.make_budget(timed, time_budget=20.0)
  for name in ("t1", "t2"):
    experiment.run_experiment(timed, ("rs",), 3, tb_budget, tmp_path / name, log=lambda _: None)
  t_res = cmp.compare(str(tmp_path / "t1"), str(tmp_path / "t2"), (5,), times=(10.0,))
  t1, _ = experiment.load_trace(tmp_path / "t1" / "traces" / "rs.npz")
  at5 = 100 * runner.value_at_queries(t1, 5, "best_test")
  np.testing.assert_allclose(
    t_res["methods"]["rs"]["at"]["10 s"]["a"]["mean"], at5.mean(), rtol=1e-6
  )
  assert t_res["methods"]["rs"]["at"]["10 s"]["a_minus_b"]["mean"] == 0.0
