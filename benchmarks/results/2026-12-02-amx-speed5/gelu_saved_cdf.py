"""kerasft's float32 GELU (kerasft.activations: the gradient recomputes Phi(x) from the input) against two variants:
Phi(x) kept from the forward pass in float32, and Phi(x) as 0.5 erfc(-x / sqrt 2). Six [32, 24, 1536] activations in
bfloat16, forward and backward.
"""

import math
import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from kerasft.activations import gelu  # noqa: E402

SQRT_HALF, INV_SQRT_2PI = math.sqrt(0.5), 1 / math.sqrt(2 * math.pi)


@tf.custom_gradient
def gelu_keeping_cdf(inputs):
    x = tf.cast(inputs, tf.float32)
    cdf = 0.5 * (1.0 + tf.math.erf(x * SQRT_HALF))

    def gradient(upstream):
        with tf.control_dependencies([upstream]):
            x_again = tf.cast(inputs, tf.float32)
        density = tf.exp(-0.5 * tf.square(x_again)) * INV_SQRT_2PI
        return tf.cast(tf.cast(upstream, tf.float32) * (cdf + x_again * density), inputs.dtype)

    return tf.cast(x * cdf, inputs.dtype), gradient


@tf.custom_gradient
def gelu_erfc(inputs):
    x = tf.cast(inputs, tf.float32)

    def gradient(upstream):
        with tf.control_dependencies([upstream]):
            x_again = tf.cast(inputs, tf.float32)
        density = tf.exp(-0.5 * tf.square(x_again)) * INV_SQRT_2PI
        cdf = 0.5 * tf.math.erfc(x_again * -SQRT_HALF)
        return tf.cast(tf.cast(upstream, tf.float32) * (cdf + x_again * density), inputs.dtype)

    return tf.cast(0.5 * x * tf.math.erfc(x * -SQRT_HALF), inputs.dtype), gradient


inputs = tf.cast(tf.random.normal([32, 24, 1536], seed=1) * 2, tf.bfloat16)
upstream = tf.cast(tf.random.normal([32, 24, 1536], seed=2), tf.bfloat16)


def layers_step(activation):
    @tf.function
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = [activation(x * (1 + 0.01 * layer)) for layer in range(6)]
            loss = tf.add_n([tf.reduce_sum(tf.cast(out, tf.float32) * tf.cast(dy, tf.float32)) for out in outputs])
        return tape.gradient(loss, x)

    return step


variants = {"kerasft": layers_step(gelu), "Phi kept": layers_step(gelu_keeping_cdf), "erfc": layers_step(gelu_erfc)}
reference = variants["kerasft"](inputs, upstream).numpy().astype(np.float32)
for name, step in variants.items():
    difference = np.max(np.abs(step(inputs, upstream).numpy().astype(np.float32) - reference))
    print(
        f"{name}: largest gradient difference from kerasft's {difference:.3g} "
        f"(largest gradient {np.abs(reference).max():.3g})"
    )
for round_ in range(3):
    for name, step in variants.items():
        for _ in range(3):
            step(inputs, upstream)
        started = time.perf_counter()
        for _ in range(20):
            step(inputs, upstream).numpy()
        print(f"round {round_} {name}: {1000 * (time.perf_counter() - started) / 20 / 6:.2f} ms a layer")
