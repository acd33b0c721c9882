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
from arch2vec_jax.analysis import dngo_pipeline, pipeline
from arch2vec_jax.benchmarks import csv_data

FLAGS = flags.FLAGS
# The config fields that are not flags of their own: `--space` (declared below, it picks the
# configs), the supervised encoder's architecture, the DNGO protocol's BO and joint settings,
# and the DNGO dataset (the first of `--dataset`).
REGRESSION_FLAGS = {
  "rename": {"datasets": "dataset", "supervised": "supervised_"},
  "skip": ("space", "supervised.model"),
}
DNGO_FLAGS = {
  "rename": {"protocol.train_sizes": "protocol_sizes", "protocol.encodings": "protocol_encodings"},
  "skip": ("space", "dataset", "protocol.bo", "protocol.joint"),
}

flags.DEFINE_enum(
  "protocol",
  "regression",
  ["regression", "dngo"],
  "regression: BLR / GP on each encoding (analysis.json); dngo: the paper's DNGO protocol.",
)
flags.DEFINE_enum(
  "space",
  pipeline.AnalysisConfig.space,
  list(csv_data.ANALYSIS_SPACES),
  "Search space (picks the configs).",
)
_REGRESSION = cli.define_config_flags(pipeline.AnalysisConfig(), **REGRESSION_FLAGS)
_DNGO = cli.define_config_flags(
  dngo_pipeline.DNGOAnalysisConfig(), **DNGO_FLAGS, shared=_REGRESSION
)
flags.adopt_module_key_flags(cli)


def _dngo_config() -> dngo_pipeline.DNGOAnalysisConfig:
  config = cli.config_from_flags(dngo_pipeline.dngo_analysis_config(FLAGS.space), **DNGO_FLAGS)
  if FLAGS["dataset"].present:
    config = dataclasses.replace(config, dataset=FLAGS.dataset[0])
  return config


def _regression_config() -> pipeline.AnalysisConfig:
  return cli.config_from_flags(pipeline.analysis_config(FLAGS.space), **REGRESSION_FLAGS)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  command = cli.command_line("launch/analyze.py")
  if FLAGS.protocol == "dngo":
    dngo_pipeline.run_dngo_analysis(_dngo_config(), command=command)
    return
  if not FLAGS["workdir"].present:
    raise app.UsageError("--workdir is required by --protocol regression")
  pipeline.run_analysis(_regression_config(), command=command)


if __name__ == "__main__":
  cli.run(main)
