"""Monitoring: TensorBoard's story of a run (read back with TensorBoard's event accumulator),
the end-of-run reports, and early stopping that keeps (and exports) the best epoch's weights."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest

from conftest import QUICKSTART_DATA, kerasft, read_rows, write_recipe

EPOCHS, PATIENCE, BATCH, TRAIN_ROWS, VALIDATION_ROWS = 4, 1, 8, 120, 30
STEPS_PER_EPOCH = TRAIN_ROWS // BATCH


def read_events(folder) -> dict:
    """{tag: [(step, value)]} for every summary in ``folder``; scalars as floats, images/text as numpy values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    guidance = {kind: 0 for kind in ("scalars", "images", "tensors", "histograms", "compressedHistograms", "audio")}
    accumulator = EventAccumulator(str(folder), size_guidance=guidance)
    accumulator.Reload()
    found = {}
    for tag in accumulator.Tags()["tensors"]:
        values = [(event.step, tensor_util.make_ndarray(event.tensor_proto)) for event in accumulator.Tensors(tag)]
        found[tag] = [
            (step, float(value) if value.dtype.kind == "f" and value.ndim == 0 else value) for step, value in values
        ]
    found["_plugins"] = {
        tag: accumulator.SummaryMetadata(tag).plugin_data.plugin_name for tag in accumulator.Tags()["tensors"]
    }
    found["_hparams"] = accumulator.PluginTagToContent("hparams") if "hparams" in found["_plugins"].values() else {}
    return found


def png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as image:
        return image.size


# ---------------------------------------------------------------- one real run, shared by the checks below


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory, tiny_checkpoint):
    """`kerasft run` with early stopping on val_accuracy: the tiny model stalls, so it stops before the last epoch."""
    workdir = tmp_path_factory.mktemp("monitored")
    data = {}
    for split, count in (("train", TRAIN_ROWS), ("validation", VALIDATION_ROWS), ("test", 40)):
        data[split] = workdir / f"{split}.csv"
        with data[split].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "label"])
            writer.writeheader()
            writer.writerows(read_rows(QUICKSTART_DATA / f"{split}.csv")[:count])
    recipe = write_recipe(
        workdir / "tiny.py",
        tiny_checkpoint,
        data,
        epochs=EPOCHS,
        batch_size=BATCH,
        keep_checkpoints=EPOCHS,
        early_stopping_metric="val_accuracy",
        early_stopping_patience=PATIENCE,
    )
    result = kerasft(
        "run",
        recipe,
        "--run-name",
        "watched",
        "--output-dir",
        workdir / "runs",
        "--tensorboard-dir",
        workdir / "tb",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = workdir / "runs" / "watched"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "workdir": workdir,
        "run_dir": run_dir,
        "tb": workdir / "tb" / "watched",
        "metrics": metrics,
        "stdout": result.stdout,
        "data": data,
        "epochs_run": len(metrics["train"]),
    }


@pytest.mark.slow
def test_train_scalars_per_step_and_per_epoch(monitored_run):
    events = read_events(monitored_run["tb"] / "train")
    epochs_run, metrics = monitored_run["epochs_run"], monitored_run["metrics"]
    steps = [step for step, _ in events["step_loss"]]
    assert steps == list(range(1, STEPS_PER_EPOCH * epochs_run + 1))
    assert [step for step, _ in events["step_learning_rate"]] == steps
    assert all(rate == pytest.approx(1e-3) for _, rate in events["step_learning_rate"])
    for key in ("loss", "accuracy", "macro_f1"):
        assert [step for step, _ in events[f"epoch_{key}"]] == list(range(epochs_run))
        assert [value for _, value in events[f"epoch_{key}"]] == pytest.approx(
            [epoch[key] for epoch in metrics["train"]], abs=1e-6
        )
    # step_loss is each batch's own loss: with equal batches, an epoch's steps average to its epoch_loss
    losses = np.array([value for _, value in events["step_loss"]]).reshape(epochs_run, STEPS_PER_EPOCH)
    assert losses.mean(axis=1) == pytest.approx([value for _, value in events["epoch_loss"]], abs=1e-4)
    assert losses.std() > 0  # not the same running mean repeated


