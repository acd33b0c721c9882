"""Converts a benchmark file into the BenchmarkTable `.npz` cache.

  python launch/prepare_data.py --source=/data/nasbench_only108.tfrecord
  python launch/prepare_data.py --source=/data/NAS-Bench-201-v1_0-e61699.pth --dataset=cifar100 --epochs=200
  python launch/prepare_data.py --source=../shared/data/nb201_accuracies.csv --dataset=imagenet16 --out=/tmp/t.npz

Shows progress (records/s, bytes read) while reading a large file and ends with
a summary (cells, accuracy and cost ranges, time). All logic lives in
`arch2vec_jax.benchmarks.loader`.
"""

import time

from absl import flags, logging

from arch2vec_jax import cli
from arch2vec_jax.benchmarks import loader

FLAGS = flags.FLAGS
flags.DEFINE_string(
  "source",
  None,
  "A .tfrecord, .pth, .pickle.pbz2, shared .csv or NATS-Bench folder.",
  required=True,
)
flags.DEFINE_string(
  "dataset", None, "NB201: cifar10 | cifar100 | imagenet16 (default cifar10). NB101: unset."
)
flags.DEFINE_integer(
  "epochs", None, "Reward budget: NB101 4/12/36/108 (default 108), NB201 12/200 (default 12)."
)
flags.DEFINE_string("out", None, "Also write the table to this .npz.")
flags.DEFINE_string(
  "cache_dir", None, "Cache folder (default: $ARCH2VEC_CACHE or ~/.cache/arch2vec_jax)."
)
flags.DEFINE_bool("refresh", False, "Re-read the source even if a cache exists.")
flags.DEFINE_bool(
  "allow_subset",
  False,
  "Accept a source with fewer cells than the space (e.g. nb101_subset.csv); the count is logged.",
)


def main(argv):
  del argv
  start = time.perf_counter()
  table = loader.prepare(
    FLAGS.source,
    dataset=FLAGS.dataset,
    epochs=FLAGS.epochs,
    out=FLAGS.out,
    cache_dir=FLAGS.cache_dir,
    refresh=FLAGS.refresh,
    log=logging.info,
    allow_subset=FLAGS.allow_subset,
  )
  logging.info("%s\n  done in %.1f s", loader.summarize(table), time.perf_counter() - start)


if __name__ == "__main__":
  cli.run(main)
