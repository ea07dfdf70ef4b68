"""A whole MRPC run step by step, no dropout: kerasft's real `fit` (kerasft.runner.run_session, every callback)
against the same batches replayed by ``train_on_batch`` and by PyTorch's Adam, all from the same weights.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 nice -n 19 /work/bench-venv/bin/python \
        benchmarks/results/2026-11-30-mrpc-whole-run/whole_run.py [--seed 0] [--data /tmp/q16/mrpc] [--json F]

The earlier probe (../2026-11-30-mrpc-step/pairs_step_by_step.py) covered 40-60 steps of epoch 1 with
``train_on_batch``. This one covers every step of the 3 epochs, through the epoch boundaries, and the side a
user runs: `fit` with the run's callbacks. Two sessions are prepared with the same recipe and seed (the
script asserts their weights are equal): the first is trained by run_session, with a callback recording
the loss of every batch; the second's model replays kerasft's own batches (kerasft.train.training_plan,
kerasft.batching.training_batches) with ``train_on_batch``, and a PyTorch copy of it replays them with
``torch.optim.Adam(eps=1e-7)``, as the quality benchmark's Trainer side runs. Printed: each side's mean
loss per epoch, the largest per-step loss difference of each pair of sides per epoch, and the largest weight
difference at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "2026-11-30-mrpc-step"))
sys.path.insert(0, str(HERE.parents[1] / "2026-11-29-quality" / "diagnosis"))

import numpy as np  # noqa: E402
import pairs_step_by_step as pairs_probe  # noqa: E402
import step_by_step as goemotions  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
import torch  # noqa: E402

from kerasft import monitor, runner  # noqa: E402
from kerasft.train import training_plan  # noqa: E402


class BatchLosses(keras.callbacks.Callback):
    """Every batch's own loss, from the running means Keras logs (mean_k * k - mean_(k-1) * (k-1))."""

    def __init__(self):
        super().__init__()
        self.losses, self._previous = [], 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.losses.append(mean * (batch + 1) - self._previous * batch)
        self._previous = mean


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/q16/mrpc")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        (folder / "ckpt").mkdir()
        checkpoint = goemotions.checkpoint_without_dropout(folder / "ckpt")
        fitted = pairs_probe.mrpc_session(args.data, str(checkpoint), args.lr, args.seed)
        replayed = pairs_probe.mrpc_session(args.data, str(checkpoint), args.lr, args.seed)
        same = max(
            float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(fitted.model.weights, replayed.model.weights)
        )
        print(f"the two sessions' initial weights differ by at most {same:.1e}")
        assert same == 0.0
        plan = training_plan(replayed)
        steps, per_epoch = plan.batches, plan.steps_per_epoch
        batches = goemotions.first_batches(replayed, steps)
        pt_model, pairs = pairs_probe.pytorch_copy(replayed.model, checkpoint, len(replayed.label_names))

        recorder = BatchLosses()
        own_callbacks = monitor.training_callbacks
        monitor.training_callbacks = lambda *a, **k: own_callbacks(*a, **k) + [recorder]
        run_dir = runner.run_session(fitted, folder / "runs", None, folder / "tb")
        test = json.loads((run_dir / "metrics.json").read_text())["test"]
        monitor.training_callbacks = own_callbacks
        fit_losses = np.array(recorder.losses)

        tob_losses, pt_losses = [], []
        adam = torch.optim.Adam(pt_model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-7)
        for x, y in batches:
            logs = replayed.model.train_on_batch(
                {k: tf.constant(v) for k, v in x.items()}, tf.constant(y), return_dict=True
            )
            tob_losses.append(float(logs["loss"]))
            adam.zero_grad()
            output = pt_model(**goemotions.pt_inputs(x), labels=torch.from_numpy(y.astype(np.int64)))
            output.loss.backward()
            adam.step()
            pt_losses.append(output.loss.item())
        tob_losses, pt_losses = np.array(tob_losses), np.array(pt_losses)
        end_tf = max(
            float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(fitted.model.weights, replayed.model.weights)
        )
        end_pt = goemotions.weight_differences(pairs, pt_model)["any"]
        report = {"seed": args.seed, "steps": steps, "steps_per_epoch": per_epoch, "fit_test": test, "epochs": []}
        for epoch in range(steps // per_epoch):
            part = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
            row = {
                "epoch": epoch + 1,
                "mean_loss": {
                    "fit": fit_losses[part].mean(),
                    "train_on_batch": tob_losses[part].mean(),
                    "pytorch": pt_losses[part].mean(),
                },
                "max_step_diff": {
                    "fit-train_on_batch": np.abs(fit_losses[part] - tob_losses[part]).max(),
                    "train_on_batch-pytorch": np.abs(tob_losses[part] - pt_losses[part]).max(),
                },
            }
            report["epochs"].append(json.loads(json.dumps(row, default=float)))
            print(json.dumps(report["epochs"][-1]))
        report |= {"end_weight_diff": {"fit-train_on_batch": end_tf, "train_on_batch-pytorch": end_pt}}
        print(f"end: largest weight difference fit-train_on_batch {end_tf:.2e}, train_on_batch-pytorch {end_pt:.2e}")
        print(f"fit's run: test accuracy {test.get('accuracy')}, macro F1 {test.get('macro_f1')}")
        report["losses"] = {
            "fit": fit_losses.tolist(),
            "train_on_batch": tob_losses.tolist(),
            "pytorch": pt_losses.tolist(),
        }
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
