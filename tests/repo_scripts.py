"""The repository's scripts (launch/*.py, examples/*.py) as modules for the tests, loaded by file path.

  search_launcher = repo_scripts.load("launch/search.py")

A launcher defines its absl flags when it is loaded, so it is loaded once per
session (cached in `sys.modules` under a name derived from its path) and every
test file shares that module; `cache=False` loads a fresh copy (examples).
"""

import importlib.util
import pathlib
import sys
import types

REPO = pathlib.Path(__file__).resolve().parents[1]

__all__ = ["REPO", "load"]


def load(relpath: str, name: str | None = None, cache: bool = True) -> types.ModuleType:
  """The module of the script at `REPO / relpath`, registered in `sys.modules` as `name`.

  Args:
    relpath: e.g. 'launch/search.py'.
    name: the module's name (default the file's stem, 'launch_' prefixed for launchers);
      dataclasses (Flax modules) look their module up by it.
    cache: reuse the module already loaded under `name`.
  """
  path = REPO / relpath
  if name is None:
    name = ("launch_" if path.parent.name == "launch" else "") + path.stem
  if cache and name in sys.modules:
    return sys.modules[name]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module
  spec.loader.exec_module(module)
  return module
