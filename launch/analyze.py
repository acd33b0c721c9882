"""Regenerates every analysis number and picture of a space from a pre-training workdir.

  python launch/analyze.py --space nb201 --workdir workdir/nb201 \
      --benchmark ../shared/data/nb201_accuracies.csv --dataset cifar10,cifar100,imagenet16 \
      --out results/analysis/nb201 --search_results results/search
  python launch/analyze.py --space nb101 --workdir workdir/nb101 \
      --benchmark ../shared/data/nb101_subset.csv --dataset cifar10 --out results/analysis/nb101 \
      --search_results results/search

Writes `<out>/analysis.json` (the command, config, every split's metrics, summaries,
smoothness curves, nearest-neighbour gaps) and PNGs. All logic is in
`arch2vec_jax.analysis.pipeline`. `--encodings` may include `arch2vec_nodes` (the
per-node mu of `--encoder`, concatenated, instead of the 16-d mean pooling).

The paper's predictive protocol (DNGO predictions against held-out accuracy, with and
without the > 0.8 filter; `arch2vec_jax.analysis.dngo_pipeline`):

  python launch/analyze.py --protocol dngo --space nb101 --encoder nb101 \
      --out results/analysis/nb101_dngo --num_seeds 5

Flags not given take the values of the space's config (`pipeline.analysis_config(--space)`,
`dngo_pipeline.dngo_analysis_config(--space)`), so each default is written once, in the
configs: e.g. the NB201 analysis covers all three datasets unless `--dataset` says otherwise.
"""

import dataclasses

from absl import app, flags

from arch2vec_jax import cli
from arch2vec_jax.analysis import dngo_pipeline, dngo_predictive, pipeline

FLAGS = flags.FLAGS
# Every default below is read from the configs (`pipeline.analysis_config(--space)`,
# `dngo_pipeline.dngo_analysis_config(--space)`); a flag not given keeps the config's value.
_REG = pipeline.AnalysisConfig()
_DNGO = dngo_pipeline.DNGOAnalysisConfig()


def _strs(values) -> list[str]:
  return [str(v) for v in values]


flags.DEFINE_enum(
  "protocol",
  "regression",
  ["regression", "dngo"],
  "regression: BLR / GP on each encoding (analysis.json); dngo: the paper's DNGO protocol.",
)
flags.DEFINE_enum("space", _REG.space, ["nb201", "nb101"], "Search space.")
flags.DEFINE_string(
  "workdir",
  None,
  "Pre-training workdir (embeddings.npz, metrics.json); required by --protocol regression.",
)
flags.DEFINE_string(
  "encoder",
  None,
  "pretrained.load argument for per-node features and the DNGO protocol "
  "(default: the shipped <space> weights).",
)
flags.DEFINE_string("benchmark", None, "Shared CSV (default: csv_data.SHARED_CSV[<space>]).")
flags.DEFINE_list(
  "dataset",
  None,
  "Datasets (NB201: cifar10, cifar100, imagenet16; NB101: cifar10); default: the space's "
  "(pipeline.analysis_config; --protocol dngo: the first, default cifar10).",
)
flags.DEFINE_string(
  "out", None, "Output folder (default results/analysis/<space>, dngo: <space>_dngo)."
)
flags.DEFINE_list("train_sizes", _strs(_REG.train_sizes), "Training-set sizes.")
flags.DEFINE_integer("num_splits", _REG.num_splits, "Random splits per size.")
flags.DEFINE_list("models", list(_REG.models), "Regression models.")
flags.DEFINE_list("encodings", list(_REG.encodings), "Encodings compared.")
flags.DEFINE_list(
  "supervised_sizes",
  _strs(_REG.supervised_sizes),
  "Sizes at which the supervised encoder is trained.",
)
flags.DEFINE_integer(
  "supervised_max_steps", _REG.supervised.max_steps, "Upper bound on supervised training steps."
)
flags.DEFINE_integer(
  "supervised_epochs",
  _REG.supervised.epochs,
  "Supervised training epochs (before the step bounds).",
)
flags.DEFINE_integer(
  "gp_hyper_subset", _REG.gp_hyper_subset, "Training points used to fit the GP hyperparameters."
)
flags.DEFINE_integer("gp_steps", _REG.gp_steps, "Adam steps on the GP log marginal likelihood.")
flags.DEFINE_integer(
  "smooth_cells", _REG.smooth_cells, "Cells whose pairs enter the smoothness curves."
)
flags.DEFINE_string(
  "search_results",
  _REG.search_results,
  "Folder with <space>/<dataset>/traces/*.npz from launch/search.py "
  "(default: <workdir>/search, your own searches; results/search: the committed ones).",
)
flags.DEFINE_integer("seed", _REG.seed, "Seed.")
flags.DEFINE_list(
  "tsne_datasets",
  list(_REG.tsne_datasets),
  "Datasets with t-SNE pictures (needs scikit-learn: "
  "pip install -e .[analysis]; skipped with a message when missing); empty: none.",
)
flags.DEFINE_integer("tsne_cells", _REG.tsne_cells, "Held-out cells in each t-SNE picture.")
# --protocol dngo
flags.DEFINE_enum(
  "target",
  _DNGO.target,
  ["valid", "test"],
  "DNGO protocol target column (NB101 subset: valid only).",
)
flags.DEFINE_list(
  "protocol_sizes", _strs(_DNGO.protocol.train_sizes), "DNGO protocol training sizes."
)
flags.DEFINE_integer("num_seeds", _DNGO.protocol.num_seeds, "DNGO protocol seeds.")
flags.DEFINE_list("protocol_encodings", list(_DNGO.protocol.encodings), "DNGO protocol encodings.")
flags.DEFINE_list(
  "surrogates",
  list(_DNGO.protocol.surrogates),
  f"Surrogates on the unsupervised encodings {dngo_predictive.SURROGATES}.",
)
flags.DEFINE_float(
  "threshold",
  _DNGO.protocol.threshold,
  "DNGO protocol filter: held-out cells with true accuracy above it.",
)


