"""Dropout on both sides: the training-mode loss of one MRPC batch, drawn many times, kerasft's TF model (dropout
from tf.random.Generator, as kerasft.session sets it up) against the PyTorch model with the same weights.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 flock /tmp/cpu.lock /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-step/dropout_check.py [--draws 30]

Same weights and batch: the mean training-mode loss and its spread over the draws should agree if both sides drop
the same share of the same activations. Also each side's loss with dropout off.
"""

from __future__ import annotations

import argparse

import numpy as np
import tensorflow as tf
import torch
from pairs_step_by_step import goemotions, mrpc_session, pytorch_copy  # this folder: the script's own

from kerasft.recipe import packaged_minilm


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--data", default="/tmp/q16/mrpc")
    args = parser.parse_args()
    session = mrpc_session(args.data, None)
    tf_model = session.model
    x, y = goemotions.first_batches(session, 1)[0]
    pt_model, _ = pytorch_copy(tf_model, packaged_minilm(), 2)
    tf_x = {k: tf.constant(v) for k, v in x.items()}
    loss = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    step = tf.function(lambda: loss(y, tf_model(tf_x, training=True).logits))  # traced, as in fit
    tf_losses = [float(step()) for _ in range(args.draws)]
    tf_eval = float(loss(y, tf_model(tf_x, training=False).logits))
    labels = torch.from_numpy(y.astype(np.int64))
    pt_model.train()
    with torch.no_grad():
        pt_losses = [pt_model(**goemotions.pt_inputs(x), labels=labels).loss.item() for _ in range(args.draws)]
        pt_model.eval()
        pt_eval = pt_model(**goemotions.pt_inputs(x), labels=labels).loss.item()
    print(f"attention implementation (PyTorch): {pt_model.config._attn_implementation}")
    print(f"dropout off: TF {tf_eval:.6f} PT {pt_eval:.6f}")
    print(f"dropout on, {args.draws} draws: TF mean {np.mean(tf_losses):.5f} sd {np.std(tf_losses):.5f}")
    print(f"                          PT mean {np.mean(pt_losses):.5f} sd {np.std(pt_losses):.5f}")
    print(f"distinct TF draws: {len(set(round(v, 7) for v in tf_losses))} of {args.draws}")


if __name__ == "__main__":
    main()