@pytest.mark.slow
def test_validation_scalars_confusion_matrix_and_report_per_epoch(monitored_run):
    events = read_events(monitored_run["tb"] / "validation")
    epochs_run, metrics = monitored_run["epochs_run"], monitored_run["metrics"]
    for key in ("loss", "accuracy", "macro_f1"):
        assert [value for _, value in events[f"epoch_{key}"]] == pytest.approx(
            [epoch[key] for epoch in metrics["validation"]], abs=1e-6
        )
    assert events["_plugins"]["confusion_matrix"] == "images" and events["_plugins"]["classification_report"] == "text"
    assert [step for step, _ in events["confusion_matrix"]] == list(range(epochs_run))
    for _, (width, height, png) in events["confusion_matrix"]:
        assert png_size(png) == (int(width), int(height)) and int(width) > 500
    labels = ("account", "billing", "delivery", "feedback", "technical")
    assert [step for step, _ in events["classification_report"]] == list(range(epochs_run))
    for (epoch, text), figures in zip(events["classification_report"], metrics["validation"]):
        report = text.item().decode()
        assert f"after epoch {epoch + 1}" in report and all(label in report for label in labels)
        # the report counts the very predictions behind Keras' val_accuracy and val_macro_f1
        accuracy, support = re.search(r"accuracy\s+([\d.]+)\s+(\d+)", report).groups()
        assert float(accuracy) == pytest.approx(figures["accuracy"], abs=1e-4) and int(support) == VALIDATION_ROWS
        macro_f1 = float(re.search(r"macro avg\s+[\d.]+\s+[\d.]+\s+([\d.]+)", report).group(1))
        assert macro_f1 == pytest.approx(figures["macro_f1"], abs=1e-4)


@pytest.mark.slow
def test_hparams_and_final_metrics_for_comparing_runs(monitored_run):
    from tensorboard.plugins.hparams import plugin_data_pb2

    events, metrics = read_events(monitored_run["tb"]), monitored_run["metrics"]
    plugin = {tag: plugin_data_pb2.HParamsPluginData.FromString(content) for tag, content in events["_hparams"].items()}
    start = plugin["_hparams_/session_start_info"].session_start_info
    hparams = dict(start.hparams)
    assert hparams["train.learning_rate"].number_value == pytest.approx(1e-3)
    assert hparams["train.epochs"].number_value == EPOCHS
    assert hparams["model.max_length"].number_value == 32
    assert hparams["train.early_stopping_metric"].string_value == "val_accuracy"
    assert start.group_name == "watched"
    experiment = plugin["_hparams_/experiment"].experiment
    listed = {info.name.tag for info in experiment.metric_infos}
    assert {"final/test_accuracy", "final/test_macro_f1", "final/best_epoch", "final/val_accuracy"} <= listed
    assert {info.name for info in experiment.hparam_infos} == set(hparams)
    assert "_hparams_/session_end_info" in plugin
    assert events["final/test_accuracy"][-1][1] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)
    assert events["final/test_macro_f1"][-1][1] == pytest.approx(metrics["test"]["macro_f1"], abs=1e-6)
    assert events["final/best_epoch"][-1][1] == metrics["best_epoch"]
    kept = metrics["validation"][metrics["best_epoch"] - 1]
    assert events["final/val_accuracy"][-1][1] == pytest.approx(kept["accuracy"], abs=1e-6)


@pytest.mark.slow
def test_early_stopping_evaluates_and_exports_the_best_epoch(monitored_run):
    import tensorflow as tf
    from transformers import AutoConfig, AutoTokenizer, TFAutoModelForSequenceClassification

    from kerasft.evaluate import predict_texts
    from kerasft.serve import load_text_signature

    run_dir, metrics = monitored_run["run_dir"], monitored_run["metrics"]
    best, epochs_run = metrics["best_epoch"], monitored_run["epochs_run"]
    stop = metrics["early_stopping"]
    assert stop["metric"] == "val_accuracy" and stop["epochs_run"] == epochs_run and stop["patience"] == PATIENCE
    assert best < epochs_run < EPOCHS and stop["stopped_early"]  # it stopped, and not on its best epoch
    accuracies = [epoch["accuracy"] for epoch in metrics["validation"]]
    assert best == accuracies.index(max(accuracies)) + 1 and stop["best_value"] == pytest.approx(max(accuracies))
    assert f"best epoch {best} of {epochs_run}" in monitored_run["stdout"]

    texts = [row["text"] for row in read_rows(monitored_run["data"]["validation"])]
    exported = load_text_signature(run_dir / "export" / "tiny")(text=tf.constant(texts))["probabilities"].numpy()
    config = AutoConfig.from_pretrained(run_dir / "model")
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")

    def probabilities_at(epoch: int) -> np.ndarray:
        model = TFAutoModelForSequenceClassification.from_config(config)
        model(model.dummy_inputs, training=False)
        tf.train.Checkpoint(model=model).restore(str(run_dir / "checkpoints" / f"epoch-{epoch}")).expect_partial()
        return predict_texts(model, tokenizer, texts, 32, BATCH)

    assert np.abs(exported - probabilities_at(best)).max() < 1e-4  # the export holds the best epoch's weights
    assert np.abs(exported - probabilities_at(epochs_run)).max() > 1e-4  # not the last epoch's
    labels = [config.label2id[row["label"]] for row in read_rows(monitored_run["data"]["validation"])]
    picked = exported[np.arange(len(texts)), labels]
    assert -np.log(picked).mean() == pytest.approx(metrics["validation"][best - 1]["loss"], abs=1e-4)

    # `kerasft export RUN_DIR` exports the kept epoch again, not the newest checkpoint
    from kerasft.runner import export_again

    path, facts = export_again(run_dir)
    assert path.name == "2" and facts["checkpoint"] == str(run_dir / "checkpoints" / f"epoch-{best}")
    again = load_text_signature(path)(text=tf.constant(texts))["probabilities"].numpy()
    assert np.abs(again - exported).max() < 1e-4


