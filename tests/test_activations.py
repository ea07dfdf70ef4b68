"""kerasft.activations: GELU in float32, its gradient, one rounding to bfloat16, and the models that use it."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerasft import activations
from kerasft.model import build_classifier, copy_without_optimizer

VALUES = tf.constant(np.linspace(-12.0, 12.0, 2401), tf.float32)


def value_and_gradient(function, inputs, upstream):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = function(inputs)
    return outputs, tape.gradient(outputs, inputs, output_gradients=upstream)


def keras_gelu(inputs):
    return tf.nn.gelu(inputs, approximate=False)  # what transformers' "gelu" is in TF models


def test_gelu_and_its_gradient_equal_keras_exact_gelu_in_float32():
    upstream = tf.constant(np.random.default_rng(0).normal(size=VALUES.shape), tf.float32)
    ours, our_gradient = value_and_gradient(activations.gelu, VALUES, upstream)
    theirs, their_gradient = value_and_gradient(keras_gelu, VALUES, upstream)
    assert ours.dtype == tf.float32 and our_gradient.dtype == tf.float32
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(our_gradient.numpy(), their_gradient.numpy(), rtol=1e-5, atol=1e-6)


def within_one_rounding(actual, exact, absolute=1e-6):
    """True where bfloat16 ``actual`` is ``exact`` (float32) rounded once: within half of bfloat16's 8-bit step."""
    actual, exact = tf.cast(actual, tf.float32).numpy(), tf.cast(exact, tf.float32).numpy()
    return np.abs(actual - exact) <= np.abs(exact) * 2.0**-8 + absolute


def test_bfloat16_inputs_are_computed_in_float32_and_rounded_once():
    inputs = tf.cast(VALUES, tf.bfloat16)
    upstream = tf.cast(tf.constant(np.random.default_rng(1).normal(size=VALUES.shape), tf.float32), tf.bfloat16)
    outputs, gradient = value_and_gradient(activations.gelu, inputs, upstream)
    assert outputs.dtype == tf.bfloat16 and gradient.dtype == tf.bfloat16
    exact, exact_gradient = value_and_gradient(keras_gelu, tf.cast(inputs, tf.float32), tf.cast(upstream, tf.float32))
    assert within_one_rounding(outputs, exact).all()
    assert within_one_rounding(gradient, exact_gradient).all()
    # Keras' gelu on the same bfloat16 tensor rounds at every op: many of its values are further off than that
    assert not within_one_rounding(keras_gelu(inputs), exact).all()


def test_models_kerasft_builds_use_it_and_transformers_table_is_restored(tiny_checkpoint):
    from transformers import activations_tf

    original = activations_tf.ACT2FN["gelu"]
    model = build_classifier(str(tiny_checkpoint), ["a", "b"])
    copy = copy_without_optimizer(model)  # the path evaluation and the export build by
    for built in (model, copy):
        layers = built.bert.encoder.layer
        assert layers and all(layer.intermediate.intermediate_act_fn is activations.gelu for layer in layers)
    assert activations_tf.ACT2FN["gelu"] is original


def test_table_is_restored_when_building_fails():
    from transformers import activations_tf

    original = activations_tf.ACT2FN["gelu"]
    with pytest.raises(RuntimeError), activations.float32_gelu():
        assert activations_tf.ACT2FN["gelu"] is activations.gelu
        raise RuntimeError("a model that fails to build")
    assert activations_tf.ACT2FN["gelu"] is original
