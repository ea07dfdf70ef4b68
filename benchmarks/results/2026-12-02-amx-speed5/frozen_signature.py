"""MiniLM's float32 forward pass on token ids with its weights read from variables (as the export's signature reads
them) against the same function with its weights as graph constants (``convert_variables_to_constants_v2``), at
batch 1 and batch 64 x 24 tokens, serving threads (kerasft.serve), one process.

    python frozen_signature.py

With constant weights, grappler's remapper marks each oneDNN matmul's weight input as constant, and oneDNN may keep
the weight in its reordered (blocked) layout between calls instead of reordering it in each call; what that saves
is what this measures. (The raw-text signature itself cannot be frozen whole: its vocabulary table is a resource.)
"""

import os
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from kerasft import serve  # noqa: E402

serve.use_serving_threads()
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2  # noqa: E402

from kerasft import model as models  # noqa: E402
from kerasft.recipe import packaged_minilm  # noqa: E402

model = models.build_classifier(packaged_minilm(), ["anger", "fear", "joy", "love", "sadness", "surprise"])


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], tf.int32)])
def logits(input_ids, attention_mask):
    return model({"input_ids": input_ids, "attention_mask": attention_mask}, training=False).logits


variables = logits.get_concrete_function()
constants = convert_variables_to_constants_v2(variables)
rng = np.random.default_rng(0)
inputs = {
    size: [tf.constant(rng.integers(1000, 20000, (size, 24)), tf.int32), tf.ones((size, 24), tf.int32)]
    for size in (1, 64)
}
difference = np.abs(variables(*inputs[64]).numpy() - constants(*inputs[64])[0].numpy()).max()
print(f"largest logit difference at batch 64: {difference:.2e}")


def texts_per_s(function, size, calls):
    for _ in range(3):
        function(*inputs[size])
    started = time.perf_counter()
    for _ in range(calls):
        np.asarray(function(*inputs[size]))
    return size * calls / (time.perf_counter() - started)


variants = {"weights from variables": variables, "weights as constants": constants}
for round_ in range(3):
    for name, function in variants.items():
        print(
            f"round {round_} {name}: batch 1 {texts_per_s(function, 1, 200):.1f}, "
            f"batch 64 {texts_per_s(function, 64, 16):.1f} texts/s"
        )
