"""Probe: what a single text costs the exported model, and where that cost's floor is.

    python benchmarks/results/2026-11-30-floors/batch1_floor.py export WORKDIR [float32|bfloat16]   # once per dtype
    python benchmarks/results/2026-11-30-floors/batch1_floor.py time WORKDIR/export-float32/1       # per export
    python benchmarks/results/2026-11-30-floors/batch1_floor.py gemv                                # the matmuls alone

The export is serve_throughput.py's (the packaged all-MiniLM-L6-v2, a seeded random 6-label head); ``bfloat16``
builds its copy under Keras' ``bfloat16`` policy (weights and compute in bfloat16, the variant kerasft does not
ship). ``time``: the ``predict_ids`` signature on one row of 1-64 tokens, then the raw-text signature at batch 1
and 64 on make_emotion_style.py's texts, with the serving threads (one thread inside each op, two across).
``gemv``: the model's 36 dense layers of one token (24 of 384x384, 12 of 384x1536) as bare matmuls in one
function, each weight matrix read once a call, in float32 and bfloat16; and NumPy's single-thread read rate.
"""

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))
LABELS = ["anger", "fear", "joy", "love", "sadness", "surprise"]


def export(workdir: Path, dtype: str) -> None:
    import tf_keras as keras

    from kerasft import export as exporting
    from kerasft import model as models
    from kerasft.recipe import packaged_minilm

    keras.utils.set_random_seed(0)
    checkpoint = packaged_minilm()
    model = models.build_classifier(checkpoint, LABELS)
    if dtype == "bfloat16":
        keras.mixed_precision.set_global_policy("bfloat16")
        copy = models.classifier_from_config(model.config)
        copy.set_weights(model.get_weights())
        models.trace_without_autograph(copy)
        keras.mixed_precision.set_global_policy("float32")
        module = exporting.TextClassifierModule(copy, models.load_tokenizer(checkpoint), LABELS, 512)
    else:
        module = exporting.TextClassifierModule.without_optimizer(model, models.load_tokenizer(checkpoint), LABELS, 512)
    print(exporting.export_model(module, workdir / f"export-{dtype}")[0])


def milliseconds(call, count: int) -> float:
    for _ in range(max(count // 10, 3)):
        call()
    started = time.perf_counter()
    for _ in range(count):
        call()
    return (time.perf_counter() - started) / count * 1000


def time_export(path: str) -> None:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the in-graph tokenizer's ops)
    from make_emotion_style import make_rows

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(2)
    loaded = tf.saved_model.load(path)
    ids, text = loaded.signatures["predict_ids"], loaded.signatures["serving_default"]
    widths = []
    for width in (1, 2, 8, 16, 24, 32, 64):
        tokens, mask = tf.fill([1, width], 1037), tf.ones([1, width], tf.int32)
        call = lambda tokens=tokens, mask=mask: ids(input_ids=tokens, attention_mask=mask)  # noqa: E731
        widths.append(f"{width}: {milliseconds(call, 100):.2f}")
    texts = [row[0] for row in make_rows(2048, seed=1)]
    one = iter(texts * 2)
    single = 1000 / milliseconds(lambda: text(text=tf.constant([next(one)])), 200)
    batches = iter([texts[start : start + 64] for start in range(0, 2048, 64)] * 2)
    batched = 64 * 1000 / milliseconds(lambda: text(text=tf.constant(next(batches))), 16)
    print(f"{path}: one row of W tokens, ms: {', '.join(widths)}; texts/s batch 1 {single:.1f}, batch 64 {batched:.1f}")


def gemv() -> None:
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    for dtype in (tf.float32, tf.bfloat16):
        weights = [tf.cast(tf.random.normal([384, 384]), dtype) for _ in range(24)]
        weights += [tf.cast(tf.random.normal([384, 1536]), dtype) for _ in range(12)]
        token = tf.cast(tf.random.normal([1, 384]), dtype)
        layers = tf.function(lambda token=token, weights=weights: [tf.matmul(token, weight) for weight in weights])
        megabytes = sum(weight.shape.num_elements() for weight in weights) * dtype.size / 1e6
        took = milliseconds(layers, 200)
        print(
            f"36 one-token matmuls, {dtype.name}: {took:.2f} ms for {megabytes:.1f} MB of weights, "
            f"{megabytes / took:.1f} GB/s"
        )
    array = np.ones(64 * 2**20, np.float32)
    took = milliseconds(array.sum, 10)
    print(f"NumPy, one thread, reading 256 MB: {array.nbytes / 1e6 / took:.1f} GB/s")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "float32")
    elif sys.argv[1] == "time":
        time_export(sys.argv[2])
    else:
        gemv()
