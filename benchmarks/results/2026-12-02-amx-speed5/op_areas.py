"""Where a MiniLM training step's op time goes on this CPU, by area of the model and by op name.

    python op_areas.py        # batch 32 x 24 tokens, mixed_bfloat16, 10 profiled steps after 3 warm-up steps

Builds the model as step_profile.py does, profiles 10 `train_on_batch` steps with one inter-op thread (so that an
op's time is its own), then sums each op's time per step by area (matmuls, LayerNorm, GELU forward and backward,
dropout, attention, Adam's update, ...) and lists the largest ops of a few types by name, layer numbers folded.
kerasft's GELU gradient runs under the optimizer's name scope (``Adam/gradients/``): Keras computes the gradients
there, and a custom gradient's ops take the scope they are built in.
"""

import collections
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.config.threading.set_inter_op_parallelism_threads(1)
import tf_keras as keras  # noqa: E402

from kerasft import model as models  # noqa: E402
from kerasft import precision  # noqa: E402
from kerasft.optimizer import Adam  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from step_profile import profile_steps  # noqa: E402

STEPS = 10
keras.mixed_precision.set_global_policy("mixed_bfloat16")
keras.backend.experimental.enable_tf_random_generator()
keras.utils.set_random_seed(0)
model = models.build_classifier(packaged_minilm(), list("abcdef"))
precision.keep_logits_float32(model)
models.compile_classifier(model, 5e-5, optimizer=Adam)
rng = np.random.default_rng(0)
features = {
    "input_ids": tf.constant(rng.integers(1000, 20000, (32, 24))),
    "attention_mask": tf.ones((32, 24), tf.int64),
}
labels = tf.constant(rng.integers(0, 6, 32))
for _ in range(3):
    model.train_on_batch(features, labels)
ms = profile_steps(model, features, labels, STEPS)


def area(op_type: str, name: str) -> str:
    if op_type.startswith("ResourceApply"):
        return "Adam's update"
    if name.startswith("Adam/gradients"):
        return "GELU backward (kerasft.activations)"
    if "MatMul" in op_type:
        return "matmuls"
    if "LayerNorm" in name:
        return "LayerNorm, forward and backward"
    if "dropout" in name.lower():
        return "dropout, forward and backward"
    if "intermediate/" in name and "dense" not in name:
        return "GELU forward"
    if "embeddings" in name:
        return "embeddings"
    if "attention/self" in name:
        return "attention's softmax, scaling, transposes"
    if "BiasAdd" in name:
        return "bias adds and their gradients"
    return "other: " + op_type


total = sum(ms.values())
print(f"every op: {total:.1f} ms a step")
areas = collections.Counter()
for (op_type, name), value in ms.items():
    areas[area(op_type, name)] += value
for name, value in areas.most_common(14):
    print(f"  {value:6.1f} ms {100 * value / total:5.1f}%  {name}")
for wanted in ("Cast", "Mul", "ResourceApplyAdam"):
    items = collections.Counter()
    for (op_type, name), value in ms.items():
        if op_type == wanted:
            items[re.sub(r"layer_\._\d+", "layer_N", re.sub(r"_\d+$", "", name))] += value
    print(f"{wanted}: {sum(items.values()):.1f} ms")
    for name, value in items.most_common(6):
        print(f"  {value:6.2f}  {name}")
