"""Evaluate: the kept weights on the test split; predictions in input order, scikit-learn's report, pictures, metrics.

metrics, probabilities = evaluate(session, run_dir, history)   # writes the reports into the run directory
probabilities = predict_texts(model, tokenizer, ["where is my parcel?"], max_length=64, batch_size=32)
probabilities = predict_texts(model, tokenizer, ["a question"], 64, 32, pairs=["its answer"])  # sentence pairs

Multi-label models answer sigmoid probabilities, softmax otherwise. Their decision thresholds are
``train.threshold``, or with ``train.threshold=tune`` one per label, chosen on the validation split
for F1 (kerasft.metrics.tune_thresholds); metrics.json records them under ``thresholds`` and the
export holds them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix

from kerasft import batching, monitor, plots
from kerasft import class_weights as weighting
from kerasft import metrics as scores
from kerasft.model import is_multi_label
from kerasft.recipe import TUNE
from kerasft.rundir import RunDir

LABEL_JOIN = ","  # between the labels of one example in predictions.csv


def predict_split(model, split, tokenizer, batch_size: int) -> np.ndarray:
    """Probabilities for a tokenized split (softmax; sigmoid for multi-label models), one row per example in the
    split's order.

    The examples go through `Dataset.to_tf_dataset` longest first (little padding), and the
    probabilities are then put back in input order (kerasft.batching).
    """
    import tensorflow as tf

    if batching.LABEL in split.column_names:  # unused here; without it every split (and raw texts) has one input
        split = split.remove_columns(batching.LABEL)  # structure, which `predict` then traces once, not once per kind
    dataset, plan = batching.ordered_batches(split, batch_size, batching.PadToLongest(tokenizer))
    logits = tf.cast(model.predict(dataset, verbose=0)["logits"], tf.float32)
    multi_label = is_multi_label(getattr(model, "config", None))
    probabilities = tf.sigmoid(logits) if multi_label else tf.nn.softmax(logits, axis=-1)
    return batching.in_input_order(probabilities.numpy(), plan)


def predict_texts(
    model, tokenizer, texts: list[str], max_length: int, batch_size: int, pairs: list[str] | None = None
) -> np.ndarray:
    """Probabilities for raw texts (and the second texts of pairs) through the training path: the Python tokenizer,
    length-batched `predict`, input order."""
    import datasets

    from kerasft.data import TEXT, TEXT_PAIR
    from kerasft.tokenizing import tokenize

    columns = {TEXT: list(texts)} | ({TEXT_PAIR: list(pairs)} if pairs is not None else {})
    split = tokenize(datasets.Dataset.from_dict(columns), tokenizer, max_length)
    return predict_split(model, split, tokenizer, batch_size)


def decision_thresholds(session, model) -> list[float]:
    """A multi-label run's thresholds, one per label: ``train.threshold``, or tuned on the validation split."""
    threshold = session.recipe.train.threshold
    if threshold != TUNE:  # as a float32, as the export holds it
        return [float(np.float32(threshold))] * len(session.label_names)
    validation = session.tokenized["validation"]
    probabilities = predict_split(model, validation, session.tokenizer, session.recipe.train.batch_size)
    return scores.tune_thresholds(np.asarray(validation["label"]), probabilities)


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
    test, model = session.tokenized["test"], evaluation_model(session)
    thresholds = decision_thresholds(session, model) if session.multi_label else None
    probabilities = predict_split(model, test, session.tokenizer, recipe.train.batch_size)
    texts, pairs = session.test_texts
    scored = Scored(texts, test["label"], probabilities, session.label_names, pairs, thresholds)
    metrics = {"test": write_reports(run_dir, scored)}
    if thresholds is not None:
        metrics["thresholds"] = {"train.threshold": recipe.train.threshold, "values": thresholds}
    weighting.add_to_report(run_dir, session.label_weights, session.label_names, session.data.splits["train"]["label"])
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


@dataclass
class Scored:
    """A labelled split and a model's answers to it, in input order: what the reports are written from."""

    texts: list[str]
    labels: np.ndarray  # label ids; multi-label: multi-hot rows
    probabilities: np.ndarray  # [examples, labels]
    label_names: list[str]
    pairs: list[str] | None = None  # the second texts of sentence pairs
    thresholds: list[float] | None = None  # one per label for multi-label models; None for single-label ones

    def __post_init__(self):
        self.labels = np.asarray(self.labels)


