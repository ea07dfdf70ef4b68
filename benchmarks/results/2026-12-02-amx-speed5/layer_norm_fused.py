"""LayerNorm through TensorFlow's fused batch-norm kernel against Keras' (13 layers of [32, 24, 384], forward and
backward, mixed_bfloat16).

Hugging Face's BERT-family models set LayerNorm's epsilon to 1e-12, below the 1.001e-5 that ``fused_batch_norm``
raises any epsilon to, so Keras computes their LayerNorm op by op (``tf.nn.moments``, then ``batch_normalization``).
The fused kernel normalizes each token as a channel (NCHW, [1, tokens, hidden, 1]) with epsilon 1.001e-5, then
applies LayerNorm's scale and offset: a different epsilon, so answers that differ, and only faster if it is clearly
so.
"""

import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

keras.mixed_precision.set_global_policy("mixed_bfloat16")
inputs = tf.cast(tf.random.normal([32, 24, 384], seed=1) * 3 + 0.5, tf.bfloat16)
upstream = tf.cast(tf.random.normal([32, 24, 384], seed=2), tf.bfloat16)
layer_norm = keras.layers.LayerNormalization(epsilon=1e-12)
layer_norm.build([None, None, 384])
gamma, beta = layer_norm.gamma, layer_norm.beta


def fused(dtype):
    def normalize(hidden):
        shape = tf.shape(hidden)
        rows = shape[0] * shape[1]
        x = tf.reshape(tf.cast(hidden, dtype), [1, rows, shape[2], 1])
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, tf.ones([rows]), tf.zeros([rows]), epsilon=1.001e-5, data_format="NCHW"
        )
        return tf.cast(tf.cast(tf.reshape(y, shape), tf.float32) * gamma + beta, tf.bfloat16)

    return normalize


def layers_step(normalize):
    @tf.function
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            hidden = x
            for _ in range(13):
                hidden = normalize(hidden)
            loss = tf.reduce_sum(tf.cast(hidden, tf.float32) * tf.cast(dy, tf.float32))
        return tape.gradient(loss, [x, gamma, beta])

    return step


variants = {
    "keras": layers_step(layer_norm),
    "fused, float32 input": layers_step(fused(tf.float32)),
    "fused, bfloat16 input": layers_step(fused(tf.bfloat16)),
}
reference = [value.numpy().astype(np.float32) for value in variants["keras"](inputs, upstream)]
for name, step in variants.items():
    got = [value.numpy().astype(np.float32) for value in step(inputs, upstream)]
    relative = [float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(got[:2], reference[:2])]
    print(f"{name}: largest difference from Keras, input gradient {relative[0]:.2e}, gamma's {relative[1]:.2e}")
for round_ in range(3):
    for name, step in variants.items():
        for _ in range(3):
            step(inputs, upstream)
        started = time.perf_counter()
        for _ in range(20):
            step(inputs, upstream)[0].numpy()
        print(f"round {round_} {name}: {1000 * (time.perf_counter() - started) / 20 / 13:.2f} ms a layer")
