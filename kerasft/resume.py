"""Surviving faults: periodic backups, Ctrl-C that saves one, and ``kerasft run --resume RUN_DIR``.

A run backs up its whole training state (weights, optimizer, epoch and step) to ``<run>/backup``
every ``train.backup_every_steps`` steps with Keras' `BackupAndRestore`; Ctrl-C lets the step in
progress finish, backs up, and prints the command that resumes. ``--resume RUN_DIR`` builds the
same model from the recipe stored in ``RUN_DIR/recipe.json``; `BackupAndRestore` restores the
state, and the input pipeline starts at the first batch not yet trained on (see
kerasft.pipeline), so the resumed run ends with the same number of steps, and on the same data,
as an uninterrupted one. When `fit` completes, ``<run>/trained`` gets the final weights and only
then is the backup deleted, so a run interrupted during evaluation or export resumes there
without training again. A complete run deletes both.

In a multi-worker run every worker backs up (the chief to ``<run>/backup``, the others to
temporary folders Keras deletes), every worker is restarted with the same ``--resume``, and all
of them restore from the chief's backup: ``--output-dir`` must be on a filesystem they share.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import sys
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from kerasft.errors import UserError
from kerasft.files import write_json

BACKUP = "backup"  # BackupAndRestore's folder: <run>/backup/chief/ckpt-N
TRAINED = "trained"  # <run>/trained/model.*: the weights `fit` ended with (removed when the run completes)
HISTORY = "history.json"  # every finished epoch's logs, so a resumed run reports all epochs
STEPS = "steps.json"  # the optimizer's step count when training ended


def resume_command(run_dir: Path, devices: str | None = None) -> str:
    """The command that continues ``run_dir``, e.g. ``kerasft run --resume /abs/runs/tiny-1 --devices cpu:2``."""
    command = ["kerasft", "run", "--resume", shlex.quote(str(Path(run_dir).resolve()))]
    if devices:
        command += ["--devices", devices]
    return " ".join(command)


def load_run(run_dir: Path) -> tuple[dict, dict]:
    """The stored recipe (as a dict) and run manifest of ``run_dir``, or a UserError saying why it cannot resume."""
    from kerasft.runner import RECIPE_FILE

    if not (run_dir / RECIPE_FILE).is_file():
        raise UserError(f"--resume {run_dir}: not a kerasft run directory (no {RECIPE_FILE}); give the folder a run printed or `kerasft runs` lists")
    stored = json.loads((run_dir / RECIPE_FILE).read_text())
    return {key: value for key, value in stored.items() if key != "run"}, stored.get("run", {})


def check_resumable(run_dir: Path) -> dict:
    """The run's status.json, after checking that the run is neither complete nor still running here."""
    from kerasft.runner import STATUS_FILE

    path = run_dir / STATUS_FILE
    status = json.loads(path.read_text()) if path.is_file() else {}
    if status.get("state") == "complete":
        raise UserError(f"--resume {run_dir}: that run is complete; there is nothing to resume (start a new run, or `kerasft export` it again)")
    if process_state(status) == "alive":
        raise UserError(f"--resume {run_dir}: that run is still running (process {status['pid']}); stop it first, or wait for it")
    return status


def process_state(status: dict) -> str | None:
    """For a status.json saying "running" on this host: "alive" if its process is, "gone" if it was killed; else None."""
    pid = status.get("pid")
    if status.get("state") != "running" or not pid or status.get("host") != socket.gethostname():
        return None
    return "alive" if _alive(int(pid)) else "gone"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def backup_callback(run_dir: Path, every_steps: int, steps_per_epoch: int):
    """Keras' BackupAndRestore in ``<run>/backup``, saving every ``every_steps`` steps (0: at each epoch's end)."""
    import tf_keras as keras

    # Not deleted when fit ends, but once save_trained has written the final weights: no moment without one or the other.
    return keras.callbacks.BackupAndRestore(str(run_dir / BACKUP), save_freq=every_steps or steps_per_epoch, delete_checkpoint=False)


