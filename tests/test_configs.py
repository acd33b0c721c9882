"""Configs in one place: per-space and tiny configs, flags generated from them, the run's parts composing.

The launcher's generated flags: tests/test_launchers.py."""

import dataclasses

import chex
import jax
import numpy as np
import pytest
from absl import flags

from arch2vec_jax import cli, configs, train
from arch2vec_jax import model as model_lib
from arch2vec_jax.spaces import darts, nb101, nb201


def _fields(config):
  """{name: default} of a config's fields, nested configs' fields flattened."""
  out = {}
  for f in dataclasses.fields(config):
    value = getattr(config, f.name)
    out.update(_fields(value) if dataclasses.is_dataclass(value) else {f.name: value})
  return out


def test_configs_per_space_and_variant():
  for space in configs.SPACES:
    default = configs.pretrain_config(space)
    assert default == train.TrainConfig(space=space)
    assert default.num_epochs == configs.DEFAULT_EPOCHS[space]
    tiny = configs.pretrain_config(space, "tiny")
    assert tiny.space == space and tiny.model == configs.TINY_MODEL
    assert tiny.num_epochs < default.num_epochs and tiny.num_cells < 1000
  assert train.TrainConfig is configs.TrainConfig and train.DEFAULT_EPOCHS is configs.DEFAULT_EPOCHS
  with pytest.raises(ValueError, match="variant"):
    configs.pretrain_config("nb201", "huge")


def test_generated_flags_cover_every_field_with_its_default():
  fv = flags.FlagValues()
  config = configs.pretrain_config()
  names = cli.define_config_flags(config, fv)
  expected = _fields(config)
  assert names == list(expected)
  assert len(names) == len(dataclasses.fields(train.TrainConfig)) - 1 + len(
    dataclasses.fields(model_lib.ModelConfig)
  )
  docs = {**cli.field_help(train.TrainConfig), **cli.field_help(model_lib.ModelConfig)}
  for name, default in expected.items():
    flag = fv[name]
    assert flag.default == default and type(flag.default) is type(default), name
    assert flag.help.endswith(docs[name]) and docs[name], name  # enum help: '<a|b>: ' first
  assert fv["space"].parser.enum_values == list(configs.SPACES)
  assert fv["aggregation"].parser.enum_values == list(model_lib.AGGREGATIONS)
  assert fv["release_eval_mode"].flag_type() == "bool"


def test_config_from_flags_changes_only_the_flags_given():
  fv = flags.FlagValues()
  cli.define_config_flags(configs.pretrain_config(), fv)
  fv(["prog", "--space=darts", "--norelease_eval_mode", "--hidden=64", "--lr=0.01"])
  tiny = configs.pretrain_config(fv.space, "tiny")
  got = cli.config_from_flags(tiny, fv)
  want = dataclasses.replace(
    tiny,
    release_eval_mode=False,
    lr=0.01,
    model=dataclasses.replace(tiny.model, hidden=64),
  )
  assert got == want
  fv.unparse_flags()
  fv(["prog", "--batch_size=0"])
  with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
    cli.config_from_flags(configs.pretrain_config(), fv)


@dataclasses.dataclass(frozen=True)
class _Inner:
  """Attributes:
  lr: the inner rate.
  seed: the inner seed.
  """

  lr: float = 0.1
  seed: int = 1


@dataclasses.dataclass(frozen=True)
class _Outer:
  """Attributes:
  sizes: the sizes.
  inner: the nested config.
  hidden: not a flag.
  """

  sizes: tuple[int, ...] = (1, 2)
  inner: _Inner = _Inner()
  hidden: str = "x"


@dataclasses.dataclass(frozen=True)
class _Other:
  """Attributes:
  seed: the other config's seed.
  """

  seed: int = 5


