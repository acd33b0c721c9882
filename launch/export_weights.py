"""Writes a pre-trained encoder file from a finished pre-training run (`arch2vec_jax.pretrained`).

  python launch/export_weights.py --workdir workdir/nb201 --out arch2vec_jax/weights/nb201.msgpack
  python launch/export_weights.py --workdir workdir/nb101   # --out: the shipped file of its space

The file (one msgpack file, layout and version in `arch2vec_jax/pretrained.py`)
holds the newest checkpoint's parameters and BatchNorm statistics, the run's full
configuration, the command that produced it and its final metrics (from
`metrics.json`), the package version, and reference cells with their rows of
`embeddings.npz`; loading it back, their embeddings are compared with the run's
(0 difference on the machine that trained). `pretrained.load(--out)` reads it;
written to `arch2vec_jax/weights/<space>.msgpack`, `pretrained.load("<space>")` does.
"""

import os

from absl import app, flags

from arch2vec_jax import cli, pretrained

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A finished --workdir of launch/pretrain.py.", required=True)
flags.DEFINE_string(
  "out",
  None,
  "The file to write (default: the shipped file of the run's space, "
  "arch2vec_jax/weights/<space>.msgpack).",
)
flags.DEFINE_integer(
  "num_reference", 16, "Reference cells (and their embeddings.npz rows) stored in the file."
)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not os.path.isdir(FLAGS.workdir):
    raise app.UsageError(f"--workdir {FLAGS.workdir!r} is not a folder")
  try:
    out = FLAGS.out or pretrained.weights_path(pretrained.load(FLAGS.workdir).space)
    info = pretrained.export(FLAGS.workdir, out, num_reference=FLAGS.num_reference)
  except (ValueError, FileNotFoundError) as e:
    raise app.UsageError(str(e)) from e
  meta = info["meta"]
  summary = ", ".join(f"{k} {v:.4f}" for k, v in (meta.get("summary") or {}).items())
  print(
    f"{info['path']}: {info['bytes'] / 1024:.0f} KiB, sha256 {info['sha256'][:16]}..., "
    f"{meta['space']} epoch {meta['epoch']}, package {meta['package_version']}"
  )
  print(f"  command: {meta.get('command')}")
  print(f"  summary: {summary or None}")
  diff = info["reference_max_abs_diff"]
  if diff is None:
    print("  reference cells: none")
  else:
    print(
      f"  reference cells: {len(meta['reference_ids'])}, max |embed - embeddings.npz| = {diff:.3g}"
    )


if __name__ == "__main__":
  cli.run(main)
