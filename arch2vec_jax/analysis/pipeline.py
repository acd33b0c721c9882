"""Every analysis of one space, end to end: numbers to `analysis.json`, pictures to PNGs.

  result = run_analysis(AnalysisConfig(space="nb201", workdir="workdir/nb201",
                                       benchmark="../shared/data/nb201_accuracies.csv",
                                       datasets=("cifar10",), out="results/analysis/nb201"))

Per dataset: the predictive experiment (arch2vec / supervised / one-hot, optionally the
per-node arch2vec features 'arch2vec_nodes', x BLR / GP x training sizes x splits),
smoothness (latent distance per edit distance, nearest-neighbour accuracy gaps), the PCA
picture and (scikit-learn installed) the t-SNE picture; once per space: the pre-training curves (metrics.json of
the workdir) and, where `results/search/<space>/<dataset>/traces/` exist, regret curves and
final-regret CDFs. `analysis.json` is rewritten after every dataset, so a stopped run keeps
what it finished.

No leakage: the supervised embedding used by the smoothness, nearest-neighbour and picture
analyses is the first split's encoder of the largest supervised size; those analyses run,
for every encoding alike, on the cells outside that encoder's training set only
(`heldout.heldout_cells`, guarded by `heldout.check_heldout`). The predictive experiment
scores every split on its own held-out cells.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio, machine, pretrained, spaces
from arch2vec_jax.analysis import features as features_lib
from arch2vec_jax.analysis import heldout, plots, predictive, regret, smoothness, supervised, tsne
from arch2vec_jax.benchmarks import csv_data
from arch2vec_jax.search.runner import match_embeddings

__all__ = ["AnalysisConfig", "analysis_config", "load_data", "run_analysis"]


@dataclasses.dataclass(frozen=True)
class AnalysisConfig:
  """What to analyse and how much.

  Attributes:
    space: 'nb201' or 'nb101'.
    workdir: pre-training workdir (embeddings.npz, metrics.json).
    benchmark: the shared CSV of the space.
    datasets: NB201 datasets (NB101: 'cifar10').
    out: output folder.
    train_sizes: training-set sizes of the predictive experiment.
    num_splits: random splits per size.
    models: regression models ('blr', 'gp').
    encodings: 'arch2vec', 'supervised', 'onehot', 'arch2vec_nodes' (the per-node mu of
      `encoder`, concatenated: `features.node_features`).
    encoder: `pretrained.load` argument for 'arch2vec_nodes' (None: `workdir`).
    supervised_sizes: sizes at which the supervised embedding is trained (others skip it).
    gp_hyper_subset: the GP's hyperparameters are fitted on at most this many random
      training cells (`gp.gp_fit`).
    gp_steps: Adam steps on the GP's log marginal likelihood.
    gp_cholesky_max: above this many training cells the GP's posterior weights come from CG.
    smooth_cells: cells (random subset) whose pairs enter the smoothness curves.
    search_results: folder with `<space>/<dataset>/traces/*.npz` (launch/search.py
      `--workdir`s); None: `<workdir>/search`, the user's own searches (the
      committed ones are under `results/search`).
    seed: seed of splits, subsets and training.
    supervised: `supervised.SupervisedConfig`.
    tsne_datasets: datasets that get t-SNE pictures (scikit-learn; skipped with a message
      when missing).
    tsne_cells: held-out cells (random subset) in each t-SNE picture.
  """

  space: str = "nb201"
  workdir: str = "workdir/nb201"
  benchmark: str = csv_data.SHARED_CSV["nb201"]
  datasets: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
  out: str = "results/analysis/nb201"
  train_sizes: tuple[int, ...] = (100, 1000, 10000)
  num_splits: int = 3
  models: tuple[str, ...] = ("blr", "gp")
  encodings: tuple[str, ...] = ("arch2vec", "supervised", "onehot")
  supervised_sizes: tuple[int, ...] = (100, 1000, 10000)
  gp_hyper_subset: int = 500
  gp_steps: int = 80
  gp_cholesky_max: int = 2000
  smooth_cells: int = 5000
  search_results: str | None = None
  seed: int = 0
  supervised: supervised.SupervisedConfig = supervised.SupervisedConfig()
  encoder: str | None = None
  tsne_datasets: tuple[str, ...] = ("cifar10",)
  tsne_cells: int = 5000


def analysis_config(space: str = "nb201") -> AnalysisConfig:
  """The analysis of a space: `AnalysisConfig`'s defaults with the space's workdir, CSV, datasets, out.

  Args:
    space: 'nb201' (every NB201 dataset) or 'nb101' (the NB101 subset, CIFAR-10).

  Returns:
    The config; `dataclasses.replace` it to change fields (`launch/analyze.py` does so
    for the flags given).
  """
  if space not in csv_data.SHARED_CSV:
    raise ValueError(
      f"no analysis of space {space!r}; expected one of {tuple(csv_data.SHARED_CSV)}"
    )
  return AnalysisConfig(
    space=space,
    workdir=f"workdir/{space}",
    benchmark=csv_data.SHARED_CSV[space],
    datasets=spaces.get(space).datasets,
    out=f"results/analysis/{space}",
  )


def load_data(config: AnalysisConfig, dataset: str) -> dict[str, Any]:
  """The benchmark table of a dataset, accuracies in percent, and the matched arch2vec embeddings."""
  if config.space not in csv_data.ANALYSIS_SPACES:
    raise ValueError(f"no analysis for space {config.space!r}")
  table = csv_data.read_analysis_table(config.benchmark, config.space, dataset)
  emb = embed_lib.load_embeddings(os.path.join(config.workdir, "embeddings.npz"))
  arch2vec = match_embeddings(table.ids, emb["ids"], emb["embeddings"])
  keep = np.isfinite(table.valid_acc)
  return {
    "table": table,
    "y": 100.0 * table.valid_acc[keep],
    "arch2vec": arch2vec[keep],
    "adjacency": np.asarray(table.adjacency[keep], np.int8),
    "ops": np.asarray(table.ops[keep], np.int8),
    "ids": table.ids[keep],
    "reward": table.meta.get("reward"),
  }


def _codes(config: AnalysisConfig, data: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
  """The space's edit-distance codes and groups of the cells (`SearchSpace.edit_codes`)."""
  return spaces.get(config.space).edit_codes(data["ids"], data["adjacency"], data["ops"])