def test_generated_flags_rename_skip_and_share():
  fv = flags.FlagValues()
  rename, skip = {"sizes": "size", "inner": "inner_", "inner.seed": "s"}, ("hidden",)
  names = cli.define_config_flags(_Outer(), fv, rename=rename, skip=skip)
  assert names == ["size", "inner_lr", "s"]
  assert "hidden" not in fv and fv["inner_lr"].default == 0.1
  assert cli.define_config_flags(_Other(), fv, shared=names) == ["seed"]  # "seed" is new here
  assert cli.define_config_flags(_Other(), fv, rename={"seed": "s"}, shared=names) == []
  with pytest.raises(flags.DuplicateFlagError):
    cli.define_config_flags(_Other(), fv, rename={"seed": "s"})
  fv(["prog", "--size=3", "--inner_lr=0.5", "--s=9"])
  base = dataclasses.replace(_Outer(), hidden="kept")
  got = cli.config_from_flags(base, fv, rename=rename, skip=skip)
  assert got == _Outer(sizes=(3,), inner=_Inner(lr=0.5, seed=9), hidden="kept")
  assert cli.config_from_flags(_Other(), fv, rename={"seed": "s"}) == _Other(seed=9)
  fv.unparse_flags()
  fv(["prog", "--inner_lr=0.5"])
  assert cli.config_from_flags(base, fv, rename=rename, skip=skip) == dataclasses.replace(
    base, inner=_Inner(lr=0.5)
  )


def _nb101_cells():
  """A few NB101 cells without enumerating the whole space (its 91 cells of at most 4 nodes)."""
  adjacency, ops, _ = nb101.enumerate_space(4, cache=False)
  return adjacency, ops


@pytest.mark.parametrize("space", configs.SPACES)
def test_tiny_config_runs(space):
  """The tiny config of every space trains end to end (NB201 and DARTS load their own cells)."""
  config = configs.pretrain_config(space, "tiny")
  cells = _nb101_cells() if space == "nb101" else None
  result = train.pretrain(config, None, log=None, cells=cells)
  assert [e["epoch"] for e in result["epochs"]] == list(range(config.num_epochs))
  # Epoch 0 only: on NB101's few <= 4-node cells the eval-mode epochs give a NaN loss (at the
  # start of issue 16 too; not so on the real space).
  assert np.isfinite(result["epochs"][0]["loss"]) and 0 <= result["summary"]["validity"] <= 1
  num_cells = 91 if space == "nb101" else config.num_cells
  assert result["data"]["num_cells"] == num_cells
  assert result["embeddings"].shape == (num_cells, config.model.latent)


def test_space_pretraining_cells():
  adjacency, ops = nb201.SPACE.pretraining_cells(30)
  all_adj, all_ops = nb201.all_cells()
  np.testing.assert_array_equal(adjacency, all_adj[:30])
  np.testing.assert_array_equal(ops, all_ops[:30])
  assert adjacency.dtype == ops.dtype == np.int8
  sampled = darts.SPACE.pretraining_cells(20, seed=3)
  np.testing.assert_array_equal(sampled[1], darts.cells(num_cells=20, seed=3)[1])
  assert darts.SPACE.sampled and not nb201.SPACE.sampled and not nb101.SPACE.sampled


def test_parts_compose_into_pretrain():
  """Setup plus the compiled epoch called twice is the 2-epoch `pretrain`, bit for bit."""
  config = dataclasses.replace(configs.pretrain_config("nb201", "tiny"), num_prior_samples=0)
  cells = nb201.SPACE.pretraining_cells(config.num_cells)
  full = train.pretrain(config, None, log=None, cells=cells, save_embeddings=False)
  run = train.setup(config, cells=cells)
  epochs = train.CompiledEpochs(run.model, run.tx, config, len(run.data.train.ops), run.mesh)
  state, losses = run.state, []
  for epoch in range(config.num_epochs):
    state, stats = epochs(state, run.train_data, epoch)
    losses.append(float(np.mean(jax.device_get(stats["loss"]))))
  chex.assert_trees_all_equal(jax.device_get(state), jax.device_get(full["state"]))
  assert losses == [e["loss"] for e in full["epochs"]]
  assert epochs.num_traces == full["num_traces"] == {"train": 1, "eval": 1}
  assert [epochs.train_mode(e) for e in range(3)] == [True, False, False]
