"""Where a compiled program's time goes: XLA's own per-operation timings, grouped by kind.

`profile(compiled, *args)` runs the compiled program under `jax.profiler`,
reads the trace's per-thunk events (XLA:CPU records one per executed HLO
operation, inside loops once per iteration; checked on XLA:CPU only) and groups their time by what each operation does, read off the
optimised HLO (`compiled.as_text()`): matmul (a dot or a fusion around one),
scatter, gather, reduce, sort, elementwise (other fusions), copy (data
movement), other. It also counts the matmul FLOPs the operations executed, so
the rate inside the matmuls can be set beside the machine's GEMM rate:

  compiled = jax.jit(step).lower(*args).compile()
  p = op_profile.profile(compiled, *args)
  p["categories"]["matmul"]["share"]   # of the operations' time
  p["matmul_gflops"]                   # FLOP/s inside the matmul operations

Loop and call operations (while, conditional, call) span the operations of
their bodies and are left out of the sums, except a call XLA:CPU runs as one
kernel (a "small call", e.g. a scatter expanded into a loop): one operation,
named by the JAX operation it came from.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import math
import os
import re
import tempfile
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["CATEGORIES", "hlo_ops", "profile"]

# In order of precedence: a fusion around a dot is a matmul even if it also adds.
CATEGORIES = ("matmul", "scatter", "gather", "reduce", "sort", "elementwise", "copy", "other")
_MATMUL = {"dot", "convolution"}
_COPY = {
  "copy",
  "transpose",
  "slice",
  "dynamic-slice",
  "dynamic-update-slice",
  "concatenate",
  "pad",
  "broadcast",
  "reshape",
  "bitcast",
  "copy-start",
  "copy-done",
}
_CONTROL = {"while", "conditional", "call"}
_OTHER = {"custom-call", "rng", "rng-bit-generator", "iota", "infeed", "outfeed", "after-all"}
_CALLED = re.compile(r"(?:calls|to_apply)=%?([\w.\-]+)")
_SMALL_CALL = 'xla_cpu_small_call="true"'
_LIBRARY_MATMUL = re.compile(r'custom_call_target="[^"]*(matmul|gemm|dot)', re.IGNORECASE)
_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s*\(.*\)\s*->.*\{\s*$")
_NAME = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*")
_OPCODE = re.compile(r"\s*([\w\-]+)\((.*)$")
_SHAPE = re.compile(r"\w+\[([\d,]*)\]")


def _instruction(line: str) -> tuple[str, str, str, str] | None:
  """(name, shape, opcode, the rest after the opening parenthesis) of one HLO instruction line."""
  m = _NAME.match(line)
  if not m:
    return None
  rest = line[m.end() :]
  if rest.startswith("("):  # a tuple shape: up to its matching parenthesis
    depth = 0
    for i, ch in enumerate(rest):
      depth += {"(": 1, ")": -1}.get(ch, 0)
      if depth == 0:
        break
    shape, rest = rest[: i + 1], rest[i + 1 :]
  else:
    shape, _, rest = rest.partition(" ")
  op = _OPCODE.match(rest)
  return (m.group(1), shape, op.group(1), op.group(2)) if op else None


def _dims(shape: str) -> list[int]:
  m = _SHAPE.match(shape)
  return [int(d) for d in m.group(1).split(",") if d] if m else []


def hlo_ops(hlo_text: str) -> dict[str, dict[str, Any]]:
  """Every operation of an optimised HLO module outside fused computations, by name.

  Args:
    hlo_text: `compiled.as_text()`.

  Returns:
    name -> {"opcode", "category" (one of `CATEGORIES`, or "control" for
    while / conditional / call), "matmul_flops" (2 * output size * contracted
    size of each dot it runs, fused ones included)}.
  """
  comps: dict[str, list[tuple[str, str, str, str]]] = {}
  shapes: dict[str, str] = {}
  current = None
  for line in hlo_text.splitlines():
    m = _COMPUTATION.match(line)
    if m:
      current = comps.setdefault(m.group(1), [])
      continue
    parsed = _instruction(line)
    if parsed and current is not None:
      shapes[parsed[0]] = parsed[1]
      current.append(parsed)

  def dot_flops(shape: str, rest: str) -> int:
    lhs = re.match(r"\s*%?([\w.\-]+)", rest)
    contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest)
    lhs_dims = _dims(shapes.get(lhs.group(1), "")) if lhs else []
    k = [lhs_dims[int(i)] for i in contracting.group(1).split(",") if i] if contracting else []
    return 2 * math.prod(_dims(shape)) * math.prod(k)

  def contents(comp: str, seen: frozenset = frozenset()) -> tuple[set[str], int]:
    """Opcodes and dot FLOPs of a fused computation, nested fusions included."""
    opcodes, flops = set(), 0
    for _, shape, opcode, rest in comps.get(comp, ()):
      opcodes.add(opcode)
      if opcode == "dot":
        flops += dot_flops(shape, rest)
      called = _CALLED.search(rest)
      if opcode == "fusion" and called and called.group(1) not in seen:
        inner, f = contents(called.group(1), seen | {comp})
        opcodes |= inner
        flops += f
    return opcodes, flops

  fused, expanded = set(), {}
  for body in comps.values():
    for _, _, opcode, rest in body:
      called = _CALLED.search(rest)
      if called and (opcode in ("fusion", "custom-call") or _SMALL_CALL in rest):
        fused.add(called.group(1))
      # XLA:CPU may expand a scatter or sort into a loop: its body is that operation's time.
      kind = _source_kind(rest)
      if opcode == "while" and kind in ("scatter", "gather", "sort"):
        for part in re.findall(r"(?:body|condition)=%?([\w.\-]+)", rest):
          expanded[part] = kind
  ops = {}
  for comp, body in comps.items():
    if comp in fused:
      continue
    for name, shape, opcode, rest in body:
      kinds, flops = {opcode, _source_kind(rest)}, dot_flops(shape, rest) if opcode == "dot" else 0
      called = _CALLED.search(rest)
      # XLA:CPU runs a "small call" as one kernel: an operation like a fusion.
      as_fusion = opcode == "fusion" or (opcode == "call" and _SMALL_CALL in rest)
      if as_fusion and called:
        inner, flops = contents(called.group(1))
        kinds |= inner
      if opcode == "custom-call" and _LIBRARY_MATMUL.search(rest):
        kinds.add("dot")  # a library matmul (FLOPs not counted)
      category = expanded.get(comp) or _category("fusion" if as_fusion else opcode, kinds)
      ops[name] = {"opcode": opcode, "category": category, "matmul_flops": flops}
  return ops


def _source_kind(rest: str) -> str:
  """The kind of JAX operation an HLO instruction came from (its metadata op_name's last part)."""
  source = re.search(r'op_name="[^"]*?([\w\-]+)"', rest)
  name = source.group(1) if source else ""
  return next((k for k in ("scatter", "gather", "sort") if name.startswith(k)), name)


def _category(opcode: str, kinds: set[str]) -> str:
  """The category of an operation from its opcode and the opcodes (and source names) inside it."""
  if opcode in _CONTROL:
    return "control"
  if kinds & _MATMUL:
    return "matmul"
  for name in ("scatter", "gather", "sort"):
    if name in kinds:
      return name
  if kinds & {"reduce", "reduce-window"}:
    return "reduce"
  if opcode == "fusion":
    return "copy" if kinds <= _COPY | {"fusion", "parameter", "constant"} else "elementwise"
  if opcode in _COPY:
    return "copy"
  return "other" if opcode in _OTHER else "elementwise"


def _events(trace_dir: str) -> list[dict[str, Any]]:
  paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
  if not paths:
    raise RuntimeError(f"jax.profiler wrote no trace under {trace_dir}")
  with gzip.open(max(paths, key=os.path.getmtime)) as f:
    data = json.load(f)
  return data["traceEvents"] if isinstance(data, dict) else data


def profile(
  compiled: Any,
  *args: Any,
  calls: int = 5,
  top: int = 10,
  run: Callable[[], Any] | None = None,
) -> dict[str, Any]:
  """The time of each kind of operation of `compiled(*args)`, from XLA's trace of `calls` calls.

  Args:
    compiled: a compiled program (`jax.jit(f).lower(*args).compile()`).
    args: its arguments (it is called `calls` + 1 times, the first untraced).
    calls: traced calls (the figures are per call).
    top: how many of the slowest operations to list.
    run: instead of `compiled(*args)`: one call of the program, returning what to
      wait for (for a program whose arguments are donated: thread them yourself).

  Returns:
    {"calls", "op_us_per_call" (the operations' summed time, us),
    "categories": {category: {"us_per_call", "share" (of op_us_per_call),
    "ops_per_call"}} for every one of `CATEGORIES`, "matmul_flops_per_call",
    "matmul_gflops" (FLOP/s inside the matmul operations, None if they took no
    time), "slowest": [{"op", "category", "us_per_call", "count_per_call"}]}.

  Raises:
    RuntimeError: the trace holds none of the program's operations (a backend
      whose profiler records no per-operation events).
  """
  text = compiled.as_text()
  module = re.match(r"HloModule\s+([\w.\-]+)", text)
  ops = hlo_ops(text)
  run = run or (lambda: compiled(*args))
  jax.block_until_ready(run())
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir, create_perfetto_trace=True)
    try:
      for _ in range(calls):
        jax.block_until_ready(run())
    finally:
      jax.profiler.stop_trace()
    events = _events(trace_dir)
  time_us, count = collections.Counter(), collections.Counter()
  for e in events:
    info = e.get("args") or {}
    name = info.get("hlo_op", e.get("name"))
    if module and info.get("hlo_module", module.group(1)) != module.group(1):
      continue  # another program's operation of the same name
    if e.get("ph") == "X" and name in ops and ops[name]["category"] != "control":
      time_us[name] += float(e.get("dur", 0.0))
      count[name] += 1
  total = sum(time_us.values())
  if not total:
    raise RuntimeError(
      f"the {jax.default_backend()} profiler recorded none of the program's {len(ops)} operations"
    )
  categories = {c: {"us_per_call": 0.0, "share": 0.0, "ops_per_call": 0.0} for c in CATEGORIES}
  flops = 0
  for name, t in time_us.items():
    row = categories[ops[name]["category"]]
    row["us_per_call"] += t / calls
    row["ops_per_call"] += count[name] / calls
    flops += ops[name]["matmul_flops"] * count[name]
  for row in categories.values():
    row["share"] = row["us_per_call"] * calls / total
  matmul_s = categories["matmul"]["us_per_call"] * 1e-6
  slowest = sorted(time_us, key=time_us.get, reverse=True)[:top]
  return {
    "calls": calls,
    "op_us_per_call": total / calls,
    "categories": categories,
    "matmul_flops_per_call": flops / calls,
    "matmul_gflops": flops / calls / matmul_s / 1e9 if matmul_s else None,
    "slowest": [
      {
        "op": n,
        "category": ops[n]["category"],
        "us_per_call": time_us[n] / calls,
        "count_per_call": count[n] / calls,
      }
      for n in slowest
    ],
  }
