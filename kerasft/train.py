"""Train: Keras `fit` on the session's model with the run's callbacks, the way Keras expects to be extended.

    plan = training_plan(session, start=None)        # kerasft.batching.Plan: which examples make each global batch
    history = train(session, run_dir, Path("tensorboard_logs/run-1"), TrainingState(run_dir, chief=True), plan)

The callbacks, in order: the backup (kerasft.resume), the epoch log, Keras' TensorBoard, the
epoch checkpoints (`KeepLastCheckpoints`), `StopOnNaN`, kerasft.monitor's TensorBoard callbacks
and early stopping, and on one worker Ctrl-C's backup.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import sys
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from kerasft import batching, monitor
from kerasft.errors import UserError
from kerasft.resume import Position, SaveOnInterrupt, TrainingState
from kerasft.rundir import RunDir


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
        self.newest: tuple[str, int, int] | None = None  # (prefix, epoch, optimizer step) of the newest save

    def on_train_begin(self, logs=None):
        checkpoint = tf.train.Checkpoint(model=self.model)
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.directory, max_to_keep=self.max_to_keep, checkpoint_name="epoch"
        )

    def on_epoch_end(self, epoch, logs=None):
        if not math.isfinite((logs or {}).get("loss", 0.0)):
            # TerminateOnNaN stopped this epoch: its weights are not worth keeping, nor worth pruning a good one for
            return
        path = self.manager.save(checkpoint_number=epoch + 1)
        self.newest = (path, epoch, int(self.model.optimizer.iterations.numpy()))

    def holding_current_weights(self, stopper: keras.callbacks.EarlyStopping | None) -> str | None:
        """The newest checkpoint's prefix if the model still holds the weights it saved, else None.

        Not so after any step since, or when early stopping (``stopper``) put back the weights of
        another epoch: Keras' EarlyStopping restores its best epoch's at the end of training.
        """
        if self.newest is None:
            return None
        path, epoch, step = self.newest
        restored = stopper is not None and stopper.restore_best_weights and stopper.best_weights is not None
        if step != int(self.model.optimizer.iterations.numpy()) or (restored and stopper.best_epoch != epoch):
            return None
        return path


class StopOnNaN(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN, remembering where the loss went bad so that `fit` can say so."""

    def __init__(self):
        super().__init__()
        self.epoch, self.stopped_at = 0, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        super().on_batch_end(batch, logs)
        if (
            self.model.stop_training
            and self.stopped_at is None
            and not math.isfinite(float((logs or {}).get("loss", 0.0)))
        ):
            self.stopped_at = (self.epoch, batch)


def nan_error(stopped_at: tuple[int, int], learning_rate: float, checkpoints: Path) -> UserError:
    epoch, batch = stopped_at
    latest = tf.train.latest_checkpoint(str(checkpoints))
    kept = f"the last good checkpoint is {latest}" if latest else "no epoch had finished, so no checkpoint was saved"
    return UserError(
        f"the training loss became NaN at epoch {epoch + 1}, step {batch + 1}, so the run stopped and exported "
        "nothing; "
        f"{kept}; lower train.learning_rate (it is {learning_rate:g}) and start a new run"
    )


def training_plan(session, start: Position | None = None) -> batching.Plan:
    """The run's global batches: seeded, length-bucketed unless ``train.group_by_length=false``, from ``start`` (a
    resumed run's position) to the last epoch."""
    train = session.recipe.train
    plan = batching.Plan(
        len(session.tokenized["train"]),
        train.batch_size,
        seed=train.seed,
        epochs=train.epochs,
        drop_remainder=session.drop_remainder,
        lengths=batching.token_lengths(session.tokenized["train"]) if train.group_by_length else None,
    )
    return dataclasses.replace(plan, start_epoch=start.epoch, start_step=start.step) if start else plan


def train(
    session, run_dir: RunDir, tensorboard_run: Path, state: TrainingState, plan: batching.Plan
) -> dict[str, list]:
    """Runs `fit` over ``plan`` and returns every epoch's logs (earlier sessions' included), as History.history.

    In a multi-worker run, workers other than the chief write checkpoints and TensorBoard files to
    a temporary folder, deleted afterwards: they must save like the chief (saving may take part in
    collective ops) but nothing of theirs may land in the run directory.
    """
    recipe, model, precision = session.recipe, session.model, session.precision
    collate = batching.PadToLongest.for_device(
        session.tokenizer, precision.device_kind, precision.jit_compile, recipe.model.max_length
    )
    train_ds = batching.training_batches(session.tokenized["train"], plan, collate)
    validation_ds, _ = batching.ordered_batches(session.tokenized["validation"], recipe.train.batch_size, collate)
    scratch = None if session.chief else state.scratch()
    checkpoints, tensorboard_run = (
        (run_dir / RunDir.CHECKPOINTS, tensorboard_run)
        if scratch is None
        else (scratch / "checkpoints", scratch / "tb")
    )
    # Ctrl-C backs up after the step in progress; not in multi-worker runs, where saving takes every worker
    saver = SaveOnInterrupt() if session.workers == 1 else None
    nan = StopOnNaN()
    checkpointer = KeepLastCheckpoints(checkpoints, max_to_keep=recipe.train.keep_checkpoints)
    callbacks = [
        state.backup_callback(recipe.train.backup_every_steps, plan.steps_per_epoch),
        state.history_callback(),
        keras.callbacks.TensorBoard(log_dir=str(tensorboard_run), update_freq="epoch"),
        checkpointer,
        nan,
        *monitor.training_callbacks(recipe, session.label_names, tensorboard_run, session.chief),
        *([saver.callback()] if saver else []),
    ]
    state.interrupted_at = None
    try:
        with saver.installed() if saver else contextlib.nullcontext():
            try:
                history = model.fit(
                    train_ds,
                    validation_data=validation_ds,
                    epochs=recipe.train.epochs,
                    steps_per_epoch=plan.steps_per_epoch,
                    class_weight=session.class_weights,  # None unless train.class_weight=balanced
                    callbacks=callbacks,
                    verbose=1 if sys.stdout.isatty() else 2,
                )  # a live bar on a terminal; one line per epoch in logs
            finally:
                state.interrupted_at = saver.saved_at if saver else None
        if nan.stopped_at is not None:  # before the final (NaN) weights are saved, evaluated or exported
            raise nan_error(nan.stopped_at, recipe.train.learning_rate, checkpoints)
        stopper = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
        # every worker decides alike (same steps, same validation figures): all write the weights again or none does
        state.save_trained(model, saved_as=checkpointer.holding_current_weights(stopper))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if saver and saver.requested:  # Ctrl-C came during the last validation: training is complete and saved
        raise KeyboardInterrupt
    return state.history(history.history)


def per_epoch(history: dict[str, list]) -> dict:
    """History as ``{"train": [{"epoch": 1, "loss": ..., "accuracy": ...}], "validation": [...]}``."""
    epochs = len(history.get("loss", []))
    train, validation = [], []
    for index in range(epochs):
        train.append(
            {"epoch": index + 1} | {k: float(v[index]) for k, v in history.items() if not k.startswith("val_")}
        )
        validation.append(
            {"epoch": index + 1} | {k[4:]: float(v[index]) for k, v in history.items() if k.startswith("val_")}
        )
    return {"train": train, "validation": validation}
