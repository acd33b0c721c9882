"""Supervised-search baselines (issue 17, item 2): supervised-BO and supervised-RL.

Real cells (the first 120 of ../shared/data/nb201_accuracies.csv), tiny encoders
and budgets (compiles dominate): end to end through the table search, vmapped
seeds equal a loop, eager ask/tell equals the compiled table search, the encoder
is really trained (its parameters move), and the experiment harness runs them.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import model as model_lib
from arch2vec_jax.analysis import joint
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search import ask_tell, experiment, reinforce, runner, supervised
from arch2vec_jax.search import env as env_lib

N, QUERIES = 120, 12
TINY_MODEL = model_lib.ModelConfig(hidden=8, latent=4, layers=2)
SBO = supervised.SupervisedBOConfig(
  joint=joint.JointConfig(num_epochs=3, batch_size=4, model=TINY_MODEL),
  num_init=4,
  top_k=2,
  predict_chunk=32,
)
SRL = supervised.SupervisedRLConfig(
  policy=reinforce.ReinforceConfig(hidden_dim=8, episode_length=4),
  model=TINY_MODEL,
  feature_chunk=32,
)


@pytest.fixture(scope="module")
def problem(shared_data, tmp_path_factory):
  folder = tmp_path_factory.mktemp("sup")
  csv = folder / "nb201.csv"
  with open(shared_data / "nb201_accuracies.csv") as f:
    csv.write_text("".join(next(f) for _ in range(N + 1)))
  table = csv_data.read_nb201_csv(csv, "cifar10", allow_subset=True)
  env = env_lib.make_env(table.valid_acc, table.test_acc, np.linspace(10, 20, len(table)))
  return csv, table, env, supervised.graph_candidates(table.adjacency, table.ops)


def _make(method, env, graphs, budget):
  config = SBO if method == "sbo" else SRL
  return runner.make_search(method, config, env, budget, graphs=graphs)


@pytest.mark.parametrize("method", ["sbo", "srl"])
def test_vmapped_equals_loop_and_traces_are_searches(problem, method):
  _, _, env, graphs = problem
  run = _make(method, env, graphs, env_lib.Budget(QUERIES))
  keys = jax.random.split(jax.random.PRNGKey(3), 3)
  vm, loop = runner.run_seeds(run, keys), runner.run_seeds_loop(run, keys)
  for name, a, b in zip(env_lib.Trace._fields, vm, loop):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7, err_msg=name)
  reward, report = np.asarray(env.reward), np.asarray(env.report)
  cells = np.asarray(vm.cell)
  assert np.asarray(vm.mask).all()
  for s in range(3):
    assert len(set(cells[s].tolist())) == QUERIES  # no cell twice
    np.testing.assert_allclose(np.asarray(vm.reward[s]), reward[cells[s]])
    best = np.maximum.accumulate(reward[cells[s]])
    np.testing.assert_allclose(np.asarray(vm.best_valid[s]), best)
    first = [int(np.argmax(reward[cells[s][: t + 1]])) for t in range(QUERIES)]
    np.testing.assert_allclose(np.asarray(vm.best_test[s]), report[cells[s][first]])
  assert not np.array_equal(cells[0], cells[1])


@pytest.mark.parametrize("method", ["sbo", "srl"])
def test_eager_ask_tell_equals_the_table_search(problem, method):
  _, _, env, graphs = problem
  budget = env_lib.Budget(QUERIES)
  trace = jax.jit(_make(method, env, graphs, budget))(jax.random.PRNGKey(0))
  search = (
    supervised.supervised_bo_search(SBO, budget)
    if method == "sbo"
    else supervised.supervised_rl_search(SRL)
  )
  search = ask_tell.jit_search(search)
  state = search.init(jax.random.PRNGKey(0), graphs)
  cells = []
  while bool(ask_tell.within_budget(state, budget)):
    c, state = search.ask(state)
    cells += np.asarray(c).tolist()
    state = search.tell(
      state, c, np.asarray(env.reward)[np.asarray(c)], np.asarray(env.cost)[np.asarray(c)]
    )
  assert cells == np.asarray(trace.cell).tolist()
  np.testing.assert_allclose(float(state.progress.best_value), float(trace.best_valid[-1]))


def test_supervised_rl_trains_the_encoder_and_policy(problem):
  _, _, env, graphs = problem
  search = supervised.supervised_rl_search(SRL)
  state = search.init(jax.random.PRNGKey(1), graphs)
  enc0, pol0 = state.encoder, state.policy
  f0 = None
  for step in range(SRL.policy.episode_length + 1):
    c, state = search.ask(state)
    if step == 0:
      f0 = np.asarray(state.features)
      # The episode's space is the GIN's pooled mu of every cell.
      net = supervised.GINEncoder(graphs.ops.shape[2], TINY_MODEL)
      want = net.apply(
        enc0, model_lib.cells_to_graphs(graphs.adjacency, graphs.ops, graphs.n_node), train=False
      )
      np.testing.assert_allclose(f0, np.asarray(want), rtol=1e-5, atol=1e-6)
    state = search.tell(state, c, np.asarray(env.reward)[np.asarray(c)])
  moved = jax.tree.map(
    lambda a, b: float(jnp.max(jnp.abs(a - b))), enc0["params"], state.encoder["params"]
  )
  assert max(jax.tree.leaves(moved)) > 0  # the REINFORCE gradient reached the GIN
  assert (
    max(
      jax.tree.leaves(jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), pol0, state.policy))
    )
    > 0
  )
  assert not np.allclose(np.asarray(state.features), f0)  # the next episode's space is re-encoded


def test_supervised_bo_fits_on_the_queried_cells_only(problem):
  """The fit reads only the told rows: changing an untold cell's accuracy changes nothing."""
  _, _, env, graphs = problem
  budget = env_lib.Budget(QUERIES)
  a = jax.jit(_make("sbo", env, graphs, budget))(jax.random.PRNGKey(2))
  cells = set(np.asarray(a.cell).tolist())
  untouched = [c for c in range(N) if c not in cells][:30]
  reward = np.asarray(env.reward).copy()
  reward[untouched] = 0.999  # would be the best cells if the table leaked into the method
  env2 = env._replace(reward=jnp.asarray(reward))
  b = jax.jit(_make("sbo", env2, graphs, budget))(jax.random.PRNGKey(2))
  assert np.asarray(b.cell).tolist() == np.asarray(a.cell).tolist()


