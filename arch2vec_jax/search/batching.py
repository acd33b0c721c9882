"""`sequential_vmap`: under `vmap`, run a function as a loop over the batch.

XLA:CPU turns a vmapped table-wide sweep (every cell's features for every
seed) into batched contractions with large, cache-unfriendly intermediates
[S, N, H], several times slower per seed than one seed at a time. Wrapping the
sweep with `sequential_vmap` keeps the per-seed program (a `lax.map` over the
batch axis replaces the batching), while everything around it stays vmapped. A
`while_loop` inside the function then also runs per seed rather than until the
slowest seed is done.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import custom_batching

__all__ = ["sequential_vmap"]


def sequential_vmap(fn: Callable, group_size: int = 1) -> Callable:
  """`fn` with a batching rule that loops over the batch axis (`lax.map`), `group_size` elements at a time.

  Args:
    fn: a function of positional array pytrees (no keyword arguments).
    group_size: elements per loop step; each step runs `vmap(fn)` on a group
      of that many (1: one element at a time, the plain per-element program).
      A batch that is not a multiple is padded with copies of its last element,
      whose results are dropped.

  Returns:
    The same function; under `vmap` its batched arguments are mapped over in
    groups and unbatched ones are shared. With group_size 1 the values are
    exactly those of `fn` on each element; larger groups batch the group's
    arithmetic (the same math; XLA may round it differently).
  """
  if group_size < 1:
    raise ValueError(f"group_size must be >= 1, got {group_size}")
  wrapped = custom_batching.custom_vmap(fn)

  @wrapped.def_vmap
  def _rule(axis_size, in_batched, *args):
    flat, treedef = jax.tree.flatten(list(args))
    flags = jax.tree.leaves(list(in_batched))  # one bool per leaf, same order
    batched = [x for x, f in zip(flat, flags) if f]

    def call(xs):
      it = iter(xs)
      return fn(*jax.tree.unflatten(treedef, [next(it) if f else x for x, f in zip(flat, flags)]))

    g = min(group_size, axis_size)
    if g == 1:
      out = jax.lax.map(call, batched)
    else:
      groups = -(-axis_size // g)
      pad = groups * g - axis_size
      padded = [
        jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x for x in batched
      ]
      grouped = [x.reshape((groups, g) + x.shape[1:]) for x in padded]
      out = jax.lax.map(jax.vmap(call), grouped)
      out = jax.tree.map(lambda y: y.reshape((groups * g,) + y.shape[2:])[:axis_size], out)
    return out, jax.tree.map(lambda _: True, out)

  return wrapped
