"""tf.distribute on CPU and runs that survive being killed.

Most runs use the tiny BERT with dropout off, so that training is deterministic: a run on two
logical CPU devices, a multi-worker run of two processes and its restart after a worker dies must
all end with the weights of one uninterrupted single-device run (the ``baseline``), up to float
rounding. The baseline starts in the background when the first test asks for it, so it trains
while other tests run. A run killed and resumed with dropout on is held to an uninterrupted run
with the same dropout instead.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import QUICKSTART_DATA, REPO, kerasft, write_recipe

EPOCHS, BATCH, TRAIN_ROWS = 2, 8, 160
STEPS_PER_EPOCH = TRAIN_ROWS // BATCH
DATA = ["data.train_samples=160", "data.validation_samples=16", "data.test_samples=16"]
TOLERANCE = 1e-5  # summation order differs between strategies; everything else is the same arithmetic


class Background:
    """A `kerasft` command running in the background, its output in files (pipes could fill up and block it)."""

    started: list[Background] = []  # ended at the module's end if a failing test left one running

    def __init__(self, folder: Path, name: str, *args, env: dict | None = None):
        self.stdout_path, self.stderr_path = folder / f"{name}.out", folder / f"{name}.err"
        base = (
            [str(Path(sys.executable).with_name("kerasft"))]
            if Path(sys.executable).with_name("kerasft").is_file()
            else [sys.executable, "-m", "kerasft"]
        )
        with self.stdout_path.open("w") as stdout, self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [*base, *map(str, args)],
                cwd=folder,
                stdout=stdout,
                stderr=stderr,
                env=os.environ | {"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"} | (env or {}),
            )
        Background.started.append(self)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.stdout_path.stem} did not finish in {timeout:.0f}s; stderr:\n{self.stderr[-3000:]}")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def final_weights(run_dir: Path) -> dict[str, np.ndarray]:
    """The model's weights in the run's last epoch checkpoint (optimizer slots left out)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run_dir / "checkpoints" / f"epoch-{EPOCHS}"))
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name.startswith("model/") and "optimizer" not in name and "OPTIMIZER_SLOT" not in name
    }


def largest_difference(first: dict, second: dict) -> float:
    assert first.keys() == second.keys() and len(first) > 10
    return max(float(np.abs(first[name] - second[name]).max()) for name in first)


