"""An independent PyTorch implementation of arch2vec pre-training, to cross-check the JAX one.

Optional: needs `torch` (not a dependency of the package; e.g.
`pip install torch --index-url https://download.pytorch.org/whl/cpu`).

It trains the model of docs/arch2vec.md §3 the way the public release's
`models/pretraining_*.py` loop does, written here from that description in
eager PyTorch: BatchNorm1d over every node slot (padding included), BCE on
sigmoid outputs, the release's KL, Adam 1e-3 with global-norm clip 5, batch 32,
the training cells permuted once (the release does not reshuffle per epoch),
and by default the release's switch to eval mode after epoch 0
(`--norelease_eval_mode`: train mode every epoch). The cells, the 90/10 split
and the judging of the decodes (`metrics.validity_uniqueness`, the same
validity and hash functions as `launch/pretrain.py`) come from arch2vec_jax, so
the two implementations see the same data and the same metrics.

  python launch/torch_reference.py --space=darts --out=results/pretrain/torch_reference/darts_release.json

Prints one line per epoch and writes a JSON with every epoch's metrics.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from absl import flags
from torch import nn

from arch2vec_jax import cli, fileio, metrics, train
from arch2vec_jax import model as model_lib

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The launcher's flags (defined only when run as a script, so that tests can import the model)."""
  flags.DEFINE_enum("space", "darts", ["nb101", "nb201", "darts"], "Search space.")
  flags.DEFINE_integer("epochs", None, "Epochs (default: the space's, as launch/pretrain.py).")
  flags.DEFINE_integer(
    "num_cells", None, "DARTS: cells to sample (600,000); NB101/NB201: the first N."
  )
  flags.DEFINE_integer(
    "seed", 0, "torch / numpy seed (init, permutation, noise, dropout, prior samples)."
  )
  flags.DEFINE_boolean(
    "release_eval_mode", True, "Eval mode from the end of epoch 0 on (the release)."
  )
  flags.DEFINE_float("dropout", 0.3, "Dropout on z before the decoder (training only).")
  flags.DEFINE_integer("batch_size", 32, "Cells per step.")
  flags.DEFINE_integer(
    "num_prior_samples", 10_000, "Prior latents decoded for validity / uniqueness."
  )
  flags.DEFINE_integer("threads", 0, "torch threads (0: torch's default).")
  flags.DEFINE_string("out", None, "JSON to write (atomic).")


class GINMLP(nn.Module):
  """Linear(in, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden, hidden)."""

  def __init__(self, d_in: int, hidden: int):
    super().__init__()
    self.linear_0, self.bn, self.linear_1 = (
      nn.Linear(d_in, hidden),
      nn.BatchNorm1d(hidden),
      nn.Linear(hidden, hidden),
    )

  def forward(self, x):
    return self.linear_1(F.relu(self.bn(self.linear_0(x))))


class Arch2VecTorch(nn.Module):
  """GIN encoder (4 layers, hidden 128) -> per-node mu, log sigma (16) -> ops / inner-product decoders."""

  def __init__(
    self, d_in: int, hidden: int = 128, latent: int = 16, layers: int = 4, dropout: float = 0.3
  ):
    super().__init__()
    self.eps = nn.Parameter(torch.zeros(layers))
    self.mlps = nn.ModuleList([GINMLP(d_in if l == 0 else hidden, hidden) for l in range(layers)])
    self.bns = nn.ModuleList([nn.BatchNorm1d(hidden) for _ in range(layers)])
    self.mu, self.log_sigma = nn.Linear(hidden, latent), nn.Linear(hidden, latent)
    self.ops_decoder = nn.Linear(latent, d_in)
    self.dropout = dropout

  def encode(self, ops, adj_sym):
    """ops [B, n, d], adj_sym [B, n, n] (A + A^T) -> mu, log_sigma [B, n, latent]."""
    b, n, _ = ops.shape
    x = ops
    for l, (mlp, bn) in enumerate(zip(self.mlps, self.bns)):
      h = (1 + self.eps[l]) * x.reshape(b * n, -1) + torch.matmul(adj_sym, x).reshape(b * n, -1)
      x = F.relu(bn(mlp(h))).reshape(b, n, -1)
    return self.mu(x), self.log_sigma(x)

  def decode(self, z):
    """z [B, n, latent] -> sigmoid ops [B, n, d], sigmoid(z z^T) [B, n, n] (dropout on z in training)."""
    z = F.dropout(z, p=self.dropout, training=self.training)
    return torch.sigmoid(self.ops_decoder(z)), torch.sigmoid(z @ z.transpose(1, 2))

  def forward(self, ops, adj_sym):
    mu, log_sigma = self.encode(ops, adj_sym)
    z = mu + torch.exp(log_sigma) * torch.randn_like(mu) if self.training else mu
    ops_p, adj_p = self.decode(z)
    return ops_p, adj_p, mu, log_sigma


def symmetrize(adj):
  """A + transpose(strict upper part of A)."""
  return adj + adj.triu(1).transpose(-1, -2)


def loss_fn(ops_p, adj_p, mu, log_sigma, ops, adj):
  """BCE(ops) + BCE(strict-upper adjacency, mean over n*n) + the release's KL (effective weight 1/(B n))."""
  b, n, _ = ops.shape
  loss = F.binary_cross_entropy(ops_p, ops) + F.binary_cross_entropy(adj_p.triu(1), adj.triu(1))
  kl = (
    -0.5
    / (b * n)
    * torch.mean(torch.sum(1 + 2 * log_sigma - mu.pow(2) - log_sigma.exp().pow(2), -1))
  )
  return loss + kl


