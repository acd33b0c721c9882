"""The supervised predictor of the paper's comparison, a GIN encoder and DNGO trained jointly: `search.joint`'s.

Re-exported here for the analyses (`dngo_predictive`); the search's supervised-BO
(`search.supervised`) uses the same module.
"""

from arch2vec_jax.search.joint import (
  GINDNGO,
  JointConfig,
  fit_joint,
  joint_basis,
  joint_predict,
  num_steps,
)

__all__ = ["GINDNGO", "JointConfig", "fit_joint", "joint_basis", "joint_predict", "num_steps"]
