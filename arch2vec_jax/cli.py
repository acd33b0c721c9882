"""Helpers shared by the absl launchers in `launch/`."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable

from absl import app, flags

from arch2vec_jax.machine import machine_info

__all__ = [
  "USER_ERRORS",
  "command_line",
  "define_device_flags",
  "machine_info",
  "run",
  "setup_devices",
]

# What a launcher user sees as one line ("<launcher>: error: ..."); the traceback only with --debug.
USER_ERRORS = (
  app.UsageError,
  ValueError,
  FileNotFoundError,
  NotADirectoryError,
  PermissionError,
  RuntimeError,
)


def command_line(script: str, flag_values: flags.FlagValues = flags.FLAGS) -> str:
  """The command that reproduces this run: `python <script>` and every flag given on the command line.

  Rebuilt from the parsed flags (not `sys.argv`), so it is the same whether the
  launcher ran as a script or was called from Python (tests, notebooks).

  Args:
    script: the launcher's path relative to the repository root, e.g. "launch/search.py".
    flag_values: the parsed flags.
  Returns:
    e.g. "python launch/search.py --method=rs,re --seeds=500".
  """
  seen, parts = set(), []
  for name in flag_values:
    flag = flag_values[name]
    if flag.present and id(flag) not in seen:
      seen.add(id(flag))
      parts.append(shlex.quote(flag.serialize()))
  return " ".join(["python", script] + parts)


def define_device_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Defines --cpu_devices, --distributed, --coordinator_address, --num_processes, --process_id.

  Call at import time of a launcher; call `setup_devices` first thing in its
  `main`, before anything touches JAX.
  """
  flags.DEFINE_integer(
    "cpu_devices",
    None,
    "Split the host CPU into this many JAX devices (jax_num_cpu_devices; "
    "the same as XLA_FLAGS=--xla_force_host_platform_device_count=N). Default: JAX's (one).",
    flag_values=flag_values,
  )
  flags.DEFINE_bool(
    "distributed",
    False,
    "Multi-host: call jax.distributed.initialize before any other JAX use; "
    "the mesh then spans the devices of every process. Without the three flags below JAX detects "
    "the cluster (SLURM, Open MPI, Cloud TPU, JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / "
    "JAX_PROCESS_ID).",
    flag_values=flag_values,
  )
  flags.DEFINE_string(
    "coordinator_address",
    None,
    "With --distributed: 'host:port' of process 0.",
    flag_values=flag_values,
  )
  flags.DEFINE_integer(
    "num_processes", None, "With --distributed: processes in the job.", flag_values=flag_values
  )
  flags.DEFINE_integer(
    "process_id",
    None,
    "With --distributed: this process's index (0 .. num_processes - 1).",
    flag_values=flag_values,
  )


def setup_devices(flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """Applies the flags of `define_device_flags`; must run before any other JAX use.

  Raises:
    ValueError: for bad values (naming the flag), or multi-host flags without --distributed.
  """
  import jax  # pylint: disable=import-outside-toplevel

  from arch2vec_jax import parallel  # pylint: disable=import-outside-toplevel

  fv = flag_values
  if fv.cpu_devices is not None:
    if fv.cpu_devices < 1:
      raise ValueError(f"--cpu_devices must be >= 1, got {fv.cpu_devices}")
    jax.config.update("jax_num_cpu_devices", fv.cpu_devices)
  multi = {
    "coordinator_address": fv.coordinator_address,
    "num_processes": fv.num_processes,
    "process_id": fv.process_id,
  }
  if not fv.distributed:
    given = [f"--{k}" for k, v in multi.items() if v is not None]
    if given:
      raise ValueError(f"{', '.join(given)} given without --distributed")
    return
  parallel.initialize_distributed(**multi)


def run(main: Callable[[list[str]], None], flag_values: flags.FlagValues = flags.FLAGS) -> None:
  """`absl.app.run(main)` for the launchers, with errors for people.

  Defines --debug. A bad input, a bad flag value or a library error
  (`USER_ERRORS`) prints one line, `<launcher>: error: <message>`, to stderr and
  exits with status 2 (usage) or 1 (anything else), without absl's help text;
  --debug re-raises it with its traceback. Flag parsing errors stay absl's own
  two lines. KeyboardInterrupt is not caught (an interrupted run resumes).
  """
  if "debug" not in flag_values:
    flags.DEFINE_bool(
      "debug", False, "Show the full traceback of an error.", flag_values=flag_values
    )

  def wrapped(argv):
    try:
      return main(argv)
    except USER_ERRORS as e:
      if flag_values.debug:
        raise
      name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "launcher"
      message = str(e).strip() or type(e).__name__
      print(f"{name}: error: {message}\n(--debug shows the traceback)", file=sys.stderr)
      sys.exit(2 if isinstance(e, app.UsageError) else 1)

  app.run(wrapped)
