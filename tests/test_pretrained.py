"""pretrained: load a run, embed each input form bit for bit; export; decode; nearest.

One tiny NB201 pre-training run (48 cells, hidden 16, latent 4, 2 layers, 1 epoch)
into a temporary workdir is shared by the module; NB101 and DARTS encoders are
freshly initialised tiny models (their inputs are checked against the arrays path
and `embed.encode`), so nothing here trains for more than a few seconds.
"""

import dataclasses
import os
import subprocess
import sys

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import metrics as metrics_lib
from arch2vec_jax import model as model_lib
from arch2vec_jax import pretrained, train
from arch2vec_jax.spaces import darts, nb101, nb201

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = model_lib.ModelConfig(hidden=16, latent=4, layers=2)
CONFIG = train.TrainConfig(space="nb201", epochs=1, batch_size=16, num_prior_samples=50, model=TINY)
NUM_CELLS = 48


def _tree_equal(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  return jax.tree.structure(a) == jax.tree.structure(b) and all(
    np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(leaves_a, leaves_b)
  )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A finished tiny NB201 run: (workdir, pretrain result, cells, embeddings.npz content)."""
  workdir = tmp_path_factory.mktemp("pretrained_run")
  adj, ops = nb201.all_cells()
  idx = np.random.default_rng(0).choice(len(ops), NUM_CELLS, replace=False)
  cells = (np.asarray(adj[idx]), np.asarray(ops[idx]))
  result = train.pretrain(CONFIG, workdir, cells=cells, log=None, command="pytest tiny run")
  return workdir, result, cells, embed_lib.load_embeddings(workdir / "embeddings.npz")


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
  """The run exported with its prior: (path, export info)."""
  workdir, result, _, _ = run
  path = tmp_path_factory.mktemp("pretrained_file") / "nb201.msgpack"
  return path, pretrained.export(workdir, path, prior=result["prior"])


def _fresh_encoder(space, include_padding=False, embed_chunk=None):
  """An untrained tiny encoder of `space` (random init), without a workdir."""
  s = train.get_space(space)
  config = train.TrainConfig(space=space, embed_include_padding=include_padding, model=TINY)
  model = train.create_model(s.num_ops, TINY)
  state = train.create_train_state(
    model, train.create_optimizer(config), jax.random.PRNGKey(1), s.num_nodes
  )
  extra = {} if embed_chunk is None else {"embed_chunk": embed_chunk}
  return pretrained.Encoder(
    space=space,
    config=config,
    params=jax.device_get(state.params),
    batch_stats=jax.device_get(state.batch_stats),
    **extra,
  )


def test_workdir_embeddings_bit_for_bit_for_every_input_form(run):
  workdir, _, (adj, ops), emb = run
  enc = pretrained.load(workdir)
  assert enc.space == "nb201" and enc.config == CONFIG and enc.model_config == TINY
  assert (
    enc.embed_chunk == NUM_CELLS
    and not enc.include_padding
    and enc.meta["command"] == "pytest tiny run"
  )
  assert enc.meta["epoch"] == 0 and set(enc.meta["summary"]) >= {"loss", "validity"}
  ref = emb["embeddings"]
  strings = [str(s) for s in emb["ids"]]
  assert strings == nb201.decode_batch(adj, ops)
  np.testing.assert_array_equal(enc.embed((adj, ops)), ref)  # arrays
  np.testing.assert_array_equal(enc.embed(strings), ref)  # arch strings
  np.testing.assert_array_equal(enc.embed(emb["ids"]), ref)  # the str array of embeddings.npz
  np.testing.assert_array_equal(
    pretrained.embed(enc, list(zip(adj, ops))), ref
  )  # (adjacency, ops) pairs
  # Any subset, in any order, is still the file's rows exactly.
  pick = np.random.default_rng(1).permutation(NUM_CELLS)[:7]
  np.testing.assert_array_equal(enc.embed([strings[i] for i in pick]), ref[pick])
  np.testing.assert_array_equal(
    enc.embed((jnp.asarray(adj[pick]), jnp.asarray(ops[pick]))), ref[pick]
  )
  np.testing.assert_allclose(enc.embed(strings, exact=False), ref, rtol=1e-5, atol=1e-6)
  assert enc.embed([]).shape == (0, TINY.latent)
  # More cells than one chunk: several chunks, still the same rows.
  many = [strings[i % NUM_CELLS] for i in range(2 * NUM_CELLS + 5)]
  np.testing.assert_array_equal(enc.embed(many), ref[np.arange(len(many)) % NUM_CELLS])


def test_export_load_roundtrip(run, exported):
  workdir, result, (adj, ops), emb = run
  path, info = exported
  assert info["reference_max_abs_diff"] == 0.0 and info["bytes"] == os.path.getsize(path)
  a, b = pretrained.load(workdir), pretrained.load(path)
  assert b.space == a.space and b.config == a.config and b.embed_chunk == a.embed_chunk
  assert _tree_equal(b.params, a.params) and _tree_equal(b.batch_stats, a.batch_stats)
  assert _tree_equal(b.params, jax.device_get(result["state"].params))
  np.testing.assert_array_equal(b.prior_mean, result["prior"][0])
  np.testing.assert_array_equal(b.prior_std, result["prior"][1])
  np.testing.assert_array_equal(b.embed((adj, ops)), emb["embeddings"])
  ref = b.reference
  assert len(ref["ids"]) == len(ref["embeddings"]) == 16
  np.testing.assert_array_equal(b.embed(ref["ids"]), ref["embeddings"])
  np.testing.assert_array_equal(b.embed((ref["adjacency"], ref["ops"])), ref["embeddings"])
  meta = b.meta
  assert meta["command"] == "pytest tiny run" and meta["epoch"] == 0
  assert meta["summary"] == result["summary"] and meta["package_version"]
  assert meta["versions"]["jax"] == jax.__version__ and meta["created"]
  # The workdir's checkpoint carries the same prior (train.pretrain writes it).
  np.testing.assert_array_equal(a.prior_mean, result["prior"][0])


def test_launcher_writes_a_loadable_file(run, tmp_path):
  workdir, _, (adj, ops), emb = run
  out = tmp_path / "w.msgpack"
  cmd = [
    sys.executable,
    os.path.join(REPO, "launch", "export_weights.py"),
    f"--workdir={workdir}",
    f"--out={out}",
    "--num_reference=4",
  ]
  proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=REPO)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "max |embed - embeddings.npz| = 0" in proc.stdout
  enc = pretrained.load(out)
  assert len(enc.reference["ids"]) == 4
  np.testing.assert_array_equal(enc.embed((adj, ops)), emb["embeddings"])


def test_unknown_version_other_format_and_damage_fail_clearly(exported, tmp_path):
  path, _ = exported
  outer = flax.serialization.msgpack_restore(path.read_bytes())
  bad = tmp_path / "v99.msgpack"
  bad.write_bytes(flax.serialization.msgpack_serialize({**outer, "version": 99}))
  with pytest.raises(
    ValueError, match=r"v99\.msgpack: weights format version 99 is unknown.*reads version 1"
  ):
    pretrained.load(bad)
  other = tmp_path / "other.msgpack"
  other.write_bytes(flax.serialization.msgpack_serialize({"format": "something", "version": 1}))
  with pytest.raises(ValueError, match="not an arch2vec-jax weights file"):
    pretrained.load(other)
  garbage = tmp_path / "garbage.msgpack"
  garbage.write_bytes(b"\x00not msgpack at all")
  with pytest.raises(ValueError, match="not an arch2vec-jax weights file"):
    pretrained.load(garbage)
  body = bytearray(outer["body"])
  body[len(body) // 2] ^= 1
  flipped = tmp_path / "flipped.msgpack"
  flipped.write_bytes(flax.serialization.msgpack_serialize({**outer, "body": bytes(body)}))
  with pytest.raises(ValueError, match="damaged weights file"):
    pretrained.load(flipped)


def test_shipped_names_load_or_name_the_missing_file(monkeypatch):
  for name in pretrained.NAMES:
    path = pretrained.weights_path(name)
    assert path.endswith(os.path.join("arch2vec_jax", "weights", f"{name}.msgpack"))
    if os.path.exists(path):  # shipped: loads, and reproduces its own reference rows
      enc = pretrained.load(name)
      assert enc.space == name and enc.meta["command"] and enc.meta["package_version"]
      ref = enc.reference
      if ref is not None:
        got = enc.embed((ref["adjacency"], ref["ops"]))
        np.testing.assert_allclose(got, ref["embeddings"], rtol=1e-4, atol=1e-5)
    else:
      with pytest.raises(FileNotFoundError, match=f"{name}.msgpack is missing"):
        pretrained.load(name)
  monkeypatch.setattr(pretrained, "NAMES", (*pretrained.NAMES, "nb999"))
  with pytest.raises(
    FileNotFoundError, match=r"no shipped nb999 weights.*weights/nb999\.msgpack is missing"
  ):
    pretrained.load("nb999")
  with pytest.raises(ValueError, match="neither a shipped name"):
    pretrained.load("nb102")


def test_workdir_errors(tmp_path, run):
  with pytest.raises(FileNotFoundError, match="no checkpoint"):
    pretrained.load(tmp_path)
  with pytest.raises(ValueError, match="no metrics.json"):
    (tmp_path / "checkpoints").mkdir()
    workdir, _, _, _ = run
    for name in os.listdir(workdir / "checkpoints"):
      (tmp_path / "checkpoints" / name).write_bytes((workdir / "checkpoints" / name).read_bytes())
    pretrained.export(tmp_path, tmp_path / "x.msgpack")


def test_wrong_space_and_size_errors(run):
  enc = pretrained.load(run[0])
  a101, o101 = nb101.encode_batch(
    [(np.triu(np.ones((3, 3), int), 1), ["input", "conv3x3-bn-relu", "output"])]
  )
  with pytest.raises(ValueError, match=r"\[N, 8, 8\].*\(1, 7, 7\) and \(1, 7, 5\).*nb101 cell"):
    enc.embed((a101, o101))
  strings = nb201.arch_strings()[:3]
  with pytest.raises(
    ValueError, match=r"cell 2: adjacency \(11, 11\) and ops \(11, 11\).*darts cell"
  ):
    enc.embed(
      [nb201.encode(strings[0]), nb201.encode(strings[1]), darts.genotype_to_cell(darts.DARTS_V2)]
    )
  with pytest.raises(ValueError, match="cell 1: expected a NAS-Bench-201 arch string.*tuple"):
    enc.embed([strings[0], darts.DARTS_V2])
  with pytest.raises(ValueError, match="cell 1: .*unknown op 'conv_7x7'"):
    enc.embed(
      [
        strings[0],
        strings[1]
        .replace("none", "conv_7x7")
        .replace("skip_connect", "conv_7x7")
        .replace("nor_conv_1x1", "conv_7x7")
        .replace("nor_conv_3x3", "conv_7x7")
        .replace("avg_pool_3x3", "conv_7x7"),
      ]
    )
  with pytest.raises(TypeError, match="wrap one cell in a list"):
    enc.embed(strings[0])
  adj, ops = nb201.encode_batch(strings)
  with pytest.raises(ValueError, match="give a batch"):
    enc.embed((adj[0], ops[0]))
  bad = adj.copy()
  bad[1, 3, 1] = 1
  with pytest.raises(
    ValueError, match=r"cell 1: adjacency must be strictly upper triangular, has edge 3 -> 1"
  ):
    enc.embed((bad, ops))
  bad = ops.copy()
  bad[2, 4] = 1
  with pytest.raises(ValueError, match="cell 2: ops row 4 is not one-hot"):
    enc.embed((adj, bad))
  bad = adj.copy()
  bad[0, 0, 1] = 2
  with pytest.raises(ValueError, match="cell 0: adjacency entries must be 0/1"):
    enc.embed((bad, ops))
  with pytest.raises(ValueError, match=r"z must be \[S, 8, 4\]"):
    enc.decode(np.zeros((3, 7, 4)))


def test_decode_validity_matches_the_space(exported):
  enc = pretrained.load(exported[0])
  space = nb201.SPACE
  key = jax.random.PRNGKey(3)
  z = enc.prior_mean + enc.prior_std * np.asarray(
    jax.random.normal(key, (40, *enc.prior_mean.shape))
  )
  # Plus the encodings (mu) of real cells, which this tiny model may or may not decode back.
  strings = nb201.arch_strings()[:5]
  a, o = nb201.encode_batch(strings)
  graph = model_lib.cells_to_graphs(a, o)
  mu, _ = enc.module.apply(enc.variables, graph, method=model_lib.Arch2Vec.encode)
  z = np.concatenate([z, np.asarray(mu)]).astype(np.float32)
  out = pretrained.decode(enc, z)
  adj, ops = jax.device_get(metrics_lib.decode_latents(enc.module, enc.variables, jnp.asarray(z)))
  np.testing.assert_array_equal(out.adjacency, adj)
  np.testing.assert_array_equal(out.ops, ops)
  np.testing.assert_array_equal(out.valid, space.is_valid(adj, ops))
  np.testing.assert_array_equal(out.strict, space.is_valid(adj, ops, strict=True))
  assert len(out.cells) == len(z)
  for i, cell in enumerate(out.cells):
    assert (cell is not None) == bool(out.strict[i])
    if cell is not None:
      ea, eo = nb201.encode(cell)
      np.testing.assert_array_equal(ea, out.adjacency[i])
      np.testing.assert_array_equal(eo, out.ops[i])
  assert pretrained.decode(enc, np.zeros((0, 8, 4), np.float32)).adjacency.shape == (0, 8, 8)


def test_nearest_returns_pool_indices(run):
  enc = pretrained.load(run[0])
  pool = run[3]["embeddings"]
  rng = np.random.default_rng(2)
  queries = pool[[3, 17, 40]] + 1e-4 * rng.normal(size=(3, pool.shape[1])).astype(np.float32)
  res = pretrained.nearest(enc, queries, pool, k=5)
  assert res.index.shape == res.distance.shape == (3, 5) and res.index.dtype == np.int64
  brute = np.sqrt(((queries[:, None, :] - pool[None]) ** 2).sum(-1))
  np.testing.assert_allclose(res.distance, np.sort(brute, axis=1)[:, :5], rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(
    brute[np.arange(3)[:, None], res.index], res.distance, rtol=1e-5, atol=1e-6
  )
  # Latent points [S, n, latent]: their embedding is the mean over the nodes.
  z = rng.normal(size=(4, 8, enc.latent)).astype(np.float32)
  np.testing.assert_array_equal(enc.nearest(z, pool).index, enc.nearest(z.mean(1), pool).index)
  with pytest.raises(ValueError, match="k must be in"):
    enc.nearest(queries, pool, k=len(pool) + 1)
  with pytest.raises(ValueError, match="embeddings must be"):
    enc.nearest(np.zeros((2, 3)), pool)


def test_nb101_specs_and_include_padding():
  matrix5 = np.zeros((5, 5), int)
  matrix5[0, 1] = matrix5[1, 2] = matrix5[2, 4] = matrix5[0, 3] = matrix5[3, 4] = 1
  specs = [
    (matrix5, ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]),
    (
      np.triu(np.ones((7, 7), int), 1) * (np.arange(7)[None, :] == np.arange(7)[:, None] + 1),
      ["input"] + ["conv3x3-bn-relu"] * 5 + ["output"],
    ),
    (np.array([[0, 1], [0, 0]]), ["input", "output"]),
  ]
  adj, ops = nb101.encode_batch(specs)

  class Spec:  # a nasbench ModelSpec-like object
    def __init__(self, matrix, ops):
      self.matrix, self.ops = matrix, ops

  for include_padding in (False, True):
    enc = _fresh_encoder("nb101", include_padding, embed_chunk=len(specs))
    ref = embed_lib.encode(
      enc.params, enc.batch_stats, adj, ops, model_config=TINY, include_padding=include_padding
    )
    np.testing.assert_array_equal(enc.embed(specs), ref)
    np.testing.assert_array_equal(enc.embed([Spec(*s) for s in specs]), ref)
    np.testing.assert_array_equal(enc.embed((adj, ops)), ref)
  # The run's include_padding decides: 5- and 2-node cells differ, the 7-node cell does not.
  diff = np.abs(
    _fresh_encoder("nb101", True).embed(specs) - _fresh_encoder("nb101", False).embed(specs)
  ).max(1)
  assert diff[0] > 0 and diff[2] > 0 and diff[1] < 1e-6
  enc = _fresh_encoder("nb101")
  with pytest.raises(ValueError, match="cell 1: cell has 8 nodes"):
    enc.embed(
      [specs[0], (np.triu(np.ones((8, 8), int), 1), ["input"] + ["maxpool3x3"] * 6 + ["output"])]
    )
  with pytest.raises(ValueError, match="cell 0: expected a NAS-Bench-101 .* str"):
    enc.embed(nb201.arch_strings()[:1])
  with pytest.raises(ValueError, match="cell 0: unknown op 'conv5x5'"):
    enc.embed([(matrix5, ["input", "conv5x5", "maxpool3x3", "conv1x1-bn-relu", "output"])])
  bad = adj.copy()
  bad[0, 4, 6] = 1  # an edge into a padding slot of the 5-node cell
  with pytest.raises(ValueError, match="cell 0: an edge touches a padding node"):
    enc.embed((bad, ops))


def test_darts_genotypes_and_text():
  enc = _fresh_encoder("darts")
  op_idx, inputs = darts.sample_genotypes(0, 5)
  genotypes = [darts.arrays_to_genotype(o, i) for o, i in zip(op_idx, inputs)] + [darts.DARTS_V2]
  adj, ops = darts.genotypes_to_cells(
    *(np.stack(x) for x in zip(*map(darts.genotype_to_arrays, genotypes)))
  )
  ref = enc.embed((adj, ops))
  assert ref.shape == (6, TINY.latent)
  np.testing.assert_array_equal(enc.embed(genotypes), ref)
  np.testing.assert_array_equal(enc.embed([darts.genotype_to_str(g) for g in genotypes]), ref)
  full = dataclasses.make_dataclass(
    "Genotype", ["normal", "normal_concat", "reduce", "reduce_concat"]
  )
  np.testing.assert_array_equal(
    enc.embed([full(list(darts.DARTS_V2), [2, 3, 4, 5], [], [])]), ref[-1:]
  )
  with pytest.raises(ValueError, match="cell 1: .*block 0 has the same input 0 twice"):
    enc.embed([genotypes[0], [("sep_conv_3x3", 0)] * 8])
  with pytest.raises(
    ValueError, match=r"cell 0: .*arch string .*does not parse|cell 0: genotype text"
  ):
    enc.embed(nb201.arch_strings()[:1])


def test_module_and_variables_inside_jit_and_grad(run):
  enc = pretrained.load(run[0])
  strings = [str(s) for s in run[3]["ids"][:6]]
  adj, ops = enc.to_arrays(strings)
  n_node = model_lib.count_nodes(ops)
  x = jax.jit(enc.embed_fn)(enc.variables, adj, ops, n_node)
  np.testing.assert_allclose(np.asarray(x), enc.embed(strings), rtol=1e-5, atol=1e-6)

  @jax.jit
  def loss(variables, z):
    _, adj_logits = enc.module.apply(variables, z, method=model_lib.Arch2Vec.decode)
    return jnp.mean(jax.nn.sigmoid(adj_logits))

  z = jnp.ones((2, enc.num_nodes, enc.latent))
  g = jax.grad(loss, argnums=1)(enc.variables, z)
  assert g.shape == z.shape and bool(jnp.isfinite(g).all())
  gp = jax.grad(lambda v: enc.embed_fn(v, adj, ops, n_node).sum())(enc.variables)
  assert jax.tree.structure(gp) == jax.tree.structure(enc.variables)


def test_decode_other_spaces_and_native_cells():
  rng = np.random.default_rng(4)
  for space in (nb101.SPACE, darts.SPACE):
    enc = _fresh_encoder(space.name)
    z = 2.0 * rng.normal(size=(300, enc.num_nodes, enc.latent)).astype(np.float32)
    out = enc.decode(z)
    np.testing.assert_array_equal(out.valid, space.is_valid(out.adjacency, out.ops))
    assert [c is not None for c in out.cells] == out.strict.tolist()
    if (
      space.name == "nb101"
    ):  # NB101's check is exact: every valid decode is a cell, hashed as the space does
      np.testing.assert_array_equal(out.strict, out.valid)
      hashes = space.hash(out.adjacency, out.ops)
      for i in np.flatnonzero(out.valid):
        assert nb101.is_valid(*out.cells[i]) and nb101.graph_hash(*out.cells[i]) == hashes[i]
  # The native form of real cells (what a strict decode returns).
  strings = nb201.arch_strings()[:4]
  a, o = nb201.encode_batch(strings)
  assert _fresh_encoder("nb201")._native(a, o, np.array([True, False, True, True])) == [
    strings[0],
    None,
    strings[2],
    strings[3],
  ]
  genotypes = [
    darts.DARTS_V2,
    darts.arrays_to_genotype(*(x[0] for x in darts.sample_genotypes(1, 1))),
  ]
  a, o = darts.genotypes_to_cells(
    *(np.stack(x) for x in zip(*map(darts.genotype_to_arrays, genotypes)))
  )
  assert _fresh_encoder("darts")._native(a, o, np.array([True, True])) == genotypes


def test_workdir_checkpoint_carries_the_prior(tmp_path):
  """pretrain writes the last epoch's prior into its checkpoints; load() reads it back."""
  cells = nb201.all_cells()
  idx = np.random.default_rng(1).choice(len(cells[1]), 48, replace=False)
  config = train.TrainConfig(
    space="nb201",
    epochs=1,
    batch_size=16,
    num_prior_samples=50,
    model=model_lib.ModelConfig(hidden=16, latent=4, layers=2),
  )
  result = train.pretrain(config, tmp_path, log=None, cells=(cells[0][idx], cells[1][idx]))
  enc = pretrained.load(tmp_path)
  np.testing.assert_array_equal(enc.prior_mean, result["prior"][0])
  np.testing.assert_array_equal(enc.prior_std, result["prior"][1])
