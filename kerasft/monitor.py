"""Monitor: what a run writes to TensorBoard, as Keras callbacks and a Keras metric.

``tensorboard_logs/<run-name>/`` then holds three TensorBoard runs:

* ``train/``: per step ``step_loss`` (the batch's loss) and ``step_learning_rate`` (the
  optimizer's current rate, schedule or not); per epoch ``epoch_loss``, ``epoch_accuracy``,
  ``epoch_macro_f1`` (written by Keras' own TensorBoard callback).
* ``validation/``: per epoch ``epoch_loss``, ``epoch_accuracy``, ``epoch_macro_f1``, the
  ``confusion_matrix`` image and the ``classification_report`` text. Multi-label runs: also
  ``epoch_micro_f1`` (``accuracy`` is the subset accuracy), and a ``label_scores`` image (each
  label's F1, precision, recall) in place of the confusion matrix.
* the run folder itself: the recipe's hyperparameters and the final metrics (``final/...``)
  for the HParams tab, where runs are compared side by side.

Use it like any Keras callbacks (``chief``: whether this process writes; in a multi-worker run
every worker runs the callbacks, which read the metrics together, and only the chief writes)::

    with strategy.scope():
        model.compile(optimizer, loss, metrics=["accuracy", MacroF1(num_classes=5)])
    model.fit(train_ds, validation_data=validation_ds,
              callbacks=training_callbacks(recipe, label_names, Path("tensorboard_logs/run-1"), chief=True))
    write_final_metrics(Path("tensorboard_logs/run-1"), metrics)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tensorboard.plugins.hparams import api as hp

from kerasft.metrics import (
    MacroF1,
    MultiLabelF1,
    label_scores_from_counts,
    loss_tracker,
    report_from_confusion_matrix,
    report_from_label_counts,
)

FINAL_METRICS = {  # tag in the run folder -> (display name, description)
    "final/test_accuracy": ("test accuracy", "accuracy of the kept weights on the test split"),
    "final/test_macro_f1": ("test macro F1", "macro-averaged F1 of the kept weights on the test split"),
    "final/test_micro_f1": ("test micro F1", "micro-averaged F1 of the kept weights on the test split (multi-label)"),
    "final/test_loss": ("test loss", "cross-entropy of the kept weights on the test split"),
    "final/val_accuracy": ("validation accuracy", "validation accuracy of the kept epoch"),
    "final/val_macro_f1": ("validation macro F1", "validation macro F1 of the kept epoch"),
    "final/val_loss": ("validation loss", "validation loss of the kept epoch"),
    "final/best_epoch": ("kept epoch", "the epoch whose weights were evaluated and exported"),
}


class StepScalars(keras.callbacks.Callback):
    """Writes ``step_loss`` and ``step_learning_rate`` after every ``every`` training steps.

    ``step_loss`` is the loss of the batches since the last write, not Keras' running mean
    over the epoch; the x axis is the optimizer's step count, so resumed runs continue it. With
    gradient accumulation a point is written once per optimizer step, its loss the mean over the
    batches it accumulated (within the epoch)::

        model.fit(train_ds, callbacks=[StepScalars("tensorboard_logs/run-1/train", chief=True)])
    """

    def __init__(self, log_dir: str | Path, chief: bool, every: int = 1):
        super().__init__()
        self.log_dir, self.chief, self.every = str(log_dir), chief, every
        self.writer = None
        self._seen = (0.0, 0.0)  # the loss tracker's (total, count) at the last write
        self._tracker = None  # Keras' running mean of the loss: its total and count give the batches' loss
        self._written_step = None  # the optimizer step of the last write

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir) if self.chief else None
        self._written_step = int(self.model.optimizer.iterations.numpy())  # a resumed run's count is restored by now

    def on_epoch_begin(self, epoch, logs=None):
        # Keras has just reset its metrics (or, resuming mid-epoch, kerasft.resume has put back the steps before
        # the restart)
        self._seen = self._tracker_values()

    def on_train_batch_end(self, batch, logs=None):
        if (batch + 1) % self.every:
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step == self._written_step:  # accumulating gradients: no optimizer step since the last write
            return
        self._written_step = step
        # Read on every worker: in a multi-worker run, reading the loss tracker is a collective op
        # all workers must join; only the chief writes.
        loss = self._batch_loss(logs)
        if self.writer is None:
            return
        with self.writer.as_default(step=step), tf.summary.record_if(True):
            if loss is not None:
                tf.summary.scalar("step_loss", loss)
            tf.summary.scalar("step_learning_rate", current_learning_rate(self.model.optimizer))

    def _tracker_values(self) -> tuple[float, float] | None:
        """Keras' running mean of the loss, as (total, count); None where the model has no such tracker."""
        if self._tracker is None:  # looked up once
            self._tracker = loss_tracker(self.model) if getattr(self.model, "compiled_loss", None) else False
        if self._tracker is False:
            return None
        return float(self._tracker.total.numpy()), float(self._tracker.count.numpy())

    def _batch_loss(self, logs):
        current = self._tracker_values()
        if current is None or self._seen is None:  # no loss tracker to read: Keras' running mean is the best there is
            return (logs or {}).get("loss")
        (total, count), (previous_total, previous_count) = current, self._seen
        self._seen = current
        return (total - previous_total) / (count - previous_count) if count > previous_count else None

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


