"""Surviving faults: periodic backups, Ctrl-C and SIGTERM that save one, and ``kerasft run --resume RUN_DIR``.

A run backs up its whole training state to ``<run>/backup`` every ``train.backup_every_steps``
steps with Keras' `BackupAndRestore`, extended (`BackupAndRestore` below) to save what Keras leaves
out: the state of every dropout layer's random generator and the epoch's running metrics. Ctrl-C
lets the step in progress finish, backs up, and prints the command that resumes. ``--resume RUN_DIR``
builds the same model from the recipe stored in ``RUN_DIR/recipe.json``; the backup restores the
weights, the optimizer, the dropout generators and the cut epoch's metrics, and the input pipeline
starts at the first batch not yet trained on (the data order is a function of the seed and the
epoch: kerasft.batching), so the resumed run draws the same dropout masks on the same batches
and ends with the uninterrupted run's weights and per-epoch figures. When `fit` completes,
``<run>/trained`` gets the final weights (or, when the newest epoch checkpoint already holds them,
the name of that checkpoint) and only then is the backup deleted, so a run interrupted during
evaluation or export resumes there without training again.

In a multi-worker run every worker backs up (the chief to ``<run>/backup``, the others to
temporary folders Keras deletes), every worker is restarted with the same ``--resume``, and all
of them restore from the chief's backup: ``--output-dir`` must be on a filesystem they share.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import signal
import sys
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
import tf_keras as keras

from kerasft.errors import UserError
from kerasft.files import write_json
from kerasft.metrics import running_metrics
from kerasft.rundir import RunDir, disk_full_path, is_disk_full

# In <run>/trained: the optimizer's step count when training ended, and where the final weights are if not beside it
STEPS = "steps.json"


def resume_command(run_dir: RunDir, devices: str | None = None) -> str:
    """The command that continues ``run_dir``, e.g. ``kerasft run --resume /abs/runs/tiny-1 --devices cpu:2``."""
    command = ["kerasft", "run", "--resume", shlex.quote(str(run_dir.path.resolve()))]
    if devices:
        command += ["--devices", devices]
    return " ".join(command)


# --- what Keras' BackupAndRestore leaves out -------------------------------------------------------------------------


def dropout_generators(model) -> list:
    """The random generators of the model's Keras random layers (dropout), in layer order.

    Keras keeps them out of checkpoints on purpose (their state is not a weight); a resumable run
    needs them in its backup. They exist once the model is built with
    ``keras.backend.experimental.enable_tf_random_generator()`` on (kerasft.session does that).
    """
    return [
        layer._random_generator._generator
        for layer in model._flatten_layers()  # noqa: SLF001 (no public accessor)
        if getattr(getattr(layer, "_random_generator", None), "_generator", None) is not None
    ]


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' BackupAndRestore, whose backups also hold the dropout generators' state and the epoch's running metrics.

    Keras restores weights, optimizer, epoch and step, but draws new dropout masks and counts the
    resumed epoch's figures from the restart. Both are added to Keras' own checkpoint object, so
    they are saved with every backup (and by `SaveOnInterrupt`) and restored with it. Keras resets
    its metrics at each epoch's start only once it has built them, in the first step: the cut
    epoch's restored figures are kept and go on counting (tests/test_distributed.py checks the
    resumed run's per-epoch figures against an uninterrupted run's). The backup is not deleted
    when `fit` ends, but once `TrainingState.save_trained` has written the final weights: no
    moment without one or the other.
    """

    def __init__(self, backup_dir: Path, save_freq: int):
        super().__init__(str(backup_dir), save_freq=save_freq, delete_checkpoint=False)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # creates Keras' checkpoint and restores the latest backup, if any
        checkpoint = self._training_state.read_checkpoint_manager.checkpoint
        # attached after the restore: TensorFlow restores objects attached later from the same checkpoint
        # (deferred restoration)
        checkpoint.kerasft_dropout = dropout_generators(self.model)
        checkpoint.kerasft_metrics = running_metrics(self.model)


# --- the state of an unfinished run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Position:
    """Where a resumed run continues: the epoch and step (from 0) of its first batch, and the optimizer's step count."""

    epoch: int
    step: int
    optimizer_step: int

    def record(self) -> dict:
        """The manifest's ``resumed_at`` entry: epoch and step counted from 1, as the progress bar shows them."""
        return {"epoch": self.epoch + 1, "step": self.step + 1, "optimizer_step": self.optimizer_step}