@pytest.mark.slow
def test_end_of_run_reports(monitored_run):
    run_dir, metrics, stdout = monitored_run["run_dir"], monitored_run["metrics"], monitored_run["stdout"]
    width, height = png_size((run_dir / "learning_curves.png").read_bytes())
    assert width > 2 * height > 0  # three panels side by side
    png_size((run_dir / "confusion_matrix.png").read_bytes())
    for split in ("train", "validation"):
        assert {"epoch", "loss", "accuracy", "macro_f1"} <= set(metrics[split][0])
    assert "learning_curves.png" in stdout and re.search(rf"kept epoch +{metrics['best_epoch']} ", stdout)
    assert json.loads((run_dir / "status.json").read_text())["started"]


@pytest.mark.slow
def test_runs_lists_the_finished_run(monitored_run):
    result = kerasft("runs", "--output-dir", monitored_run["workdir"] / "runs", cwd=monitored_run["workdir"])
    assert result.returncode == 0, result.stderr
    heading, row = result.stdout.splitlines()
    metrics = monitored_run["metrics"]
    assert heading.split()[:4] == ["RUN", "RECIPE", "STARTED", "STATE"]
    assert row.split()[0:2] == ["watched", "tiny"] and "complete" in row
    assert f"{monitored_run['epochs_run']}/{EPOCHS}" in row and f"{metrics['test']['accuracy']:.4f}" in row
    newest = max(int(version.name) for version in (monitored_run["run_dir"] / "export" / "tiny").iterdir())
    assert row.rstrip().endswith(f"runs/watched/export/tiny/{newest}")  # the newest export, re-exports included


# ---------------------------------------------------------------- the pieces, in process


def test_macro_f1_metric_equals_scikit_learn():
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    from kerasft.metrics import MacroF1, report_from_confusion_matrix

    rng = np.random.default_rng(0)
    metric = MacroF1(num_classes=5)  # class 4 never occurs, class 3 is never right
    truth, predicted = [], []
    for size in (7, 16, 3):
        y_true = rng.integers(0, 4, size)
        logits = rng.normal(size=(size, 5)).astype("float32")
        metric.update_state(y_true, logits)
        truth.append(y_true)
        predicted.append(logits.argmax(axis=1))
    y_true, y_pred = np.concatenate(truth), np.concatenate(predicted)
    expected = f1_score(y_true, y_pred, labels=range(5), average="macro", zero_division=0)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)
    assert (metric.confusion_matrix() == confusion_matrix(y_true, y_pred, labels=range(5))).all()
    names = ["a", "b", "c", "d", "e"]
    assert report_from_confusion_matrix(metric.confusion_matrix(), names) == classification_report(
        y_true, y_pred, labels=range(5), target_names=names, zero_division=0, digits=4
    )
    metric.reset_state()
    assert float(metric.result()) == 0.0


