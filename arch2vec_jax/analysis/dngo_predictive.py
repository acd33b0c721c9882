"""The paper's predictive protocol: DNGO predictions from each encoding against held-out accuracy.

The paper's predictive figure (NB101): a DNGO surrogate is trained on the
accuracies of a few labelled cells and predicts the others; arch2vec features go
into the search's DNGO, the supervised curve is a GIN encoder trained jointly with
DNGO on the same labelled cells (`joint`); only cells above 0.8 accuracy are
plotted. Here, per seed and training size:

- the seed's permutation of all cells: the first `size` cells are labelled
  (nested across sizes), the cells after the largest size are the held-out set
  (the same for every size and encoding of a seed, never labelled);
- encodings: 'arch2vec' (16-d mean-pooled mu of the pre-trained encoder),
  'arch2vec_nodes' (the per-node mu concatenated, `features.node_features`),
  'onehot' (flat adjacency + ops) through the search's surrogate
  (`search.dngo.fit_surrogate`, then `search.blr.predict`), one fit per entry of
  `surrogates`: 'dngo' is `BOConfig()` as the searches run it (Linear(D, 128)-tanh-
  Linear, Adam 0.01, 100 epochs, batch 10, inputs standardised, outputs not: the
  release's pybnn settings), 'dngo_norm' the same with the targets standardised
  (`normalize_output=True`, pybnn's own default), 'blr' the search's BLR on the
  standardised features (`surrogate='blr'`, targets standardised too: unstandardised,
  the evidence shrinks the weights of a basis with D >= n towards predicting 0); and 'supervised' (`joint.fit_joint`,
  surrogate 'joint');
- targets are fractions (the search's rewards); metrics are in percent over the
  held-out cells: RMSE, Pearson, Spearman, Kendall tau-b, once over all of them
  and once over those whose true accuracy exceeds `threshold` (the paper's 0.8).

`run_protocol` returns per-(seed, size, encoding) records and their summary
(mean and std over seeds); `plots.plot_protocol` draws them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from arch2vec_jax.analysis import metrics as metrics_lib
from arch2vec_jax.search import blr as search_blr
from arch2vec_jax.search import dngo
from arch2vec_jax.search import joint as joint_lib

__all__ = [
  "ENCODINGS",
  "SURROGATES",
  "ProtocolConfig",
  "dngo_predict",
  "protocol_splits",
  "run_protocol",
  "summarize_protocol",
  "surrogate_config",
]

ENCODINGS = ("arch2vec", "arch2vec_nodes", "onehot", "supervised")
SURROGATES = ("dngo", "dngo_norm", "blr")
METRICS = ("rmse", "pearson", "spearman", "kendall")


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
  """The protocol's sizes and seeds.

  Attributes:
    train_sizes: labelled cells per fit (the paper's 16 .. 1,000).
    num_seeds: seeds (splits, network initialisations).
    encodings: the encodings compared, a subset of `ENCODINGS` (arch2vec, arch2vec_nodes,
      onehot, supervised).
    surrogates: the surrogates fitted on each unsupervised encoding, a subset of `SURROGATES`.
    threshold: accuracy (fraction) above which held-out cells enter the filtered metrics.
    bo: the search's DNGO settings (`dngo.BOConfig`, surrogate 'dngo').
    joint: the supervised predictor's settings (`joint.JointConfig`).
    seed: base seed.
  """

  train_sizes: tuple[int, ...] = (16, 32, 128, 256, 512, 1000)
  num_seeds: int = 5
  encodings: tuple[str, ...] = ENCODINGS
  surrogates: tuple[str, ...] = ("dngo",)
  threshold: float = 0.8
  bo: dngo.BOConfig = dataclasses.field(default_factory=dngo.BOConfig)
  joint: joint_lib.JointConfig = dataclasses.field(default_factory=joint_lib.JointConfig)
  seed: int = 0

  def __post_init__(self):
    unknown = sorted(set(self.encodings) - set(ENCODINGS))
    if unknown:
      raise ValueError(f"unknown encodings {unknown}; expected a subset of {ENCODINGS}")
    bad = sorted(set(self.surrogates) - set(SURROGATES))
    if bad or not self.surrogates:
      raise ValueError(f"unknown surrogates {bad}; expected a non-empty subset of {SURROGATES}")
    if not self.train_sizes or min(self.train_sizes) < 2 or self.num_seeds < 1:
      raise ValueError(f"bad sizes / seeds: {self.train_sizes}, {self.num_seeds}")


def protocol_splits(num_cells: int, config: ProtocolConfig) -> np.ndarray:
  """int64 [num_seeds, num_cells]: one permutation per seed (labelled = a prefix, held-out = after max size)."""
  if max(config.train_sizes) >= num_cells:
    raise ValueError(
      f"largest training size {max(config.train_sizes)} must be below {num_cells} cells"
    )
  return np.stack(
    [
      np.random.default_rng([config.seed, s]).permutation(num_cells)
      for s in range(config.num_seeds)
    ]
  )


_FIT = jax.jit(dngo.fit_surrogate, static_argnames=("config",))


def dngo_predict(
  key: jax.Array,
  x_train: np.ndarray,
  y_train: np.ndarray,
  x_test: np.ndarray,
  config: dngo.BOConfig,
) -> tuple[np.ndarray, np.ndarray]:
  """The search's DNGO fitted on (x_train [n, D], y_train [n]): (mean [M], variance [M]) at x_test [M, D]."""
  x = jnp.asarray(x_train, jnp.float32)
  y = jnp.asarray(y_train, jnp.float32)
  n, dim = x.shape
  k_init, k_fit = jax.random.split(key)
  sur, _ = _FIT(
    k_fit, config, x, y, jnp.ones((n,), bool), n, dngo.init_mlp(k_init, dim, config.hidden_dim)
  )
  phi = sur.features(jnp.asarray(x_test, jnp.float32), config.surrogate == "blr")
  mean, var = search_blr.predict(sur.post, phi)
  return np.asarray(mean) * float(sur.y_sd) + float(sur.y_mu), np.asarray(var) * float(
    sur.y_sd
  ) ** 2


def _scores(y_true: np.ndarray, pred: np.ndarray, threshold: float) -> dict[str, float]:
  """Metrics in percent over all held-out cells and over those above `threshold` (keys '<m>' and '<m>_f')."""
  out = dict(metrics_lib.regression_metrics(100.0 * y_true, 100.0 * pred))
  keep = y_true > threshold
  filt = metrics_lib.regression_metrics(100.0 * y_true[keep], 100.0 * pred[keep])
  out.update({f"{k}_f": v for k, v in filt.items()})
  out["num_test"], out["num_test_f"] = len(y_true), int(keep.sum())
  return out


def run_protocol(
  features: dict[str, np.ndarray],
  adjacency: np.ndarray,
  ops: np.ndarray,
  y: np.ndarray,
  config: ProtocolConfig = ProtocolConfig(),
  log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
  """Runs the protocol over seeds x sizes x encodings.

  Args:
    features: encoding name -> float [N, D] for the DNGO encodings of `config.encodings`
      ('supervised' needs none: it reads `adjacency`, `ops`).
    adjacency, ops: int [N, n, n], [N, n, d] every cell (the supervised predictor's input).
    y: float [N] accuracies as fractions, finite.
    config: `ProtocolConfig`.
    log: progress lines.

  Returns:
    {'records': one dict per (seed, size, encoding, surrogate) with the metrics ('<m>' all held-out,
     '<m>_f' above the threshold), 'summary': `summarize_protocol(records)`,
     'scatter': {'<encoding>/<surrogate>': {'true', 'pred'}} of seed 0 at the largest size (fractions),
     'num_heldout': held-out cells per seed}.

  Raises:
    ValueError: for a missing feature matrix, a length mismatch or non-finite targets.
  """
  log = log or (lambda _: None)
  y = np.asarray(y, np.float64)
  n = len(y)
  if not np.all(np.isfinite(y)):
    raise ValueError("targets must be finite (drop cells without an accuracy first)")
  for enc in config.encodings:
    if enc == "supervised":
      continue
    if enc not in features:
      raise ValueError(f"no features for encoding {enc!r} (have {sorted(features)})")
    if len(features[enc]) != n:
      raise ValueError(f"features {enc!r} have {len(features[enc])} rows for {n} cells")
  perms = protocol_splits(n, config)
  largest = max(config.train_sizes)
  records, scatter = [], {}
  for s in range(config.num_seeds):
    test = perms[s, largest:]
    y_te = y[test]
    for size in sorted(config.train_sizes):
      train = perms[s, :size]
      if np.intersect1d(train, test).size:
        raise AssertionError("a held-out cell is in the training set")  # by construction never
      key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 1000 * s + size)
      jobs = [
        (e, m)
        for e in config.encodings
        for m in (("joint",) if e == "supervised" else config.surrogates)
      ]
      for enc, sur in jobs:
        t0 = time.perf_counter()
        if enc == "supervised":
          fit = joint_lib.fit_joint(
            adjacency,
            ops,
            np.where(np.isin(np.arange(n), train), y, np.nan),
            train,
            key,
            config.joint,
          )
          pred, _ = joint_lib.joint_predict(fit, np.asarray(adjacency)[test], np.asarray(ops)[test])
        else:
          x = np.asarray(features[enc], np.float32)
          pred, _ = dngo_predict(key, x[train], y[train], x[test], surrogate_config(config.bo, sur))
        rec = {
          "seed": s,
          "train_size": size,
          "encoding": enc,
          "surrogate": sur,
          **_scores(y_te, pred, config.threshold),
          "fit_s": time.perf_counter() - t0,
        }
        records.append(rec)
        if s == 0 and size == largest:
          scatter[f"{enc}/{sur}"] = {
            "true": y_te.tolist(),
            "pred": np.asarray(pred, np.float64).tolist(),
          }
        log(
          f"seed {s} n={size:>5} {enc:>14} {sur:>9}: RMSE {rec['rmse']:.3f} Pearson {rec['pearson']:.3f} "
          f"Kendall {rec['kendall']:.3f} | >{config.threshold}: RMSE {rec['rmse_f']:.3f} "
          f"Pearson {rec['pearson_f']:.3f} Kendall {rec['kendall_f']:.3f} ({rec['fit_s']:.1f}s)"
        )
  return {
    "records": records,
    "summary": summarize_protocol(records),
    "scatter": scatter,
    "num_heldout": int(n - largest),
  }


def surrogate_config(bo: dngo.BOConfig, surrogate: str) -> dngo.BOConfig:
  """The `BOConfig` of a `SURROGATES` entry, derived from the search's `bo`."""
  if surrogate == "dngo":
    return dataclasses.replace(bo, surrogate="dngo")
  if surrogate == "dngo_norm":
    return dataclasses.replace(bo, surrogate="dngo", normalize_output=True)
  if surrogate == "blr":
    return dataclasses.replace(bo, surrogate="blr", normalize_output=True)
  raise ValueError(f"unknown surrogate {surrogate!r}; expected one of {SURROGATES}")


def summarize_protocol(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Mean and std over seeds per (encoding, surrogate, train_size) of every metric, all and filtered ('_f')."""
  groups: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
  for r in records:
    groups.setdefault((r["encoding"], r["surrogate"], r["train_size"]), []).append(r)
  rows = []
  for (enc, sur, size), rs in sorted(groups.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
    row: dict[str, Any] = {"encoding": enc, "surrogate": sur, "train_size": size, "seeds": len(rs)}
    for m in METRICS:
      for suffix in ("", "_f"):
        v = np.asarray([r[m + suffix] for r in rs], np.float64)
        row[f"{m}{suffix}_mean"], row[f"{m}{suffix}_std"] = (
          float(np.nanmean(v)),
          float(np.nanstd(v)),
        )
    row["num_test_f"] = int(np.mean([r["num_test_f"] for r in rs]))
    rows.append(row)
  return rows
