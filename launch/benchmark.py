"""Pre-training, embedding and search speed on whatever backend JAX sees (CPU, GPU, TPU).

  python launch/benchmark.py                      # NB201 cells, batches 32 256 1024 4096, RL/BO at 1 8 64 500 seeds
  python launch/benchmark.py --space nb101 --batch_sizes 32,256 --parts training,embedding
  python launch/benchmark.py --cpu_devices 8      # the CPU split into 8 devices: data-parallel training, sharded seeds

Parts (`--parts`, default all):
  training   for each batch size: compile time of the compiled epoch (one
             `lax.scan` over `--cells` cells, data parallel over `--num_devices`
             devices, default all), the best wall time of `--epochs` timed epochs
             -> graphs/s, and the compiled program's memory (XLA's
             `memory_analysis`: arguments + outputs + temporaries) and the
             device's peak bytes where the backend reports them (GPU/TPU).
  metrics    one full pre-training epoch's metric time (held-out reconstruction
             and 10,000 prior decodes judged by the space).
  embedding  embedding extraction of every cell of the space, cells/s.
  search     RL and BO (`--search_methods`) on the NB201 CIFAR-10 table
             (`--search_benchmark`) at `--search_seeds` seeds x `--search_queries`
             queries, every seed count one compiled call (seeds sharded over all
             devices): compile time and seed-queries/s = seeds x queries / run
             time. Embeddings: `--search_embeddings` if it exists, else the ones
             this benchmark just computed (recorded in the JSON).
Every run first measures the machine's fp32 matmul rates (`perf.machine_rates`:
a 1024^3 GEMM, the reference "peak", and the hot loops' small shapes) and
states training and BO also as GFLOP/s (XLA's FLOP count of one training step
per graph; `dngo.flops_per_seed` for BO) and as a fraction of that peak.
Prints a table and writes `results/benchmarks/<backend>-<device>.json` (atomic)
with the command, the machine (instruction set included) and its load average.

All logic lives in `arch2vec_jax.bench` (`run_benchmark`); the flags are
generated from `bench.BenchConfig` (one per field, with its type, default and
docstring line), plus the device flags (`--cpu_devices`, `--distributed`, ...).
"""

import functools

from absl import app, flags

from arch2vec_jax import bench, cli

FLAGS = flags.FLAGS
# One flag per BenchConfig field: name, type, default and help from the config.
CONFIG_FLAGS = cli.define_config_flags(bench.BenchConfig())
cli.define_device_flags()
flags.adopt_module_key_flags(cli)  # --help lists the generated flags too


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  try:
    cli.setup_devices()
    config = cli.config_from_flags(bench.BenchConfig())
    bench.resolve_devices(config)
  except ValueError as e:
    raise app.UsageError(str(e)) from e
  log = functools.partial(print, flush=True)
  bench.run_benchmark(config, log=log, command=cli.command_line("launch/benchmark.py"))


if __name__ == "__main__":
  cli.run(main)
