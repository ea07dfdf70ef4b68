"""Train: Keras `fit` with TensorBoard and checkpoints, the way Keras expects it to be extended (callbacks)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from kerasft.errors import UserError


class KeepLastCheckpoints(keras.callbacks.Callback):
    """Saves model and optimizer at each epoch's end in ``directory``, keeping the newest ``max_to_keep``.

    Keras' ModelCheckpoint never prunes old files; `tf.train.CheckpointManager` does.
    The files restore with ``tf.train.Checkpoint(model=model).restore(path)``::

        callback = KeepLastCheckpoints("run/checkpoints", max_to_keep=2)
        model.fit(train_ds, epochs=3, callbacks=[callback])
    """

    def __init__(self, directory: str | Path, max_to_keep: int):
        super().__init__()
        self.directory = str(directory)
        self.max_to_keep = max_to_keep
        self.manager = None

    def on_train_begin(self, logs=None):
        checkpoint = tf.train.Checkpoint(model=self.model)
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.directory, max_to_keep=self.max_to_keep, checkpoint_name="epoch"
        )

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite((logs or {}).get("loss", 0.0)):
            return  # TerminateOnNaN stopped this epoch: its weights are not worth keeping, nor worth pruning a good one for
        self.manager.save(checkpoint_number=epoch + 1)


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, remembering where the loss went bad so that `fit` can say so."""

    def __init__(self):
        super().__init__()
        self.epoch, self.stopped_at = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if self.model.stop_training and self.stopped_at is None and not math.isfinite(float((logs or {}).get("loss", 0.0))):
            self.stopped_at = (self.epoch, batch)


def nan_error(stopped_at: tuple[int, int], recipe, run_dir: Path) -> UserError:
    epoch, batch = stopped_at
    latest = tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    kept = f"the last good checkpoint is {latest}" if latest else "no epoch had finished, so no checkpoint was saved"
    return UserError(f"the training loss became NaN at epoch {epoch + 1}, step {batch + 1}, so the run stopped and exported nothing; "
                     f"{kept}; lower train.learning_rate (it is {recipe.train.learning_rate:g}) and start a new run")


def fit(model, train_ds, validation_ds, recipe, run_dir: Path, tensorboard_dir: Path, *, steps_per_epoch=None, extra_callbacks=(), chief=True):
    """Runs `model.fit` and returns its History; one TensorBoard folder per run (see kerasft.monitor).

    ``extra_callbacks`` run first (kerasft.resume's backup and restore). In a multi-worker run,
    workers other than the chief (``chief=False``) write checkpoints and TensorBoard files to a
    temporary folder, deleted afterwards: they must save like the chief (saving may take part in
    collective ops) but nothing of theirs may land in the run directory.
    """
    import shutil
    import tempfile

    from kerasft.monitor import training_callbacks

    scratch = None if chief else Path(tempfile.mkdtemp(prefix="kerasft-worker-"))
    if scratch is not None:
        run_dir, tensorboard_dir = scratch, scratch / "tensorboard"
    nan = StopOnNaN()
    callbacks = [*extra_callbacks] + [
        keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), update_freq="epoch"),
        KeepLastCheckpoints(run_dir / "checkpoints", max_to_keep=recipe.train.keep_checkpoints),
        nan,
    ] + training_callbacks(model, recipe, Path(tensorboard_dir))  # step scalars, validation reports, hparams, early stopping
    try:
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=recipe.train.epochs,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            verbose=1 if sys.stdout.isatty() else 2,  # a live bar on a terminal; one line per epoch in log files
        )
        if nan.stopped_at is not None:  # before the caller saves the final (NaN) weights or evaluates and exports them
            raise nan_error(nan.stopped_at, recipe, run_dir)
        return history
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def per_epoch(history) -> dict:
    """History as ``{"train": [{"epoch": 1, "loss": ..., "accuracy": ...}], "validation": [...]}``."""
    epochs = len(history.history.get("loss", []))
    train, validation = [], []
    for index in range(epochs):
        train.append({"epoch": index + 1} | {k: float(v[index]) for k, v in history.history.items() if not k.startswith("val_")})
        validation.append({"epoch": index + 1} | {k[4:]: float(v[index]) for k, v in history.history.items() if k.startswith("val_")})
    return {"train": train, "validation": validation}
