"""Analyses of embeddings (docs/arch2vec.md §6): predictive power, smoothness, pictures.

metrics      RMSE, Pearson, Spearman (average ranks for ties), Kendall tau-b
blr, gp      Bayesian linear regression and an RBF Gaussian process (pure JAX, jitted)
predictive   the held-out regression experiment and the one-hot baseline
supervised   the GIN encoder trained with an accuracy head (the supervised embedding)
joint        the GIN encoder and DNGO trained jointly (the paper's supervised predictor)
features     per-node (unpooled) arch2vec features
dngo_predictive, dngo_pipeline   the paper's DNGO predictive protocol (launch/analyze.py --protocol dngo)
heldout      the cells an evaluation may use next to a label-trained encoder
tsne         t-SNE maps (scikit-learn, optional)
smoothness   latent distance vs graph edit distance, nearest-neighbour accuracy gaps
regret       regret curves and final-regret distributions from search traces
plots        PNG pictures (PCA projection, curves, CDFs)
pipeline     `run_analysis`: everything for one space (launch/analyze.py)
"""

from arch2vec_jax.analysis import (
  blr,
  gp,
  metrics,
  pipeline,
  plots,
  predictive,
  regret,
  smoothness,
  supervised,
)
from arch2vec_jax.analysis.gp import GPModel, gp_fit, gp_predict
from arch2vec_jax.analysis.metrics import (
  kendall_tau_b,
  pearson,
  rankdata,
  regression_metrics,
  rmse,
  spearman,
)
from arch2vec_jax.analysis.pipeline import AnalysisConfig, run_analysis
from arch2vec_jax.analysis.supervised import SupervisedConfig, train_supervised
from arch2vec_jax.search.blr import BLRModel, blr_fit, blr_predict

__all__ = [
  "AnalysisConfig",
  "BLRModel",
  "GPModel",
  "SupervisedConfig",
  "blr",
  "blr_fit",
  "blr_predict",
  "gp",
  "gp_fit",
  "gp_predict",
  "kendall_tau_b",
  "metrics",
  "pearson",
  "pipeline",
  "plots",
  "predictive",
  "rankdata",
  "regression_metrics",
  "regret",
  "rmse",
  "run_analysis",
  "smoothness",
  "spearman",
  "supervised",
  "train_supervised",
]
