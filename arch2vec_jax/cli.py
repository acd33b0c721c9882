"""Helpers shared by the absl launchers in `launch/`."""

from __future__ import annotations

import dataclasses
import os
import re
import shlex
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags

from arch2vec_jax.machine import machine_info

__all__ = [
  "USER_ERRORS",
  "command_line",
  "config_from_flags",
  "core_groups",
  "define_config_flags",
  "define_device_flags",
  "field_help",
  "machine_info",
  "run",
  "setup_devices",
  "spawn_local_processes",
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
  # A process of `spawn_local_processes`: its job flags are not part of the command.
  skip = _JOB_FLAGS if LOCAL_PROCESS_ENV in os.environ else ()
  for name in flag_values:
    flag = flag_values[name]
    if flag.present and id(flag) not in seen and flag.name not in skip:
      seen.add(id(flag))
      parts.append(shlex.quote(flag.serialize()))
  return " ".join(["python", script] + parts)


def field_help(cls: type) -> dict[str, str]:
  """Each field's text in the `Attributes:` sections of a class's docstring and its bases'.

  An entry (Google style) is `name: text` (or `a, b: text` for several fields), continued
  on deeper-indented lines; the lines are joined with spaces. A class's entry wins over
  its bases' (so a subclass documents only its own fields).

  Returns:
    {field name: text}.
  """
  out = {}
  for base in reversed(cls.__mro__):
    if base is not object:
      out.update(_own_field_help(base.__doc__ if "__doc__" in vars(base) else None))
  return out


def _own_field_help(doc: str | None) -> dict[str, str]:
  """{field name: text} of one docstring's `Attributes:` section (`field_help`)."""
  doc = (doc or "").expandtabs()
  section = re.search(r"^( *)Attributes:\n((?:\1 +\S.*\n?|\s*\n)*)", doc, re.MULTILINE)
  if section is None:
    return {}
  lines = section.group(2).rstrip().splitlines()
  indent = min(len(x) - len(x.lstrip()) for x in lines if x.strip())
  out, names = {}, []
  for line in lines:
    entry = re.match(r"(\w+(?:, \w+)*): (.*)", line[indent:])
    if entry and len(line) - len(line.lstrip()) == indent:
      names = entry.group(1).split(", ")
      out.update(dict.fromkeys(names, entry.group(2).strip()))
    elif line.strip():
      out.update({n: f"{out[n]} {line.strip()}" for n in names})
  return out


def _strip_optional(hint: Any) -> Any:
  """`X` of `X | None` (the flag's None is "not given"), else `hint`."""
  if typing.get_origin(hint) in (types.UnionType, typing.Union):
    (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
  return hint


def _list_element(hint: Any) -> type | None:
  """The element type of a `tuple[X, ...]` field (X: int, float or str), else None."""
  hint = _strip_optional(hint)
  if typing.get_origin(hint) is not tuple:
    return None
  args = typing.get_args(hint)
  if len(args) != 2 or args[1] is not Ellipsis or args[0] not in (int, float, str):
    raise TypeError(f"no flag type for {hint!r} (tuple fields: tuple[int | float | str, ...])")
  return args[0]


def _define_flag(name: str, hint: Any, default: Any, help_text: str, fv: flags.FlagValues):
  """One absl flag for a config field of type `hint`.

  bool, int, float, str, Literal (an enum flag), `tuple[X, ...]` (a comma list,
  `DEFINE_list`; `config_from_flags` converts its items back to X), or X | None.
  """
  hint = _strip_optional(hint)
  if typing.get_origin(hint) is typing.Literal:
    flags.DEFINE_enum(name, default, list(typing.get_args(hint)), help_text, flag_values=fv)
    return
  if _list_element(hint) is not None:
    value = None if default is None else [str(x) for x in default]
    flags.DEFINE_list(name, value, help_text, flag_values=fv)
    return
  define = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
  }
  if hint not in define:
    raise TypeError(f"config field {name!r}: no flag type for {hint!r}")
  define[hint](name, default, help_text, flag_values=fv)


def _flag_name(path: str, rename: dict[str, str]) -> str:
  """The flag of the field at dotted `path`: `rename[path]`, else the field's name after the
  prefix that `rename` gives its nearest renamed enclosing config (none: no prefix)."""
  if path in rename:
    return rename[path]
  parts, prefix = path.split("."), rename.get("", "")
  for i in range(1, len(parts)):
    prefix = rename.get(".".join(parts[:i]), prefix)
  return prefix + parts[-1]


def _config_fields(config: Any, rename: dict[str, str], skip: Sequence[str], path: str = ""):
  """(dotted path, flag name, field value, type hint, help) of each flag field of `config`.

  Nested configs are walked (their fields are flags too); a path in `skip` (a field or a whole
  nested config) gives none.

  Raises:
    ValueError: a field without a docstring line.
  """
  hints, docs = typing.get_type_hints(type(config)), field_help(type(config))
  for field in dataclasses.fields(config):
    dotted, value = path + field.name, getattr(config, field.name)
    if dotted in skip:
      continue
    if dataclasses.is_dataclass(value):
      yield from _config_fields(value, rename, skip, dotted + ".")
      continue
    if field.name not in docs:
      raise ValueError(f"{type(config).__name__}.{field.name} has no line in the docstring")
    yield dotted, _flag_name(dotted, rename), value, hints[field.name], docs[field.name]


def define_config_flags(
  config: Any,
  flag_values: flags.FlagValues = flags.FLAGS,
  rename: dict[str, str] | None = None,
  skip: Sequence[str] = (),
  shared: Sequence[str] = (),
) -> list[str]:
  """Defines one flag per field of a config dataclass, nested configs' fields included.

  Each flag is named as its field (nested fields too, without a prefix, unless
  `rename` says otherwise), takes its type from the annotation (a `Literal` is an
  enum flag, a `tuple[int, ...]` or `tuple[str, ...]` a comma list) and its default
  from `config`, and its help from the field's line in the class docstring
  (`field_help`). So every default and help text is written once, in the
  config. Read the values back with `config_from_flags` (same `rename` and `skip`).

  Args:
    config: a dataclass instance (e.g. `configs.pretrain_config()`).
    flag_values: where to define the flags.
    rename: {dotted field path: flag name}; for a nested config the name is a prefix
      of its fields' flags (e.g. {"supervised": "supervised_", "datasets": "dataset"}),
      and the path "" names the prefix of every flag (e.g. {"": "bo_"}).
    skip: dotted paths of fields (or nested configs) that get no flag.
    shared: flag names that another config of the same launcher may have defined
      already (e.g. both configs' `seed`): such a flag is kept, not defined again.
  Returns:
    The flag names defined, in field order.
  Raises:
    ValueError: a field without a docstring line (absl's DuplicateFlagError:
      two fields of one name).
  """
  names = []
  for _, name, value, hint, help_text in _config_fields(config, rename or {}, skip):
    if name in shared and name in flag_values:
      continue
    _define_flag(name, hint, value, help_text, flag_values)
    names.append(name)
  return names


def config_from_flags(
  config: Any,
  flag_values: flags.FlagValues = flags.FLAGS,
  rename: dict[str, str] | None = None,
  skip: Sequence[str] = (),
) -> Any:
  """`config` with every field whose flag was given (`define_config_flags`) set to the flag's value.

  Fields whose flag was not given keep `config`'s value, so a variant (e.g. the
  tiny config) supplies the defaults that the command line does not change.

  Raises:
    ValueError: from the config's own checks (e.g. "batch_size must be >= 1, got 0"), or a
      comma list's item that is not of the field's element type.
  """
  given = {
    dotted: _flag_value(name, hint, flag_values)
    for dotted, name, _, hint, _ in _config_fields(config, rename or {}, skip)
    if flag_values[name].present
  }
  return _replace_paths(config, given)


def _replace_paths(config: Any, values: dict[str, Any]) -> Any:
  """`config` with the fields at the dotted paths of `values` set, one `replace` per config
  (so its checks see all the changes together)."""
  changes = {}
  for field in dataclasses.fields(config):
    inner = {
      k[len(field.name) + 1 :]: v for k, v in values.items() if k.startswith(field.name + ".")
    }
    if inner:
      changes[field.name] = _replace_paths(getattr(config, field.name), inner)
    elif field.name in values:
      changes[field.name] = values[field.name]
  return dataclasses.replace(config, **changes) if changes else config


def _flag_value(name: str, hint: Any, flag_values: flags.FlagValues) -> Any:
  """A given flag's value as its field's type (a comma list's items converted: "32,256" -> (32, 256))."""
  value, element = flag_values[name].value, _list_element(hint)
  if element is None or value is None:
    return value
  try:
    return tuple(element(x) for x in value)
  except ValueError as e:
    raise ValueError(f"--{name} must be a list of {element.__name__}, got {value}") from e


def define_device_flags(
  flag_values: flags.FlagValues = flags.FLAGS, local_processes: bool = False
) -> None:
  """Defines --cpu_devices, --distributed, --coordinator_address, --num_processes, --process_id.

  Call at import time of a launcher; call `setup_devices` first thing in its
  `main`, before anything touches JAX.

  Args:
    flag_values: where the flags go.
    local_processes: also define --local_processes N (the searches): the
      launcher starts itself N times on this host, each process pinned to its
      share of the cores, as one `--distributed` job (`spawn_local_processes`).
  """
  if local_processes:
    flags.DEFINE_integer(
      "local_processes",
      None,
      "Run as N processes on this host, each pinned to its share of the cores (one JAX CPU "
      "device each, a localhost --distributed job; the seeds are split over them, process 0 "
      "logs and writes). On a CPU host faster than --cpu_devices N for BO "
      "(results/benchmarks/README.md).",
      flag_values=flag_values,
    )
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
  local = fv["local_processes"].value if "local_processes" in fv else None
  if local is not None:
    if local < 1:
      raise ValueError(f"--local_processes must be >= 1, got {local}")
    if (
      local > 1 and LOCAL_PROCESS_ENV not in os.environ
    ):  # the parent: run the job, exit with its status
      if fv.distributed:
        raise ValueError("--local_processes starts its own --distributed job: give one of them")
      sys.exit(spawn_local_processes(local, sys.argv))
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


LOCAL_PROCESS_ENV = "ARCH2VEC_LOCAL_PROCESS"  # set in the processes of `spawn_local_processes`
_JOB_FLAGS = ("distributed", "coordinator_address", "num_processes", "process_id")


def core_groups(num: int, cores: Sequence[int] | None = None) -> list[list[int]]:
  """The cores of each of `num` local processes: this process's cores (or `cores`) in `num` contiguous groups.

  Sizes differ by at most one, the larger groups first (as `numpy.array_split`).

  Raises:
    ValueError: more processes than cores.
  """
  cores = sorted(os.sched_getaffinity(0) if cores is None else cores)
  if not 1 <= num <= len(cores):
    raise ValueError(f"--local_processes must be in [1, {len(cores)}] (the cores here), got {num}")
  size, extra = divmod(len(cores), num)  # the first `extra` groups get one core more
  starts = [i * size + min(i, extra) for i in range(num + 1)]
  return [cores[starts[i] : starts[i + 1]] for i in range(num)]


def spawn_local_processes(num: int, argv: Sequence[str], poll_s: float = 0.1) -> int:
  """Runs `python argv` as a `num`-process `--distributed` job on localhost, one core group each.

  Process i gets `--distributed --coordinator_address=127.0.0.1:<free port>
  --num_processes=num --process_id=i`, the environment variable
  `LOCAL_PROCESS_ENV` = i, and the CPU affinity of `core_groups(num)[i]`
  (Linux; elsewhere unpinned). Process 0 keeps stdout, the others' goes to
  /dev/null; all keep stderr. When one fails the others are stopped.

  Returns:
    0, or the exit status of the first process that failed.
  """
  import socket  # pylint: disable=import-outside-toplevel
  import subprocess  # pylint: disable=import-outside-toplevel
  import time  # pylint: disable=import-outside-toplevel

  pin = hasattr(os, "sched_setaffinity")
  mine = os.sched_getaffinity(0) if pin else None
  groups = core_groups(num) if pin else [None] * num
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  procs = []
  try:
    for i, cores in enumerate(groups):
      job = [
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={num}",
        f"--process_id={i}",
      ]
      if cores is not None:  # a child inherits the affinity of the thread that starts it
        os.sched_setaffinity(0, cores)
      try:
        procs.append(
          subprocess.Popen(
            [sys.executable, *argv, *job],
            env={**os.environ, LOCAL_PROCESS_ENV: str(i)},
            stdout=None if i == 0 else subprocess.DEVNULL,
          )
        )
      finally:
        if cores is not None:
          os.sched_setaffinity(0, mine)
    running = list(procs)
    while running:
      for p in list(running):
        rc = p.poll()
        if rc is None:
          continue
        running.remove(p)
        if rc != 0:
          return rc if rc > 0 else 128 - rc  # killed by signal -rc: the shell's status
      time.sleep(poll_s)
    return 0
  finally:
    for p in procs:
      if p.poll() is None:
        p.terminate()
    for p in procs:
      p.wait()


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