def backup_position(run_dir: Path, steps_per_epoch: int) -> tuple[int, int] | None:
    """``(epoch, step)`` where training resumes from ``<run>/backup`` (Keras' own rule), or None without a backup."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run_dir / BACKUP / "chief"))
    if not latest:
        return None
    reader = tf.train.load_checkpoint(latest)
    epoch = int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    batch = int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE"))
    if batch < 0:
        return None
    return (epoch + 1, 0) if batch == steps_per_epoch - 1 else (epoch, batch + 1)


@contextmanager
def _handlers(handler, signals=(signal.SIGINT, signal.SIGTERM)):
    """Installs ``handler`` for ``signals`` (main thread only; elsewhere Python cannot), restoring the previous ones after."""
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
    """A context in which SIGTERM (`kill`, a scheduler's stop) raises KeyboardInterrupt like Ctrl-C instead of ending the
    process at once, so the run directory says "interrupted" and how to resume (during training SaveOnInterrupt takes over)."""
    return _handlers(_raise_interrupt, signals=(signal.SIGTERM,))


class SaveOnInterrupt:
    """Ctrl-C (or SIGTERM) during training: the step in progress finishes, the training state is backed up, then KeyboardInterrupt.

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
        print(f"\nkerasft: {name}: saving the training state after this step (Ctrl-C again stops at once)", file=sys.stderr, flush=True)

    @contextmanager
    def installed(self):
        with _handlers(self._handle):
            yield self

    def callback(self):
        import tf_keras as keras

        saver = self

        class BackUpOnInterrupt(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.epoch = epoch

            def on_train_batch_end(self, batch, logs=None):
                if saver.requested:
                    self.model._training_state.back_up(epoch=self.epoch, batch=batch)  # BackupAndRestore's own state and files
                    saver.saved_at = (self.epoch, batch)
                    raise KeyboardInterrupt

        return BackUpOnInterrupt()


class EpochHistory:
    """Every finished epoch's logs in ``<run>/history.json``, kept across resumptions (chief only)."""

    def __init__(self, run_dir: Path, write: bool):
        self.path = run_dir / HISTORY
        self.write = write
        self.first_step = None  # the optimizer's step count when `fit` began: 0, or the restored one

    def load(self) -> dict[int, dict]:
        if not self.path.is_file():
            return {}
        return {int(entry["epoch"]): entry for entry in json.loads(self.path.read_text())["epochs"]}

    def callback(self):
        import tf_keras as keras

        recorder = self

        class RecordEpochs(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):  # after BackupAndRestore's, which comes first
                recorder.first_step = int(self.model.optimizer.iterations.numpy())

            def on_epoch_end(self, epoch, logs=None):
                if not recorder.write:
                    return
                epochs = recorder.load()
                epochs[epoch + 1] = {"epoch": epoch + 1} | {key: float(value) for key, value in (logs or {}).items()}
                write_json(recorder.path, {"epochs": [epochs[number] for number in sorted(epochs)]})

        return RecordEpochs()

    def merged(self, history):
        """A History-like object with every epoch of the run, earlier sessions' included."""
        epochs = self.load() if self.write else {}
        if not epochs:
            return history
        keys = [key for key in epochs[max(epochs)] if key != "epoch"]

        class Merged:
            pass

        merged = Merged()
        merged.history = {key: [epochs[number].get(key) for number in sorted(epochs)] for key in keys}
        merged.epoch = [number - 1 for number in sorted(epochs)]
        return merged


def save_trained(model, run_dir: Path, chief: bool) -> None:
    """Writes the weights `fit` ended with to ``<run>/trained`` (other workers write to a temporary folder, then drop it)."""
    import tensorflow as tf

    folder = run_dir / TRAINED if chief else Path(tempfile.mkdtemp(prefix="kerasft-worker-"))
    try:
        tf.train.Checkpoint(model=model).write(str(folder / "model"))
        if chief:
            write_json(folder / STEPS, {"steps": int(model.optimizer.iterations.numpy())})
            shutil.rmtree(run_dir / BACKUP, ignore_errors=True)  # the final weights are safe: the backup has served
    finally:
        if not chief:
            shutil.rmtree(folder, ignore_errors=True)


def trained_checkpoint(run_dir: Path) -> str | None:
    """``<run>/trained/model`` if training finished in an earlier session of this run."""
    path = run_dir / TRAINED / "model"
    return str(path) if Path(f"{path}.index").is_file() else None


def restore_trained(model, checkpoint: str) -> None:
    import tensorflow as tf

    tf.train.Checkpoint(model=model).read(checkpoint).expect_partial()


def trained_steps(run_dir: Path) -> int | None:
    path = run_dir / TRAINED / STEPS
    return json.loads(path.read_text())["steps"] if path.is_file() else None


def clean_up(run_dir: Path) -> None:
    """After a complete run: the backup, the copy of the final weights and the epoch log are no longer needed."""
    shutil.rmtree(run_dir / BACKUP, ignore_errors=True)
    shutil.rmtree(run_dir / TRAINED, ignore_errors=True)
    (run_dir / HISTORY).unlink(missing_ok=True)
