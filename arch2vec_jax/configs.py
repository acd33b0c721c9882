"""Pre-training configurations in one place: `TrainConfig`, one per space, and a tiny variant.

  configs.pretrain_config("nb201")          # the paper's run on NB201 (the defaults)
  configs.pretrain_config("darts", "tiny")  # seconds on a CPU: a small model, a few cells

Each default is written once: the fields of `TrainConfig` (here) and of
`model.ModelConfig`, plus the per-space settings below (`DEFAULT_EPOCHS`, the
tiny variant's). `launch/pretrain.py` generates its flags from these fields
(`cli.define_config_flags`), each flag's help from the field's line in the
class docstring. `train` re-exports `TrainConfig`, `SPACES` and `DEFAULT_EPOCHS`.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal

from arch2vec_jax import model as model_lib

__all__ = [
  "DEFAULT_EPOCHS",
  "SPACES",
  "TINY_MODEL",
  "VARIANTS",
  "Space",
  "TrainConfig",
  "pretrain_config",
]

Space = Literal["nb101", "nb201", "darts"]
SPACES: tuple[str, ...] = typing.get_args(Space)
VARIANTS = ("default", "tiny")
# The paper's epochs per space: what `TrainConfig.epochs=None` trains for.
DEFAULT_EPOCHS = {"nb101": 8, "nb201": 10, "darts": 10}
# The tiny variant's model (the tests' small model).
TINY_MODEL = model_lib.ModelConfig(hidden=32, latent=8, layers=2)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Pre-training configuration (defaults: the paper's; the launcher's flags and help come from here).

  Attributes:
    space: The search space.
    epochs: Epochs; None: the space's default (`configs.DEFAULT_EPOCHS`).
    batch_size: Cells per step (the global batch, over all devices).
    lr: Adam learning rate.
    b1: Adam's first-moment decay.
    b2: Adam's second-moment decay.
    adam_eps: Adam's epsilon.
    clip_norm: Global-norm gradient clip.
    seed: Seed (initialisation, shuffling, noise, dropout, prior samples).
    train_fraction: The first this fraction of cells trains, the rest is held out.
    release_eval_mode: Eval mode (frozen BatchNorm, no dropout, z = mu) from epoch 1 on, as the
      public release (it reproduces the paper's Table 1 robustly); --norelease_eval_mode:
      training mode every epoch, the method as described.
    shuffle_once: Visit the training cells in one fixed random order every epoch (the release);
      otherwise a new permutation per epoch.
    num_prior_samples: Prior samples decoded for validity and uniqueness.
    eval_chunk: Cells per chunk of the held-out reconstruction pass.
    num_cells: DARTS: cells to sample (None: the sampler's default, `darts.cells`). NB101 /
      NB201: use the first N cells of the space (None: all).
    darts_seed: DARTS sampling seed.
    keep_checkpoints: Newest checkpoints kept in <workdir>/checkpoints.
    embed_include_padding: Embeddings averaged over all node slots (the release); otherwise
      over the real nodes only.
    num_devices: Data parallelism: split each step's global batch over this many devices (a
      1-D 'data' mesh, `arch2vec_jax.parallel`); None: every device JAX sees, over all
      processes. The batch size must be a multiple. Equal to one device to float tolerance, so
      a resume may change it.
    model: `model.ModelConfig`.
  """

  space: Space = "nb201"
  epochs: int | None = None
  batch_size: int = 32
  lr: float = 1e-3
  b1: float = 0.9
  b2: float = 0.999
  adam_eps: float = 1e-8
  clip_norm: float = 5.0
  seed: int = 0
  train_fraction: float = 0.9
  release_eval_mode: bool = True
  shuffle_once: bool = False
  num_prior_samples: int = 10_000
  eval_chunk: int = 2048
  num_cells: int | None = None
  darts_seed: int = 0
  keep_checkpoints: int = 3
  embed_include_padding: bool = False
  num_devices: int | None = None
  model: model_lib.ModelConfig = model_lib.ModelConfig()

  def __post_init__(self):
    if self.space not in SPACES:
      raise ValueError(f"space must be one of {SPACES}, got {self.space!r}")
    checks = [
      ("epochs", self.epochs is None or int(self.epochs) >= 0, ">= 0"),
      ("batch_size", int(self.batch_size) >= 1, ">= 1"),
      ("lr", float(self.lr) > 0, "> 0"),
      ("train_fraction", 0.0 < float(self.train_fraction) < 1.0, "in (0, 1)"),
      ("num_prior_samples", int(self.num_prior_samples) >= 0, ">= 0"),
      ("num_cells", self.num_cells is None or int(self.num_cells) >= 2, ">= 2"),
      ("keep_checkpoints", int(self.keep_checkpoints) >= 1, ">= 1"),
      ("eval_chunk", int(self.eval_chunk) >= 1, ">= 1"),
    ]
    for name, ok, bound in checks:
      if not ok:
        raise ValueError(f"{name} must be {bound}, got {getattr(self, name)}")
    if self.num_devices is not None and int(self.num_devices) < 1:
      raise ValueError(
        f"num_devices must be >= 1 (or None for every device), got {self.num_devices}"
      )

  @property
  def num_epochs(self) -> int:
    """The epochs the run trains: `epochs`, or the space's default."""
    return DEFAULT_EPOCHS[self.space] if self.epochs is None else int(self.epochs)

  def to_dict(self) -> dict[str, Any]:
    """The fields (the model's as a dict) plus 'num_epochs': what metrics.json and checkpoints record."""
    d = dataclasses.asdict(self)
    d["num_epochs"] = self.num_epochs
    return d


# The tiny variant (per space where it differs): a couple of epochs of a small model on a few
# cells, seconds on a CPU. NB101 takes the first cells of its enumerated space (enumerated once
# and cached), DARTS samples its cells.
_TINY = {
  "epochs": 2,
  "batch_size": 16,
  "num_cells": 160,
  "num_prior_samples": 200,
  "eval_chunk": 64,
  "keep_checkpoints": 2,
  "model": TINY_MODEL,
}


def pretrain_config(space: str = "nb201", variant: str = "default") -> TrainConfig:
  """The pre-training configuration of a space.

  Args:
    space: 'nb101', 'nb201' or 'darts'.
    variant: 'default' (the paper's run: `TrainConfig`'s defaults, the space's
      epochs) or 'tiny' (a small model on 160 cells for 2 epochs: tests and
      smoke runs).

  Returns:
    A `TrainConfig`; `dataclasses.replace` it to change fields.
  """
  if variant not in VARIANTS:
    raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
  return TrainConfig(space=space, **(_TINY if variant == "tiny" else {}))
