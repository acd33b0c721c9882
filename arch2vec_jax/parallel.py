"""Several devices, one host or many: JAX's own SPMD machinery, no home-made scheme.

Pre-training is data parallel: a 1-D `jax.sharding.Mesh` with the axis 'data'
over the devices, the batch dimension of every step sharded over it
(`NamedSharding(mesh, P('data'))`), parameters, optimizer state, BatchNorm
statistics and the training cells replicated (`P()`). The compiled epoch is the
same function as on one device (`train.make_train_epoch`), jitted with these
shardings; the XLA SPMD partitioner turns the batch sums (loss means, masked
BatchNorm statistics, latent sums) into cross-device all-reduces, so the result
equals single-device training with the same global batch and seed up to the
order of float additions. Searches shard their seed axis over a 'seeds' mesh
(`search.runner.run_seeds`).

Multi-host: call `initialize_distributed` (i.e. `jax.distributed.initialize`)
before any other JAX call in every process; `jax.devices()` then lists the
devices of all processes and `data_mesh` builds the global mesh from it. Arrays
are placed with `jax.make_array_from_callback` (each process fills its own
devices from its host copy, which is identical on every process) and read back
with `local_value` (a replicated array's copy on this process's first device).
Results sharded over processes are gathered with `to_host`, which first waits
for every process at a barrier (`wait_for_processes`): the collectives' own
set-up waits only 30 s, too little when the processes' shares of the work take
different times (time-budget searches).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
  "DATA_AXIS",
  "batch_sharded",
  "check_batch_size",
  "data_mesh",
  "initialize_distributed",
  "is_main_process",
  "local_value",
  "mesh_info",
  "replicate",
  "replicated",
  "resolve_num_devices",
  "shard_leading",
  "to_host",
  "wait_for_processes",
]

DATA_AXIS = "data"


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
  local_device_ids: Sequence[int] | None = None,
) -> None:
  """`jax.distributed.initialize` with the given values (None: JAX's auto-detection).

  Must run before anything else touches JAX (an array, `jax.devices()`, a
  jitted call); JAX raises otherwise. With every argument None, JAX detects the
  cluster (SLURM, Open MPI, Cloud TPU, Kubernetes, or the JAX_COORDINATOR_ADDRESS /
  JAX_NUM_PROCESSES / JAX_PROCESS_ID environment variables).

  Args:
    coordinator_address: 'host:port' of process 0's coordinator service.
    num_processes: processes in the job (>= 1).
    process_id: this process's index in [0, num_processes).
    local_device_ids: the local devices this process drives (default: all).

  Raises:
    ValueError: for inconsistent values (naming them).
  """
  if num_processes is not None and int(num_processes) < 1:
    raise ValueError(f"num_processes must be >= 1, got {num_processes}")
  if (
    process_id is not None
    and num_processes is not None
    and not 0 <= int(process_id) < int(num_processes)
  ):
    raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
  if (num_processes is not None or process_id is not None) and coordinator_address is None:
    raise ValueError(
      "num_processes / process_id given without coordinator_address ('host:port' of process 0)"
    )
  kwargs: dict[str, Any] = {}
  if coordinator_address is not None:
    kwargs["coordinator_address"] = coordinator_address
  if num_processes is not None:
    kwargs["num_processes"] = int(num_processes)
  if process_id is not None:
    kwargs["process_id"] = int(process_id)
  if local_device_ids is not None:
    kwargs["local_device_ids"] = list(local_device_ids)
  jax.distributed.initialize(**kwargs)


def resolve_num_devices(num_devices: int | None) -> int:
  """The device count to use: `num_devices`, or every device JAX sees (all processes) for None.

  Raises:
    ValueError: if `num_devices` is < 1 or more than the devices present.
  """
  available = jax.device_count()
  if num_devices is None:
    return available
  if int(num_devices) < 1:
    raise ValueError(f"num_devices must be >= 1, got {num_devices}")
  if int(num_devices) > available:
    raise ValueError(
      f"num_devices={num_devices} but JAX sees only {available} {jax.default_backend()} device(s) "
      f"({jax.process_count()} process(es)); on CPU, split it with --cpu_devices N or "
      f"XLA_FLAGS=--xla_force_host_platform_device_count=N"
    )
  return int(num_devices)


def data_mesh(num_devices: int | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh with axis 'data' over the first `num_devices` of `devices` (default `jax.devices()`).

  With several processes, every process's devices must be in the mesh (a
  process without a device in it could not take part): use all of them.
  """
  if devices is None:
    devices, n = jax.devices(), resolve_num_devices(num_devices)
  else:
    devices = list(devices)
    n = len(devices) if num_devices is None else int(num_devices)
    if not 1 <= n <= len(devices):
      raise ValueError(f"num_devices={num_devices} but {len(devices)} devices were given")
  chosen = devices[:n]
  if jax.process_count() > 1:
    missing = {d.process_index for d in jax.devices()} - {d.process_index for d in chosen}
    if missing:
      raise ValueError(
        f"num_devices={n} leaves process(es) {sorted(missing)} without a device; with "
        f"{jax.process_count()} processes use every device (num_devices=None)"
      )
  return Mesh(np.asarray(chosen), (DATA_AXIS,))


def check_batch_size(batch_size: int, num_devices: int) -> None:
  """Raises ValueError unless the global batch splits evenly over the devices.

  The batch is not padded to a multiple: padding would change the shapes of the
  step's random draws and so the run (it would no longer equal the
  single-device run with the same batch and seed).
  """
  if int(batch_size) % int(num_devices):
    raise ValueError(
      f"the global batch_size {batch_size} is not divisible by the {num_devices} devices of the "
      f"data mesh; choose a batch size that is a multiple of {num_devices} or set num_devices "
      f"(--num_devices) to a divisor of {batch_size}"
    )


def replicated(mesh: Mesh) -> NamedSharding:
  """The sharding of an array copied on every device of `mesh`."""
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """The sharding of an array whose leading (batch) axis is split over the 'data' axis."""
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Every leaf of `tree` (host or device arrays, identical on every process) replicated over `mesh`.

  Uses `jax.make_array_from_callback`, so it works when the mesh spans several
  processes (each process fills only its own devices).
  """
  sharding = replicated(mesh)

  def put(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return jax.device_put(x, sharding)  # already global
    return _from_host(x, sharding)

  return jax.tree.map(put, tree)


def _from_host(x: Any, sharding: NamedSharding) -> jax.Array:
  """A global array with `sharding` whose value is `x` (the same on every process); each process fills its devices."""
  host = np.asarray(x)
  return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def shard_leading(x: Any, mesh: Mesh) -> jax.Array:
  """`x` (a host or device array, identical on every process) with its leading axis split over `mesh`'s axis.

  Uses `jax.make_array_from_callback`, so it works when the mesh spans several
  processes. Typed PRNG keys are placed through their key data.
  """
  sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names[0]))
  if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
    return jax.random.wrap_key_data(
      _from_host(jax.random.key_data(x), sharding), impl=jax.random.key_impl(x)
    )
  return _from_host(x, sharding)


BARRIER_TIMEOUT_S = 7 * 24 * 3600
_barrier_ids = itertools.count()


def wait_for_processes(timeout_s: float = BARRIER_TIMEOUT_S) -> None:
  """Blocks until every process of the `jax.distributed` job has called this (no-op for one process).

  Every process must make the same sequence of calls (SPMD). A process that
  dies fails the barrier through the coordination service's heartbeat
  (about 100 s), so the long default timeout does not hang a broken job.
  """
  from jax._src import distributed  # pylint: disable=import-outside-toplevel

  client = distributed.global_state.client
  if client is None or jax.process_count() == 1:
    return
  client.wait_at_barrier(f"arch2vec_wait_{next(_barrier_ids)}", int(timeout_s * 1000))


def to_host(tree: Any) -> Any:
  """NumPy copies of a pytree of arrays; arrays sharded over several processes are gathered from all of them.

  Before gathering, waits until the arrays are computed and every process has
  got here (`wait_for_processes`), however long the slowest takes.
  """
  from jax.experimental import multihost_utils  # pylint: disable=import-outside-toplevel

  leaves = jax.tree.leaves(tree)
  if any(isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves):
    jax.block_until_ready(leaves)
    wait_for_processes()

  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)

  return jax.tree.map(one, tree)


def local_value(tree: Any) -> Any:
  """A replicated (or single-device) pytree as arrays on this process's first device holding them.

  For reading results on the host (`jax.device_get`, NumPy) and for
  single-device follow-ups (metrics, embeddings) when the arrays span several
  processes. Only meaningful for replicated arrays: a sharded array's first
  shard is only a part of it.
  """

  def one(x):
    if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
      return x.addressable_data(0)
    return x

  return jax.tree.map(one, tree)


def is_main_process() -> bool:
  """True in process 0 (the one that writes files and logs)."""
  return jax.process_index() == 0


def mesh_info(mesh: Mesh | None) -> dict[str, Any]:
  """What ran: {'num_devices', 'num_processes', 'device_kind', 'axis'} of a mesh (None: one default device)."""
  devices = [jax.devices()[0]] if mesh is None else list(mesh.devices.flat)
  return {
    "num_devices": len(devices),
    "num_processes": len({d.process_index for d in devices}),
    "device_kind": devices[0].device_kind,
    "axis": None if mesh is None else mesh.axis_names[0],
  }
