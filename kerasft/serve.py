"""Serve: answer raw texts with an exported SavedModel, as TF Serving would (TensorFlow and tensorflow-text only).

predictions = predict(Path("runs/quickstart-.../export/quickstart"), ["where is my parcel?"])
# [{"label": "delivery", "score": 0.97}]
predict(export_path, ["The cat sat."], pairs=["A cat was sitting."])   # sentence-pair models: text and text_pair
# multi-label models: [{"labels": [{"label": "joy", "score": 0.91}, {"label": "love", "score": 0.55}]}]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kerasft.batching import Plan, in_input_order
from kerasft.errors import UserError
from kerasft.rundir import export_versions
from kerasft.strategy import usable_cores

METADATA = Path("assets.extra") / "kerasft.json"  # written by kerasft.export beside the SavedModel


def serving_threads() -> tuple[int, int]:
    """TensorFlow's (intra-op, inter-op) thread counts for answering with an export: one thread inside each op, as many
    ops at once as the process has cores. TF Serving takes the same as --tensorflow_intra_op_parallelism=1
    --tensorflow_inter_op_parallelism=<cores>.

    Why: the export runs a batch as chunks of 8 rows in a loop whose chunks are independent, so they run side by side,
    one per core, and a single text's ops are too small to gain from splitting across cores. On the reference 2 CPU
    cores (all-MiniLM-L6-v2, benchmarks/results/2026-11-30-serving-threads/) this answered batches of 64 1.18-1.25x and
    single texts 1.11x faster than TensorFlow's default (every core inside each op); one thread for both was 0.6x.
    """
    return 1, usable_cores()


def use_serving_threads() -> None:
    """Sets `serving_threads` for this process, if TensorFlow has not set up its devices yet: from then on its thread
    pools are fixed, and a process that already runs TensorFlow (a notebook, the tests) keeps them."""
    import tensorflow as tf

    intra, inter = serving_threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # "cannot be modified after initialization"
        pass


def resolve_export(path: Path) -> Path:
    """A version folder as given, or the newest version inside a model folder (``export/<name>``)."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [version for version in export_versions(path) if (version / "saved_model.pb").is_file()]
    if not versions:
        raise UserError(f"{path} holds no SavedModel: give export/<model-name> or export/<model-name>/<version>")
    return versions[-1]


def export_facts(path: Path) -> dict:
    """What kerasft recorded about an export (label names, pairs, multi-label, thresholds); {} if not a kerasft one."""
    file = resolve_export(path) / METADATA
    try:
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, ValueError):
        return {}


def load_text_signature(path: Path):
    """The export's raw-text ``serving_default`` signature."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    version = resolve_export(path)
    try:
        signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    except Exception as error:  # a truncated or foreign saved_model.pb: protobuf, TensorFlow and KeyError all occur
        first = (str(error).strip().splitlines() or [""])[0][:160]
        raise UserError(
            f"{version} is not a SavedModel TensorFlow can load ({type(error).__name__}: {first}); "
            "export the run again with `kerasft export RUN_DIR`"
        ) from error
    if "text" not in signature.structured_input_signature[1]:
        raise UserError(
            f"{version} takes token ids, not text (its checkpoint's tokenizer has no in-graph form); call its "
            "predict_ids signature"
        )
    return signature


def takes_pairs(signature) -> bool:
    """Whether a raw-text signature classifies sentence pairs (inputs ``text`` and ``text_pair``)."""
    return "text_pair" in signature.structured_input_signature[1]


def check_pairs(signature, texts: list[str], pairs: list[str] | None, version: Path) -> None:
    if takes_pairs(signature) and pairs is None:
        raise UserError(
            f"{version} classifies sentence pairs: give --pair TEXT for each TEXT, or --file FILE with two "
            "tab-separated fields a line"
        )
    if not takes_pairs(signature) and pairs is not None:
        raise UserError(f"{version} classifies single texts, not pairs: drop --pair")
    if pairs is not None and len(pairs) != len(texts):
        raise UserError(f"{len(texts)} texts but {len(pairs)} pair texts: give one --pair for each TEXT, in order")


def read_pair_lines(lines: list[str], path: Path) -> tuple[list[str], list[str]]:
    """Lines of ``text<TAB>text_pair``, read literally (no CSV quoting): the first and second texts."""
    texts, pairs = [], []
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if len(fields) != 2:
            raise UserError(
                f"{path} line {number}: expected two tab-separated fields (text and text pair), found {len(fields)}"
            )
        texts.append(fields[0])
        pairs.append(fields[1])
    return texts, pairs


def answers(signature, texts: list[str], pairs: list[str] | None = None, batch_size: int = 64) -> dict[str, np.ndarray]:
    """Every output of the signature for every text (and pair), in input order.

    The texts go to the signature in batches of similar length, longest first (kerasft.batching's
    order, by characters: the tokenizer is inside the graph), and the answers are put back in input order.
    """
    import tensorflow as tf

    lengths = [len(text) + (len(pairs[row]) if pairs is not None else 0) for row, text in enumerate(texts)]
    plan = Plan(len(texts), batch_size, shuffle=False, lengths=np.array(lengths))
    collected: dict[str, list] = {}
    for batch in range(plan.batches):
        rows = plan.indices(batch)
        inputs = {"text": tf.constant([texts[row] for row in rows], dtype=tf.string)}
        if pairs is not None:
            inputs["text_pair"] = tf.constant([pairs[row] for row in rows], dtype=tf.string)
        for name, value in signature(**inputs).items():
            collected.setdefault(name, []).append(value.numpy())
    return {name: in_input_order(np.concatenate(parts), plan) for name, parts in collected.items()}


def predict(path: Path, texts: list[str], batch_size: int = 64, pairs: list[str] | None = None) -> list[dict]:
    """One answer per text (and pair), in input order, shaped like a Hugging Face pipeline's output:
    ``{"label", "score"}``; for multi-label models ``{"labels": [{"label", "score"}, ...]}``, every label above its
    threshold, highest score first."""
    signature = load_text_signature(path)
    check_pairs(signature, texts, pairs, resolve_export(path))
    if not texts:
        return []
    outputs = answers(signature, texts, pairs, batch_size)
    if "label_count" in outputs:  # multi-label
        return [
            {
                "labels": [
                    {"label": label.decode("utf-8"), "score": float(score)}
                    for label, score in zip(labels[:count], scores[:count])
                ]
            }
            for labels, scores, count in zip(outputs["labels"], outputs["scores"], outputs["label_count"])
        ]
    return [
        {"label": label.decode("utf-8"), "score": float(score)}
        for label, score in zip(outputs["label"], outputs["score"])
    ]
