"""arch2vec-jax: unsupervised architecture representation learning for NAS, in compiled JAX."""

from arch2vec_jax import fileio
from arch2vec_jax.benchmarks.table import BenchmarkTable
from arch2vec_jax.spaces.base import SearchSpace

__all__ = ["BenchmarkTable", "SearchSpace", "fileio"]
