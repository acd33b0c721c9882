"""Helpers shared by the absl launchers in `launch/`."""

from __future__ import annotations

import shlex

from absl import flags

__all__ = ["command_line"]


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
