"""Evaluate: the kept weights on the test split; predictions in input order, scikit-learn's report, pictures, metrics.

metrics, probabilities = evaluate(session, run_dir, history)   # writes the reports into the run directory
probabilities = predict_texts(model, tokenizer, ["where is my parcel?"], max_length=64, batch_size=32)
"""

from __future__ import annotations

import csv
import io

import numpy as np
from sklearn.metrics import confusion_matrix

from kerasft import batching, monitor, plots
from kerasft import class_weights as weighting
from kerasft import metrics as scores
from kerasft.rundir import RunDir


def predict_split(model, split, tokenizer, batch_size: int) -> np.ndarray:
    """Softmax probabilities for a tokenized split, one row per example in the split's order.

    The examples go through `Dataset.to_tf_dataset` longest first (little padding), and the
    probabilities are then put back in input order (kerasft.batching).
    """
    import tensorflow as tf

    dataset, plan = batching.ordered_batches(split, batch_size, batching.PadToLongest(tokenizer))
    logits = model.predict(dataset, verbose=0)["logits"]
    return batching.in_input_order(tf.nn.softmax(tf.cast(logits, tf.float32), axis=-1).numpy(), plan)


def predict_texts(model, tokenizer, texts: list[str], max_length: int, batch_size: int) -> np.ndarray:
    """Probabilities for raw texts through the training path: the Python tokenizer, length-batched `predict`, input
    order."""
    import datasets

    from kerasft.data import tokenize

    split = tokenize(datasets.Dataset.from_dict({"text": texts}), tokenizer, max_length)
    return predict_split(model, split, tokenizer, batch_size)


def evaluation_model(session):
    """The trained model, or a float32 copy on this host where the run trained in several replicas or in mixed
    precision, so that one process scores every test example once, in order, and in the precision the export computes
    in."""
    distributed = (
        session.strategy.num_replicas_in_sync > 1 or session.workers > 1 or session.precision.device_kind == "TPU"
    )
    if distributed or session.precision.policy != "float32":
        from kerasft.model import copy_without_optimizer

        return copy_without_optimizer(session.model)
    return session.model


def evaluate(session, run_dir: RunDir, history: dict[str, list]) -> tuple[dict, np.ndarray]:
    """Scores the model's kept weights on the test split and writes the reports; returns metrics.json's figures and
    the probabilities."""
    from kerasft.train import per_epoch

    recipe = session.recipe
    kept = monitor.kept_epoch(
        history, recipe.train
    )  # with early stopping, the model now holds the best epoch's weights
    if kept["early_stopping"]:
        stop = kept["early_stopping"]
        print(
            f"kerasft: early stopping on {stop['metric']}: best epoch {kept['best_epoch']} of {stop['epochs_run']} run "
            f"({stop['metric']} {stop['best_value']:.4f}); the test figures and the export use its weights"
        )
    test = session.tokenized["test"]
    probabilities = predict_split(evaluation_model(session), test, session.tokenizer, recipe.train.batch_size)
    metrics = {"test": write_reports(run_dir, test["label"], probabilities, session.label_names, test["text"])}
    weighting.add_to_report(run_dir, session.class_weights, session.label_names, session.data.splits["train"]["label"])
    metrics |= per_epoch(history) | kept
    how = f" (best {kept['early_stopping']['metric']})" if kept["early_stopping"] else " (the last)"
    run_dir.write(
        RunDir.LEARNING_CURVES,
        plots.learning_curves_png(
            metrics["train"],
            metrics["validation"],
            kept["best_epoch"],
            f"Learning curves of {run_dir.name}: train vs validation",
            f"kept: epoch {kept['best_epoch']}{how}",
        ),
    )
    return metrics, probabilities


def write_reports(run_dir: RunDir, y_true, probabilities: np.ndarray, label_names: list[str], texts: list[str]) -> dict:
    """Writes the classification report (text and JSON), the confusion matrix picture and predictions.csv; returns
    the test figures."""
    y_true = np.asarray(y_true)
    y_pred = probabilities.argmax(axis=1)
    run_dir.write(RunDir.REPORT_TEXT, scores.classification_report_text(y_true, y_pred, label_names))
    run_dir.write_json(RunDir.REPORT_JSON, scores.classification_report_dict(y_true, y_pred, label_names))
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(label_names))))
    run_dir.write(RunDir.CONFUSION_MATRIX, plots.confusion_matrix_png(matrix, label_names, "test"))
    run_dir.write(RunDir.PREDICTIONS, predictions_csv(texts, y_true, probabilities, label_names))
    return scores.classification_scores(y_true, probabilities)


def predicted_texts(run_dir: RunDir) -> list[str]:
    """The test texts of a finished run, from its predictions.csv: what `kerasft export` checks a new export on."""
    with open(run_dir / RunDir.PREDICTIONS, newline="", encoding="utf-8") as handle:
        return [row["text"] for row in csv.DictReader(handle)]


def predictions_csv(texts, y_true, probabilities: np.ndarray, label_names: list[str]) -> str:
    """text, label, predicted, score: one row per example, in input order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label", "predicted", "score"])
    for text, truth, row in zip(texts, y_true, probabilities):
        writer.writerow([text, label_names[truth], label_names[row.argmax()], f"{row.max():.6f}"])
    return buffer.getvalue()
