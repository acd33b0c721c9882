"""The paper's DNGO predictive protocol for one space, end to end (`launch/analyze.py --protocol=dngo`).

  result = run_dngo_analysis(DNGOAnalysisConfig(space="nb101", encoder="nb101",
                                                benchmark="../shared/data/nb101_subset.csv",
                                                out="results/analysis/nb101_dngo"))

Reads the benchmark table, embeds every cell with the pre-trained encoder
(`pretrained.load(encoder)`: 'arch2vec' its 16-d mean-pooled embedding,
'arch2vec_nodes' the per-node mu, `features.node_features`), runs
`dngo_predictive.run_protocol` and writes `<out>/dngo_protocol.json` (the command,
config, machine, every record, the summary) and two PNGs (metrics against training
size; predicted against true accuracy at the largest size, seed 0).

Target (`target`): 'valid' is the table's `valid_acc` (NB101 subset: the one
`valid_acc_108ep` run, the only 108-epoch accuracy the subset has; NB201: the
search's reward `<dataset>_valid_12ep`), 'test' its `test_acc` (NB201:
`<dataset>_test_200ep`; NB101 subset: none, an error). The same column labels the
training cells and scores the held-out ones.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from arch2vec_jax import fileio, machine, pretrained
from arch2vec_jax.analysis import dngo_predictive, features, plots, predictive
from arch2vec_jax.benchmarks import csv_data

__all__ = ["DNGOAnalysisConfig", "dngo_analysis_config", "load_cells", "run_dngo_analysis"]


@dataclasses.dataclass(frozen=True)
class DNGOAnalysisConfig:
  """What the protocol runs on.

  Attributes:
    space: 'nb101' or 'nb201'.
    encoder: `pretrained.load` argument (shipped name, weights file or workdir).
    benchmark: the shared CSV.
    dataset: NB201 dataset ('cifar10', 'cifar100', 'imagenet16'); NB101: 'cifar10'.
    target: the accuracy column predicted: 'valid' or 'test' (NB101 subset: 'valid' only).
    out: output folder.
    protocol: `dngo_predictive.ProtocolConfig`.
  """

  space: str = "nb101"
  encoder: str = "nb101"
  benchmark: str = csv_data.SHARED_CSV["nb101"]
  dataset: str = "cifar10"
  target: Literal["valid", "test"] = "valid"
  out: str = "results/analysis/nb101_dngo"
  protocol: dngo_predictive.ProtocolConfig = dataclasses.field(
    default_factory=dngo_predictive.ProtocolConfig
  )


def dngo_analysis_config(space: str = "nb101") -> DNGOAnalysisConfig:
  """The paper's predictive protocol on a space: the shipped encoder, the shared CSV, CIFAR-10.

  Args:
    space: 'nb101' (the paper's: the NB101 subset) or 'nb201'.

  Returns:
    `DNGOAnalysisConfig`'s defaults with the space's encoder, CSV and out folder.
  """
  if space not in csv_data.SHARED_CSV:
    raise ValueError(
      f"no DNGO protocol for space {space!r}; expected one of {tuple(csv_data.SHARED_CSV)}"
    )
  return DNGOAnalysisConfig(
    space=space,
    encoder=space,
    benchmark=csv_data.SHARED_CSV[space],
    out=f"results/analysis/{space}_dngo",
  )


def load_cells(config: DNGOAnalysisConfig) -> dict[str, Any]:
  """{'adjacency' int8 [N, n, n], 'ops' int8 [N, n, d], 'y' float64 [N] fractions, 'ids', 'column'}.

  Cells without a finite target are dropped.

  Raises:
    ValueError: for an unknown space or target, or a target the table does not have.
  """
  if config.space not in csv_data.ANALYSIS_SPACES:
    raise ValueError(f"no DNGO protocol for space {config.space!r} (nb101, nb201)")
  table = csv_data.read_analysis_table(config.benchmark, config.space, config.dataset)
  if config.target not in ("valid", "test"):
    raise ValueError(f"target must be 'valid' or 'test', got {config.target!r}")
  y = np.asarray(table.valid_acc if config.target == "valid" else table.test_acc, np.float64)
  column = table.meta.get("reward" if config.target == "valid" else "test")
  keep = np.isfinite(y)
  if not keep.any():
    raise ValueError(f"{config.benchmark}: no finite {config.target} accuracy ({column})")
  return {
    "adjacency": np.asarray(table.adjacency[keep], np.int8),
    "ops": np.asarray(table.ops[keep], np.int8),
    "y": y[keep],
    "ids": np.asarray(table.ids)[keep],
    "column": column,
  }


def run_dngo_analysis(
  config: DNGOAnalysisConfig, command: str | None = None, log: Callable[[str], None] | None = print
) -> dict[str, Any]:
  """Runs the protocol; writes `<out>/dngo_protocol.json` and PNGs; returns the JSON content."""
  log = log or (lambda _: None)
  t0 = time.perf_counter()
  cells = load_cells(config)
  enc = pretrained.load(config.encoder)
  if enc.space != config.space:
    raise ValueError(f"encoder {config.encoder!r} is of space {enc.space!r}, not {config.space!r}")
  adj, ops, y = cells["adjacency"], cells["ops"], cells["y"]
  log(
    f"{config.space} {config.dataset}: {len(y):,} cells, target {cells['column']} "
    f"(mean {100 * y.mean():.2f}%, > {config.protocol.threshold}: {int((y > config.protocol.threshold).sum()):,})"
  )
  feats: dict[str, np.ndarray] = {}
  if "arch2vec" in config.protocol.encodings:
    feats["arch2vec"] = enc.embed((adj, ops))
  if "arch2vec_nodes" in config.protocol.encodings:
    feats["arch2vec_nodes"] = features.node_features(enc, adj, ops)
  if "onehot" in config.protocol.encodings:
    feats["onehot"] = predictive.onehot_features(adj, ops)
  res = dngo_predictive.run_protocol(feats, adj, ops, y, config.protocol, log)
  os.makedirs(config.out, exist_ok=True)
  tag = f"{config.space}_{config.dataset}_{config.target}"
  thr = config.protocol.threshold
  plots.plot_protocol(
    os.path.join(config.out, f"dngo_metrics_{tag}.png"),
    res["summary"],
    f"{config.space} {config.dataset}: DNGO protocol, held-out {cells['column']} "
    f"({res['num_heldout']:,} cells, {config.protocol.num_seeds} seeds)",
    thr,
  )
  plots.plot_protocol_scatter(
    os.path.join(config.out, f"dngo_scatter_{tag}.png"),
    res["scatter"],
    f"{config.space} {config.dataset}: {max(config.protocol.train_sizes)} training cells, "
    f"seed 0 (grey: true <= {thr:g})",
    thr,
  )
  result = {
    "command": command,
    "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
    "encoder": {"name": config.encoder, "source": enc.meta.get("source"), "space": enc.space},
    "device": machine.machine_info(),
    "target": cells["column"],
    "num_cells": len(y),
    "num_heldout": res["num_heldout"],
    "records": res["records"],
    "summary": res["summary"],
    "seconds": time.perf_counter() - t0,
  }
  path = os.path.join(config.out, f"dngo_protocol_{tag}.json")
  fileio.atomic_write_json(path, result)
  log(f"wrote {path} ({result['seconds']:.0f}s)")
  return result
