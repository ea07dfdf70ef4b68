"""Serve: answer raw texts with an exported SavedModel, as TF Serving would (TensorFlow and tensorflow-text only).

    predictions = predict(Path("runs/quickstart-.../export/quickstart"), ["where is my parcel?"])
    # [{"label": "delivery", "score": 0.97}]
"""

from __future__ import annotations

from pathlib import Path

from kerasft.errors import UserError


def resolve_export(path: Path) -> Path:
    """A version folder as given, or the newest version inside a model folder (``export/<name>``)."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(entry.name), entry) for entry in path.iterdir() if entry.name.isdigit()) if path.is_dir() else []
    if not versions:
        raise UserError(f"{path} holds no SavedModel: give export/<model-name> or export/<model-name>/<version>")
    return versions[-1][1]


def load_text_signature(path: Path):
    """The export's raw-text ``serving_default`` signature."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  registers the tokenizer ops the graph uses

    version = resolve_export(path)
    signature = tf.saved_model.load(str(version)).signatures["serving_default"]
    if "text" not in signature.structured_input_signature[1]:
        raise UserError(f"{version} takes token ids, not text (its checkpoint's tokenizer has no in-graph form); call its predict_ids signature")
    return signature


def predict(path: Path, texts: list[str], batch_size: int = 64) -> list[dict]:
    """One ``{"label", "score"}`` per text, in input order, shaped like a Hugging Face pipeline's output.

    The texts go through the model in batches of similar length (the export pads each batch to its
    longest text, so a short text batched with a long one costs as much as the long one).
    """
    import numpy as np
    import tensorflow as tf

    signature = load_text_signature(path)
    by_length = np.argsort([-len(text) for text in texts], kind="stable")  # characters: a cheap stand-in for tokens
    results = [None] * len(texts)
    for start in range(0, len(texts), batch_size):
        rows = by_length[start : start + batch_size]
        outputs = signature(text=tf.constant([texts[row] for row in rows], dtype=tf.string))
        for row, label, score in zip(rows, outputs["label"].numpy(), outputs["score"].numpy()):
            results[row] = {"label": label.decode("utf-8"), "score": float(score)}
    return results