def current_learning_rate(optimizer) -> float:
    """The learning rate of the optimizer's latest step, whether a constant or a schedule."""
    rate = optimizer.learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):  # legacy optimizers hand out the schedule
        rate = rate(tf.maximum(optimizer.iterations - 1, 0))
    return float(tf.convert_to_tensor(rate).numpy())


class ValidationReport(keras.callbacks.Callback):
    """Writes the validation ``confusion_matrix`` (image) and ``classification_report`` (text) at each epoch's end.

    Costs no extra pass over the data: the model's MacroF1 metric holds the confusion
    matrix of the validation pass Keras has just run, the same counts behind
    ``val_accuracy`` and ``val_macro_f1``. The step is the epoch index, as for Keras' scalars::

        model.fit(..., validation_data=validation_ds,
                  callbacks=[ValidationReport("tensorboard_logs/run-1/validation", label_names, chief=True)])
    """

    def __init__(self, log_dir: str | Path, label_names: list[str], chief: bool):
        super().__init__()
        self.log_dir, self.label_names, self.chief = str(log_dir), list(label_names), chief
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir) if self.chief else None

    def on_epoch_end(self, epoch, logs=None):
        if "val_macro_f1" not in (logs or {}):  # no validation pass this epoch
            return
        from kerasft.plots import confusion_matrix_png, label_scores_png

        metric = next(metric for metric in self.model.metrics if isinstance(metric, (MacroF1, MultiLabelF1)))
        # read on every worker: in a multi-worker run, reading a metric's variable is a collective op
        counts = metric.confusion_matrix() if isinstance(metric, MacroF1) else metric.label_counts()
        if self.writer is None:
            return
        where = f"validation after epoch {epoch + 1}"
        if isinstance(metric, MacroF1):
            name, description = (
                "confusion_matrix",
                "Validation confusion matrix: counts, and the share of each true label",
            )
            png = confusion_matrix_png(counts, self.label_names, where, dpi=80)
            report = report_from_confusion_matrix(counts, self.label_names)
            micro = ""
        else:
            name, description = "label_scores", "Validation F1, precision and recall of each label"
            png = label_scores_png(label_scores_from_counts(counts, self.label_names), self.label_names, where, dpi=80)
            report = report_from_label_counts(counts, self.label_names)
            micro = f"micro F1 {logs.get('val_micro_f1', math.nan):.4f}, "
        accuracy = "subset accuracy" if isinstance(metric, MultiLabelF1) else "accuracy"
        heading = (
            f"**Validation after epoch {epoch + 1}**: {accuracy} {logs.get('val_accuracy', math.nan):.4f}, {micro}"
            f"macro F1 {logs['val_macro_f1']:.4f}, loss {logs.get('val_loss', math.nan):.4f}\n\n"
        )
        with self.writer.as_default(step=epoch), tf.summary.record_if(True):
            tf.summary.image(name, tf.image.decode_png(png, channels=3)[tf.newaxis], description=description)
            tf.summary.text("classification_report", heading + "".join(f"    {line}\n" for line in report.splitlines()))

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class HParams(hp.KerasCallback):
    """The recipe's hyperparameters for TensorBoard's HParams tab, written when training starts.

    Also writes the experiment's layout (hyperparameter names and the ``final/...`` metrics),
    so the HParams table shows the run's final figures, not every scalar::

        model.fit(..., callbacks=[HParams("tensorboard_logs/run-1", hparams_of(recipe), "run-1", chief=True)])
    """

    def __init__(self, log_dir: str | Path, hparams: dict, trial_id: str, chief: bool):
        self.chief = chief  # other workers write nothing
        writer = tf.summary.create_file_writer(str(log_dir)) if self.chief else tf.summary.create_noop_writer()
        super().__init__(writer, hparams, trial_id=trial_id)

    def on_train_begin(self, logs=None):
        if not self.chief:
            return
        with self._writer.as_default():
            hp.hparams_config(
                hparams=[hp.HParam(name) for name in sorted(self._hparams)],
                metrics=[
                    hp.Metric(tag, display_name=name, description=text) for tag, (name, text) in FINAL_METRICS.items()
                ],
            )
        super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        if not self.chief:
            return
        writer = self._writer
        super().on_train_end(logs)  # writes the session's end and lets go of the writer
        writer.close()


