"""Searches a benchmark in arch2vec's latent space (RL, BO) against random search and evolution.

  python launch/search.py --space nb201 --benchmark ../shared/data/nb201_accuracies.csv --dataset cifar10 \
      --embeddings workdir/nb201/embeddings.npz --method rl,bo,rs,re --workdir results/search/nb201/cifar10
  python launch/search.py --space nb101 --benchmark ../shared/data/nb101_subset.csv \
      --embeddings workdir/nb101/embeddings.npz --method rl,bo,rs,re --time_budget 1e6 \
      --workdir results/search/nb101

Each method runs all `--seeds` seeds in one compiled call. Rewards are the
table's validation accuracies (NB201: `*_valid_12ep`), reported is the test
accuracy of the best-validation cell (NB201: `*_test_200ep`), or the best
validation accuracy as regret against the table's best where the table has no
test accuracies (the NB101 subset). Writes `traces/<method>.npz`,
`summary.json` (mean +- std at several budgets, timings, the command) and
`curves.png` into `--workdir`. All logic lives in `arch2vec_jax.search.experiment`.

Every field of the methods' configs is a flag: `--bo_<field>` (`dngo.BOConfig`),
`--rl_<field>` (`reinforce.ReinforceConfig`), `--gd_<field>` (`gd.GDConfig`); one not
given keeps the space's value (`runner.default_config`, from the space's
`search_defaults`; `--helpfull` shows the config class's default instead).

Release behaviours (off by default; the defaults are the paper's method with a correct
EI): `--bo_acquisition=release` (the release's float32 EI, variance as scale, the fixed
target `--bo_target`), `--bo_pybnn_mll` (pybnn's evidence), `--bo_revisit` (BO may
query a cell again and pays for it again), `--rl_skip_nearest` (REINFORCE never takes
the cell nearest to its action). `--rl_baseline`: `release` (default: the space's
constant, the release's, the paper's method), `mean` (the mean of the rewards told so
far: in the reward's range, e.g. ImageNet16-120, whose 12-epoch validation accuracies
peak at 38.67%, below NB201's constant, so that the constant makes every advantage
negative) or a number (a constant).

Several devices: the seeds are sharded over every device JAX sees (`--cpu_devices 2`
uses both cores of a 2-core CPU); multi-host: the same command in every process with
`--distributed` (see README, "Multiple devices"); process 0 writes the files.
"""

import dataclasses

from absl import app, flags

from arch2vec_jax import cli
from arch2vec_jax.search import dngo, experiment, gd, reinforce, runner

FLAGS = flags.FLAGS
flags.DEFINE_enum("space", "nb201", list(experiment.SPACES), "Search space.")
flags.DEFINE_string(
  "benchmark",
  None,
  "A table .npz (launch/prepare_data.py), an original benchmark file or a ../shared/data CSV.",
  required=True,
)
flags.DEFINE_string(
  "dataset", None, "NB201: cifar10 | cifar100 | imagenet16 (default cifar10); NB101: unset."
)
flags.DEFINE_string(
  "method",
  "rl,bo,rs,re",
  "Comma list of rl (arch2vec-RL), bo (arch2vec-BO), rs (random "
  "search), re (regularized evolution), gd (arch2vec-GD, gradient ascent in the latent space), "
  "sbo / srl (supervised-BO / -RL: a GIN trained on the queried cells during the search; "
  "no embeddings needed).",
)
flags.DEFINE_integer("seeds", 500, "Seeds per method (one vmapped call).")
flags.DEFINE_integer(
  "budget",
  None,
  "Queries per search (default 100; with --time_budget: the trace length, "
  "default the most queries the time budget can buy).",
)
flags.DEFINE_float(
  "time_budget", None, "Simulated training time per search, seconds (needs query costs)."
)
flags.DEFINE_float(
  "cost_per_query", None, "A fixed query cost in seconds instead of the table's training times."
)
flags.DEFINE_string(
  "reward",
  None,
  "NB201 CSV only: the reward column's suffix instead of valid_12ep (e.g. "
  "test_200ep, a diagnostic search that sees the 200-epoch accuracies).",
)
flags.DEFINE_string(
  "embeddings",
  None,
  "embeddings.npz from launch/pretrain.py (needed by rl, bo and gd), or an encoder whose "
  "embeddings of the cells are used: the space's name (nb201, nb101: the shipped encoder) or "
  "a launch/pretrain.py workdir.",
)
flags.DEFINE_bool(
  "per_node",
  False,
  "rl, bo and gd search the encoder's unpooled features (every node's mu concatenated: "
  "NB201 8 x 16 = 128-d) instead of the pooled 16-d embedding; --embeddings must name an "
  "encoder (a shipped name or a pre-training workdir).",
)
flags.DEFINE_string(
  "workdir", None, "Output folder (traces/, summary.json, curves.png).", required=True
)
flags.DEFINE_bool(
  "merge",
  False,
  "Add the methods to the experiment already in --workdir (same space, dataset, "
  "reward, budget and --seed; e.g. an expensive method with fewer --seeds).",
)
flags.DEFINE_integer("seed", 0, "Root seed (seed i uses key i of split(PRNGKey(seed), seeds)).")
# One flag per field of each method's config, --gd_<field>, --bo_<field>, --rl_<field>; a flag
# not given keeps the space's value (`runner.default_config`). RL's baseline and its mode are
# one flag, --rl_baseline, below.
GD_FLAGS = {"rename": {"": "gd_"}}
BO_FLAGS = {"rename": {"": "bo_"}}
RL_FLAGS = {"rename": {"": "rl_"}, "skip": ("baseline", "baseline_mode")}
cli.define_config_flags(gd.GDConfig(), **GD_FLAGS)
cli.define_config_flags(dngo.BOConfig(), **BO_FLAGS)
cli.define_config_flags(reinforce.ReinforceConfig(), **RL_FLAGS)
flags.DEFINE_string(
  "rl_baseline",
  None,
  "arch2vec-RL's reward baseline: 'release' (the space's constant, the release's; default), "
  "'mean' (the mean of the rewards told so far) or a number (a constant).",
)


