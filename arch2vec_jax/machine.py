"""What machine ran a job: backend, versions, CPU model, instruction set, load.

Every results JSON records `machine_info()`, so figures from different machines
(or a loaded machine) can be told apart. No absl flags here: library code
imports this module.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
from typing import Any

__all__ = ["cpu_isa", "machine_info"]

# x86 vector instruction sets, widest first: (name, /proc/cpuinfo flag, XLA's --xla_cpu_max_isa value).
_ISAS = (
  ("AVX-512", "avx512f", "AVX512"),
  ("AVX2", "avx2", "AVX2"),
  ("AVX", "avx", "AVX"),
  ("SSE4.2", "sse4_2", "SSE4_2"),
)


def _cpuinfo_field(name: str) -> str | None:
  """The first `name : value` line of /proc/cpuinfo (Linux), else None."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith(name):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return None


def _cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."""
  return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_isa(xla_flags: str | None = None, cpu_flags: str | None = None) -> dict[str, str | None]:
  """The CPU's widest vector instruction set and the one XLA:CPU may use.

  Args:
    xla_flags: the XLA_FLAGS string (default: the environment's).
    cpu_flags: the `flags` line of /proc/cpuinfo (default: read it).

  Returns:
    {"cpu": widest set the CPU has ("AVX-512", "AVX2", "AVX", "SSE4.2"; None
     when unknown, e.g. off x86 Linux), "xla_cpu_max_isa": the value of
     --xla_cpu_max_isa (None: not given), "effective": what XLA:CPU compiles
     for, the narrower of the two}.
  """
  xla_flags = os.environ.get("XLA_FLAGS", "") if xla_flags is None else xla_flags
  cpu_flags = (_cpuinfo_field("flags") or "") if cpu_flags is None else cpu_flags
  present = set(cpu_flags.split())
  rank_cpu = next((i for i, (_, flag, _) in enumerate(_ISAS) if flag in present), None)
  given = re.findall(r"--xla_cpu_max_isa=(\S+)", xla_flags)
  cap = given[-1] if given else None
  rank_cap = next((i for i, (_, _, xla) in enumerate(_ISAS) if cap and xla == cap.upper()), None)
  ranks = [r for r in (rank_cpu, rank_cap) if r is not None]
  return {
    "cpu": None if rank_cpu is None else _ISAS[rank_cpu][0],
    "xla_cpu_max_isa": cap,
    "effective": _ISAS[max(ranks)][0] if ranks else None,
  }


def machine_info() -> dict[str, Any]:
  """What ran a job: JAX backend and devices, versions, CPU model, instruction set, count, load now."""
  import jax  # pylint: disable=import-outside-toplevel  (spaces-only users need not import JAX)

  versions = {}
  for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
    try:
      versions[package] = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      versions[package] = None
  return {
    "backend": jax.default_backend(),
    "device_kind": jax.devices()[0].device_kind,
    "num_devices": jax.device_count(),
    **versions,
    "python": platform.python_version(),
    "platform": platform.platform(),
    "cpu_model": _cpu_model(),
    "cpu_isa": cpu_isa(),
    "cpu_count": os.cpu_count(),
    "cpus_usable": len(os.sched_getaffinity(0))
    if hasattr(os, "sched_getaffinity")
    else os.cpu_count(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "load_average": list(os.getloadavg()),
  }