@pytest.mark.parametrize(
    "scripted, epochs, patience, best, epochs_run",
    [
        ([0.50, 0.70, 0.65, 0.60, 0.90], 5, 2, 2, 4),  # stops after 2 epochs without improvement
        ([0.50, 0.90, 0.80], 3, 5, 2, 3),  # runs every epoch, still ends on the best one
    ],
)
def test_early_stopping_restores_the_best_weights(tmp_path, scripted, epochs, patience, best, epochs_run):
    """val_macro_f1 is scripted per epoch; a higher one is better (Keras' "auto" mode would minimise it)."""
    import tf_keras as keras

    from kerasft.monitor import early_stopping, kept_epoch
    from kerasft.recipe import TrainConfig

    snapshots = []

    class Script(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_macro_f1"] = scripted[epoch]
            snapshots.append(self.model.get_weights())

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    config = TrainConfig(epochs=epochs, early_stopping_metric="val_macro_f1", early_stopping_patience=patience)
    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.random.default_rng(1).normal(size=(32, 3))
    history = model.fit(x, y, epochs=epochs, verbose=0, callbacks=[Script(), early_stopping(config)])
    assert len(history.history["loss"]) == epochs_run
    assert kept_epoch(history.history, config)["best_epoch"] == best
    for restored, wanted, last in zip(model.get_weights(), snapshots[best - 1], snapshots[-1]):
        np.testing.assert_array_equal(restored, wanted)
        assert not np.array_equal(restored, last)


def test_multi_label_runs_stop_early_on_val_micro_f1():
    """The multi-label compile's micro F1 (kerasft.model.loss_and_metrics) is what val_micro_f1 monitors: Keras logs it
    for the validation data, EarlyStopping maximises it and kept_epoch names the same best epoch."""
    import tf_keras as keras
    from transformers import BertConfig

    from kerasft.model import MULTI_LABEL, loss_and_metrics
    from kerasft.monitor import early_stopping, kept_epoch
    from kerasft.recipe import TrainConfig

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6)).astype("float32")
    y = (x[:, :3] > 0.3).astype("float32")  # three labels, each readable from one input
    loss, metrics = loss_and_metrics(BertConfig(num_labels=3, problem_type=MULTI_LABEL))
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(6,))])
    model.compile(keras.optimizers.SGD(0.05), loss, metrics=metrics)
    config = TrainConfig(epochs=6, early_stopping_metric="val_micro_f1", early_stopping_patience=6)
    history = model.fit(x, y, validation_data=(x, y), epochs=6, verbose=0, callbacks=[early_stopping(config)])
    micro = history.history["val_micro_f1"]
    assert len(micro) == 6 and "val_macro_f1" in history.history
    kept = kept_epoch(history.history, config)
    assert kept["best_epoch"] == int(np.argmax(micro)) + 1 and kept["early_stopping"]["mode"] == "max"
    assert model.evaluate(x, y, verbose=0, return_dict=True)["micro_f1"] == pytest.approx(max(micro), abs=1e-6)


@pytest.mark.parametrize("optimizer", ["kerasft", "keras"])
def test_step_scalars_follow_a_learning_rate_schedule(tmp_path, optimizer):
    import tf_keras as keras

    from kerasft.monitor import StepScalars
    from kerasft.optimizer import Adam

    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, decay_steps=4, end_learning_rate=0.02)
    model = keras.Sequential([keras.layers.Dense(1, input_shape=(2,))])
    model.compile(
        (Adam if optimizer == "kerasft" else keras.optimizers.Adam)(schedule), "mse"
    )  # runs use kerasft's (a legacy Keras optimizer)
    running = []

    class Means(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            running.append(logs["loss"])

    x, y = np.random.default_rng(0).normal(size=(20, 2)), np.random.default_rng(1).normal(size=(20, 1))
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[StepScalars(tmp_path / "train", chief=True), Means()],
    )
    events = read_events(tmp_path / "train")
    assert [step for step, _ in events["step_learning_rate"]] == list(range(1, 11))
    assert [rate for _, rate in events["step_learning_rate"]] == pytest.approx(
        [float(schedule(step)) for step in range(10)]
    )
    # Keras logs running means over the epoch; the batch losses behind them are k*mean_k - (k-1)*mean_(k-1)
    batch_losses = []
    for epoch in range(2):
        means = running[epoch * 5 : epoch * 5 + 5]
        batch_losses += [means[0]] + [(k + 1) * means[k] - k * means[k - 1] for k in range(1, 5)]
    assert [loss for _, loss in events["step_loss"]] == pytest.approx(batch_losses, rel=1e-4)


def test_early_stopping_metric_is_checked():
    from kerasft.errors import UserError
    from kerasft.recipe import Recipe, apply_overrides

    recipe = Recipe(name="r")
    recipe.data.train = "train.csv"
    assert (
        apply_overrides(recipe, ["train.early_stopping_metric=val_macro_f1"]).train.early_stopping_metric
        == "val_macro_f1"
    )
    with pytest.raises(UserError, match="val_loss, val_accuracy, val_macro_f1, val_micro_f1"):
        apply_overrides(recipe, ["train.early_stopping_metric=val_f1"])
    with pytest.raises(UserError, match="val_micro_f1 is a multi-label metric"):
        apply_overrides(recipe, ["train.early_stopping_metric=val_micro_f1"])
    multi = apply_overrides(recipe, ["data.multi_label=true", "train.early_stopping_metric=val_micro_f1"])
    assert multi.train.early_stopping_metric == "val_micro_f1"
    with pytest.raises(UserError, match="early_stopping_patience"):
        apply_overrides(recipe, ["train.early_stopping_patience=-1"])