def test_harness_runs_the_supervised_methods(problem, tmp_path):
  csv, _, _, _ = problem
  prob = experiment.load_problem("nb201", str(csv), "cifar10", None, ("sbo", "srl"))
  budget = experiment.make_budget(prob, QUERIES)
  summary = experiment.run_experiment(
    prob, ("sbo", "srl"), 2, budget, tmp_path, configs={"sbo": SBO, "srl": SRL}, log=lambda _: None
  )
  assert set(summary["methods"]) == {"sbo", "srl"}
  assert summary["methods"]["sbo"]["config"]["joint"]["num_epochs"] == 3
  trace, _ = experiment.load_trace(tmp_path / "traces" / "srl.npz")
  assert np.asarray(trace.mask).all()
  with pytest.raises(ValueError, match="graphs"):
    runner.make_search("sbo", SBO, prob.env, budget)


def test_config_checks():
  with pytest.raises(ValueError):
    supervised.SupervisedBOConfig(num_init=1)
  with pytest.raises(ValueError, match="fixed baseline"):
    supervised.SupervisedRLConfig(policy=reinforce.ReinforceConfig(baseline_mode="mean"))
  assert runner.default_config("srl", "nb101").policy.baseline == 0.95
  assert runner.default_config("sbo", "nb101").top_k == 5
  assert dataclasses.asdict(runner.default_config("sbo", "nb201"))["joint"]["learning_rate"] == 0.01
