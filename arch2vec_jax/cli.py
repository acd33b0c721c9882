"""Helpers shared by the absl launchers in `launch/`."""

from __future__ import annotations

import os
import platform
import shlex
from typing import Any

import numpy as np
from absl import flags

__all__ = ["command_line", "machine_info"]


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


def _cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
  """What ran a job: JAX backend and devices, versions, CPU model and count, load average now.

  Every results JSON records this, so figures from different machines (or a
  loaded machine) can be told apart.
  """
  import jax  # pylint: disable=import-outside-toplevel  (spaces-only users need not import JAX)

  return {
    "backend": jax.default_backend(),
    "device_kind": jax.devices()[0].device_kind,
    "num_devices": jax.device_count(),
    "jax": jax.__version__,
    "numpy": np.__version__,
    "python": platform.python_version(),
    "platform": platform.platform(),
    "cpu_model": _cpu_model(),
    "cpu_count": os.cpu_count(),
    "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "load_average": list(os.getloadavg()),
  }
