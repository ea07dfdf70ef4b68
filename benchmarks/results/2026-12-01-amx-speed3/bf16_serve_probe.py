"""Probe: MiniLM forward (token ids in, logits out) in float32, mixed_bfloat16 and bfloat16, batch 64 x 24 and 1 x 20."""
import os, sys, time
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1"); os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np, tensorflow as tf, tf_keras as keras
tf.config.threading.set_intra_op_parallelism_threads(1); tf.config.threading.set_inter_op_parallelism_threads(2)
from kerasft import model as models, precision
from kerasft.recipe import packaged_minilm
policy = sys.argv[1]
base = models.build_classifier(packaged_minilm(), list("abcdef"))
keras.mixed_precision.set_global_policy(policy)
model = models.classifier_from_config(base.config)
precision.keep_logits_float32(model)
model.set_weights(base.get_weights())
rng = np.random.default_rng(0)
def inputs(b, w):
    return {"input_ids": tf.constant(rng.integers(1000, 20000, (b, w))), "attention_mask": tf.ones((b, w), tf.int64)}
forward = tf.function(lambda x: model(x, training=False).logits)
ref = tf.function(lambda x: base(x, training=False).logits)
for b, w, n in ((64, 24, 20), (1, 20, 200)):
    x = inputs(b, w); forward(x); forward(x)
    t = time.perf_counter()
    for _ in range(n): forward(x).numpy()
    ms = 1000 * (time.perf_counter() - t) / n
    agree = float(np.mean(np.argmax(forward(x).numpy(), -1) == np.argmax(ref(x).numpy(), -1)))
    print(f"{policy}: batch {b} x {w}: {ms:.2f} ms a call, {1000*b/ms:.0f} texts/s; same argmax as float32 {agree:.3f}")
