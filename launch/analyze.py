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
"""

from absl import app, flags

from arch2vec_jax import cli
from arch2vec_jax.analysis import dngo_pipeline, dngo_predictive, pipeline, supervised

FLAGS = flags.FLAGS
flags.DEFINE_enum(
  "protocol",
  "regression",
  ["regression", "dngo"],
  "regression: BLR / GP on each encoding (analysis.json); dngo: the paper's DNGO protocol.",
)
flags.DEFINE_enum("space", "nb201", ["nb201", "nb101"], "Search space.")
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
flags.DEFINE_string(
  "benchmark", None, "Shared CSV (default: ../shared/data/<nb201_accuracies|nb101_subset>.csv)."
)
flags.DEFINE_list(
  "dataset", ["cifar10"], "Datasets (NB201: cifar10, cifar100, imagenet16; NB101: cifar10)."
)
flags.DEFINE_string("out", None, "Output folder (default results/analysis/<space>).")
flags.DEFINE_list("train_sizes", ["100", "1000", "10000"], "Training-set sizes.")
flags.DEFINE_integer("num_splits", 3, "Random splits per size.")
flags.DEFINE_list("models", ["blr", "gp"], "Regression models.")
flags.DEFINE_list("encodings", ["arch2vec", "supervised", "onehot"], "Encodings compared.")
flags.DEFINE_list(
  "supervised_sizes", ["100", "1000", "10000"], "Sizes at which the supervised encoder is trained."
)
flags.DEFINE_integer("supervised_max_steps", 1500, "Upper bound on supervised training steps.")
flags.DEFINE_integer(
  "supervised_epochs", 20, "Supervised training epochs (before the step bounds)."
)
flags.DEFINE_integer("gp_hyper_subset", 500, "Training points used to fit the GP hyperparameters.")
flags.DEFINE_integer("gp_steps", 80, "Adam steps on the GP log marginal likelihood.")
flags.DEFINE_integer("smooth_cells", 5000, "Cells whose pairs enter the smoothness curves.")
flags.DEFINE_string(
  "search_results",
  None,
  "Folder with <space>/<dataset>/traces/*.npz from launch/search.py "
  "(default: <workdir>/search, your own searches; results/search: the committed ones).",
)
flags.DEFINE_integer("seed", 0, "Seed.")
flags.DEFINE_list(
  "tsne_datasets",
  ["cifar10"],
  "Datasets with t-SNE pictures (needs scikit-learn: "
  "pip install -e .[analysis]; skipped with a message when missing); empty: none.",
)
flags.DEFINE_integer("tsne_cells", 5000, "Held-out cells in each t-SNE picture.")
# --protocol dngo
flags.DEFINE_enum(
  "target", "valid", ["valid", "test"], "DNGO protocol target column (NB101 subset: valid only)."
)
flags.DEFINE_list(
  "protocol_sizes", ["16", "32", "128", "256", "512", "1000"], "DNGO protocol training sizes."
)
flags.DEFINE_integer("num_seeds", 5, "DNGO protocol seeds.")
flags.DEFINE_list("protocol_encodings", list(dngo_predictive.ENCODINGS), "DNGO protocol encodings.")
flags.DEFINE_list(
  "surrogates", ["dngo"], f"Surrogates on the unsupervised encodings {dngo_predictive.SURROGATES}."
)
flags.DEFINE_float(
  "threshold", 0.8, "DNGO protocol filter: held-out cells with true accuracy above it."
)

_CSV = {"nb201": "../shared/data/nb201_accuracies.csv", "nb101": "../shared/data/nb101_subset.csv"}


def _dngo_main() -> None:
  space = FLAGS.space
  config = dngo_pipeline.DNGOAnalysisConfig(
    space=space,
    encoder=FLAGS.encoder or space,
    benchmark=FLAGS.benchmark or _CSV[space],
    dataset=FLAGS.dataset[0],
    target=FLAGS.target,
    out=FLAGS.out or f"results/analysis/{space}_dngo",
    protocol=dngo_predictive.ProtocolConfig(
      train_sizes=tuple(int(s) for s in FLAGS.protocol_sizes),
      num_seeds=FLAGS.num_seeds,
      encodings=tuple(FLAGS.protocol_encodings),
      surrogates=tuple(FLAGS.surrogates),
      threshold=FLAGS.threshold,
      seed=FLAGS.seed,
    ),
  )
  dngo_pipeline.run_dngo_analysis(config, command=cli.command_line("launch/analyze.py"))


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if FLAGS.protocol == "dngo":
    _dngo_main()
    return
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required by --protocol regression")
  config = pipeline.AnalysisConfig(
    space=FLAGS.space,
    workdir=FLAGS.workdir,
    benchmark=FLAGS.benchmark or _CSV[FLAGS.space],
    datasets=tuple(FLAGS.dataset),
    out=FLAGS.out or f"results/analysis/{FLAGS.space}",
    train_sizes=tuple(int(s) for s in FLAGS.train_sizes),
    num_splits=FLAGS.num_splits,
    models=tuple(FLAGS.models),
    encodings=tuple(FLAGS.encodings),
    supervised_sizes=tuple(int(s) for s in FLAGS.supervised_sizes),
    gp_hyper_subset=FLAGS.gp_hyper_subset,
    gp_steps=FLAGS.gp_steps,
    smooth_cells=FLAGS.smooth_cells,
    search_results=FLAGS.search_results,
    seed=FLAGS.seed,
    supervised=supervised.SupervisedConfig(
      epochs=FLAGS.supervised_epochs, max_steps=FLAGS.supervised_max_steps
    ),
    encoder=FLAGS.encoder,
    tsne_datasets=tuple(d for d in FLAGS.tsne_datasets if d),
    tsne_cells=FLAGS.tsne_cells,
  )
  command = cli.command_line("launch/analyze.py")
  pipeline.run_analysis(config, command=command)


if __name__ == "__main__":
  cli.run(main)
