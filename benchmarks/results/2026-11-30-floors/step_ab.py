"""Probe: what dropout and the exact GELU cost a training step, by switching them off one at a time.

    python benchmarks/results/2026-11-30-floors/step_ab.py [WIDTH]    # default 24 tokens, batch 32

Builds all-MiniLM-L6-v2 as step_profile.py does (mixed_bfloat16, kerasft's Adam, dropout from
tf.random.Generator as runs draw it) four times from its config: as it is, without any dropout, without
the attention probabilities' dropout, and with the tanh approximation of GELU (``gelu_new``). The
variants change the model's arithmetic, so none is a lever kerasft may pull; they measure what each
part costs. Each model warms up, then the four take turns, 8 steps each, for 4 rounds; the median of
each variant's rounds is printed.
"""

import os
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from transformers import AutoConfig  # noqa: E402

from kerasft import model as models  # noqa: E402
from kerasft import precision  # noqa: E402
from kerasft.optimizer import Adam  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

VARIANTS = {
    "as it is": {},
    "no dropout": {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0},
    "no attention dropout": {"attention_probs_dropout_prob": 0.0},
    "GELU, tanh form": {"hidden_act": "gelu_new"},
}


def main(width: int) -> None:
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.backend.experimental.enable_tf_random_generator()
    rng = np.random.default_rng(0)
    features = {
        "input_ids": tf.constant(rng.integers(1000, 20000, size=(32, width))),
        "attention_mask": tf.ones((32, width), tf.int64),
    }
    labels = tf.constant(rng.integers(0, 6, 32))
    built = {}
    for name, changes in VARIANTS.items():
        keras.utils.set_random_seed(0)
        model = models.classifier_from_config(AutoConfig.from_pretrained(packaged_minilm(), num_labels=6, **changes))
        precision.keep_logits_float32(model)
        models.compile_classifier(model, 5e-5, optimizer=Adam)
        for _ in range(4):
            model.train_on_batch(features, labels)
        built[name] = model
    rounds = {name: [] for name in VARIANTS}
    for _ in range(4):
        for name, model in built.items():
            started = time.perf_counter()
            for _ in range(8):
                model.train_on_batch(features, labels)
            rounds[name].append((time.perf_counter() - started) / 8 * 1000)
    for name, times in rounds.items():
        every = ", ".join(f"{t:.0f}" for t in times)
        print(f"width {width}, {name}: {np.median(times):.1f} ms a step (rounds {every})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