def wait_for(condition, timeout: float, what: str, process: Background | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        if process is not None and process.process.poll() is not None:
            pytest.fail(
                f"the run ended (exit {process.process.returncode}) before {what}; stderr:\n{process.stderr[-3000:]}"
            )
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


def kill_after_backup(chief: Background, run_dir: Path, number: int, *others: Background) -> None:
    """Waits for the chief's backup ``number``, then kills ``others`` and the chief with SIGKILL (a crash, the OOM
    killer, a lost node): no chance to save or to mark the run."""
    state = run_dir / "backup" / "chief" / "checkpoint"
    saved = f'model_checkpoint_path: "ckpt-{number}"'
    wait_for(lambda: state.is_file() and saved in state.read_text(), 150, f"backup {number}", chief)
    for process in (*others, chief):
        process.process.send_signal(signal.SIGKILL)
    for process in (*others, chief):
        process.process.wait(timeout=30)


@pytest.fixture(scope="module", autouse=True)
def no_process_left_behind():
    yield
    for run in Background.started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait()


@pytest.fixture(scope="module")
def deterministic_checkpoint(tmp_path_factory, tiny_checkpoint) -> Path:
    """The tiny BERT without dropout: its training depends on the data order and the arithmetic alone."""
    folder = tmp_path_factory.mktemp("tiny-no-dropout") / "model"
    shutil.copytree(tiny_checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config |= {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, deterministic_checkpoint) -> Path:
    folder = tmp_path_factory.mktemp("distributed")
    write_distributed_recipe(folder / "tiny.py", deterministic_checkpoint)
    return folder


def write_distributed_recipe(path: Path, checkpoint: Path) -> Path:
    """The recipe every run here shares: 2 epochs of batch 8, a backup every 2 steps, float32 everywhere for tight
    comparisons (auto is mixed_bfloat16 on bf16 CPUs)."""
    data = {split: QUICKSTART_DATA / f"{split}.csv" for split in ("train", "validation", "test")}
    settings = {"epochs": EPOCHS, "batch_size": BATCH, "learning_rate": 1e-3, "backup_every_steps": 2}
    return write_recipe(path, checkpoint, data, **settings, mixed_precision="off")


@pytest.fixture(scope="module")
def baseline(workdir):
    """One uninterrupted single-device run, started in the background; call it to wait for its run directory."""
    run = Background(
        workdir,
        "baseline",
        "run",
        "tiny.py",
        *DATA,
        "--strategy",
        "default",
        "--run-name",
        "baseline",
        "--output-dir",
        "baseline-runs",
        "--tensorboard-dir",
        "tb",
    )

    def finished() -> Path:
        assert run.wait(timeout=240) == 0, run.stderr[-3000:]
        return workdir / "baseline-runs" / "baseline"

    return finished


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the global batch, devices, input order, precision: quick checks in this process -----------------------------


def test_a_global_batch_that_does_not_divide_across_replicas_is_refused():
    from types import SimpleNamespace

    from kerasft.errors import UserError
    from kerasft.strategy import per_replica_batch

    four = SimpleNamespace(num_replicas_in_sync=4)
    assert per_replica_batch(four, 32) == 8
    with pytest.raises(UserError) as refused:
        per_replica_batch(four, 10)
    message = str(refused.value)
    assert "train.batch_size=10 is the global batch" in message and "4 replicas" in message
    assert "train.batch_size=8 or train.batch_size=12" in message
    with pytest.raises(UserError, match=r"e\.g\. train\.batch_size=4$"):
        per_replica_batch(four, 2)


def test_devices_flag_accepts_cpu_n_only():
    from click.testing import CliRunner

    from kerasft.cli import main
    from kerasft.errors import UserError
    from kerasft.strategy import parse_devices

    assert parse_devices("cpu:2") == ("cpu", 2) and parse_devices("CPU:4") == ("cpu", 4)
    for wrong in ("gpu:2", "cpu", "cpu:0", "2"):
        with pytest.raises(UserError, match="expected cpu:N"):
            parse_devices(wrong)
    result = CliRunner().invoke(main, ["run", "tiny.py", "--devices", "cpu:many"])
    assert result.exit_code == 2 and "expected cpu:N" in result.output


def test_the_input_order_is_seeded_per_epoch_and_a_resumed_plan_continues_it():
    from kerasft.batching import Plan

    full = Plan(examples=21, global_batch=4, seed=7, epochs=3)
    assert full.steps_per_epoch == 6 and full.batches == 18
    batches = [full.indices(number).tolist() for number in range(full.batches)]
    for epoch in range(3):  # every example exactly once per epoch, in an order that changes between epochs
        seen = sum(batches[epoch * 6 : (epoch + 1) * 6], [])
        assert sorted(seen) == list(range(21))
    assert batches[0] != batches[6]
    resumed = Plan(examples=21, global_batch=4, seed=7, epochs=3, start_epoch=1, start_step=4)
    assert [resumed.indices(number).tolist() for number in range(resumed.batches)] == batches[6 + 4 :]
    assert Plan(examples=21, global_batch=4, shuffle=False).indices(5).tolist() == [20]


def test_auto_precision_follows_the_cpus_flags_and_measured_speed_and_logits_stay_float32(
    tmp_path, tiny_checkpoint, monkeypatch
):
    import tensorflow as tf
    import tf_keras as keras

    from kerasft import precision
    from kerasft.model import build_classifier
    from kerasft.recipe import Recipe, TrainConfig
    from kerasft.session import Session
    from kerasft.strategy import device_kind

    kind = device_kind(tf.distribute.get_strategy())
    assert kind == "CPU"
    measured = []

    def speedup(value):
        measured.append(value)
        return value

    # auto: bfloat16 where the flags have it and a matmul measures fast enough; no measuring without the flags
    cases = ((False, 9.0, "float32"), (True, 1.9, "mixed_bfloat16"), (True, 0.73, "float32"))
    for native, matmul_speedup, policy in cases:
        monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda native=native: native)
        monkeypatch.setattr(precision, "bfloat16_matmul_speedup", lambda value=matmul_speedup: speedup(value))
        chosen = precision.choose(TrainConfig(), kind)
        assert (chosen.policy, chosen.jit_compile, chosen.notes) == (policy, False, ())
        assert chosen.bfloat16_speedup == (matmul_speedup if native else None)
        assert native == (f"measured {matmul_speedup:.2f}x" in (chosen.reason or ""))
    assert measured == [1.9, 0.73]
    # the workers of a multi-worker run follow the flags; a resumed run keeps what it started in
    assert precision.choose(TrainConfig(), kind, measure=False).policy == "mixed_bfloat16"
    assert precision.choose(TrainConfig(), kind, started_in=("float32", 0.73)).policy == "float32"
    requested = TrainConfig(mixed_precision="mixed_bfloat16")
    assert precision.choose(requested, kind, started_in=("float32", 0.7)).policy == "mixed_bfloat16"
    assert measured == [1.9, 0.73]
    resumed = Session.resumed(Recipe(), {"mixed_precision": "mixed_bfloat16", "bfloat16_matmul_speedup": 1.9})
    assert (resumed.precision.policy, resumed.precision.bfloat16_speedup) == ("mixed_bfloat16", 1.9)
    assert measured == [1.9, 0.73]  # kept from the manifest, not measured again
    assert precision.choose(TrainConfig(mixed_precision="off", jit_compile="on"), kind).jit_compile is True
    monkeypatch.setattr(precision, "cpu_supports_bfloat16", lambda: False)
    assert "emulated" in precision.choose(TrainConfig(mixed_precision="mixed_bfloat16"), kind).notes[0]
    monkeypatch.undo()
    with precision.Precision("mixed_bfloat16", jit_compile=False, device_kind="CPU").applied():
        model = build_classifier(str(tiny_checkpoint), ["a", "b", "c"])
        assert model(model.dummy_inputs).logits.dtype == tf.bfloat16  # what Hugging Face's model does by itself
        precision.keep_logits_float32(model)
        assert model(model.dummy_inputs).logits.dtype == tf.float32
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"  # evaluation and export copies are built in float32
    assert 0 < precision.bfloat16_matmul_speedup(size=64, repeats=3) < 100
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not precision.cpu_supports_bfloat16(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16\n")
    assert precision.cpu_supports_bfloat16(cpuinfo)


# --- MirroredStrategy on two logical CPU devices ---------------------------------------------------------------------

MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    from kerasft import strategy as strategies
    strategies.request_devices("cpu:2")
    strategies.apply_requested_devices()  # before anything else sets up TensorFlow's devices
    import tf_keras as keras
    from kerasft import batching, train
    from kerasft.recipe import apply_overrides, load_recipe
    from kerasft.session import Session

    recipe = apply_overrides(load_recipe(sys.argv[1]), sys.argv[2:] + ["train.epochs=1"])
    results = {}
    for name in ("one-device", "mirrored"):
        session = Session(recipe, strategy_name=name).prepare()  # the model, data and batches a run builds
        plan = train.training_plan(session)
        losses = []
        record = keras.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs: losses.append(float(logs["loss"]))
        )
        batches = batching.training_batches(session.tokenized["train"], plan, batching.PadToLongest(session.tokenizer))
        session.model.fit(batches, epochs=1, steps_per_epoch=plan.steps_per_epoch, callbacks=[record], verbose=0)
        strategy = session.strategy
        results[name] = {"replicas": strategy.num_replicas_in_sync, "devices": list(strategy.extended.worker_devices),
                         "per_replica_batch": session.per_replica_batch,
                         "losses": losses, "weights": [weight.tolist() for weight in session.model.get_weights()]}
    print(json.dumps(results))
""")


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_matches_one_device(workdir, baseline):
    (workdir / "mirrored_check.py").write_text(MIRRORED_SCRIPT)
    result = subprocess.run(
        [sys.executable, "mirrored_check.py", "tiny.py", "data.train_samples=96"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=180,
        env=os.environ | {"PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    one, mirrored = runs["one-device"], runs["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert len(mirrored["devices"]) == 2 and all("CPU" in device for device in mirrored["devices"])
    assert (one["per_replica_batch"], mirrored["per_replica_batch"]) == (BATCH, BATCH // 2)
    assert len(one["losses"]) == len(mirrored["losses"]) == 96 // BATCH
    np.testing.assert_allclose(mirrored["losses"], one["losses"], rtol=0, atol=TOLERANCE)
    assert one["losses"][-1] != one["losses"][0]  # it did train
    for first, second in zip(one["weights"], mirrored["weights"]):
        np.testing.assert_allclose(np.array(second), np.array(first), rtol=0, atol=TOLERANCE)


# --- faults: SIGKILL and resume, Ctrl-C ------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_run_with_dropout_on_two_replicas_resumes_to_the_uninterrupted_runs_weights_and_epoch_figures(
    workdir, tiny_checkpoint
):
    """SIGKILL mid-epoch, then `--resume`: weights, optimizer state, data order and the dropout generators (saved with
    each backup) all carry over, so the resumed run ends with the uninterrupted one's weights and reports the cut
    epoch over all its steps, not only those after the restart. Both run MirroredStrategy on two logical CPUs."""
    from kerasft.resume import TrainingState
    from kerasft.rundir import RunDir

    write_distributed_recipe(workdir / "dropout.py", tiny_checkpoint)  # the tiny BERT as built: dropout 0.1
    common = ("run", "dropout.py", *DATA, "--devices", "cpu:2")
    common += ("--output-dir", "dropout-runs", "--tensorboard-dir", "tb")
    uninterrupted = Background(workdir, "dropout-whole", *common, "--run-name", "whole")
    killed = Background(workdir, "dropout-killed", *common, "--run-name", "killed")
    run_dir = workdir / "dropout-runs" / "killed"
    kill_after_backup(killed, run_dir, 3)
    assert not (run_dir / "trained").exists(), "the kill came after training had finished"
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"  # a killed process cannot say
    position = TrainingState(RunDir(run_dir), chief=True).position(STEPS_PER_EPOCH)
    epoch, step = position.epoch, position.step
    # backup 3 of one every 2 steps is at step 6 (a later one may land before the kill): the restart cuts epoch 1
    assert epoch == 0 and 6 <= step < STEPS_PER_EPOCH

    assert uninterrupted.wait(timeout=240) == 0, uninterrupted.stderr[-3000:]
    resumed = kerasft("run", "--resume", run_dir, "--devices", "cpu:2", cwd=workdir, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming killed at epoch {epoch + 1}, step {step + 1} of {STEPS_PER_EPOCH}" in resumed.stdout
    ours = json.loads((run_dir / "metrics.json").read_text())
    assert ours["training"]["steps"] == EPOCHS * STEPS_PER_EPOCH  # as many steps as an uninterrupted run
    (resumption,) = ours["training"]["resumed_at"]
    assert (resumption["epoch"], resumption["step"]) == (epoch + 1, step + 1)
    assert resumption["optimizer_step"] == epoch * STEPS_PER_EPOCH + step  # the restored state, not step 0
    run_info = json.loads((run_dir / "recipe.json").read_text())["run"]
    assert (run_info["strategy"], run_info["replicas"], run_info["device_request"]) == ("MirroredStrategy", 2, "cpu:2")
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert not (run_dir / "backup").exists() and not (run_dir / "trained").exists()
    assert (run_dir / "export" / "tiny" / "1" / "saved_model.pb").is_file()

    whole_dir = workdir / "dropout-runs" / "whole"
    assert largest_difference(final_weights(run_dir), final_weights(whole_dir)) < TOLERANCE
    theirs = json.loads((whole_dir / "metrics.json").read_text())
    for split in ("train", "validation"):  # per-epoch figures, the cut epoch's included
        assert [record["epoch"] for record in ours[split]] == [1, 2]
        for mine, reference in zip(ours[split], theirs[split], strict=True):
            assert mine == pytest.approx(reference, abs=TOLERANCE), split
    assert ours["test"] == pytest.approx(theirs["test"], abs=TOLERANCE)


# --- the training knobs across replicas and a kill mid-accumulation ------------------------------------------------
ACCUMULATE = 3
KNOBS = [  # every knob that shapes the update: accumulation, a schedule evaluated at the optimizer's step, AdamW
    f"train.gradient_accumulation_steps={ACCUMULATE}",
    "train.lr_schedule=linear",
    "train.warmup_ratio=0.2",
    "train.weight_decay=0.01",
    "train.backup_every_steps=4",  # backups after 4 and 8 batches: 1 and 2 batches into an accumulation
]


@pytest.mark.slow
def test_a_run_killed_mid_accumulation_on_two_replicas_resumes_to_the_single_device_runs_weights(workdir):
    """The accumulated sums and their count are in the backup: a MirroredStrategy run killed between two optimizer
    steps resumes, and ends with the weights of an uninterrupted single-device run; the learning rate TensorBoard
    shows is the schedule's at every optimizer step, across the restart."""
    import tensorflow as tf

    from kerasft.optimization import Optimization

    common = ("run", "tiny.py", *DATA, *KNOBS, "--output-dir", "knob-runs", "--tensorboard-dir", "knob-tb")
    whole = Background(workdir, "knobs-whole", *common, "--strategy", "default", "--run-name", "whole")
    killed = Background(workdir, "knobs-killed", *common, "--devices", "cpu:2", "--run-name", "killed")
    run_dir = workdir / "knob-runs" / "killed"
    state = run_dir / "backup" / "chief" / "checkpoint"
    wait_for(lambda: state.is_file() and "ckpt-" in state.read_text(), 150, "the first backup", killed)
    killed.process.send_signal(signal.SIGKILL)
    killed.process.wait(timeout=30)
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run_dir / "backup" / "chief")))
    pending = [name for name in reader.get_variable_to_shape_map() if "accumulated_batches" in name]
    assert pending and int(reader.get_tensor(pending[0])) in (1, 2)  # killed between two optimizer steps
    assert whole.wait(timeout=240) == 0, whole.stderr[-3000:]

    resumed = kerasft("run", "--resume", run_dir, "--devices", "cpu:2", cwd=workdir, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    batches = EPOCHS * STEPS_PER_EPOCH
    for folder in (run_dir, workdir / "knob-runs" / "whole"):
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["training"]["steps"] == batches // ACCUMULATE  # optimizer steps, not batches
    (resumption,) = json.loads((run_dir / "metrics.json").read_text())["training"]["resumed_at"]
    assert 0 < resumption["optimizer_step"] < batches // ACCUMULATE
    run_info = json.loads((run_dir / "recipe.json").read_text())["run"]
    assert (run_info["replicas"], run_info["optimizer"], run_info["effective_batch"]) == (
        2,
        "AdamW",
        BATCH * ACCUMULATE,
    )
    assert (run_info["optimizer_steps"], run_info["warmup_steps"]) == (batches // ACCUMULATE, 3)
    assert largest_difference(final_weights(run_dir), final_weights(workdir / "knob-runs" / "whole")) < TOLERANCE

    from test_monitoring import read_events

    schedule = Optimization(schedule="linear", warmup_steps=3, optimizer_steps=batches // ACCUMULATE).learning_rate(
        1e-3
    )
    rates = read_events(workdir / "knob-tb" / "killed" / "train")["step_learning_rate"]  # both processes' events
    assert {step for step, _ in rates} == set(range(1, batches // ACCUMULATE + 1))  # one point per optimizer step
    for step, rate in rates:
        assert rate == pytest.approx(float(schedule(step - 1)), abs=1e-9), step  # the rate step `step` used


@pytest.mark.slow
def test_ctrl_c_saves_the_training_state_and_prints_the_resume_command(workdir):
    from kerasft.resume import TrainingState
    from kerasft.rundir import RunDir

    run_dir = (workdir / "runs" / "stopped").resolve()
    run = Background(
        workdir,
        "stopped",
        "run",
        "tiny.py",
        *DATA,
        "train.backup_every_steps=1000",
        "--run-name",
        "stopped",
        "--output-dir",
        "runs",
        "--tensorboard-dir",
        "tb",
    )
    wait_for(lambda: "Epoch 1/" in run.stdout, 120, "training to start", run)
    run.process.send_signal(signal.SIGINT)
    assert run.wait(timeout=120) == 130, run.stderr[-3000:]
    stderr = run.stderr
    assert "Ctrl-C: saving the training state after this step" in stderr and "Traceback" not in stderr
    expected = f"kerasft run --resume {run_dir}"
    assert f"Resume with:\n  {expected}\n" in stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert (status["state"], status["stage"], status["resume"]) == ("interrupted", "train", expected)
    position = TrainingState(RunDir(run_dir), chief=True).position(
        STEPS_PER_EPOCH
    )  # no periodic backup this early: Ctrl-C wrote it
    assert position is not None
    saved_epoch, saved_step = (
        (position.epoch, position.step) if position.step else (position.epoch - 1, STEPS_PER_EPOCH)
    )
    assert f"the training state is saved at epoch {saved_epoch + 1}, step {saved_step}" in stderr
    from click.testing import CliRunner

    from kerasft.cli import main

    refused = CliRunner().invoke(main, ["run", "tiny.py", "train.epochs=3", "--resume", str(run_dir)])
    assert refused.exit_code == 2 and "drop the recipe and overrides (tiny.py train.epochs=3)" in refused.output


@pytest.mark.slow
def test_resume_refuses_what_it_cannot_continue(workdir, baseline):
    from click.testing import CliRunner

    from kerasft.cli import main

    complete = CliRunner().invoke(main, ["run", "--resume", str(baseline())])
    assert complete.exit_code == 2 and "that run is complete; there is nothing to resume" in complete.output
    nowhere = CliRunner().invoke(main, ["run", "--resume", str(workdir / "nowhere")])
    assert nowhere.exit_code == 2 and "not a kerasft run directory" in nowhere.output
    renamed = CliRunner().invoke(main, ["run", "--resume", str(baseline()), "--run-name", "other"])
    assert renamed.exit_code == 2 and "drop --run-name and --tensorboard-dir" in renamed.output


# --- MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1, described by a scheduler's variables ---------


def two_free_ports() -> int:
    """A port whose next one is free too (a Slurm node's tasks take consecutive ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    pytest.fail("no two consecutive free ports")


@pytest.mark.slow
def test_two_slurm_tasks_on_localhost_train_identical_weights_and_only_the_chief_writes(workdir, baseline):
    """What `srun --ntasks=2` on one node sets: no TF_CONFIG and no --run-name; kerasft builds both from Slurm's
    variables."""
    slurm = {"SLURM_NTASKS": "2", "SLURM_JOB_NODELIST": "localhost", "SLURM_JOB_ID": "4242"}
    slurm |= {"KERASFT_PORT": str(two_free_ports())}
    workers = [
        Background(
            workdir,
            f"worker{index}",
            "run",
            "tiny.py",
            *DATA,
            "--output-dir",
            "mw-runs",
            "--tensorboard-dir",
            "mw-tb",
            env=slurm | {"SLURM_PROCID": str(index), "SLURM_LOCALID": str(index)},
        )
        for index in range(2)
    ]
    try:
        codes = [worker.wait(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
    assert codes == [0, 0], "\n".join(worker.stderr[-2000:] for worker in workers)
    assert "kerasft: cluster: slurm, job slurm-4242" in workers[1].stdout

    run_dir = workdir / "mw-runs" / "tiny-slurm-4242"  # the run name every task derived from the job id
    metrics = json.loads((run_dir / "metrics.json").read_text())
    fingerprint = metrics["training"]["weights"]
    assert (
        f"kerasft: worker 1 finished training ({EPOCHS * STEPS_PER_EPOCH} steps, weights {fingerprint})"
        in workers[1].stdout
    )
    assert metrics["training"]["steps"] == EPOCHS * STEPS_PER_EPOCH
    run_info = json.loads((run_dir / "recipe.json").read_text())["run"]
    assert (run_info["strategy"], run_info["workers"], run_info["replicas"], run_info["per_replica_batch"]) == (
        "MultiWorkerMirroredStrategy",
        2,
        2,
        BATCH // 2,
    )
    # only the chief writes: one run directory, one export, nothing left of the other worker's temporary files
    assert [path.name for path in (workdir / "mw-runs").iterdir()] == ["tiny-slurm-4242"]
    assert [path.name for path in (run_dir / "export" / "tiny").iterdir()] == ["1"]
    assert not list(run_dir.rglob("workertemp*")) and not (run_dir / "backup").exists()
    assert [path.name for path in (workdir / "mw-tb").iterdir()] == ["tiny-slurm-4242"]
    assert run_info["cluster"] == {
        "launcher": "slurm",
        "job_id": "slurm-4242",
        "processes": 2,
        "cluster": {"worker": [f"localhost:{port}" for port in (int(slurm["KERASFT_PORT"]) + i for i in range(2))]},
        "task": {"type": "worker", "index": 0},
    }
    assert "test accuracy" in workers[0].stdout and "test accuracy" not in workers[1].stdout
    assert len((run_dir / "predictions.csv").read_text().strip().splitlines()) == 16 + 1  # every test example once
    # each worker saw its own half of every global batch: the same weights as one device on the whole batch
    assert largest_difference(final_weights(run_dir), final_weights(baseline())) < TOLERANCE


@pytest.mark.slow
def test_a_multi_worker_job_restarted_after_a_worker_dies_resumes_from_the_chiefs_backup(workdir, baseline):
    """Described as Vertex AI does in custom containers: a CLUSTER_SPEC of worker pools (a chief and a worker), and the
    job id that names the run. The killed worker's scratch folder (its copies of checkpoints, in the temporary folder)
    is gone once the restarted job ends: the restarted worker took it over."""
    run_dir = workdir / "mw-runs" / "tiny-vertex-77"
    temporary = workdir / "mw-tmp"  # the workers' TMPDIR: what they leave there is theirs alone
    temporary.mkdir()

    def start_workers(*args) -> list[Background]:
        pools = {"workerpool0": [f"127.0.0.1:{free_port()}"], "workerpool1": [f"127.0.0.1:{free_port()}"]}
        return [
            Background(
                workdir,
                f"died{len(Background.started)}-{pool}",
                "run",
                *args,
                env={
                    "CLUSTER_SPEC": json.dumps({"cluster": pools, "task": {"type": pool, "index": 0}}),
                    "CLOUD_ML_JOB_ID": "77",
                    "TMPDIR": str(temporary),
                },
            )
            for pool in pools
        ]

    first = start_workers("tiny.py", *DATA, "--output-dir", "mw-runs", "--tensorboard-dir", "mw-tb")
    kill_after_backup(first[0], run_dir, 2, first[1])  # a worker dies; the job's manager then restarts every worker
    assert not (run_dir / "trained").exists(), "the kill came after training had finished"

    second = start_workers("--resume", run_dir)
    codes = [worker.wait(timeout=240) for worker in second]
    assert codes == [0, 0], "\n".join(worker.stderr[-2000:] for worker in second)
    assert all("resuming tiny-vertex-77 at epoch" in worker.stdout for worker in second)
    assert "this is chief 0" in second[0].stdout and "this is worker 0" in second[1].stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["training"]["steps"] == EPOCHS * STEPS_PER_EPOCH  # as many steps as an uninterrupted run
    (resumption,) = metrics["training"]["resumed_at"]
    assert resumption["optimizer_step"] >= 4  # both workers restored the chief's backup, not step 0
    assert [path.name for path in (run_dir / "export" / "tiny").iterdir()] == ["1"]
    assert largest_difference(final_weights(run_dir), final_weights(baseline())) < TOLERANCE
    assert not list(temporary.glob("kerasft-worker-*"))