def write_reports(run_dir: RunDir, scored: Scored) -> dict:
    """Writes the classification report (text and JSON), the picture and predictions.csv; returns the test figures.

    Single-label: the confusion matrix picture. Multi-label (``thresholds`` given, labels
    multi-hot): per-label precision, recall, F1 and support, micro/macro/weighted/samples F1, subset
    accuracy and Hamming loss, and a picture of each label's F1, precision and recall.
    """
    y_true, probabilities, label_names = scored.labels, scored.probabilities, scored.label_names
    run_dir.write(RunDir.PREDICTIONS, predictions_csv(scored))
    if scored.thresholds is not None:
        y_pred = scores.predict_labels(probabilities, scored.thresholds)
        report = scores.multi_label_report_dict(y_true, y_pred, label_names)
        run_dir.write(RunDir.REPORT_TEXT, scores.multi_label_report_text(y_true, y_pred, label_names))
        run_dir.write_json(RunDir.REPORT_JSON, report)
        figures = scores.multi_label_scores(y_true, probabilities, scored.thresholds)
        title = f"test: micro F1 {figures['micro_f1']:.3f}, macro F1 {figures['macro_f1']:.3f}"
        run_dir.write(RunDir.LABEL_SCORES, plots.label_scores_png(report, label_names, title))
        return figures
    y_pred = probabilities.argmax(axis=1)
    run_dir.write(RunDir.REPORT_TEXT, scores.classification_report_text(y_true, y_pred, label_names))
    run_dir.write_json(RunDir.REPORT_JSON, scores.classification_report_dict(y_true, y_pred, label_names))
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(label_names))))
    run_dir.write(RunDir.CONFUSION_MATRIX, plots.confusion_matrix_png(matrix, label_names, "test"))
    return scores.classification_scores(y_true, probabilities)


def predicted_texts(run_dir: RunDir) -> tuple[list[str], list[str] | None]:
    """The test texts (and second texts of pairs) of a finished run, from its predictions.csv: what `kerasft export`
    checks a new export on."""
    with open(run_dir / RunDir.PREDICTIONS, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = [row["text_pair"] for row in rows] if rows and "text_pair" in rows[0] else None
    return [row["text"] for row in rows], pairs


def predictions_csv(scored: Scored) -> str:
    """text, [text_pair,] label, predicted, score: one row per example, in input order. Multi-label: the true and
    the predicted labels joined by commas (highest score first), and the predicted labels' scores likewise."""
    texts, pairs, label_names, thresholds = scored.texts, scored.pairs, scored.label_names, scored.thresholds
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", *(["text_pair"] if pairs is not None else []), "label", "predicted", "score"])
    for row, (text, truth, values) in enumerate(zip(texts, scored.labels, scored.probabilities)):
        first = [text, *([pairs[row]] if pairs is not None else [])]
        if thresholds is None:
            writer.writerow([*first, label_names[truth], label_names[values.argmax()], f"{values.max():.6f}"])
            continue
        chosen = [index for index in np.argsort(-values, kind="stable") if values[index] >= thresholds[index]]
        writer.writerow(
            [
                *first,
                LABEL_JOIN.join(label_names[index] for index in np.flatnonzero(np.asarray(truth) > 0.5)),
                LABEL_JOIN.join(label_names[index] for index in chosen),
                LABEL_JOIN.join(f"{values[index]:.6f}" for index in chosen),
            ]
        )
    return buffer.getvalue()


def evaluate_export(export_path: Path, data_file: str, data_options, output_dir: Path, batch_size: int = 64):
    """Scores an export on a labelled file through its own raw-text signature (`kerasft evaluate`); writes the
    report, the picture, predictions.csv and metrics.json into a new ``output_dir/evaluate-<model>-<time>/``.

    ``data_options`` is a kerasft.recipe.DataConfig (sep, columns, quoting, column names, label_sep); the
    labels take the export's label names, and everything is checked before the folder is created.
    Returns the folder and the figures.
    """
    import dataclasses

    from kerasft import serve
    from kerasft.data import TEXT, TEXT_PAIR, load_labelled
    from kerasft.errors import UserError

    version = serve.resolve_export(export_path)
    signature = serve.load_text_signature(version)
    facts = serve.export_facts(version)
    if "label_names" not in facts:
        raise UserError(f"{version} has no {serve.METADATA} with its label names: is it a kerasft export?")
    multi_label, pairs = bool(facts.get("multi_label")), serve.takes_pairs(signature)
    if pairs and not data_options.text_pair_column:
        data_options = dataclasses.replace(data_options, text_pair_column=TEXT_PAIR)
    if not pairs and data_options.text_pair_column:
        raise UserError(f"{version} classifies single texts, not pairs: drop --text-pair-column")
    data_options = dataclasses.replace(data_options, multi_label=multi_label)
    split = load_labelled(data_file, data_options, facts["label_names"], multi_label)
    texts, second = split[TEXT], split[TEXT_PAIR] if pairs else None
    probabilities = serve.answers(signature, texts, second, batch_size)["probabilities"]
    thresholds = facts.get("thresholds") if multi_label else None
    if multi_label and thresholds is None:
        thresholds = [0.5] * len(facts["label_names"])
    folder = RunDir.create(output_dir, None, f"evaluate-{facts.get('model_name', version.parent.name)}")
    scored = Scored(texts, split["label"], probabilities, facts["label_names"], second, thresholds)
    figures = write_reports(folder, scored)
    folder.write_json(
        RunDir.METRICS,
        {
            "test": figures,
            "export": str(version.resolve()),
            "data": str(Path(data_file).resolve()),
            **({"thresholds": {"values": thresholds}} if multi_label else {}),
        },
    )
    return folder, figures
