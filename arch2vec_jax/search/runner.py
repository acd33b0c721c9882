"""One harness for every search method: build a pure `run(key)`, run all seeds in one call, summarise.

  run = make_search("bo", default_config("bo", "nb201"), env, Budget(100))
  trace = run_seeds(run, jax.random.split(key, 500))   # one jitted call, [500, T] fields
  summary = summarize(trace, at_queries=(25, 50, 100), optimum=...)

`run_seeds` is `jit(vmap(run))`, compiled once per `run` (cached) and, when
more than one device exists, with the seed axis sharded over `jax.devices()`
(`NamedSharding` inputs, `shard_map` of the vmapped run, seeds padded to a
multiple of the device count).
`summarize`, `value_at_queries` and `value_at_cost` are `trace_stats`'s (re-exported).
`run_seeds_loop` runs the same seeds one by one (the Python-loop reference for
tests and the speed comparison). `make_ask_tell(method, config, batch_size)`
gives the same method as pure ask/tell functions (`ask_tell`), for searches
driven by any evaluation; every method of `make_search` runs on them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from arch2vec_jax import parallel, spaces
from arch2vec_jax.search import ask_tell, baselines, dngo, gd, reinforce, supervised
from arch2vec_jax.search import env as env_lib
from arch2vec_jax.search.trace_stats import summarize, value_at_cost, value_at_queries

__all__ = [
  "METHODS",
  "batched_run",
  "default_config",
  "make_ask_tell",
  "make_search",
  "match_embeddings",
  "run_seeds",
  "run_seeds_loop",
  "seeds_program",
  "summarize",
  "value_at_cost",
  "value_at_queries",
]

METHODS = ("rl", "bo", "rs", "re", "gd", "sbo", "srl")


def default_config(method: str, space: str) -> Any:
  """The paper's / benchmarks' defaults of a method for a space ('nb201' or 'nb101').

  The space's `SearchSpace.search_defaults` say what differs from each config's
  defaults; the supervised variants take BO's top_k ('sbo') and RL's config ('srl').

  Raises:
    ValueError: for a space without search defaults (e.g. 'darts'), or an unknown method.
  """
  overrides = spaces.get(space).search_defaults if space in spaces.NAMES else {}
  if not overrides:
    raise ValueError(f"no search defaults for space {space!r}")
  if method == "rl":
    return reinforce.ReinforceConfig(**overrides["rl"])
  if method == "bo":
    return dngo.BOConfig(**overrides["bo"])
  if method == "re":
    return baselines.REConfig(**overrides["re"])
  if method == "rs":
    return None
  if method == "sbo":  # supervised-BO: BO's top-k
    return supervised.SupervisedBOConfig(top_k=overrides["bo"]["top_k"])
  if method == "srl":  # supervised-RL: RL's baseline
    return supervised.SupervisedRLConfig(policy=reinforce.ReinforceConfig(**overrides["rl"]))
  if method == "gd":
    return gd.GDConfig(**overrides["gd"])
  raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def make_search(
  method: str,
  config: Any,
  env: env_lib.SearchEnv,
  budget: env_lib.Budget,
  neighbours: np.ndarray | None = None,
  decoder: Any = None,
  graphs: Any = None,
) -> Callable[[jax.Array], env_lib.Trace]:
  """A pure `run(key) -> Trace` (length `budget.max_queries`) for one method.

  Args:
    method: 'rl' (arch2vec-RL), 'bo' (arch2vec-BO), 'rs' (random search) or
      're' (regularized evolution).
    config: the method's config (`default_config`); ignored by 'rs'.
    env: the environment.
    budget: queries and optional time.
    neighbours: int [N, K] mutation table ('re' only; `baselines.neighbour_table`).
    decoder: 'gd' with mapping 'decoder' only: the `gd.TableDecoder` (`gd.nb201_decoder`).
    graphs: 'sbo' / 'srl' only (the supervised searches, `search.supervised`): the
      table's cells as `supervised.GraphCandidates` (`supervised.graph_candidates`).

  Returns:
    `run(key)`.
  """
  if method == "rl":
    return reinforce.make_reinforce(config, env, budget)
  if method == "bo":
    return dngo.make_bo(config, env, budget)
  if method == "rs":
    return baselines.make_random_search(env, budget)
  if method == "re":
    if neighbours is None:
      raise ValueError("regularized evolution needs the mutation `neighbours` table")
    return baselines.make_regularized_evolution(config, env, budget, neighbours)
  if method == "gd":
    return gd.make_gd(config, env, budget, decoder)
  if method in ("sbo", "srl"):
    if graphs is None:
      raise ValueError(f"method {method!r} needs the cells' graphs (supervised.graph_candidates)")
    make = supervised.make_supervised_bo if method == "sbo" else supervised.make_supervised_rl
    return make(config, env, budget, graphs)
  raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def make_ask_tell(
  method: str, config: Any = None, batch_size: int = 1, budget: env_lib.Budget | None = None
) -> ask_tell.AskTell:
  """A method as ask/tell functions (`ask_tell.AskTell`: pure `init`, `ask`, `tell`).

  Args:
    method: 'rs', 're', 'rl' or 'bo'.
    config: the method's config (`default_config`); ignored by 'rs'.
    batch_size: cells per `ask` (static; 'rl' needs it to divide the episode length).
    budget: the search's budget ('bo' only, where it is needed: it sizes the
      surrogate's data buffer and stops the fits; `dngo.bo_search`).

  Returns:
    The method; `make_search(method, config, env, budget)` is
    `ask_tell.table_search` over it with `batch_size` 1.
  """
  if method == "rs":
    return baselines.random_search(batch_size)
  if method == "re":
    return baselines.regularized_evolution(config, batch_size)
  if method == "rl":
    return reinforce.reinforce_search(config, batch_size)
  if method == "bo":
    if budget is None:
      raise ValueError(
        "arch2vec-BO's ask/tell needs the search's budget (make_ask_tell('bo', config, k, budget))"
      )
    return dngo.bo_search(config, budget, batch_size)
  if method == "gd":
    if budget is None:
      raise ValueError(
        "arch2vec-GD's ask/tell needs the search's budget (make_ask_tell('gd', config, k, budget))"
      )
    return gd.gd_search(config, budget, batch_size)
  raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


_BATCHED: weakref.WeakKeyDictionary[Callable, dict] = weakref.WeakKeyDictionary()


def batched_run(
  run: Callable[[jax.Array], Any], mesh: Mesh | None = None
) -> Callable[[jax.Array], Any]:
  """`jit(vmap(run))`, built once per (`run`, mesh) so that repeated calls do not retrace.

  With a mesh (axis 'seeds'), the vmapped run is `shard_map`ped over it: each
  device runs its own slice of the seeds.
  """
  cache = _BATCHED.setdefault(run, {})
  key = None if mesh is None else (tuple(d.id for d in mesh.devices.flat), mesh.axis_names)
  if key not in cache:
    fn = jax.vmap(run)
    if mesh is not None:
      fn = jax.shard_map(
        fn,
        mesh=mesh,
        in_specs=PartitionSpec("seeds"),
        out_specs=PartitionSpec("seeds"),
        check_vma=False,
      )
    cache[key] = jax.jit(fn)
  return cache[key]


def seeds_program(
  run: Callable[[jax.Array], Any], keys: jax.Array, devices: Sequence[jax.Device] | None = None
) -> tuple[Callable, jax.Array, int]:
  """The jitted all-seeds program of `run_seeds` and the keys placed for it.

  Returns:
    (`batched_run(run[, mesh])`, the keys (with several devices: padded to a
    multiple of the device count with copies of the last key and sharded over a
    'seeds' mesh axis), the number of real seeds).
  """
  devices = list(jax.devices() if devices is None else devices)
  num = int(keys.shape[0])
  if len(devices) <= 1:
    return batched_run(run), keys, num
  pad = -num % len(devices)
  if pad:
    keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, axis=0)])
  mesh = Mesh(np.asarray(devices), ("seeds",))
  return batched_run(run, mesh), parallel.shard_leading(keys, mesh), num


def run_seeds(
  run: Callable[[jax.Array], Any], keys: jax.Array, devices: Sequence[jax.Device] | None = None
) -> Any:
  """All seeds in one compiled call: `jit(vmap(run))(keys)`.

  Args:
    run: a pure `run(key)` (e.g. from `make_search`).
    keys: [S] PRNG keys (typed or raw uint32 [S, 2]).
    devices: devices to shard the seed axis over (default `jax.devices()`);
      with one device nothing is sharded. With several, the keys are placed
      with `NamedSharding` over a 'seeds' mesh axis (padded to a multiple of
      the device count with copies of the last key, whose results are dropped).

  Returns:
    The stacked outputs (e.g. a `Trace` with [S, T] fields), as device arrays.
  """
  fn, placed, num = seeds_program(run, keys, devices)
  out = fn(placed)
  if not all(
    a.is_fully_addressable for a in jax.tree.leaves(out)
  ):  # several processes: gather to every host
    out = parallel.to_host(out)
  return jax.tree.map(lambda a: a[:num], out)


def run_seeds_loop(run: Callable[[jax.Array], Any], keys: jax.Array) -> Any:
  """The same seeds one at a time (`jit(run)` in a Python loop), stacked like `run_seeds`."""
  fn = jax.jit(run)
  outs = [jax.block_until_ready(fn(k)) for k in keys]
  return jax.tree.map(lambda *a: jnp.stack(a), *outs)


def match_embeddings(
  table_ids: np.ndarray, emb_ids: np.ndarray, embeddings: np.ndarray
) -> np.ndarray:
  """The embedding rows of the table's cells, in table order, matched by cell identifier.

  Args:
    table_ids: str [N], the benchmark table's identifiers (NB201 arch strings,
      NB101 hashes).
    emb_ids: str [M], the identifiers in `embeddings.npz` (M >= N, any order).
    embeddings: [M, D].

  Returns:
    float32 [N, D].

  Raises:
    ValueError: if identifiers repeat in `emb_ids` or some table cell has no embedding.
  """
  emb_ids = np.asarray(emb_ids).astype(str)
  table_ids = np.asarray(table_ids).astype(str)
  if len(emb_ids) != len(embeddings):
    raise ValueError(f"{len(emb_ids)} ids for {len(embeddings)} embeddings")
  lookup = {h: i for i, h in enumerate(emb_ids)}
  if len(lookup) != len(emb_ids):
    raise ValueError("the embeddings file repeats cell identifiers")
  rows = np.array([lookup.get(h, -1) for h in table_ids], np.int64)
  missing = np.flatnonzero(rows < 0)
  if len(missing):
    raise ValueError(
      f"{len(missing)} of {len(table_ids)} table cells have no embedding (first: {table_ids[missing[0]]!r}); "
      f"the embeddings ({len(emb_ids)} cells, e.g. {emb_ids[0]!r}) are of another space or table"
    )
  return np.asarray(embeddings, np.float32)[rows]
