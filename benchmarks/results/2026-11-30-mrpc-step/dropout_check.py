"""Dropout on both sides: the training-mode loss of one MRPC batch, drawn many times, kerasft's TF model (dropout
from tf.random.Generator, as kerasft.session sets it up) against the PyTorch model with the same weights.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 flock /tmp/cpu.lock /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-step/dropout_check.py [--draws 30]

Same weights and batch: the mean training-mode loss and its spread over the draws should agree if both sides drop
the same share of the same activations. Also each side's loss with dropout off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "2026-11-29-quality" / "diagnosis"))
sys.path.insert(0, str(HERE.parents[2]))  # benchmarks/

import multilabel_pairs_quality as quality  # noqa: E402
import numpy as np  # noqa: E402
import step_by_step as goemotions  # noqa: E402  (its helpers)
import tensorflow as tf  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForSequenceClassification  # noqa: E402

from kerasft.recipe import packaged_minilm  # noqa: E402
from kerasft.session import Session  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=30)
    parser.add_argument("--data", default="/tmp/q16/mrpc")
    args = parser.parse_args()
    recipe = quality.recipe_for(
        argparse.Namespace(
            task="mrpc", data=args.data, checkpoint=None, max_length=128, epochs=3, batch_size=32,
            learning_rate=1e-4, seed=0, kerasft_overrides=[],
        )
    )  # fmt: skip
    session = Session(recipe)
    session.prepare()
    tf_model = session.model
    x, y = goemotions.first_batches(session, 1)[0]
    pt_model = AutoModelForSequenceClassification.from_pretrained(
        packaged_minilm(), num_labels=2, problem_type="single_label_classification"
    )
    goemotions.copy_tf_into_pt(goemotions.pairs_of(tf_model, pt_model), pt_model)
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