def _analyse_dataset(
  config: AnalysisConfig,
  dataset: str,
  log: Callable[[str], None],
  save_partial: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
  """One dataset's analysis: the predictive records, then smoothness and pictures (run_analysis)."""
  t0 = time.perf_counter()
  data = load_data(config, dataset)
  y = data["y"]
  log(
    f"[{dataset}] {len(y):,} cells, target {data['reward']} "
    f"(mean {y.mean():.2f}%, max {y.max():.2f}%)"
  )
  fixed = {
    "arch2vec": data["arch2vec"],
    "onehot": predictive.onehot_features(data["adjacency"], data["ops"]),
  }
  if "arch2vec_nodes" in config.encodings:
    fixed["arch2vec_nodes"] = _node_features(config, data)
  records, sup_info, sup = _predictive_records(config, dataset, data, fixed, log, save_partial)
  neighbourhood = _neighbourhood(config, dataset, data, fixed, sup, log)
  rows = predictive.summarize(records)
  for metric in ("rmse", "pearson", "kendall"):
    plots.plot_predictive(
      os.path.join(config.out, f"predictive_{metric}_{dataset}.png"),
      rows,
      metric,
      f"{config.space} {dataset}: held-out {metric}",
    )
  return {
    "num_cells": len(y),
    "target": data["reward"],
    "records": records,
    "summary": rows,
    "supervised": sup_info,
    **neighbourhood,
    "seconds": time.perf_counter() - t0,
  }


def _supervised_encoders(
  config: AnalysisConfig,
  dataset: str,
  data: dict[str, Any],
  train_idx: np.ndarray,
  key: jax.Array,
  log: Callable[[str], None],
) -> tuple[np.ndarray, dict[str, Any]]:
  """One supervised encoder per split on `train_idx` [S, size]: (embeddings [S, N, latent], info)."""
  t1 = time.perf_counter()
  res = supervised.train_supervised(
    data["adjacency"], data["ops"], data["y"], train_idx, key, config.supervised
  )
  info = {
    "steps": res["steps"],
    "final_loss_mean": float(res["losses"][:, -50:].mean()),
    "train_s": time.perf_counter() - t1,
  }
  log(
    f"[{dataset}] supervised encoders, {train_idx.shape[1]} cells x {config.num_splits} splits: "
    f"{res['steps']} steps, final loss {info['final_loss_mean']:.3f} ({info['train_s']:.0f}s)"
  )
  return res["embeddings"], info


def _predictive_records(
  config: AnalysisConfig,
  dataset: str,
  data: dict[str, Any],
  fixed: dict[str, np.ndarray],
  log: Callable[[str], None],
  save_partial: Callable[[dict[str, Any]], None] | None,
) -> tuple[list[dict[str, Any]], dict[int, Any], tuple[np.ndarray, np.ndarray] | None]:
  """Every (train size, split, encoding, model) fit on `fixed` encodings [N, D] (and supervised).

  Returns:
    (the records, the supervised encoders' info per size, None or (the last supervised size's
    first-split embeddings [N, latent], its training cells [size]): smoothness and pictures
    evaluate on the other cells only).
  """
  y, n = data["y"], len(data["y"])
  gp_kwargs = {
    "hyper_subset": config.gp_hyper_subset,
    "steps": config.gp_steps,
    "cholesky_max": config.gp_cholesky_max,
  }
  key = jax.random.PRNGKey(config.seed)
  records, sup_info, sup = [], {}, None
  for size in config.train_sizes:
    if size >= n:
      log(f"[{dataset}] skip train size {size} >= {n} cells")
      continue
    perms = predictive.make_splits(n, size, config.num_splits, config.seed)
    feats = {e: fixed[e] for e in config.encodings if e in fixed}
    per_split_sup = None
    if "supervised" in config.encodings and size in config.supervised_sizes:
      per_split_sup, sup_info[size] = _supervised_encoders(
        config, dataset, data, perms[:, :size], jax.random.fold_in(key, size), log
      )
      sup = (per_split_sup[0], perms[0, :size])
    for s in range(config.num_splits):
      split_feats = dict(feats)
      if per_split_sup is not None:
        split_feats["supervised"] = per_split_sup[s]
      for enc in [e for e in config.encodings if e in split_feats]:
        res = predictive.evaluate_split(
          split_feats[enc],
          y,
          perms[s],
          size,
          jax.random.fold_in(key, 1000 + s),
          config.models,
          gp_kwargs,
        )
        for model, m in res.items():
          records.append(
            {"dataset": dataset, "encoding": enc, "model": model, "train_size": size, "split": s}
            | m
          )
          log(
            f"[{dataset}] n={size:>5} split {s} {enc:>10} {model}: RMSE {m['rmse']:.3f} "
            f"Pearson {m['pearson']:.3f} Spearman {m['spearman']:.3f} "
            f"Kendall {m['kendall']:.3f} ({m['fit_s']:.1f}s)"
          )
    if save_partial is not None:  # a stopped run keeps every finished training size
      summary = predictive.summarize(records)
      save_partial(
        {"partial": True, "records": records, "summary": summary, "supervised": sup_info}
      )
  return records, sup_info, sup


def _neighbourhood(
  config: AnalysisConfig,
  dataset: str,
  data: dict[str, Any],
  fixed: dict[str, np.ndarray],
  sup: tuple[np.ndarray, np.ndarray] | None,
  log: Callable[[str], None],
) -> dict[str, Any]:
  """Smoothness, nearest-neighbour gaps, PCA and t-SNE pictures, on the cells outside the
  supervised encoder's training cells (`sup`: its embeddings [N, latent], those cells [size]).

  Returns:
    {"smoothness", "nearest_neighbour", "neighbourhood_cells", "tsne"} of analysis.json.
  """
  y, sup_train = data["y"], None if sup is None else sup[1]
  codes, group = _codes(config, data)
  ev = heldout.heldout_cells(len(y), sup_train)
  heldout.check_heldout(ev, sup_train, "smoothness / nearest neighbour")
  embs = {"arch2vec": data["arch2vec"]}
  if sup is not None:
    embs["supervised"] = sup[0]
  if "arch2vec_nodes" in fixed:
    embs["arch2vec_nodes"] = fixed["arch2vec_nodes"]
  y_ev, codes_ev, group_ev = y[ev], codes[ev], None if group is None else group[ev]
  smooth = {
    name: smoothness.distance_by_edit(
      e[ev], codes_ev, y_ev, group_ev, max_cells=config.smooth_cells, seed=config.seed
    )
    for name, e in embs.items()
  }
  nn_gap = {
    name: smoothness.nearest_neighbour_gap(e[ev], y_ev, seed=config.seed)
    for name, e in {**embs, "onehot": fixed["onehot"]}.items()
  }
  excluded = 0 if sup_train is None else len(sup_train)
  cells_info = {
    "cells": len(ev),
    "excluded_training_cells": excluded,
    "supervised_train_size": None if sup_train is None else len(sup_train),
    "split": 0,
  }
  log(
    f"[{dataset}] smoothness / nearest neighbour / pictures on {len(ev):,} cells outside the "
    f"supervised encoder's {excluded:,} training cells"
  )
  for name, c in smooth.items():
    log(
      f"[{dataset}] smoothness {name}: mean L2 by edit distance "
      + ", ".join(f"{e}:{m:.3f}" for e, m in zip(c["edit"], c["mean"]))
      + f" (monotone: {smoothness.monotone_increasing(c['mean'])}); "
      f"NN |acc gap| {nn_gap[name]['nn_gap_mean']:.3f} "
      f"vs random {nn_gap[name]['random_gap_mean']:.3f}"
    )
  plots.plot_distance_vs_edit(
    os.path.join(config.out, f"smoothness_{dataset}.png"),
    smooth,
    f"{config.space} {dataset}: latent distance vs edit distance "
    f"({smooth['arch2vec']['num_cells']} cells, all pairs)",
  )
  for name, e in embs.items():
    plots.plot_projection(
      os.path.join(config.out, f"pca_{name}_{dataset}.png"),
      e[ev],
      y_ev,
      f"{config.space} {dataset}: PCA of {name} embeddings ({len(ev):,} held-out cells)",
    )
  tsne_info = _tsne_pictures(config, dataset, {**embs, "onehot": fixed["onehot"]}, ev, y, log)
  return {
    "smoothness": {
      name: {**c, "monotone": smoothness.monotone_increasing(c["mean"])}
      for name, c in smooth.items()
    },
    "nearest_neighbour": nn_gap,
    "neighbourhood_cells": cells_info,
    "tsne": tsne_info,
  }


def _node_features(config: AnalysisConfig, data: dict[str, Any]) -> np.ndarray:
  """Per-node arch2vec features [N, n * latent] of the table's cells (encoder `config.encoder` or the workdir)."""
  enc = pretrained.load(config.encoder or config.workdir)
  feats = features_lib.node_features(enc, data["adjacency"], data["ops"])
  pooled = features_lib.pooled_from_nodes(feats, data["ops"].any(-1).sum(-1), enc.latent)
  gap = float(np.max(np.abs(pooled - data["arch2vec"]))) if len(pooled) else 0.0
  if gap > 1e-3:  # the per-node features must come from the encoder of the embeddings
    raise ValueError(
      f"encoder {config.encoder or config.workdir!r} does not match {config.workdir}/embeddings.npz "
      f"(pooled per-node features differ by {gap:.3g})"
    )
  return feats


def _tsne_pictures(
  config: AnalysisConfig,
  dataset: str,
  embs: dict[str, np.ndarray],
  ev: np.ndarray,
  y: np.ndarray,
  log: Callable[[str], None],
) -> dict[str, Any]:
  """t-SNE pictures of each embedding on one random subset of the held-out cells `ev`."""
  if dataset not in config.tsne_datasets:
    return {"skipped": f"{dataset} not in tsne_datasets"}
  if not tsne.available():
    msg = f"t-SNE skipped: scikit-learn is not installed ({tsne.INSTALL})"
    log(f"[{dataset}] {msg}")
    return {"skipped": msg}
  rng = np.random.default_rng([config.seed, 7])
  pick = np.sort(rng.choice(ev, min(config.tsne_cells, len(ev)), replace=False))
  info: dict[str, Any] = {
    "cells": len(pick),
    "method": "sklearn.manifold.TSNE (perplexity 30, PCA init)",
  }
  for name, e in embs.items():
    t1 = time.perf_counter()
    proj = tsne.tsne_2d(e[pick], seed=config.seed)
    plots.plot_points(
      os.path.join(config.out, f"tsne_{name}_{dataset}.png"),
      proj,
      y[pick],
      f"{config.space} {dataset}: t-SNE of {name} ({len(pick):,} held-out cells)",
      "t-SNE 1",
      "t-SNE 2",
    )
    info[name] = {"seconds": time.perf_counter() - t1}
    log(f"[{dataset}] t-SNE of {name}: {len(pick):,} cells ({info[name]['seconds']:.0f}s)")
  return info


def _reported_field(traces: dict[str, dict[str, np.ndarray]]) -> str:
  """What a search without summary.json reported: 'best_test' where its traces have test accuracies."""
  has_test = any(np.isfinite(t["best_test"]).any() for t in traces.values())
  return "best_test" if has_test else "best_valid"


def _search_plots(config: AnalysisConfig, log) -> dict[str, Any]:
  out = {}
  root = (
    config.search_results
    if config.search_results is not None
    else os.path.join(config.workdir, "search")
  )
  for dataset in config.datasets:
    folder = os.path.join(root, config.space, dataset)
    traces = regret.load_traces(folder) if os.path.isdir(folder) else {}
    if not traces:
      log(f"[{dataset}] no search traces in {folder}: regret plots skipped")
      continue
    summary_path = os.path.join(folder, "summary.json")
    summary = {}
    if os.path.exists(summary_path):
      with open(summary_path, encoding="utf-8") as f:
        summary = json.load(f)
    optimum = summary.get("optimum")
    field = summary.get("field") or _reported_field(traces)
    if optimum is None:  # the best value any run reached: a lower bound of the optimum
      optimum = max(
        float(np.nanmax(np.where(t["mask"], t[field], np.nan))) for t in traces.values()
      )
    optimum = optimum / 100.0 if optimum > 1.0 else optimum
    curves = {m: regret.regret_curve(t, optimum, field) for m, t in traces.items()}
    final = {m: regret.final_regret(t, optimum, field) for m, t in traces.items()}
    plots.plot_regret_curves(
      os.path.join(config.out, f"regret_{dataset}.png"), curves, f"{config.space} {dataset}: regret"
    )
    plots.plot_regret_cdf(
      os.path.join(config.out, f"regret_cdf_{dataset}.png"),
      final,
      f"{config.space} {dataset}: final regret over seeds",
    )
    out[dataset] = {"optimum": optimum, "final_regret": regret.summarize_final(final)}
    log(f"[{dataset}] search traces of {sorted(traces)}: regret plots written")
  return out


def run_analysis(
  config: AnalysisConfig, command: str | None = None, log: Callable[[str], None] | None = print
) -> dict[str, Any]:
  """Runs every analysis of `config`; writes `<out>/analysis.json` and the PNGs; returns the JSON content."""
  log = log or (lambda _: None)
  t0 = time.perf_counter()
  os.makedirs(config.out, exist_ok=True)
  result: dict[str, Any] = {
    "command": command,
    "config": json.loads(json.dumps(dataclasses.asdict(config), default=str)),
    "device": machine.machine_info(),
    "projection": "PCA (NumPy SVD) and, with scikit-learn (the optional 'analysis' extra), t-SNE",
    "datasets": {},
  }
  path = os.path.join(config.out, "analysis.json")
  metrics_path = os.path.join(config.workdir, "metrics.json")
  if os.path.exists(metrics_path):
    with open(metrics_path, encoding="utf-8") as f:
      pre = json.load(f)
    plots.plot_pretrain_curves(
      os.path.join(config.out, "pretrain_curves.png"),
      pre,
      f"{config.space} pre-training ({pre.get('command', '')})",
    )
    result["pretrain"] = {"command": pre.get("command"), "summary": pre.get("summary")}
  for dataset in config.datasets:

    def save_partial(part, dataset=dataset):
      result["datasets"][dataset] = part
      fileio.atomic_write_json(path, result)

    result["datasets"][dataset] = _analyse_dataset(config, dataset, log, save_partial)
    result["seconds"] = time.perf_counter() - t0
    fileio.atomic_write_json(path, result)
  result["search"] = _search_plots(config, log)
  result["seconds"] = time.perf_counter() - t0
  fileio.atomic_write_json(path, result)
  log(f"wrote {path} and PNGs in {config.out} ({result['seconds']:.0f}s)")
  return result