def hparams_of(recipe) -> dict:
    """The recipe as flat HParams values: ``{"train.learning_rate": 5e-05, ...}``; unset (None) fields are left out."""
    values = {}
    for section, fields in recipe.to_dict().items():
        for key, value in fields.items() if isinstance(fields, dict) else [(None, fields)]:
            if value is not None:
                values[f"{section}.{key}" if key else section] = (
                    ",".join(map(str, value)) if isinstance(value, list) else value
                )
    return values


def early_stopping(train_config):
    """Keras' EarlyStopping on ``train.early_stopping_metric``, restoring the best epoch's weights; None if unset.

    The direction is explicit (Keras' "auto" would minimise ``val_macro_f1``); the best epoch's
    weights are restored at the end of training even when training ran all its epochs.
    """
    metric = train_config.early_stopping_metric
    if metric is None:
        return None
    return keras.callbacks.EarlyStopping(
        monitor=metric,
        mode=direction(metric),
        patience=train_config.early_stopping_patience,
        restore_best_weights=True,
        verbose=1,
    )


def direction(metric: str) -> str:
    return "min" if metric.endswith("loss") else "max"


def kept_epoch(history: dict, train_config) -> dict:
    """Which epoch's weights the model holds after `fit`, by EarlyStopping's rule (the first best), from History.

    Returns ``{"best_epoch": 2, "early_stopping": {...} or None}``; epochs count from 1.
    """
    epochs_run = len(history.get("loss", []))
    metric = train_config.early_stopping_metric
    if metric is None:
        return {"best_epoch": epochs_run, "early_stopping": None}
    values = np.array([math.nan if value is None else value for value in history.get(metric, [])], dtype=float)
    worst = math.inf if direction(metric) == "min" else -math.inf
    values = np.where(np.isnan(values), worst, values)
    index = int(values.argmin() if direction(metric) == "min" else values.argmax()) if values.size else epochs_run - 1
    return {
        "best_epoch": index + 1,
        "early_stopping": {
            "metric": metric,
            "mode": direction(metric),
            "patience": train_config.early_stopping_patience,
            "best_value": float(values[index]) if values.size else None,
            "epochs_run": epochs_run,
            "epochs_planned": train_config.epochs,
            "stopped_early": epochs_run < train_config.epochs,
        },
    }


def training_callbacks(recipe, label_names: list[str], log_dir: Path, chief: bool) -> list:
    """Every monitoring callback of a run, and EarlyStopping if the recipe asks for it."""
    callbacks = [
        StepScalars(log_dir / "train", chief),
        ValidationReport(log_dir / "validation", label_names, chief),
        HParams(log_dir, hparams_of(recipe), trial_id=log_dir.name, chief=chief),
    ]
    stopper = early_stopping(recipe.train)
    return callbacks + ([stopper] if stopper is not None else [])


def write_final_metrics(log_dir: Path, metrics: dict) -> None:
    """The ``final/...`` scalars the HParams tab shows: test figures and the kept epoch's validation figures (the
    chief's to write)."""
    best = metrics["best_epoch"]
    kept = next((record for record in metrics.get("validation", []) if record["epoch"] == best), {})
    test = metrics["test"]
    values = {
        "final/test_accuracy": test.get("accuracy", test.get("subset_accuracy")),  # multi-label: subset accuracy
        "final/test_macro_f1": test["macro_f1"],
        "final/test_micro_f1": test.get("micro_f1"),
        "final/test_loss": metrics["test"]["loss"],
        "final/val_accuracy": kept.get("accuracy"),
        "final/val_macro_f1": kept.get("macro_f1"),
        "final/val_loss": kept.get("loss"),
        "final/best_epoch": best,
    }
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default(step=best), tf.summary.record_if(True):
        for tag, value in values.items():
            if value is not None:
                tf.summary.scalar(tag, float(value), description=FINAL_METRICS[tag][1])
    writer.close()