def gd_config(space: str) -> gd.GDConfig:
  """The GD config of the --gd_* flags (over `runner.default_config('gd', space)`)."""
  return cli.config_from_flags(runner.default_config("gd", space), **GD_FLAGS)


def bo_config(space: str) -> dngo.BOConfig:
  """The BO config of the --bo_* flags (over `runner.default_config('bo', space)`)."""
  return cli.config_from_flags(runner.default_config("bo", space), **BO_FLAGS)


def rl_config(space: str) -> reinforce.ReinforceConfig:
  """The RL config of the --rl_* flags (over `runner.default_config('rl', space)`)."""
  config = cli.config_from_flags(runner.default_config("rl", space), **RL_FLAGS)
  value = FLAGS.rl_baseline
  if value is None or value == "release":
    return config
  if value == "mean":
    return dataclasses.replace(config, baseline_mode="mean")
  try:
    return dataclasses.replace(config, baseline=float(value))
  except ValueError:
    raise ValueError(
      f"--rl_baseline must be 'release', 'mean' or a number, got {value!r}"
    ) from None


cli.define_device_flags(local_processes=True)  # --cpu_devices, --local_processes, --distributed


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  command = cli.command_line("launch/search.py")
  try:
    cli.setup_devices()
    methods = experiment.parse_methods(FLAGS.method)
    if FLAGS.seeds < 1:
      raise ValueError(f"--seeds must be >= 1, got {FLAGS.seeds}")
    if FLAGS.budget is not None and FLAGS.budget < 1:
      raise ValueError(f"--budget must be >= 1, got {FLAGS.budget}")
    problem = experiment.load_problem(
      FLAGS.space,
      FLAGS.benchmark,
      FLAGS.dataset,
      FLAGS.embeddings,
      methods,
      FLAGS.cost_per_query,
      FLAGS.reward,
      FLAGS.per_node,
    )
    budget = experiment.make_budget(problem, FLAGS.budget, FLAGS.time_budget)
    configs = {}
    for m, make in (("gd", gd_config), ("bo", bo_config), ("rl", rl_config)):
      if m in methods:
        configs[m] = make(FLAGS.space)
    rl = configs.get("rl")
    if (
      rl is not None
      and rl.baseline_mode == "constant"
      and rl.baseline >= float(problem.env.reward.max())
    ):
      print(
        f"warning: the RL baseline {rl.baseline:g} is at or above every reward of this table (best "
        f"{float(problem.env.reward.max()):.4f}): every advantage is negative; --rl_baseline=mean is in range"
      )
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from e
  try:
    experiment.run_experiment(
      problem,
      methods,
      FLAGS.seeds,
      budget,
      FLAGS.workdir,
      seed=FLAGS.seed,
      command=command,
      merge=FLAGS.merge,
      configs=configs or None,
    )
  except ValueError as e:
    raise app.UsageError(str(e)) from e


if __name__ == "__main__":
  cli.run(main)
