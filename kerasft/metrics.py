"""Metrics: every figure a run reports, from scikit-learn, and the one Keras metric kerasft adds (macro F1).

The same definitions serve the per-epoch figures (`MacroF1`, streamed inside `fit`), the
validation report in TensorBoard (`report_from_confusion_matrix`) and the test report
(`classification_scores`, `classification_report_text`)::

    scores = classification_scores(y_true, probabilities)  # accuracy, macro/weighted F1, loss, ...
    text = classification_report_text(y_true, probabilities.argmax(axis=1), ["neg", "pos"])
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras
from sklearn.metrics import classification_report, f1_score, precision_score, recall_score

REPORT_DIGITS = 4


class MacroF1(keras.metrics.Metric):
    """Macro-averaged F1 over all classes, streamed through a confusion matrix.

    Takes integer labels and logits (or probabilities); equals scikit-learn's
    ``f1_score(y_true, y_pred, average="macro", labels=range(num_classes), zero_division=0)``.
    Keras reports it as ``macro_f1`` for the training batches and ``val_macro_f1`` for
    validation, so EarlyStopping can watch it::

        model.compile(optimizer, loss, metrics=["accuracy", MacroF1(num_classes=3)])
        model.fit(..., callbacks=[keras.callbacks.EarlyStopping("val_macro_f1", mode="max")])

    After validation, ``confusion_matrix()`` is the validation confusion matrix.
    """

    def __init__(self, num_classes: int, name: str = "macro_f1", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.matrix = self.add_weight(
            name="confusion_matrix", shape=(self.num_classes, self.num_classes), initializer="zeros", dtype=tf.float64
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        y_pred = tf.argmax(tf.reshape(y_pred, [-1, self.num_classes]), axis=-1, output_type=tf.int32)
        weights = None if sample_weight is None else tf.cast(tf.reshape(sample_weight, [-1]), tf.float64)
        batch = tf.math.confusion_matrix(
            y_true, y_pred, num_classes=self.num_classes, weights=weights, dtype=tf.float64
        )
        return self.matrix.assign_add(batch)

    def result(self):
        true_positives = tf.linalg.diag_part(self.matrix)
        denominator = tf.reduce_sum(self.matrix, axis=0) + tf.reduce_sum(self.matrix, axis=1)  # 2tp + fp + fn
        return tf.cast(tf.reduce_mean(tf.math.divide_no_nan(2 * true_positives, denominator)), tf.float32)

    def reset_state(self):
        self.matrix.assign(tf.zeros_like(self.matrix))

    def confusion_matrix(self) -> np.ndarray:
        """Counts so far: rows are true labels, columns predicted labels."""
        return self.matrix.numpy().round().astype(np.int64)

    def get_config(self):
        return super().get_config() | {"num_classes": self.num_classes}


def loss_tracker(model):
    """Keras' running mean of the loss over the epoch so far (``logs["loss"]``): its ``total`` and ``count``
    (examples) give any stretch of steps' own loss. Created by `compile`, whatever the model has run."""
    return model.compiled_loss._total_loss_mean  # noqa: SLF001 (Keras 2 has no public handle before the first step)


def running_metrics(model) -> list:
    """Every metric Keras accumulates over an epoch and resets at its start: the loss's mean and the compiled
    metrics."""
    return [loss_tracker(model), *tf.nest.flatten(model.compiled_metrics._user_metrics)]  # noqa: SLF001


def classification_scores(y_true: np.ndarray, probabilities: np.ndarray) -> dict:
    """The test figures of metrics.json: accuracy, macro and weighted F1, macro precision and recall, loss, examples."""
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(probabilities.shape[1]))
    averaged = {"labels": labels, "zero_division": 0}
    picked = probabilities[np.arange(len(y_true)), y_true]
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", **averaged)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", **averaged)),
        "macro_precision": float(precision_score(y_true, y_pred, average="macro", **averaged)),
        "macro_recall": float(recall_score(y_true, y_pred, average="macro", **averaged)),
        "loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "examples": int(len(y_true)),
    }


def classification_report_text(y_true, y_pred, label_names: list[str]) -> str:
    """scikit-learn's report with every label named, including labels absent from ``y_true``."""
    return classification_report(y_true, y_pred, digits=REPORT_DIGITS, **_report_options(label_names))


def classification_report_dict(y_true, y_pred, label_names: list[str]) -> dict:
    return classification_report(y_true, y_pred, output_dict=True, **_report_options(label_names))


def report_from_confusion_matrix(matrix: np.ndarray, label_names: list[str]) -> str:
    """The classification report of the predictions a confusion matrix counts (rows: true, columns: predicted)."""
    matrix = np.asarray(matrix).round().astype(np.int64)
    rows, columns = np.nonzero(matrix)
    y_true = np.repeat(rows, matrix[rows, columns])
    y_pred = np.repeat(columns, matrix[rows, columns])
    return classification_report_text(y_true, y_pred, label_names)


def _report_options(label_names: list[str]) -> dict:
    return {"labels": list(range(len(label_names))), "target_names": list(label_names), "zero_division": 0}
