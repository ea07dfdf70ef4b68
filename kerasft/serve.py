"""Serve: answer raw texts with an exported SavedModel, as TF Serving would (TensorFlow and tensorflow-text only).

predictions = predict(Path("runs/quickstart-.../export/quickstart"), ["where is my parcel?"])
# [{"label": "delivery", "score": 0.97}]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kerasft.batching import Plan, in_input_order
from kerasft.errors import UserError
from kerasft.rundir import export_versions


def resolve_export(path: Path) -> Path:
    """A version folder as given, or the newest version inside a model folder (``export/<name>``)."""
    if (path / "saved_model.pb").is_file():
        return path
    versions = [version for version in export_versions(path) if (version / "saved_model.pb").is_file()]
    if not versions:
        raise UserError(f"{path} holds no SavedModel: give export/<model-name> or export/<model-name>/<version>")
    return versions[-1]


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


def predict(path: Path, texts: list[str], batch_size: int = 64) -> list[dict]:
    """One ``{"label", "score"}`` per text, in input order, shaped like a Hugging Face pipeline's output.

    The texts go to the signature in batches of similar length, longest first (kerasft.batching's
    order, by characters: the tokenizer is inside the graph), and the answers are put back in input order.
    """
    import tensorflow as tf

    signature = load_text_signature(path)
    plan = Plan(len(texts), batch_size, shuffle=False, lengths=np.array([len(text) for text in texts]))
    labels, scores = [], []
    for batch in range(plan.batches):
        outputs = signature(text=tf.constant([texts[row] for row in plan.indices(batch)], dtype=tf.string))
        labels.append(outputs["label"].numpy())
        scores.append(outputs["score"].numpy())
    if not texts:
        return []
    labels, scores = in_input_order(np.concatenate(labels), plan), in_input_order(np.concatenate(scores), plan)
    return [{"label": label.decode("utf-8"), "score": float(score)} for label, score in zip(labels, scores)]