def _reconstruction(model, adj, ops, chunk=4096):
  """Held-out accuracies (z = mu), counted by the project's `metrics.reconstruction_counts`.

  The decoder's probabilities go in as logits (argmax and the 0.5 threshold are the same).
  """
  n_node = model_lib.count_nodes(ops.numpy())
  total = None
  with torch.no_grad():
    for s in range(0, len(ops), chunk):
      o, a = ops[s : s + chunk], adj[s : s + chunk]
      ops_p, adj_p, _, _ = model(o, symmetrize(a))
      counts = metrics.reconstruction_counts(
        ops_p.numpy(),
        torch.logit(adj_p.double()).numpy(),
        o.numpy(),
        a.numpy(),
        n_node[s : s + chunk],
      )
      total = counts if total is None else type(counts)(*(x + y for x, y in zip(total, counts)))
  return metrics.reconstruction_accuracy(total, ops.shape[1])


def main(argv):
  del argv
  if FLAGS.threads:
    torch.set_num_threads(FLAGS.threads)
  torch.manual_seed(FLAGS.seed)
  np.random.seed(FLAGS.seed)
  config = train.TrainConfig(space=FLAGS.space, num_cells=FLAGS.num_cells, epochs=FLAGS.epochs)
  space, adj_all, ops_all = train.load_cells(config)
  (tr_adj, tr_ops, _), (va_adj, va_ops, _) = train.split_cells(
    adj_all, ops_all, config.train_fraction
  )
  perm = torch.randperm(len(tr_ops))  # once, as the release
  tr_adj = torch.tensor(tr_adj, dtype=torch.float32)[perm]
  tr_ops = torch.tensor(tr_ops, dtype=torch.float32)[perm]
  va_adj, va_ops = (
    torch.tensor(va_adj, dtype=torch.float32),
    torch.tensor(va_ops, dtype=torch.float32),
  )
  num_train, n, d = tr_ops.shape
  model = Arch2VecTorch(d, dropout=FLAGS.dropout)
  opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
  print(
    f"torch {torch.__version__} ({torch.get_num_threads()} threads): {FLAGS.space}, {len(ops_all):,} cells, "
    f"{num_train:,} train; {config.num_epochs} epochs, batch {FLAGS.batch_size}, "
    f"release eval mode {FLAGS.release_eval_mode}",
    flush=True,
  )
  history = []
  t_start = time.perf_counter()
  for epoch in range(config.num_epochs):
    t0 = time.perf_counter()
    mus, losses = [], []
    for s in range(0, num_train, FLAGS.batch_size):
      adj, ops = tr_adj[s : s + FLAGS.batch_size], tr_ops[s : s + FLAGS.batch_size]
      opt.zero_grad()
      ops_p, adj_p, mu, log_sigma = model(ops, symmetrize(adj))
      loss = loss_fn(ops_p, adj_p, mu, log_sigma, ops, adj)
      loss.backward()
      nn.utils.clip_grad_norm_(model.parameters(), 5.0)
      opt.step()
      mus.append(mu.detach())
      losses.append(loss.item())
    train_s = time.perf_counter() - t0
    z_all = torch.cat(mus)
    mean, std = z_all.mean(0), z_all.std(0)
    model.eval()
    with torch.no_grad():
      z = torch.randn(FLAGS.num_prior_samples, n, mean.shape[-1]) * std + mean
      ops_p, adj_p = model.decode(z)
      dec_ops = F.one_hot(ops_p.argmax(-1), d).to(torch.int8).numpy()
      dec_adj = ((adj_p > 0.5).triu(1)).to(torch.int8).numpy()
    record = {
      "epoch": epoch,
      "loss": float(np.mean(losses)),
      **_reconstruction(model, va_adj, va_ops),
      **metrics.validity_uniqueness(space, dec_adj, dec_ops),
      "train_s": train_s,
    }
    if not FLAGS.release_eval_mode:  # the release never returns to train mode
      model.train()
    history.append(record)
    parts = " ".join(f"{k} {100 * v:.1f}" for k, v in record.get("validity_parts", {}).items())
    print(
      f"epoch {epoch:3d} | loss {record['loss']:.5f} | recon ops {100 * record['ops_acc_release']:.2f} "
      f"adj {100 * record['adj_acc']:.2f} exact {100 * record['exact_acc']:.2f} | valid "
      f"{100 * record['validity']:.2f}"
      + (f" [{parts}]" if parts else "")
      + f" unique {100 * record['uniqueness']:.2f} | {num_train / train_s:,.0f} graphs/s",
      flush=True,
    )
  total_s = time.perf_counter() - t_start
  final = history[-1]
  print(
    f"final: ops {100 * final['ops_acc_release']:.2f}% adj {100 * final['adj_acc']:.2f}% "
    f"validity {100 * final['validity']:.2f}% uniqueness {100 * final['uniqueness']:.2f}% | {total_s:.0f}s"
  )
  if FLAGS.out:
    fileio.atomic_write_json(
      FLAGS.out,
      {
        "command": cli.command_line("launch/torch_reference.py"),
        "device": {
          **cli.machine_info(),
          "torch": torch.__version__,
          "torch_threads": torch.get_num_threads(),
        },
        "config": {
          "space": FLAGS.space,
          "num_cells": len(ops_all),
          "epochs": config.num_epochs,
          "seed": FLAGS.seed,
          "release_eval_mode": FLAGS.release_eval_mode,
          "dropout": FLAGS.dropout,
          "batch_size": FLAGS.batch_size,
        },
        "epochs": history,
        "total_s": total_s,
      },
    )


if __name__ == "__main__":
  define_flags()
  cli.run(main)
