"""Faults and awkward inputs that docs/reliability.md promises to survive, each with the outcome it promises.

Runs go in-process through the real `kerasft` command (click's CliRunner) on the tiny BERT;
only the signal test needs a process of its own.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import REPO, read_rows, write_recipe
from kerasft.cli import main
from kerasft.errors import UserError


def run(*args) -> Result:
    return CliRunner().invoke(main, ["run", *map(str, args)])


def one_error_line(result) -> str:
    """The single `kerasft: error: ...` line a refused run prints (exit 2, no traceback)."""
    assert result.exit_code == 2, result.output[-3000:]
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("kerasft: error: "), result.stderr
    return lines[0]


@pytest.fixture
def recipe(tmp_path, tiny_checkpoint, small_data) -> Path:
    return write_recipe(
        tmp_path / "tiny.py", tiny_checkpoint, small_data, epochs=2, batch_size=8, mixed_precision="off"
    )


# --- inputs ------------------------------------------------------------------------------------------------------


def test_empty_texts_are_refused_when_the_recipe_says_so(tmp_path):
    from kerasft.data import load_splits
    from kerasft.recipe import DataConfig, Recipe, apply_overrides

    path = tmp_path / "d.csv"
    path.write_text('text,label\ngood,pos\nbad,neg\n"",neg\nfine,pos\n   ,pos\n', encoding="utf-8")
    with pytest.raises(
        UserError,
        match=r"the train split has 2 empty or missing texts \(the first in data row 3\); "
        r"fill them in or remove them, or set data.empty_texts=drop",
    ):
        load_splits(DataConfig(train=str(path), validation=str(path), test=str(path), empty_texts="error"), seed=0)
    with pytest.raises(UserError, match="data.empty_texts must be one of drop, error, got 'skip'"):
        apply_overrides(Recipe(data=DataConfig(train=str(path))), ["data.empty_texts=skip"])


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("zero.csv", "", "data file .*zero.csv is empty"),
        (
            "ragged.csv",
            "text,label\nok,joy\nfine,joy\nbad,line,joy\n",
            "ragged.csv could not be read: .*Expected 2 fields in line 4, saw 3",
        ),
        (
            "nolabel.csv",
            "text,label\ngood,pos\nbad,\nfine,neg\n",
            "the train split has rows with no label; fill them in or remove them",
        ),
        (
            "nolabel.jsonl",
            '{"text": "good", "label": "pos"}\n{"text": "bad", "label": null}\n',
            "the train split has rows with no label",
        ),
    ],
    ids=["zero-byte file", "ragged csv line", "empty label cell", "null label"],
)
def test_more_bad_files_get_one_line_and_nothing_else_on_stderr(tmp_path, capfd, name, content, expected):
    from kerasft.data import load_splits
    from kerasft.recipe import DataConfig

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    capfd.readouterr()
    with pytest.raises(UserError, match=expected) as refused:
        load_splits(DataConfig(train=str(path), validation=str(path), test=str(path)), seed=0)
    assert "\n" not in str(refused.value)
    assert (
        capfd.readouterr().err == ""
    )  # the libraries' own logging of the failure is kept quiet: the CLI prints one line


def test_a_corrupt_weights_file_is_refused(tmp_path, tiny_checkpoint):
    from kerasft.model import build_classifier

    shutil.copy(tiny_checkpoint / "config.json", tmp_path / "config.json")
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{truncated")
    with pytest.raises(UserError, match=r"cannot read weights .*model.safetensors: .*; re-download the checkpoint"):
        build_classifier(str(tmp_path), ["a", "b"])


def test_a_checkpoint_head_of_another_size_is_reinitialised_with_a_warning(tmp_path, tiny_checkpoint, capsys):
    import numpy as np
    from transformers import TFBertForSequenceClassification

    from kerasft.model import build_classifier

    folder = tmp_path / "three-label-head"
    shutil.copytree(tiny_checkpoint, folder)
    trained = TFBertForSequenceClassification.from_pretrained(str(tiny_checkpoint), num_labels=3)
    trained(trained.dummy_inputs)
    trained.save_pretrained(folder)  # a fine-tuned checkpoint: body and a 3-label head
    head = trained.classifier.kernel.numpy()

    two = build_classifier(str(folder), ["neg", "pos"])
    assert (
        "the checkpoint's classifier head has another size; re-initialised it for 2 labels" in capsys.readouterr().out
    )
    assert two.classifier.kernel.shape == (32, 2)
    np.testing.assert_array_equal(two.bert.get_weights()[0], trained.bert.get_weights()[0])  # the body is kept

    three = build_classifier(str(folder), ["a", "b", "c"])
    assert (
        "head was loaded from the checkpoint (it has the same number of labels); its label meanings may differ"
        in capsys.readouterr().out
    )
    np.testing.assert_array_equal(three.classifier.kernel.numpy(), head)


@pytest.mark.slow
def test_texts_far_longer_than_max_length_are_truncated_in_training_and_in_the_export(
    tmp_path, tiny_checkpoint, small_data
):
    import csv

    long_text = " ".join(["my parcel never arrived and nobody answers"] * 400)  # ~2,800 tokens; max_length is 32
    for split in ("train", "test"):
        rows = read_rows(small_data[split]) + [{"text": long_text, "label": "delivery"}]
        with small_data[split].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(rows)
    recipe = write_recipe(
        tmp_path / "tiny.py", tiny_checkpoint, small_data, epochs=1, batch_size=16, mixed_precision="off"
    )
    result = run(recipe, "--run-name", "long", "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb")
    assert result.exit_code == 0, result.output[-3000:]
    run_dir = tmp_path / "runs" / "long"
    assert long_text in [row["text"] for row in read_rows(run_dir / "predictions.csv")]
    parity = json.loads((run_dir / "metrics.json").read_text())["export"]["parity"]
    # the export was reloaded and given every test text raw, the long one too: it truncates as training did
    assert parity["examples"] == len(read_rows(small_data["test"])) and parity["argmax_agreement"] == 1.0


# --- faults --------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_nan_loss_stops_the_run_keeps_the_last_good_checkpoint_and_exports_nothing(tmp_path, recipe, monkeypatch):
    """The fault: in epoch 2 the classifier's weights turn NaN (as a far too high learning rate does), so the loss is
    NaN."""
    import numpy as np
    import tf_keras as keras

    from kerasft import monitor

    losses = []

    class PoisonWeights(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 3:
                kernel = self.model.classifier.kernel
                kernel.assign(np.full(kernel.shape, np.nan, dtype=np.float32))

        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    original = monitor.training_callbacks
    monkeypatch.setattr(monitor, "training_callbacks", lambda *args: original(*args) + [PoisonWeights()])
    result = run(recipe, "--run-name", "nan", "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb")
    run_dir = tmp_path / "runs" / "nan"
    line = one_error_line(result)
    assert (
        np.isnan(losses[-1]) and np.isfinite(losses[:15]).all()
    )  # 15 good steps in epoch 1, then NaN: it really happened
    assert (
        f"the training loss became NaN at epoch 2, step 4, so the run stopped and exported nothing; "
        f"the last good checkpoint is {run_dir / 'checkpoints' / 'epoch-1'}; lower train.learning_rate (it is 0.001)"
    ) in line
    assert sorted(path.name for path in (run_dir / "checkpoints").glob("*.index")) == ["epoch-1.index"]
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["stage"]) == ("failed", "train") and "NaN" in status["error"]
    assert (
        not (run_dir / "export").exists()
        and not (run_dir / "metrics.json").exists()
        and not (run_dir / "trained").exists()
    )


@pytest.mark.slow
def test_sigterm_saves_like_ctrl_c_and_the_run_resumes_to_the_end(tmp_path, recipe):
    from kerasft.resume import TrainingState
    from kerasft.rundir import RunDir
    from kerasft.runlist import list_runs

    run_dir = (tmp_path / "runs" / "terminated").resolve()
    out, err = tmp_path / "run.out", tmp_path / "run.err"
    base = (
        [str(Path(sys.executable).with_name("kerasft"))]
        if Path(sys.executable).with_name("kerasft").is_file()
        else [sys.executable, "-m", "kerasft"]
    )
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [
                *base,
                "run",
                str(recipe),
                "train.epochs=3",
                "train.backup_every_steps=1000",
                "--run-name",
                "terminated",
                "--output-dir",
                "runs",
                "--tensorboard-dir",
                "tb",
            ],
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
            env=os.environ | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.time() + 120
        while "Epoch 1/" not in out.read_text() and process.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 130, err.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
    stderr = err.read_text()
    assert "SIGTERM: saving the training state after this step" in stderr and "Traceback" not in stderr
    assert f"Resume with:\n  kerasft run --resume {run_dir}\n" in stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["stage"]) == ("interrupted", "train")
    assert (
        TrainingState(RunDir(run_dir), chief=True).position(15) is not None
    )  # 120 examples / batch 8; no periodic backup yet: SIGTERM wrote it
    assert [row["state"] for row in list_runs(tmp_path / "runs")] == ["interrupted"]
    before = sorted(path.relative_to(run_dir) for path in run_dir.rglob("*"))
    not_yet = CliRunner().invoke(main, ["export", str(run_dir)])  # nothing evaluated yet to check an export on
    assert not_yet.exit_code == 2 and not_yet.stderr.count("\n") == 1, not_yet.output[-3000:]
    assert "is interrupted and has no test predictions" in not_yet.stderr
    assert f"kerasft run --resume {run_dir}" in not_yet.stderr
    assert sorted(path.relative_to(run_dir) for path in run_dir.rglob("*")) == before

    resumed = CliRunner().invoke(main, ["run", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert (
        json.loads((run_dir / "metrics.json").read_text())["training"]["steps"] == 3 * 15
    )  # as many as an uninterrupted run


def test_a_killed_run_is_listed_as_killed(tmp_path):
    import socket

    from kerasft.rundir import RunDir
    from kerasft.runlist import list_runs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for name, pid in (("killed", dead.pid), ("live", alive.pid)):
            (tmp_path / name).mkdir()
            (tmp_path / name / "status.json").write_text(
                json.dumps({"state": "running", "pid": pid, "host": socket.gethostname()})
            )
        assert {row["run"]: row["state"] for row in list_runs(tmp_path)} == {"killed": "killed", "live": "running"}
        RunDir(tmp_path / "killed").check_resumable()
        with pytest.raises(UserError, match="still running"):
            RunDir(tmp_path / "live").check_resumable()
    finally:
        alive.kill()
        alive.wait()


@pytest.mark.slow
def test_a_crash_mid_export_leaves_no_version_tf_serving_would_load(tmp_path, tiny_checkpoint, monkeypatch):
    from kerasft import export
    from kerasft.model import build_classifier, load_tokenizer

    model_dir = tmp_path / "export" / "tiny"
    (model_dir / "1").mkdir(parents=True)
    (model_dir / "1" / "saved_model.pb").write_bytes(b"version 1")
    written = []

    def crash(path, value):  # the SavedModel is on disk in the staging folder; the process dies before the rename
        written.append((path.parents[1] / "saved_model.pb").is_file())
        raise RuntimeError("crash mid-export")

    monkeypatch.setattr(export, "write_json", crash)
    module = export.TextClassifierModule.without_optimizer(
        build_classifier(str(tiny_checkpoint), ["a", "b"]), load_tokenizer(str(tiny_checkpoint)), ["a", "b"], 32
    )
    with pytest.raises(RuntimeError, match="crash mid-export"):
        export.export_model(module, model_dir)
    assert written == [True]
    assert [path.name for path in model_dir.iterdir()] == ["1"]  # no version 2, no staging folder left
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == b"version 1"


def test_too_little_free_space_is_refused_before_training(tmp_path, recipe, monkeypatch):
    from kerasft import rundir

    real = shutil.disk_usage
    monkeypatch.setattr(rundir.shutil, "disk_usage", lambda path: real(path)._replace(free=1_000_000))
    line = one_error_line(run(recipe, "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb"))
    assert "has 1 MB free but this run writes about" in line and "free some space, pick another --output-dir" in line
    assert not (tmp_path / "runs").exists() and not (tmp_path / "tb").exists()  # refused before anything was written


def test_the_free_space_check_counts_the_tensorboard_folder_with_the_run_directory(tmp_path, monkeypatch):
    from kerasft import rundir
    from kerasft.recipe import TrainConfig

    needs = rundir.space_needed(
        10_000_000, TrainConfig(epochs=3, keep_checkpoints=2), tmp_path / "runs", tmp_path / "tb"
    )
    assert needs == {
        tmp_path / "runs": 10_000_000 * (3 * 2 + 3 + 1 + 1),
        tmp_path / "tb": 3 * rundir.TENSORBOARD_BYTES_PER_EPOCH,
    }
    free = needs[tmp_path / "runs"] + 1  # room for the run directory alone, not for both on this one filesystem
    monkeypatch.setattr(rundir, "free_bytes", lambda path: free)
    with pytest.raises(
        UserError, match=r"the filesystem of .*runs and .*tb has 110 MB free but this run writes about 113 MB there"
    ):
        rundir.check_free_space(needs, "free some space")
    rundir.check_free_space(
        {tmp_path / "runs": needs[tmp_path / "runs"]}, "free some space"
    )  # the run directory alone fits
    # a resumed run rewrites its checkpoints and backup in place: they do not count again
    assert (
        rundir.space_needed(10_000_000, TrainConfig(), tmp_path / "run", tmp_path / "tb", rewritten=10**12)[
            tmp_path / "run"
        ]
        == 0
    )


def test_an_output_directory_that_cannot_be_created_is_refused(tmp_path, recipe):
    (tmp_path / "file").write_text("a file, not a folder")  # tests run as root, whom chmod does not stop
    line = one_error_line(run(recipe, "--output-dir", tmp_path / "file" / "runs"))
    assert f"is inside {tmp_path / 'file'}, a file, not a folder; pick another --output-dir" in line


def test_a_full_disk_during_the_run_is_one_line_and_the_run_stays_resumable(tmp_path, recipe, monkeypatch):
    from kerasft.rundir import RunDir

    def full_disk(run_dir, recipe, manifest):
        raise OSError(errno.ENOSPC, "No space left on device", str(run_dir / RunDir.RECIPE))

    monkeypatch.setattr(RunDir, "write_recipe", full_disk)
    run_dir = (tmp_path / "runs" / "full").resolve()
    line = one_error_line(
        run(recipe, "--run-name", "full", "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb")
    )
    assert (
        line == f"kerasft: error: no space left on the device writing {run_dir / 'recipe.json'}; "
        f"free some space, then continue with: kerasft run --resume {run_dir}"
    )
    assert json.loads((run_dir / "status.json").read_text())["state"] == "failed"


def test_a_write_that_fails_midway_leaves_the_previous_file_whole(tmp_path, monkeypatch):
    from kerasft import files

    path = tmp_path / "metrics.json"
    files.write_json(path, {"accuracy": 0.5})
    real_fdopen = os.fdopen

    class DiskFullsHalfway:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[: len(data) // 2])
            self.handle.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", lambda handle, mode: DiskFullsHalfway(real_fdopen(handle, mode)))
    with pytest.raises(OSError):
        files.write_json(path, {"accuracy": 0.9, "examples": 1000})
    assert json.loads(path.read_text()) == {"accuracy": 0.5}
    assert [entry.name for entry in tmp_path.iterdir()] == ["metrics.json"]  # the half-written temporary file is gone


def test_every_file_kerasft_writes_goes_through_write_atomic():
    """Result files are written by files.write_atomic (temporary name, then rename); nothing else opens a file for
    writing."""
    import re

    writers = re.compile(
        r"\.write_text\(|\.write_bytes\(|open\([^)]*[\"'][wa]b?[\"']|\.savefig\((?!buffer)|\.to_csv\(|json\.dump\("
    )
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted((REPO / "kerasft").glob("*.py"))
        if path.name != "files.py"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if writers.search(line)
    ]
    assert found == []


def test_two_runs_racing_for_one_name_do_not_share_it(tmp_path):
    from kerasft.rundir import RunDir

    start, results = threading.Barrier(8), []

    def race():
        start.wait()
        try:
            results.append(RunDir.create(tmp_path, "same", "tiny").path)
        except UserError as error:
            results.append(str(error))

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(tmp_path / "same") == 1
    assert sum("already exists; choose another --run-name" in str(result) for result in results) == 7


# --- SIGTERM after training, TensorFlow's own disk-full error --------------------------------------------------------


def sigterm_self():
    os.kill(
        os.getpid(), signal.SIGTERM
    )  # a scheduler's stop, delivered to this process; Python runs the handler at once
    time.sleep(1)


def test_the_final_weights_are_named_by_the_epoch_checkpoint_only_while_the_model_holds_its_weights(tmp_path):
    """After `fit`, the newest epoch checkpoint stands for the final weights unless a step came after it or early
    stopping put back another epoch's weights; a run resumed after training restores them from wherever they are."""
    import numpy as np
    import tf_keras as keras

    from kerasft.resume import TrainingState
    from kerasft.rundir import RunDir
    from kerasft.train import KeepLastCheckpoints

    def tiny_model():
        model = keras.Sequential([keras.layers.Dense(2, input_shape=(3,))])
        model.compile(optimizer="adam", loss="mse")
        return model

    x, y = np.random.default_rng(0).normal(size=(8, 3)), np.zeros((8, 2))
    model, checkpointer = tiny_model(), KeepLastCheckpoints(tmp_path / "run" / "checkpoints", max_to_keep=2)
    stopper = keras.callbacks.EarlyStopping(monitor="loss", patience=5, restore_best_weights=True)
    model.fit(x, y, epochs=3, verbose=0, callbacks=[checkpointer, stopper])  # the loss falls: epoch 3 is the best
    newest = checkpointer.holding_current_weights(stopper)
    assert newest and newest.endswith("epoch-3") and checkpointer.holding_current_weights(None) == newest

    state = TrainingState(RunDir(tmp_path / "run"), chief=True)
    state.save_trained(model, saved_as=newest)
    assert state.trained() == newest and state.trained_steps() == 3 and not (state.trained_dir / "model.index").exists()
    restored = tiny_model()
    state.restore_trained(restored)
    for mine, theirs in zip(restored.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)

    stopper.best_epoch = 1  # as if epoch 2 had been the best: EarlyStopping restored its weights at the end
    assert checkpointer.holding_current_weights(stopper) is None
    stopper.best_epoch = 2
    model.train_on_batch(x, y)  # a step after the newest checkpoint
    assert checkpointer.holding_current_weights(stopper) is None and checkpointer.holding_current_weights(None) is None


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["evaluate", "export"])
def test_sigterm_during_evaluation_or_export_marks_the_run_and_resume_finishes_without_training(
    tmp_path, recipe, monkeypatch, stage
):
    from kerasft import evaluate, export
    from kerasft.model import weights_fingerprint

    run_dir = (tmp_path / "runs" / stage).resolve()
    seen = {}
    if stage == "evaluate":
        real = evaluate.evaluate

        def stop_with_the_weights_noted(session, *args):
            seen["weights"] = weights_fingerprint(session.model)
            # the last epoch's checkpoint holds the final weights: trained/ names it instead of a copy
            seen["trained"] = json.loads((run_dir / "trained" / "steps.json").read_text())
            seen["copied"] = (run_dir / "trained" / "model.index").exists()
            sigterm_self()
            return real(session, *args)

        monkeypatch.setattr(evaluate, "evaluate", stop_with_the_weights_noted)
    else:
        real = export.check_parity

        def stop_with_the_savedmodel_staged(staging, parity, **options):
            seen["staged"] = (staging / "saved_model.pb").is_file()
            sigterm_self()
            return real(staging, parity, **options)

        monkeypatch.setattr(export, "check_parity", stop_with_the_savedmodel_staged)
    result = run(recipe, "--run-name", stage, "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb")
    assert result.exit_code == 130 and "Traceback" not in result.output
    assert (
        f"run interrupted during {stage}; training had finished and its weights are saved. "
        f"Resume with:\n  kerasft run --resume {run_dir}" in result.stderr
    )
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["stage"]) == ("interrupted", stage)
    assert not list((run_dir / "export").rglob("saved_model.pb"))  # nothing TF Serving could load
    assert seen.get("staged", stage == "evaluate")
    monkeypatch.undo()
    resumed = CliRunner().invoke(main, ["run", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert "training had finished; restoring its final weights to evaluate and export" in resumed.output
    assert "Epoch 1/" not in resumed.output  # no training again
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert [path.name for path in (run_dir / "export" / "tiny").iterdir()] == ["1"]
    if stage == "evaluate":
        assert seen["trained"]["weights"] == "checkpoints/epoch-2" and not seen["copied"]
        training = json.loads((run_dir / "metrics.json").read_text())["training"]
        assert (training["weights"], training["steps"]) == (seen["weights"], seen["trained"]["steps"])


@pytest.mark.slow
def test_a_full_disk_reported_by_tensorflow_itself_is_one_line_with_the_resume_command(tmp_path, recipe, monkeypatch):
    """TensorFlow's own writers (checkpoints, SavedModels) raise ResourceExhaustedError "<path>; No space left on
    device"."""
    import tensorflow as tf

    try:
        tf.io.write_file("/dev/full", b"x" * 1_000_000)  # the very error TensorFlow's file system raises on a full disk
    except tf.errors.OpError as error:
        full = error
    assert "No space left on device" in str(full)
    real_save = tf.train.CheckpointManager.save

    def save(manager, *args, **kwargs):
        if "checkpoints" in str(manager.directory):  # the epoch checkpoint fails; backups before it went through
            raise full
        return real_save(manager, *args, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    run_dir = (tmp_path / "runs" / "tf-full").resolve()
    line = one_error_line(
        run(recipe, "--run-name", "tf-full", "--output-dir", tmp_path / "runs", "--tensorboard-dir", tmp_path / "tb")
    )
    assert (
        line == "kerasft: error: no space left on the device writing /dev/full; "
        f"free some space, then continue with: kerasft run --resume {run_dir}"
    )
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["stage"]) == ("failed", "train")
    monkeypatch.undo()
    resumed = CliRunner().invoke(main, ["run", "--resume", str(run_dir)])
    assert resumed.exit_code == 0, resumed.output[-3000:]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"


# --- every command's bad input: one line, exit 2, nothing written -----------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_checkpoint):
    """One finished run and its export, for the commands that read them."""
    from conftest import QUICKSTART_DATA

    folder = tmp_path_factory.mktemp("finished")
    data = {split: QUICKSTART_DATA / f"{split}.csv" for split in ("train", "validation", "test")}
    recipe = write_recipe(folder / "tiny.py", tiny_checkpoint, data, epochs=1, batch_size=16, mixed_precision="off")
    result = CliRunner().invoke(
        main,
        [
            "run",
            str(recipe),
            "data.train_samples=48",
            "data.test_samples=16",
            "--run-name",
            "done",
            "--output-dir",
            str(folder / "runs"),
            "--tensorboard-dir",
            str(folder / "tb"),
        ],
    )
    assert result.exit_code == 0, result.output[-3000:]
    return folder / "runs" / "done"


def damaged_copy(run_dir: Path, tmp_path: Path, damage) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    damage(copy)
    return copy


BAD_COMMANDS = {  # case -> (damage to a copy of the finished run, command, expected)
    "predict: corrupt saved_model.pb": (
        lambda run: (run / "export/tiny/1/saved_model.pb").write_bytes(b"\x08\x01garbage"),
        ["predict", "{run}/export/tiny", "hello"],
        "is not a SavedModel TensorFlow can load",
    ),
    "predict: no SavedModel": (
        lambda run: shutil.rmtree(run / "export"),
        ["predict", "{run}/export/tiny", "hello"],
        "holds no SavedModel",
    ),
    "predict: non-UTF-8 --file": (
        lambda run: (run / "texts.txt").write_bytes(b"fine\n\xff\xfe\n"),
        ["predict", "{run}/export/tiny", "--file", "{run}/texts.txt"],
        "texts.txt line 2: not valid UTF-8",
    ),
    "predict: missing --file": (
        lambda run: None,
        ["predict", "{run}/export/tiny", "--file", "{run}/nothing.txt"],
        "text file not found",
    ),
    "evaluate: a two-character --sep": (
        lambda run: (run / "new.csv").write_text("text,label\nwhere is my parcel,delivery\n"),
        ["evaluate", "{run}/export/tiny", "--data", "{run}/new.csv", "--sep", ",,", "--output-dir", "{run}/scored"],
        "--sep must be one character, got ',,'",
    ),
    "evaluate: --data a folder": (
        lambda run: (run / "new").mkdir(),
        ["evaluate", "{run}/export/tiny", "--data", "{run}/new", "--output-dir", "{run}/scored"],
        "new is a folder; name a file in it",
    ),
    "evaluate: no label column": (  # the hint names evaluate's options, not the recipe keys behind them
        lambda run: (run / "new.csv").write_text("text\nwhere is my parcel\n"),
        ["evaluate", "{run}/export/tiny", "--data", "{run}/new.csv", "--output-dir", "{run}/scored"],
        "no label column 'label' (columns: text); set --label-column=<name>, or --columns=... for files without",
    ),
    "evaluate: missing --data file": (
        lambda run: None,
        ["evaluate", "{run}/export/tiny", "--data", "{run}/nothing.csv", "--output-dir", "{run}/scored"],
        "nothing.csv (check the path, or --data)",
    ),
    "export: not a run": (
        lambda run: (run / "recipe.json").unlink(),
        ["export", "{run}"],
        "is not a kerasft run directory (no recipe.json)",
    ),
    "export: recipe.json not JSON": (
        lambda run: (run / "recipe.json").write_text("{truncated"),
        ["export", "{run}"],
        "recipe.json cannot be read (JSONDecodeError",
    ),
    "export: recipe.json with a bad field": (
        lambda run: (run / "recipe.json").write_text('{"train": {"epochs": "many"}}'),
        ["export", "{run}"],
        "does not hold a recipe this kerasft can run (recipe field train.epochs = 'many': expected int)",
    ),
    "export: corrupt checkpoint": (
        lambda run: (run / "checkpoints/epoch-1.index").write_bytes(b"garbage"),
        ["export", "{run}"],
        "cannot restore the weights in",
    ),
    "export: model folder gone": (
        lambda run: shutil.rmtree(run / "model"),
        ["export", "{run}"],
        "checkpoint folder not found",
    ),
    "export: corrupt config": (
        lambda run: (run / "model/config.json").write_text("{"),
        ["export", "{run}"],
        "cannot read the config of",
    ),
    "resume: complete run": (lambda run: None, ["run", "--resume", "{run}"], "that run is complete"),
    "resume: recipe.json not JSON": (
        lambda run: (run / "recipe.json").write_text("[1, 2"),
        ["run", "--resume", "{run}"],
        "recipe.json cannot be read",
    ),
    "resume: recipe.json not an object": (
        lambda run: (run / "recipe.json").write_text("[1, 2]"),
        ["run", "--resume", "{run}"],
        "recipe.json is not a JSON object",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_bad_input_to_every_command_is_one_line_and_writes_nothing(finished, tmp_path, case):
    damage, command, expected = BAD_COMMANDS[case]
    run_dir = damaged_copy(finished, tmp_path, damage)
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    line = one_error_line(CliRunner().invoke(main, [part.format(run=run_dir) for part in command]))
    assert expected in line, line
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before


def test_a_label_column_of_objects_or_a_text_column_of_numbers(tmp_path, capfd):
    from kerasft.data import load_splits
    from kerasft.recipe import DataConfig

    objects = tmp_path / "objects.jsonl"
    objects.write_text(
        '{"text": "good", "label": {"name": "pos"}}\n{"text": "bad", "label": {"name": "neg"}}\n', encoding="utf-8"
    )
    capfd.readouterr()
    with pytest.raises(
        UserError,
        match=r"the train split's label column 'label' holds dict values \(e.g. \"\{'name': 'pos'\}\"\), not single "
        r"labels; point data.label_column at a column of plain strings or integers",
    ):
        load_splits(DataConfig(train=str(objects), validation=str(objects), test=str(objects)), seed=0)
    assert capfd.readouterr().err == ""
    numbers = tmp_path / "numbers.csv"
    numbers.write_text("text,label\n42,pos\n7,neg\n1000,pos\n", encoding="utf-8")
    loaded = load_splits(DataConfig(train=str(numbers), validation=str(numbers), test=str(numbers)), seed=0)
    assert loaded.splits["train"]["text"] == ["42", "7", "1000"]  # numbers read from a text column are texts
