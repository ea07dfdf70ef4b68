"""Metrics: every figure a run reports, from scikit-learn, and the Keras metrics kerasft adds (F1, streamed).

The same definitions serve the per-epoch figures (`MacroF1`, `MultiLabelF1`, `SubsetAccuracy`,
streamed inside `fit`), the validation report in TensorBoard (`report_from_confusion_matrix`,
`report_from_label_counts`) and the test report (`classification_scores`, `multi_label_scores`,
`classification_report_text`, `multi_label_report_text`)::

    scores = classification_scores(y_true, probabilities)  # accuracy, macro/weighted F1, loss, ...
    text = classification_report_text(y_true, probabilities.argmax(axis=1), ["neg", "pos"])

Multi-label (``y_true`` multi-hot ``[examples, labels]``, ``probabilities`` sigmoid outputs; a label
is predicted where its probability reaches its threshold)::

    thresholds = tune_thresholds(y_true_validation, probabilities_validation)  # per label, best F1
    scores = multi_label_scores(y_true, probabilities, thresholds)  # micro/macro/samples F1, subset accuracy...
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    f1_score,
    hamming_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
)

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


class MultiLabelF1(keras.metrics.Metric):
    """Micro- or macro-averaged F1 of multi-label predictions, streamed through per-label counts.

    Takes multi-hot labels and logits; a label is predicted where its sigmoid reaches
    ``threshold``. Equals scikit-learn's ``f1_score(y_true, y_pred, average=average,
    zero_division=0)``; ``label_counts()`` holds each label's true/false positives and negatives
    (the validation report in TensorBoard is computed from them)::

        model.compile(optimizer, keras.losses.BinaryCrossentropy(from_logits=True),
                      metrics=[MultiLabelF1(28, average="micro"), MultiLabelF1(28, average="macro")])
    """

    def __init__(self, num_labels: int, threshold: float = 0.5, average: str = "micro", name: str | None = None, **kw):
        if average not in ("micro", "macro"):
            raise ValueError(f"average must be micro or macro, got {average!r}")
        super().__init__(name=name or f"{average}_f1", **kw)
        self.num_labels, self.threshold, self.average = int(num_labels), float(threshold), average
        # rows: true positives, false positives, false negatives, true negatives; one column per label
        self.counts = self.add_weight(
            name="label_counts", shape=(4, self.num_labels), initializer="zeros", dtype=tf.float64
        )

    def update_state(self, y_true, y_pred, sample_weight=None):
        truth = tf.cast(tf.reshape(y_true, [-1, self.num_labels]) > 0.5, tf.float64)
        predicted = tf.cast(
            tf.sigmoid(tf.cast(tf.reshape(y_pred, [-1, self.num_labels]), tf.float32)) >= self.threshold, tf.float64
        )
        weights = 1.0 if sample_weight is None else tf.cast(tf.reshape(sample_weight, [-1, 1]), tf.float64)
        counts = tf.stack(
            [
                tf.reduce_sum(weights * truth * predicted, axis=0),
                tf.reduce_sum(weights * (1 - truth) * predicted, axis=0),
                tf.reduce_sum(weights * truth * (1 - predicted), axis=0),
                tf.reduce_sum(weights * (1 - truth) * (1 - predicted), axis=0),
            ]
        )
        return self.counts.assign_add(counts)

    def result(self):
        true_positives, false_positives, false_negatives = self.counts[0], self.counts[1], self.counts[2]
        if self.average == "micro":
            true_positives, false_positives, false_negatives = (
                tf.reduce_sum(count) for count in (true_positives, false_positives, false_negatives)
            )
        f1 = tf.math.divide_no_nan(2 * true_positives, 2 * true_positives + false_positives + false_negatives)
        return tf.cast(tf.reduce_mean(f1), tf.float32)

    def reset_state(self):
        self.counts.assign(tf.zeros_like(self.counts))

    def label_counts(self) -> np.ndarray:
        """``[4, num_labels]``: true positives, false positives, false negatives, true negatives of each label."""
        return self.counts.numpy().round().astype(np.int64)

    def get_config(self):
        return super().get_config() | {
            "num_labels": self.num_labels,
            "threshold": self.threshold,
            "average": self.average,
        }


class SubsetAccuracy(keras.metrics.MeanMetricWrapper):
    """The share of examples whose every label is right (scikit-learn's ``accuracy_score`` on multi-label data);
    Keras reports it as ``accuracy``. Takes multi-hot labels and logits, like `MultiLabelF1`."""

    def __init__(self, threshold: float = 0.5, name: str = "accuracy", **kwargs):
        super().__init__(_exact_match, name=name, threshold=float(threshold), **kwargs)


def _exact_match(y_true, y_pred, threshold):
    predicted = tf.sigmoid(tf.cast(y_pred, tf.float32)) >= threshold
    return tf.cast(tf.reduce_all(predicted == (tf.cast(y_true, tf.float32) > 0.5), axis=-1), tf.float32)


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


def multi_label_scores(y_true: np.ndarray, probabilities: np.ndarray, thresholds) -> dict:
    """The multi-label test figures of metrics.json: micro/macro/weighted/samples F1, micro precision and recall,
    subset accuracy, Hamming loss, binary cross-entropy, examples, labels per example (true and predicted)."""
    y_true = np.asarray(y_true) > 0.5
    y_pred = predict_labels(probabilities, thresholds)
    averaged = {"zero_division": 0}
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return {
        "micro_f1": float(f1_score(y_true, y_pred, average="micro", **averaged)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro", **averaged)),
        "weighted_f1": float(f1_score(y_true, y_pred, average="weighted", **averaged)),
        "samples_f1": float(f1_score(y_true, y_pred, average="samples", **averaged)),
        "micro_precision": float(precision_score(y_true, y_pred, average="micro", **averaged)),
        "micro_recall": float(recall_score(y_true, y_pred, average="micro", **averaged)),
        "subset_accuracy": float(accuracy_score(y_true, y_pred)),
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "loss": float(-(y_true * np.log(clipped) + (~y_true) * np.log(1 - clipped)).mean()),
        "examples": int(len(y_true)),
        "labels_per_example": float(y_true.sum(axis=1).mean()),
        "predicted_labels_per_example": float(y_pred.sum(axis=1).mean()),
    }


def predict_labels(probabilities: np.ndarray, thresholds) -> np.ndarray:
    """Multi-label decisions: a label is predicted where its probability reaches its threshold (one, or one per
    label)."""
    return np.asarray(probabilities) >= np.asarray(thresholds, dtype=np.float32)


def multi_label_report_text(y_true, y_pred, label_names: list[str]) -> str:
    """scikit-learn's per-label report (precision, recall, F1, support; micro/macro/weighted/samples averages),
    then subset accuracy and Hamming loss."""
    y_true, y_pred = np.asarray(y_true) > 0.5, np.asarray(y_pred, dtype=bool)
    report = classification_report(y_true, y_pred, digits=REPORT_DIGITS, **_report_options(label_names))
    return (
        f"{report}\n{'subset accuracy':>20} {accuracy_score(y_true, y_pred):.{REPORT_DIGITS}f}"
        f"\n{'Hamming loss':>20} {hamming_loss(y_true, y_pred):.{REPORT_DIGITS}f}\n"
    )


def multi_label_report_dict(y_true, y_pred, label_names: list[str]) -> dict:
    y_true, y_pred = np.asarray(y_true) > 0.5, np.asarray(y_pred, dtype=bool)
    report = classification_report(y_true, y_pred, output_dict=True, **_report_options(label_names))
    return report | {"subset accuracy": accuracy_score(y_true, y_pred), "hamming loss": hamming_loss(y_true, y_pred)}


def report_from_label_counts(counts: np.ndarray, label_names: list[str]) -> str:
    """The per-label report of the predictions that `MultiLabelF1.label_counts()` counts (no samples average: the
    counts do not say which labels shared an example)."""
    y_true, y_pred = _columns_from_counts(counts)
    report = classification_report(y_true, y_pred, digits=REPORT_DIGITS, **_report_options(label_names))
    return "\n".join(line for line in report.splitlines() if "samples avg" not in line) + "\n"


def label_scores_from_counts(counts: np.ndarray, label_names: list[str]) -> dict:
    """Per-label precision, recall, F1 and support (scikit-learn's report as a dict) from `MultiLabelF1` counts."""
    y_true, y_pred = _columns_from_counts(counts)
    return classification_report(y_true, y_pred, output_dict=True, **_report_options(label_names))


def _columns_from_counts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multi-hot truth and predictions with each label's counts (tp, fp, fn, tn): labels are scored one by one, so
    each column can be laid out on its own."""
    counts = np.asarray(counts).round().astype(np.int64)
    rows = int(counts[:, 0].sum()) if counts.size else 0
    y_true = np.zeros((rows, counts.shape[1]), dtype=bool)
    y_pred = np.zeros_like(y_true)
    for label, (tp, fp, fn, _) in enumerate(counts.T):
        y_true[:tp, label] = y_pred[:tp, label] = True
        y_pred[tp : tp + fp, label] = True
        y_true[tp + fp : tp + fp + fn, label] = True
    return y_true, y_pred


def tune_thresholds(y_true: np.ndarray, probabilities: np.ndarray, default: float = 0.5) -> list[float]:
    """A threshold per label, the one with the best F1 on these examples (the validation split).

    Each label's candidates are its distinct probabilities (scikit-learn's ``precision_recall_curve``);
    the chosen one is moved half-way down to the next lower probability, so it sits between the
    examples it separates rather than on one of them. A label without positive examples keeps
    ``default``: there is nothing to tune it on. Each value is a float32, as the export holds it.
    """
    y_true = np.asarray(y_true) > 0.5
    thresholds = []
    for label in range(y_true.shape[1]):
        truth, scores = y_true[:, label], np.asarray(probabilities[:, label], dtype=np.float64)
        if not truth.any():
            thresholds.append(float(default))
            continue
        precision, recall, candidates = precision_recall_curve(truth, scores)
        f1 = np.divide(
            2 * precision * recall, precision + recall, out=np.zeros_like(precision), where=precision + recall > 0
        )
        best = float(candidates[int(np.argmax(f1[: len(candidates)]))])
        lower = scores[scores < best]
        chosen = (best + lower.max()) / 2 if lower.size else best / 2
        thresholds.append(float(np.float32(np.clip(chosen, 1e-6, 1 - 1e-6))))  # float32, as the export holds it
    return thresholds


def _report_options(label_names: list[str]) -> dict:
    return {"labels": list(range(len(label_names))), "target_names": list(label_names), "zero_division": 0}
