"""Keras ``Dense`` on [batch, tokens, hidden] inputs (``tf.tensordot``, then ``BiasAdd``) against a reshape to rows,
``MatMul`` and ``BiasAdd`` (which grappler's remapper can fuse into one oneDNN matmul), MiniLM training steps at
batch 32, mixed_bfloat16, two models in one process, alternating rounds of 8 steps.

    python dense_as_matmul.py [WIDTH]     # default 24 tokens
"""

import os
import sys
import time
import types

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from kerasft import model as models  # noqa: E402
from kerasft import precision  # noqa: E402
from kerasft.optimizer import Adam  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

keras.mixed_precision.set_global_policy("mixed_bfloat16")
keras.backend.experimental.enable_tf_random_generator()
WIDTH = int(sys.argv[1]) if len(sys.argv) > 1 else 24
keras_dense_call = keras.layers.Dense.call


def rows_call(self, inputs):
    if inputs.shape.rank is None or inputs.shape.rank <= 2:
        return keras_dense_call(self, inputs)
    inputs = tf.cast(inputs, self.compute_dtype)
    leading = tf.shape(inputs)[:-1]
    outputs = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), self.kernel)
    if self.use_bias:
        outputs = tf.nn.bias_add(outputs, self.bias)
    if self.activation is not None:
        outputs = self.activation(outputs)
    return tf.reshape(outputs, tf.concat([leading, [self.units]], 0))


def build(as_rows: bool):
    keras.utils.set_random_seed(0)
    model = models.build_classifier(packaged_minilm(), list("abcdef"))
    if as_rows:
        swapped = [layer for layer in model._flatten_layers() if type(layer) is keras.layers.Dense]
        for layer in swapped:
            layer.call = types.MethodType(rows_call, layer)
        print(len(swapped), "Dense layers as rows")
    precision.keep_logits_float32(model)
    models.compile_classifier(model, 5e-5, optimizer=Adam)
    return model


variants = {"tensordot (Keras)": build(False), "rows": build(True)}
rng = np.random.default_rng(0)
features = {
    "input_ids": tf.constant(rng.integers(1000, 20000, (32, WIDTH))),
    "attention_mask": tf.ones((32, WIDTH), tf.int64),
}
labels = tf.constant(rng.integers(0, 6, 32))
for name, model in variants.items():
    started = time.perf_counter()
    model.train_on_batch(features, labels)
    graph = model.train_function._list_all_concrete_functions()[0].graph
    print(f"{name}: first step {time.perf_counter() - started:.2f} s, {len(graph.get_operations())} ops in the step")
print(
    "losses",
    {
        name: [round(float(model.train_on_batch(features, labels)[0]), 5) for _ in range(3)]
        for name, model in variants.items()
    },
)
times = {name: [] for name in variants}
for _ in range(6):
    for name, model in variants.items():
        started = time.perf_counter()
        for _ in range(8):
            model.train_on_batch(features, labels)
        times[name].append(1000 * (time.perf_counter() - started) / 8)
for name, rounds in times.items():
    print(f"{name}: median {np.median(rounds):.1f} ms a step, rounds {[round(value, 1) for value in rounds]}")
