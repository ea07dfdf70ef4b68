"""A/B of candidate levers on MiniLM training steps, in one process, alternating."""
import contextlib, sys, time
from unittest import mock
import numpy as np, tensorflow as tf, tf_keras as keras
from kerasft import model as models, precision
from kerasft.recipe import packaged_minilm
from kerasft.optimizer import Adam
keras.mixed_precision.set_global_policy("mixed_bfloat16")
keras.backend.experimental.enable_tf_random_generator()
WIDTH = int(sys.argv[1]) if len(sys.argv) > 1 else 24

def layer_norm(inputs, gamma, beta, epsilon):
    @tf.custom_gradient
    def normalize(inputs, gamma, beta):
        x = tf.cast(inputs, tf.float32)
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        inverse_std = tf.math.rsqrt(variance + epsilon)
        normalized = (x - mean) * inverse_std
        def gradient(upstream):
            dy = tf.cast(upstream, tf.float32)
            axes = list(range(dy.shape.rank - 1))
            d_norm = dy * gamma
            d_x = inverse_std * (d_norm - tf.reduce_mean(d_norm, -1, keepdims=True)
                                 - normalized * tf.reduce_mean(d_norm * normalized, -1, keepdims=True))
            return tf.cast(d_x, inputs.dtype), tf.reduce_sum(dy * normalized, axes), tf.reduce_sum(dy, axes)
        return tf.cast(normalized * gamma + beta, inputs.dtype), gradient
    return normalize(inputs, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))

class LN(keras.layers.LayerNormalization):
    def call(self, inputs):
        inputs = tf.cast(inputs, self.compute_dtype)
        return layer_norm(inputs, self.gamma, self.beta, self.epsilon)

def drop16(generator):
    def dropout(inputs, rate, noise_shape=None):
        shape = tf.shape(inputs)
        n = tf.reduce_prod(shape)
        bits = generator.uniform_full_int([(n + 1) // 2], dtype=tf.uint32)
        bits16 = tf.reshape(tf.bitcast(bits, tf.uint16), [-1])[:n]
        keep = tf.reshape(bits16 >= int(round(rate * 65536)), shape)
        return tf.where(keep, inputs * tf.cast(1 / (1 - rate), inputs.dtype), tf.zeros_like(inputs))
    return dropout

def build(ln, d16):
    keras.utils.set_random_seed(0)
    ctx = mock.patch.object(keras.layers, "LayerNormalization", LN) if ln else contextlib.nullcontext()
    ctx2 = mock.patch.object(models, "_dropout_drawing_float32", drop16) if d16 else contextlib.nullcontext()
    with ctx:
        m = models.build_classifier(packaged_minilm(), list("abcdef"))
    precision.keep_logits_float32(m)
    with ctx2:
        models.compile_classifier(m, 5e-5, optimizer=Adam)
    return m

variants = {"base": build(False, False), "ln": build(True, False), "drop16": build(False, True), "both": build(True, True)}
print(sum(isinstance(l, LN) for l in variants["ln"]._flatten_layers()), "LN layers")
rng = np.random.default_rng(0)
f = {"input_ids": tf.constant(rng.integers(1000, 20000, (32, WIDTH))), "attention_mask": tf.ones((32, WIDTH), tf.int64)}
y = tf.constant(rng.integers(0, 6, 32))
losses = {k: [float(m.train_on_batch(f, y)[0]) for _ in range(3)] for k, m in variants.items()}
print(losses)
times = {k: [] for k in variants}
for rnd in range(5):
    for k, m in variants.items():
        t = time.perf_counter()
        for _ in range(8): m.train_on_batch(f, y)
        times[k].append(1000 * (time.perf_counter() - t) / 8)
for k, v in times.items():
    print(k, "median ms", round(float(np.median(v)), 1), [round(x, 1) for x in v])
