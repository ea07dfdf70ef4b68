"""Probe: the exported raw-text signature at batch 1 and 64 under TensorFlow's intra-/inter-op thread settings.

    python benchmarks/results/2026-11-30-serving-threads/threads_probe.py export WORKDIR      # once: writes the export
    for setting in "0 0" "1 1" "1 2" "2 1" "2 2" "0 0"; do
        python benchmarks/results/2026-11-30-serving-threads/threads_probe.py time WORKDIR $setting
    done

TF Serving takes the same two settings as flags (--tensorflow_intra_op_parallelism,
--tensorflow_inter_op_parallelism; 0 = TensorFlow's default, one thread per core). The export is
serve_throughput.py's: the packaged all-MiniLM-L6-v2 with a seeded random 6-label head, float32. Texts:
make_emotion_style.py's 2048 synthetic texts (seed 1); batch 1 over 200 of them, batch 64 over 1024, after
a warm-up. Each setting in a fresh process (thread pools are fixed when TensorFlow starts).
"""

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "benchmarks"))


def export(workdir: Path) -> None:
    import tf_keras as keras

    from kerasft import export as exporting
    from kerasft import model as models
    from kerasft.recipe import packaged_minilm

    labels = ["anger", "fear", "joy", "love", "sadness", "surprise"]
    keras.utils.set_random_seed(0)
    checkpoint = packaged_minilm()
    model = models.build_classifier(checkpoint, labels)
    module = exporting.TextClassifierModule.without_optimizer(model, models.load_tokenizer(checkpoint), labels, 512)
    print(exporting.export_model(module, workdir / "export")[0])


def time_signature(workdir: Path, intra: int, inter: int) -> None:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the in-graph tokenizer's ops)

    tf.config.threading.set_intra_op_parallelism_threads(intra)
    tf.config.threading.set_inter_op_parallelism_threads(inter)
    from make_emotion_style import make_rows

    texts = [text for text, _ in make_rows(2048, seed=1)]
    signature = tf.saved_model.load(str(workdir / "export" / "1")).signatures["serving_default"]

    def rate(batch: int, count: int) -> float:
        started = time.perf_counter()
        for start in range(0, count, batch):
            signature(text=tf.constant(texts[start : start + batch]))
        return count / (time.perf_counter() - started)

    rate(64, 128), rate(1, 8)  # warm-up
    print(f"intra {intra} inter {inter}: batch 1 {rate(1, 200):.1f} texts/s, batch 64 {rate(64, 1024):.1f} texts/s")


if __name__ == "__main__":
    if sys.argv[1] == "export":
        export(Path(sys.argv[2]))
    else:
        time_signature(Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
