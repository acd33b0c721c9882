"""The JAX model equals an independent PyTorch implementation (launch/torch_reference.py) on the same weights.

Needs torch (optional, not installed by the test extra): skipped without it.
Compares the release's configuration (BatchNorm over every node slot): eval-mode
outputs, train-mode batch statistics, the loss and every parameter's gradient.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import repo_scripts

torch = pytest.importorskip("torch")

from arch2vec_jax import model as model_lib
from arch2vec_jax.spaces import nb101, nb201

ref = repo_scripts.load("launch/torch_reference.py", "torch_reference", cache=False)

CONFIG = model_lib.ModelConfig(bn_include_padding=True, dropout=0.0)


def _linear(layer, p):
  return {layer.weight: p["kernel"].T, layer.bias: p["bias"]}


def _bn(layer, p, stats):
  layer.running_mean.copy_(torch.tensor(np.asarray(stats["mean"])))
  layer.running_var.copy_(torch.tensor(np.asarray(stats["var"])))
  return {layer.weight: p["scale"], layer.bias: p["bias"]}


def _torch_twin(params, batch_stats, d):
  """The torch model holding the Flax variables; returns (model, {torch param: flax path})."""
  tm = ref.Arch2VecTorch(d, dropout=0.0).double()
  pairs = {}
  with torch.no_grad():
    for l, (mlp, bn) in enumerate(zip(tm.mlps, tm.bns)):
      p, s = params[f"gin_{l}"], batch_stats[f"gin_{l}"]
      tm.eps[l] = float(p["eps"])
      pairs.update(_linear(mlp.linear_0, p["mlp_0"]))
      pairs.update(_bn(mlp.bn, p["mlp_bn"], s["mlp_bn"]))
      pairs.update(_linear(mlp.linear_1, p["mlp_1"]))
      pairs.update(_bn(bn, p["bn"], s["bn"]))
    pairs.update(_linear(tm.mu, params["mu"]))
    pairs.update(_linear(tm.log_sigma, params["log_sigma"]))
    pairs.update(_linear(tm.ops_decoder, params["ops_decoder"]))
    for t, v in pairs.items():
      t.copy_(torch.tensor(np.asarray(v, np.float64)))
  return tm


def _setup(adj, ops):
  jax.config.update("jax_enable_x64", True)
  model = model_lib.Arch2Vec(ops.shape[-1], CONFIG)
  graph = model_lib.cells_to_graphs(
    jnp.asarray(adj), jnp.asarray(ops, jnp.float64), model_lib.count_nodes(ops)
  )
  variables = model.init({"params": jax.random.PRNGKey(0)}, graph, train=False)
  variables = jax.tree.map(lambda x: x.astype(jnp.float64), variables)
  # Non-trivial running statistics, so that eval mode is tested with them.
  rng = np.random.default_rng(1)
  stats = jax.tree.map(
    lambda x: jnp.asarray(rng.uniform(0.5, 1.5, x.shape)), variables["batch_stats"]
  )
  variables = {"params": variables["params"], "batch_stats": stats}
  tm = _torch_twin(variables["params"], stats, ops.shape[-1])
  return model, graph, variables, tm


def _close(actual, desired):
  """Equal to rounding: within 1e-6 of the array's largest magnitude (parts of the JAX model, e.g. the
  BatchNorm statistics' node counts, stay float32 under x64; real differences are far larger)."""
  desired = np.asarray(desired)
  np.testing.assert_allclose(
    actual, desired, rtol=0, atol=1e-6 * max(float(np.max(np.abs(desired))), 1e-30)
  )


def _cells(space):
  rng = np.random.default_rng(0)
  if space == "nb101":  # cells of 2..6 nodes padded to 7 slots (every cell has padding)
    adj, ops = nb101.enumerate_space(max_nodes=6, cache=False)[:2]
    adj, ops = np.pad(adj, ((0, 0), (0, 1), (0, 1))), np.pad(ops, ((0, 0), (0, 1), (0, 0)))
  else:
    adj, ops = nb201.all_cells()
  idx = rng.choice(len(ops), 24, replace=False)
  return np.asarray(adj[idx]), np.asarray(ops[idx])


@pytest.fixture(params=["nb201", "nb101"])
def cells(request):
  yield _cells(request.param)
  jax.config.update("jax_enable_x64", False)


def test_eval_mode_outputs_equal(cells):
  adj, ops = cells
  model, graph, variables, tm = _setup(adj, ops)
  out = model.apply(variables, graph, train=False)
  tm.eval()
  with torch.no_grad():
    ops_p, adj_p, mu, log_sigma = tm(
      torch.tensor(ops, dtype=torch.float64), ref.symmetrize(torch.tensor(adj, dtype=torch.float64))
    )
  _close(mu.numpy(), out["mu"])
  _close(log_sigma.numpy(), out["log_sigma"])
  _close(ops_p.numpy(), jax.nn.sigmoid(out["ops_logits"]))
  _close(adj_p.numpy(), jax.nn.sigmoid(out["adj_logits"]))


def test_train_mode_loss_gradients_and_batch_stats_equal(cells):
  adj, ops = cells
  model, graph, variables, tm = _setup(adj, ops)

  def loss(params):  # z = mu (no sampling noise, no dropout), batch-statistics BatchNorm
    (mu, log_sigma), upd = model.apply(
      {"params": params, "batch_stats": variables["batch_stats"]},
      graph,
      train=True,
      method=model_lib.Arch2Vec.encode,
      mutable=["batch_stats"],
    )
    ops_logits, adj_logits = model.apply({"params": params}, mu, method=model_lib.Arch2Vec.decode)
    outputs = {"mu": mu, "log_sigma": log_sigma, "ops_logits": ops_logits, "adj_logits": adj_logits}
    total, _ = model_lib.vae_loss(outputs, jnp.asarray(adj), jnp.asarray(ops))
    return total, upd["batch_stats"]

  (jax_loss, jax_stats), grads = jax.value_and_grad(loss, has_aux=True)(variables["params"])
  tm.train()
  t_ops, t_adj = torch.tensor(ops, dtype=torch.float64), torch.tensor(adj, dtype=torch.float64)
  mu, log_sigma = tm.encode(t_ops, ref.symmetrize(t_adj))
  ops_p, adj_p = tm.decode(mu)
  torch_loss = ref.loss_fn(ops_p, adj_p, mu, log_sigma, t_ops, t_adj)
  torch_loss.backward()
  assert float(torch_loss.detach()) == pytest.approx(float(jax_loss), rel=1e-9)
  for l, (mlp, bn) in enumerate(zip(tm.mlps, tm.bns)):
    g, s = grads[f"gin_{l}"], jax_stats[f"gin_{l}"]
    _close(tm.eps.grad[l].numpy(), g["eps"])
    for layer, name in ((mlp.linear_0, "mlp_0"), (mlp.linear_1, "mlp_1")):
      _close(layer.weight.grad.numpy(), np.asarray(g[name]["kernel"]).T)
    for layer, name in ((mlp.bn, "mlp_bn"), (bn, "bn")):
      _close(layer.weight.grad.numpy(), g[name]["scale"])
      _close(layer.bias.grad.numpy(), g[name]["bias"])
      _close(layer.running_mean.numpy(), s[name]["mean"])
      _close(layer.running_var.numpy(), s[name]["var"])
  for name in ("mu", "log_sigma", "ops_decoder"):
    layer = getattr(tm, name)
    _close(layer.weight.grad.numpy(), np.asarray(grads[name]["kernel"]).T)
    _close(layer.bias.grad.numpy(), grads[name]["bias"])
