"""Pre-training and embedding speed on whatever backend JAX sees (CPU, GPU, TPU).

  python launch/benchmark.py                      # NB201 cells, batches 32 256 1024 4096
  python launch/benchmark.py --space nb101 --batch_sizes 32,256

For each batch size: compile time of the compiled epoch, then the wall time of
`--epochs` timed epochs (one `lax.scan` each over `--cells` cells) -> graphs/s.
Also: one full pre-training epoch's metric time (held-out reconstruction and
10,000 prior decodes judged by the space), embedding extraction in cells/s, and
peak memory (host RSS; device peak where the backend reports it). Prints a table
and writes `results/benchmarks/<backend>-<device>.json` (atomic) with the command.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from arch2vec_jax import cli
from arch2vec_jax import embed as embed_lib
from arch2vec_jax import fileio
from arch2vec_jax import model as model_lib
from arch2vec_jax import train

FLAGS = flags.FLAGS
flags.DEFINE_enum("space", "nb201", ["nb101", "nb201"], "Cells to train on (NB101: the first --cells cells).")
flags.DEFINE_list("batch_sizes", ["32", "256", "1024", "4096"], "Batch sizes to time.")
flags.DEFINE_integer("cells", 16384, "Training cells per timed epoch.")
flags.DEFINE_integer("epochs", 2, "Timed epochs per batch size (after the compile).")
flags.DEFINE_string("out", None, "Output JSON (default results/benchmarks/<backend>-<device>.json).")


def _device_peak_mib():
  stats = jax.devices()[0].memory_stats() or {}
  peak = stats.get("peak_bytes_in_use")
  return None if peak is None else peak / 2**20


def bench_training(space, adj, ops, batch_size, epochs):
  """Compile time and graphs/s of the compiled epoch at one batch size."""
  config = train.TrainConfig(space=space, batch_size=batch_size)
  model = train.create_model(ops.shape[-1], config.model)
  tx = train.create_optimizer(config)
  state = train.create_train_state(model, tx, jax.random.PRNGKey(0), ops.shape[1])
  data = train.Dataset(*jax.device_put((adj, ops, model_lib.count_nodes(ops).astype(np.int32))))
  fn = jax.jit(train.make_train_epoch(model, tx, batch_size=batch_size, num_train=len(ops)), donate_argnums=0)
  t0 = time.perf_counter()
  compiled = fn.lower(state, data, jnp.int32(0)).compile()
  compile_s = time.perf_counter() - t0
  state, stats = compiled(state, data, jnp.int32(0))  # warm-up
  jax.block_until_ready(stats)
  times = []
  for e in range(epochs):
    t0 = time.perf_counter()
    state, stats = compiled(state, data, jnp.int32(e + 1))
    jax.block_until_ready(stats)
    times.append(time.perf_counter() - t0)
  best = min(times)
  return {"batch_size": batch_size, "compile_s": compile_s, "epoch_s": times, "graphs_per_s": len(ops) / best,
          "steps_per_s": -(-len(ops) // batch_size) / best}, state, model


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  machine = cli.machine_info()
  load_start = machine["load_average"]
  space = train.get_space(FLAGS.space)
  adj_all, ops_all = (np.asarray(x, np.int8) for x in space.cells())
  rng = np.random.default_rng(0)
  idx = rng.choice(len(ops_all), min(FLAGS.cells, len(ops_all)), replace=False)
  adj, ops = adj_all[idx], ops_all[idx]
  dev = jax.devices()[0]
  print(f"backend {jax.default_backend()} ({dev.device_kind}, {jax.device_count()} devices), "
        f"{FLAGS.space} {len(ops):,} cells per epoch; load average {load_start}")
  rows = []
  state = model = None
  for b in (int(x) for x in FLAGS.batch_sizes):
    row, st, mdl = bench_training(FLAGS.space, adj, ops, b, FLAGS.epochs)
    if b == 32 or state is None:
      state, model = st, mdl
    rows.append(row)
    print(f"  batch {b:5d}: {row['graphs_per_s']:>10,.0f} graphs/s  {row['steps_per_s']:>8,.1f} steps/s  "
          f"compile {row['compile_s']:.1f}s  epoch {min(row['epoch_s']):.3f}s")

  # Metrics of one epoch: held-out reconstruction (10% of the space) + 10,000 prior decodes.
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  cut = int(0.9 * len(ops_all))
  val = (adj_all[cut:], ops_all[cut:], model_lib.count_nodes(ops_all[cut:]))
  evaluator = train.Evaluator(model, space, val, num_prior_samples=10_000, chunk_size=2048)
  mean, std = np.zeros((ops.shape[1], 16), np.float32), np.ones((ops.shape[1], 16), np.float32)
  t0 = time.perf_counter()
  evaluator(variables, mean, std, jax.random.PRNGKey(0))
  metric_first_s = time.perf_counter() - t0
  t0 = time.perf_counter()
  ev = evaluator(variables, mean, std, jax.random.PRNGKey(1))
  metric_s = time.perf_counter() - t0
  print(f"  metrics: {metric_s:.2f}s per epoch ({metric_first_s:.2f}s first, with compile); {ev['time']}")

  # Embedding extraction of every cell of the space.
  embed_lib.encode(state.params, state.batch_stats, adj_all[:8192], ops_all[:8192])  # compile
  t0 = time.perf_counter()
  emb = embed_lib.encode(state.params, state.batch_stats, adj_all, ops_all)
  embed_s = time.perf_counter() - t0
  print(f"  embeddings: {len(emb):,} cells in {embed_s:.2f}s = {len(emb) / embed_s:,.0f} cells/s")

  result = {
    "command": cli.command_line("launch/benchmark.py"),
    "machine": machine,
    "load_average_at_start": load_start,
    "space": FLAGS.space,
    "cells_per_epoch": len(ops),
    "training": rows,
    "metrics_s": metric_s,
    "metrics_first_s": metric_first_s,
    "metrics_breakdown_s": ev["time"],
    "embedding": {"cells": len(emb), "seconds": embed_s, "cells_per_s": len(emb) / embed_s},
    "peak_host_rss_mib": train._peak_rss_mib(),  # pylint: disable=protected-access
    "peak_device_mib": _device_peak_mib(),
  }
  result["load_average_at_end"] = os.getloadavg()
  kind = dev.device_kind.replace(" ", "_").replace("/", "_")
  out = FLAGS.out or os.path.join("results", "benchmarks", f"{jax.default_backend()}-{kind}.json")
  fileio.atomic_write_json(out, result)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