class TrainingState:
    """What lets an unfinished run continue, kept in its run directory: the backup, every finished epoch's logs
    (``history.json``) and, once `fit` is done, the final weights (``trained/``). Only the chief writes."""

    def __init__(self, run_dir: RunDir, chief: bool, task: int = 0):
        self.run_dir, self.chief, self.task = run_dir, chief, task  # task: this worker's index in a multi-worker run
        self.backup_dir = run_dir / RunDir.BACKUP
        self.trained_dir = run_dir / RunDir.TRAINED
        self.history_file = run_dir / RunDir.HISTORY
        self.interrupted_at: tuple[int, int] | None = None  # (epoch, step) where Ctrl-C or SIGTERM backed up

    def backup_callback(self, every_steps: int, steps_per_epoch: int) -> BackupAndRestore:
        """Backs up every ``every_steps`` steps (0: at each epoch's end)."""
        return BackupAndRestore(self.backup_dir, every_steps or steps_per_epoch)

    def position(self, steps_per_epoch: int) -> Position | None:
        """Where training resumes from the backup (Keras' own rule), or None without one."""
        latest = tf.train.latest_checkpoint(str(self.backup_dir / "chief"))
        if not latest:
            return None
        reader = tf.train.load_checkpoint(latest)
        epoch = int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
        batch = int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE"))
        if batch < 0:
            return None
        # the optimizer's own counter (model/optimizer/iter, or one level down under a LossScaleOptimizer)
        counters = sorted(
            (
                name
                for name in reader.get_variable_to_shape_map()
                if name.startswith("model/optimizer/") and name.endswith("/iter/.ATTRIBUTES/VARIABLE_VALUE")
            ),
            key=len,
        )
        optimizer_step = int(reader.get_tensor(counters[0])) if counters else epoch * steps_per_epoch + batch + 1
        epoch, step = (epoch + 1, 0) if batch == steps_per_epoch - 1 else (epoch, batch + 1)
        return Position(epoch, step, optimizer_step)

    def history_callback(self):
        """Records every finished epoch's logs in history.json, so a resumed run reports every epoch."""
        state = self

        class RecordEpochs(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if state.chief:
                    epochs = state.epochs()
                    epochs[epoch + 1] = {"epoch": epoch + 1} | {
                        key: float(value) for key, value in (logs or {}).items()
                    }
                    write_json(state.history_file, {"epochs": [epochs[number] for number in sorted(epochs)]})

        return RecordEpochs()

    def epochs(self) -> dict[int, dict]:
        if not self.history_file.is_file():
            return {}
        return {int(entry["epoch"]): entry for entry in json.loads(self.history_file.read_text())["epochs"]}

    def history(self, fitted: dict) -> dict[str, list]:
        """Every epoch's logs, ``{"loss": [...], "val_loss": [...], ...}``: earlier sessions' and ``fitted`` (this
        one's `History.history`)."""
        epochs = self.epochs() if self.chief else {}
        if not epochs:
            return fitted
        keys = [key for key in epochs[max(epochs)] if key != "epoch"]
        return {key: [epochs[number].get(key) for number in sorted(epochs)] for key in keys}

    def trained(self) -> str | None:
        """The final weights' checkpoint prefix, if training finished in an earlier session of this run."""
        weights = self._trained_record().get("weights")
        path = self.run_dir.path / weights if weights else self.trained_dir / "model"
        return str(path) if Path(f"{path}.index").is_file() else None

    def trained_steps(self) -> int | None:
        return self._trained_record().get("steps")

    def _trained_record(self) -> dict:
        path = self.trained_dir / STEPS
        return json.loads(path.read_text()) if path.is_file() else {}

    def scratch(self) -> Path:
        """An empty folder for what a worker other than the chief must save like the chief (saving may take part in
        collective ops) but never keep: outside the run directory, in the temporary folder.

        Named after the run and this worker's task, not drawn at random, so that a worker restarted after a kill
        (SIGKILL, the OOM killer: no cleanup runs) empties what the killed one left instead of leaving another copy
        of the model and optimizer there at every restart. Each call empties it: `fit`'s saves (kerasft.train) are
        done when `save_trained` writes the final weights there, and each removes the folder when done with it.
        """
        run = hashlib.sha256(str(self.run_dir.path.resolve()).encode()).hexdigest()[:12]
        folder = Path(tempfile.gettempdir()) / f"kerasft-worker-{run}-{self.task}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        return folder

    def save_trained(self, model, saved_as: str | None = None) -> None:
        """Keeps the weights `fit` ended with, then drops the backup. ``saved_as``: an epoch checkpoint that holds
        exactly these weights, which is then named instead of written again (at MiniLM's size the write took 0.65 s
        of a run). Other workers write to a temporary folder, then drop it, or like the chief write nothing."""
        if saved_as is None:
            folder = self.trained_dir if self.chief else self.scratch()
            try:
                tf.train.Checkpoint(model=model).write(str(folder / "model"))
            finally:
                if not self.chief:
                    shutil.rmtree(folder, ignore_errors=True)
        if self.chief:
            record = {"steps": int(model.optimizer.iterations.numpy())}
            if saved_as is not None:  # relative to the run directory: runs get moved
                record["weights"] = str(Path(saved_as).resolve().relative_to(self.run_dir.path.resolve()))
            write_json(self.trained_dir / STEPS, record)
            shutil.rmtree(self.backup_dir, ignore_errors=True)  # the final weights are safe: the backup has served

    def restore_trained(self, model) -> None:
        tf.train.Checkpoint(model=model).read(self.trained()).expect_partial()

    def announce(self, position: Position | None, resumed: bool, steps_per_epoch: int) -> None:
        """Says where a resumed run continues."""
        name = self.run_dir.name
        if self.trained():
            print(
                f"kerasft: resuming {name}: training had finished; restoring its final weights to evaluate and export"
            )
        elif position:
            print(
                f"kerasft: resuming {name} at epoch {position.epoch + 1}, step {position.step + 1} of "
                f"{steps_per_epoch} (from {self.backup_dir})"
            )
        elif resumed:
            print(f"kerasft: resuming {name}: no backup was saved yet; training from the start")

    def stopped(self, error: BaseException, stage: str, command: str, workers: int) -> None:
        """A run stops with ``error`` (or Ctrl-C, SIGTERM) during ``stage``: the chief marks the run directory and
        says how to resume; a full disk becomes one line (a UserError) with the resume command."""
        if self.chief:
            self.run_dir.mark_stopped(error, stage, command)
            if not isinstance(error, UserError) and not is_disk_full(error):
                kind = "failed" if isinstance(error, Exception) else "interrupted"
                where = " (on every worker)" if workers > 1 else ""
                message = f"kerasft: run {kind} during {stage}; {self.saved(stage)}. Resume with{where}:\n  {command}"
                print(f"\n{message}", file=sys.stderr, flush=True)
        if is_disk_full(error):
            where = disk_full_path(error) or self.run_dir.path
            message = f"no space left on the device writing {where}; free some space, then continue with: {command}"
            raise UserError(message) from error

    def saved(self, stage: str) -> str:
        """What is safe after an interruption, for the message that says how to resume."""
        if self.interrupted_at:
            epoch, step = self.interrupted_at
            return f"the training state is saved at epoch {epoch + 1}, step {step + 1}"
        if stage != "train" or self.trained():
            return "training had finished and its weights are saved"
        if self.backup_dir.is_dir():
            return f"its last backup is in {self.backup_dir}"
        return "no backup was saved yet (resuming starts training again)"

    def clean_up(self) -> None:
        """After a complete run: the backup, the copy of the final weights and the epoch log are no longer needed."""
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        shutil.rmtree(self.trained_dir, ignore_errors=True)
        self.history_file.unlink(missing_ok=True)


# --- signals
# -----------------------------------------------------------------------------------------------------------


@contextmanager
def _handlers(handler, signals=(signal.SIGINT, signal.SIGTERM)):
    """Installs ``handler`` for ``signals`` (main thread only; elsewhere Python cannot), restoring the previous ones
    after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, handler) for number in signals}
    try:
        yield
    finally:
        for number, old in previous.items():
            signal.signal(number, old)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def terminate_like_interrupt():
    """A context in which SIGTERM (`kill`, a scheduler's stop) raises KeyboardInterrupt like Ctrl-C instead of ending
    the process at once, so the run directory says "interrupted" and how to resume (during training SaveOnInterrupt
    takes over)."""
    return _handlers(_raise_interrupt, signals=(signal.SIGTERM,))


class SaveOnInterrupt:
    """Ctrl-C (or SIGTERM) during training: the step in progress finishes, the training state is backed up, then
    KeyboardInterrupt.

    A second Ctrl-C stops at once (losing the steps since the last periodic backup)::

        saver = SaveOnInterrupt()
        with saver.installed():
            model.fit(..., callbacks=[BackupAndRestore(...), saver.callback()])
    """

    def __init__(self):
        self.requested = False
        self.saved_at: tuple[int, int] | None = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(
            f"\nkerasft: {name}: saving the training state after this step (Ctrl-C again stops at once)",
            file=sys.stderr,
            flush=True,
        )

    @contextmanager
    def installed(self):
        with _handlers(self._handle):
            yield self

    def callback(self):
        saver = self

        class BackUpOnInterrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if saver.requested:
                    self.model._training_state.back_up(
                        epoch=self.epoch, batch=batch
                    )  # BackupAndRestore's own state and files
                    saver.saved_at = (self.epoch, batch)
                    raise KeyboardInterrupt

        return BackUpOnInterrupt()
