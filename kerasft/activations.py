"""GELU computed in float32 and rounded once, swapped into Hugging Face's TF models while they are built.

Hugging Face's TF models take their activation from ``transformers.activations_tf.ACT2FN`` when a layer is made;
``"gelu"`` (BERT, RoBERTa, DistilBERT, DeBERTa, ELECTRA, MPNet, XLM-R) is ``keras.activations.gelu``, the exact
``0.5 * x * erfc(-x / sqrt(2))``. Under ``mixed_bfloat16`` it runs on bfloat16 tensors, and TensorFlow's
bfloat16 ``Erfc`` is computed an element at a time: on a 2-core CPU with AMX, GELU and its gradient took about
a sixth of a MiniLM training step, and 1.7x the float32 computation with its casts (BENCHMARKS.md, speed
round 3). `gelu` here computes in float32 (``erf``, which TensorFlow vectorizes), rounds
to the input's dtype once, as PyTorch's autocast does, and recomputes what its gradient needs from the input,
so a step keeps no more than the bfloat16 input for the backward pass::

    with float32_gelu():
        model = TFAutoModelForSequenceClassification.from_config(config)   # its "gelu" layers use `gelu`

>>> import tensorflow as tf
>>> x = tf.constant([-3.0, -0.5, 0.0, 0.5, 3.0])
>>> bool(tf.reduce_all(tf.abs(gelu(x) - tf.nn.gelu(x, approximate=False)) < 1e-6))
True
>>> gelu(tf.cast(x, tf.bfloat16)).dtype.name
'bfloat16'
"""

from __future__ import annotations

import contextlib
import math

import tensorflow as tf

_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1 / math.sqrt(2 * math.pi)


def _normal_cdf(x):
    """The standard normal distribution function at ``x`` (float32)."""
    return 0.5 * (1.0 + tf.math.erf(x * _SQRT_HALF))


@tf.custom_gradient
def gelu(inputs):
    """Exact GELU, ``x * Phi(x)``, computed in float32 and returned in the dtype of ``inputs``."""
    x = tf.cast(inputs, tf.float32)

    def gradient(upstream):
        # recomputed from the input rather than kept from the forward pass: float32 copies of a layer's widest
        # activations would double what a mixed-precision step holds for its backward pass. The control
        # dependency keeps grappler from merging these ops with the forward pass's identical ones (which would keep
        # the float32 tensors alive after all), and runs them only once the backward pass reaches this layer.
        with tf.control_dependencies([upstream]):
            x = tf.cast(inputs, tf.float32)
        density = tf.exp(-0.5 * tf.square(x)) * _INV_SQRT_2PI
        return tf.cast(tf.cast(upstream, tf.float32) * (_normal_cdf(x) + x * density), inputs.dtype)

    return tf.cast(x * _normal_cdf(x), inputs.dtype), gradient


@contextlib.contextmanager
def float32_gelu():
    """Models built inside use `gelu` wherever their config names ``"gelu"``; transformers' table is restored
    afterwards, so nothing outside kerasft's own model building sees the swap."""
    from transformers import activations_tf

    original = activations_tf.ACT2FN["gelu"]
    activations_tf.ACT2FN["gelu"] = gelu
    try:
        yield
    finally:
        activations_tf.ACT2FN["gelu"] = original
