"""Adds the methods of one experiment folder of launch/search.py to another (traces, summary, curves).

  python launch/merge_runs.py --source results/search/supervised/nb201/cifar10 \
      --workdir results/search/shipped/nb201/cifar10

The same as having run the source's methods with `launch/search.py --merge
--workdir <workdir>`: both must be the same experiment (space, dataset, reward,
budget, root seed, optimum); a method in both is replaced by the source's. All
logic is in `arch2vec_jax.search.experiment.merge_runs`.
"""

from absl import app, flags

from arch2vec_jax import cli
from arch2vec_jax.search import experiment

FLAGS = flags.FLAGS
flags.DEFINE_string("source", None, "Experiment folder whose methods are added.")
flags.DEFINE_string("workdir", None, "Experiment folder they are added to.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  missing = [f"--{n}" for n in ("source", "workdir") if not FLAGS[n].value]
  if missing:
    raise app.UsageError(f"{', '.join(missing)} must be given")
  experiment.merge_runs(FLAGS.source, FLAGS.workdir, cli.command_line("launch/merge_runs.py"))


if __name__ == "__main__":
  cli.run(main)