def _given(**fields) -> dict:
  """The fields whose flag was given on the command line (flag name = key), with their values."""
  return {k: v for k, v in fields.items() if FLAGS[k].present}


def _dngo_config() -> dngo_pipeline.DNGOAnalysisConfig:
  base = dngo_pipeline.dngo_analysis_config(FLAGS.space)
  protocol = _given(
    num_seeds=FLAGS.num_seeds,
    surrogates=tuple(FLAGS.surrogates),
    threshold=FLAGS.threshold,
    seed=FLAGS.seed,
  )
  if FLAGS["protocol_sizes"].present:
    protocol["train_sizes"] = tuple(int(s) for s in FLAGS.protocol_sizes)
  if FLAGS["protocol_encodings"].present:
    protocol["encodings"] = tuple(FLAGS.protocol_encodings)
  top = _given(encoder=FLAGS.encoder, benchmark=FLAGS.benchmark, target=FLAGS.target, out=FLAGS.out)
  if FLAGS["dataset"].present:
    top["dataset"] = FLAGS.dataset[0]
  return dataclasses.replace(base, protocol=dataclasses.replace(base.protocol, **protocol), **top)


def _regression_config() -> pipeline.AnalysisConfig:
  base = pipeline.analysis_config(FLAGS.space)
  given = _given(
    workdir=FLAGS.workdir,
    benchmark=FLAGS.benchmark,
    out=FLAGS.out,
    num_splits=FLAGS.num_splits,
    gp_hyper_subset=FLAGS.gp_hyper_subset,
    gp_steps=FLAGS.gp_steps,
    smooth_cells=FLAGS.smooth_cells,
    search_results=FLAGS.search_results,
    seed=FLAGS.seed,
    encoder=FLAGS.encoder,
    tsne_cells=FLAGS.tsne_cells,
    train_sizes=tuple(int(s) for s in FLAGS.train_sizes),
    models=tuple(FLAGS.models),
    encodings=tuple(FLAGS.encodings),
    supervised_sizes=tuple(int(s) for s in FLAGS.supervised_sizes),
    tsne_datasets=tuple(d for d in FLAGS.tsne_datasets if d),
  )
  if FLAGS["dataset"].present:
    given["datasets"] = tuple(FLAGS.dataset)
  sup = {
    field: FLAGS[f"supervised_{field}"].value
    for field in ("epochs", "max_steps")
    if FLAGS[f"supervised_{field}"].present
  }
  return dataclasses.replace(base, supervised=dataclasses.replace(base.supervised, **sup), **given)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  command = cli.command_line("launch/analyze.py")
  if FLAGS.protocol == "dngo":
    dngo_pipeline.run_dngo_analysis(_dngo_config(), command=command)
    return
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required by --protocol regression")
  pipeline.run_analysis(_regression_config(), command=command)


if __name__ == "__main__":
  cli.run(main)
