"""Evaluate: predictions in input order, scikit-learn's report, a confusion matrix picture, metrics.

    probabilities = predict_probabilities(model, test_ds)
    metrics = write_reports(run_dir, y_true, probabilities, label_names, texts)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, f1_score, precision_score, recall_score

from kerasft.files import write_atomic, write_json


def predict_probabilities(model, tf_dataset) -> np.ndarray:
    """Softmax probabilities, one row per example, in the dataset's order (it must not be shuffled)."""
    import tensorflow as tf

    logits = model.predict(tf_dataset, verbose=0)["logits"]
    return tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy()


def predict_split(model, split, tokenizer, batch_size: int) -> np.ndarray:
    """Probabilities for a tokenized split, one row per example in the split's order.

    The examples go through `Dataset.to_tf_dataset` sorted by length (little padding), and the
    probabilities are then put back in input order.
    """
    from kerasft.data import to_tf_dataset
    from kerasft.pipeline import PAD_MULTIPLE, Plan, in_input_order, token_lengths

    plan = Plan(len(split), batch_size, shuffle=False, lengths=token_lengths(split))
    by_length = to_tf_dataset(split.select(plan.order(0)), tokenizer, batch_size, shuffle=False, pad_to_multiple_of=PAD_MULTIPLE)
    return in_input_order(predict_probabilities(model, by_length), plan)


def predict_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Probabilities for raw texts through the training path: the Python tokenizer, length-batched `predict`, input order."""
    import datasets

    from kerasft.data import tokenize

    split = tokenize(datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)}), tokenizer, max_length)
    return predict_split(model, split, tokenizer, batch_size)


def test_metrics(y_true: np.ndarray, probabilities: np.ndarray, num_labels: int) -> dict:
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(num_labels))
    picked = probabilities[np.arange(len(y_true)), y_true]
    return {
        "accuracy": float((y_pred == y_true).mean()),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "macro_precision": float(precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "macro_recall": float(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "examples": int(len(y_true)),
    }


def write_reports(run_dir: Path, y_true, probabilities, label_names: list[str], texts: list[str]) -> dict:
    """Writes the classification report (text and JSON), confusion_matrix.png and predictions.csv; returns test metrics."""
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(label_names)))
    report_options = dict(labels=labels, target_names=label_names, zero_division=0)
    write_atomic(run_dir / "classification_report.txt", classification_report(y_true, y_pred, digits=4, **report_options))
    write_json(run_dir / "classification_report.json", classification_report(y_true, y_pred, output_dict=True, **report_options))
    plot_confusion_matrix(confusion_matrix(y_true, y_pred, labels=labels), label_names, run_dir / "confusion_matrix.png")
    write_predictions(run_dir / "predictions.csv", texts, y_true, probabilities, label_names)
    return test_metrics(y_true, probabilities, len(label_names))


def write_predictions(path: Path, texts, y_true, probabilities, label_names) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label", "predicted", "score"])
    for text, truth, row in zip(texts, y_true, probabilities):
        writer.writerow([text, label_names[truth], label_names[row.argmax()], f"{row.max():.6f}"])
    write_atomic(path, buffer.getvalue())


def plot_confusion_matrix(matrix: np.ndarray, label_names: list[str], path: Path, where: str = "test") -> None:
    """Counts and row-normalised rates side by side, label names on both axes (the same picture TensorBoard shows per epoch)."""
    from kerasft.plots import confusion_matrix_png

    write_atomic(path, confusion_matrix_png(matrix, label_names, where))


def report_from_confusion_matrix(matrix: np.ndarray, label_names: list[str], digits: int = 4) -> str:
    """scikit-learn's classification report for the predictions a confusion matrix counts (rows: true, columns: predicted)."""
    matrix = np.asarray(matrix).round().astype(np.int64)
    rows, columns = np.nonzero(matrix)
    y_true = np.repeat(rows, matrix[rows, columns])
    y_pred = np.repeat(columns, matrix[rows, columns])
    labels = list(range(len(label_names)))
    return classification_report(y_true, y_pred, labels=labels, target_names=label_names, zero_division=0, digits=digits)
