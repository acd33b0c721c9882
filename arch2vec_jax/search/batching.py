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

from typing import Callable

import jax
from jax import custom_batching

__all__ = ["sequential_vmap"]


def sequential_vmap(fn: Callable) -> Callable:
  """`fn` with a batching rule that loops over the batch axis (`lax.map`).

  Args:
    fn: a function of positional array pytrees (no keyword arguments).

  Returns:
    The same function; under `vmap` its batched arguments are mapped over one
    element at a time and unbatched ones are shared. Values are unchanged.
  """
  wrapped = custom_batching.custom_vmap(fn)

  @wrapped.def_vmap
  def _rule(axis_size, in_batched, *args):
    del axis_size
    flat, treedef = jax.tree.flatten(list(args))
    flags = jax.tree.leaves(list(in_batched))  # one bool per leaf, same order
    batched = [x for x, f in zip(flat, flags) if f]

    def one(xs):
      it = iter(xs)
      return fn(*jax.tree.unflatten(treedef, [next(it) if f else x for x, f in zip(flat, flags)]))

    out = jax.lax.map(one, batched)
    return out, jax.tree.map(lambda _: True, out)

  return wrapped
