"""Step by step on sentence pairs: kerasft's compiled TF classifier against the PyTorch model, same weights, same
batches, no dropout (the GoEmotions version is 2026-11-29-quality/diagnosis/step_by_step.py; this one is MRPC's
single-label softmax loss, with segment ids).

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 flock /tmp/cpu.lock /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-step/pairs_step_by_step.py [--steps 40] [--data /tmp/q16/mrpc]

kerasft's model, loss and Adam come from kerasft.session.Session on the quality benchmark's MRPC recipe
(multilabel_pairs_quality.recipe_for: recipes/mrpc.py with the local-file overrides, float32, lr 1e-4); the
checkpoint is the packaged all-MiniLM-L6-v2 with both dropout rates 0. Every TF weight, the new head included, is
copied into AutoModelForSequenceClassification (single-label). The first ``--steps`` batches of kerasft's own
training pipeline go to ``train_on_batch`` on the TF side and to ``torch.optim.Adam(eps=1e-7)`` on the model's own
CrossEntropyLoss on the PyTorch side (what the benchmark's Trainer side runs). Printed: the inputs each batch
holds, step 1's logits and loss on both sides, then both losses at every step and the largest weight difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
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

from kerasft.session import Session  # noqa: E402


def mrpc_session(
    data: str, checkpoint: str | None, learning_rate: float = 1e-4, seed: int = 0, overrides: tuple[str, ...] = ()
) -> Session:
    """kerasft's prepared session on the quality benchmark's MRPC recipe (float32; the packaged checkpoint if None),
    with the benchmark's ``--kerasft-overrides`` if given."""
    recipe = quality.recipe_for(
        argparse.Namespace(
            task="mrpc", data=data, checkpoint=checkpoint, max_length=128, epochs=3, batch_size=32,
            learning_rate=learning_rate, seed=seed, kerasft_overrides=list(overrides),
        )
    )  # fmt: skip
    session = Session(recipe)
    session.prepare()
    return session


def pytorch_copy(tf_model, checkpoint: str, num_labels: int):
    """The single-label PyTorch model of ``checkpoint`` holding every weight of ``tf_model``, and the weight pairs."""
    pt_model = AutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=num_labels, problem_type="single_label_classification"
    )
    pairs = goemotions.pairs_of(tf_model, pt_model)
    goemotions.copy_tf_into_pt(pairs, pt_model)
    return pt_model, pairs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--data", default="/tmp/q16/mrpc")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = goemotions.checkpoint_without_dropout(Path(folder))
        session = mrpc_session(args.data, str(checkpoint), args.lr, args.seed)
        tf_model = session.model
        batches = goemotions.first_batches(session, args.steps)
        x0, y0 = batches[0]
        print("inputs:", {name: value.shape for name, value in x0.items()}, "labels:", y0[:8], y0.dtype)
        if "token_type_ids" in x0:
            print("segment ids of row 0:", x0["token_type_ids"][0].tolist())
            print("input ids of row 0:  ", x0["input_ids"][0].tolist())
            print("mask of row 0:       ", x0["attention_mask"][0].tolist())
        pt_model, pairs = pytorch_copy(tf_model, checkpoint, len(session.label_names))
        pt_model.train()  # dropout is 0 anyway
        tf_logits = tf_model({k: tf.constant(v) for k, v in x0.items()}, training=False).logits.numpy()
        with torch.no_grad():
            pt_logits = pt_model(**goemotions.pt_inputs(x0)).logits.numpy()
        print(f"step-1 logits max diff {np.abs(tf_logits - pt_logits).max():.2e}")
        adam = torch.optim.Adam(pt_model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7)
        for step, (x, y) in enumerate(batches, start=1):
            tf_loss = tf_model.train_on_batch(
                {k: tf.constant(v) for k, v in x.items()}, tf.constant(y), return_dict=True
            )
            adam.zero_grad()
            output = pt_model(**goemotions.pt_inputs(x), labels=torch.from_numpy(y.astype(np.int64)))
            output.loss.backward()
            adam.step()
            if step in (1, 2, 3, 5, 10, 20, 30, 40) or step == len(batches):
                diff = goemotions.weight_differences(pairs, pt_model)["any"]
                print(
                    f"step {step:3d}: loss TF {float(tf_loss['loss']):.6f} PT {output.loss.item():.6f}; "
                    f"max weight diff {diff:.2e}"
                )


if __name__ == "__main__":
    main()
