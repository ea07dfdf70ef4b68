"""Probe (issue 16; from the repository: PYTHONPATH=$PWD python benchmarks/results/2026-11-30-mrpc-step/fit_dropout.py,
the MRPC-style files of benchmarks/make_multilabel_pairs.py in /tmp/q16/mrpc): are the dropout draws inside Keras `fit` (kerasft's compiled train step) what they are in a plain
traced call? One MRPC batch, the weights held fixed (learning rate 0), N steps of fit against N traced calls."""

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
import multilabel_pairs_quality as quality
import numpy as np
import tensorflow as tf
import tf_keras as keras

from kerasft import batching
from kerasft.session import Session
from kerasft.train import training_plan

parser = argparse.ArgumentParser()
parser.add_argument("--draws", type=int, default=200)
args = parser.parse_args()
recipe = quality.recipe_for(
    argparse.Namespace(
        task="mrpc",
        data="/tmp/q16/mrpc",
        checkpoint=None,
        max_length=128,
        epochs=3,
        batch_size=32,
        learning_rate=1e-4,
        seed=0,
        kerasft_overrides=[],
    )
)
session = Session(recipe)
session.prepare()
model = session.model
plan = training_plan(session)
p = session.precision
collate = batching.PadToLongest.for_device(session.tokenizer, p.device_kind, p.jit_compile, recipe.model.max_length)
x, y = next(iter(batching.training_batches(session.tokenized["train"], plan, collate)))
print("batch", {k: tuple(v.shape) for k, v in x.items()}, "labels", y.numpy()[:8])
before = [w.numpy().copy() for w in model.trainable_weights]
loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
eval_loss = float(loss(y, model(x, training=False).logits))
step = tf.function(lambda: loss(y, model(x, training=True).logits), autograph=False)
traced = np.array([float(step()) for _ in range(args.draws)])
# fit on the same batch, learning rate 0: every step's loss is one dropout draw on the same weights
model.optimizer.learning_rate = 0.0
running = []


class Collect(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        running.append(logs["loss"])


dataset = tf.data.Dataset.from_tensors((x, y)).repeat(args.draws)
model.fit(dataset, epochs=1, verbose=0, callbacks=[Collect()])
running = np.array(running, dtype=np.float64)
k = np.arange(1, len(running) + 1)
per_step = k * running - np.concatenate([[0.0], (k[:-1]) * running[:-1]])
after = [w.numpy() for w in model.trainable_weights]
changed = max(float(np.abs(a - b).max()) for a, b in zip(after, before))
print(f"weights changed by at most {changed:.2e} (learning rate 0)")
print(f"dropout off: {eval_loss:.5f}")
print(
    f"traced calls, {len(traced)} draws: mean {traced.mean():.5f} sd {traced.std():.5f} distinct {len(set(np.round(traced, 6)))}"
)
print(
    f"fit steps,    {len(per_step)} draws: mean {per_step.mean():.5f} sd {per_step.std():.5f} distinct {len(set(np.round(per_step, 5)))}"
)
print("fit lag-1 autocorrelation", np.corrcoef(per_step[:-1], per_step[1:])[0, 1])
print("traced lag-1 autocorrelation", np.corrcoef(traced[:-1], traced[1:])[0, 1])
print("first fit steps", np.round(per_step[:6], 5))
