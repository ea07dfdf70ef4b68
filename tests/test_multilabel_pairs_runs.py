"""Whole runs of the shipped GoEmotions (multi-label) and MRPC (sentence pairs) recipes, offline on small files in
their original formats, and everything after them: reports, TensorBoard, the export, `kerasft predict`,
`kerasft evaluate`, `kerasft inspect`, `kerasft export`."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
import tensorflow as tf
from click.testing import CliRunner
from multilabel_pairs_data import EMOTIONS, goemotions_overrides, mrpc_overrides, write_goemotions, write_mrpc
from test_monitoring import read_events

from conftest import REPO, kerasft
from kerasft.cli import main

pytestmark = pytest.mark.slow  # two whole runs through the command, each in a process of its own

SETTINGS = ["model.max_length=32", "train.epochs=2", "train.batch_size=8", "train.learning_rate=1e-3"]


def run(recipe: str, overrides: list[str], workdir, checkpoint):
    result = kerasft(
        "run",
        REPO / "recipes" / f"{recipe}.py",
        *overrides,
        f"model.checkpoint={checkpoint}",
        *SETTINGS,
        "--run-name",
        recipe,
        "--output-dir",
        workdir / "runs",
        "--tensorboard-dir",
        workdir / "tb",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = workdir / "runs" / recipe
    return {
        "workdir": workdir,
        "run_dir": run_dir,
        "stdout": result.stdout,
        "metrics": json.loads((run_dir / "metrics.json").read_text()),
        "export": run_dir / "export" / recipe / "1",
        "checkpoint": f"model.checkpoint={checkpoint}",
    }


def command(*args) -> str:
    """A kerasft command in this process (click's runner): its output, after checking that it succeeded."""
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


@pytest.fixture(scope="module")
def goemotions(tmp_path_factory, tiny_checkpoint):
    workdir = tmp_path_factory.mktemp("goemotions")
    folder = write_goemotions(workdir / "data")
    overrides = [*goemotions_overrides(folder), "train.class_weight=balanced"]  # each label's positives weighted
    return run("goemotions", overrides, workdir, tiny_checkpoint) | {"data": folder}


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory, tiny_checkpoint):
    workdir = tmp_path_factory.mktemp("mrpc")
    folder = write_mrpc(workdir / "data")
    return run("mrpc", mrpc_overrides(folder), workdir, tiny_checkpoint) | {"data": folder}


# --- multi-label ------------------------------------------------------------------------------------------------------


def test_multi_label_run_reports_per_label_and_averaged_figures(goemotions):
    run_dir, test = goemotions["run_dir"], goemotions["metrics"]["test"]
    assert {"micro_f1", "macro_f1", "samples_f1", "subset_accuracy", "hamming_loss", "weighted_f1"} <= set(test)
    assert test["examples"] == 16 and "test micro F1" in goemotions["stdout"]
    report = (run_dir / "classification_report.txt").read_text()
    for row in (*EMOTIONS, "micro avg", "macro avg", "weighted avg", "samples avg", "subset accuracy", "Hamming loss"):
        assert row in report
    assert float(re.search(r"micro avg\s+[\d.]+\s+[\d.]+\s+([\d.]+)", report).group(1)) == pytest.approx(
        test["micro_f1"], abs=1e-4
    )
    assert (run_dir / "label_scores.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run_dir / "confusion_matrix.png").exists()
    with (run_dir / "predictions.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = [line.split("\t")[1] for line in (goemotions["data"] / "test.tsv").read_text().splitlines()]
    assert [row["label"] for row in rows] == [
        ",".join(EMOTIONS[int(i)] for i in filter(None, cell.split(","))) for cell in truth
    ]


def test_balanced_positive_weights_are_recorded_and_reported_beside_each_labels_recall(goemotions):
    from kerasft.class_weights import positive_weights

    run_dir = goemotions["run_dir"]
    cells = [line.split("\t")[1] for line in (goemotions["data"] / "train.tsv").read_text().splitlines()]
    multi_hot = np.array([[str(i) in cell.split(",") for i in range(len(EMOTIONS))] for cell in cells], dtype=float)
    expected = dict(zip(EMOTIONS, positive_weights(multi_hot).tolist()))
    assert len(set(expected.values())) > 1  # the labels are unbalanced: the weights differ
    recorded = json.loads((run_dir / "recipe.json").read_text())
    assert recorded["train"]["class_weight"] == "balanced"
    assert recorded["run"]["class_weights"] == pytest.approx(expected)
    assert "positive weights (balanced, negatives / positives): anger" in goemotions["stdout"]
    report = json.loads((run_dir / "classification_report.json").read_text())
    text = (run_dir / "classification_report.txt").read_text()
    assert "train.class_weight=balanced: each label's loss on its positive examples was multiplied" in text
    for index, name in enumerate(EMOTIONS):
        assert report[name]["class_weight"] == pytest.approx(expected[name])
        row = f"{name}  {int(multi_hot[:, index].sum()):>14}  {expected[name]:.4f}  {report[name]['recall']:>11.4f}"
        assert row in text


def test_tuned_thresholds_are_recorded_and_held_by_the_export(goemotions):
    import tensorflow_text  # noqa: F401

    thresholds = goemotions["metrics"]["thresholds"]
    assert thresholds["train.threshold"] == "tune" and len(thresholds["values"]) == len(EMOTIONS)
    assert all(0 < value < 1 for value in thresholds["values"])
    facts = goemotions["metrics"]["export"]
    assert facts["thresholds"] == thresholds["values"] and facts["multi_label"] and not facts["text_pair"]
    assert facts["parity"]["label_agreement"] == 1.0 and facts["parity"]["probe_texts"] == 9
    serve = tf.saved_model.load(str(goemotions["export"])).signatures["serving_default"]
    outputs = serve(text=tf.constant(["i am happy", "thank you so much i am so angry", "where is my parcel"]))
    limits = np.array(thresholds["values"], dtype=np.float32)
    np.testing.assert_array_equal(outputs["predicted"].numpy(), outputs["probabilities"].numpy() >= limits)


def test_tensorboard_has_micro_and_macro_f1_and_the_report_per_epoch(goemotions):
    events = read_events(goemotions["workdir"] / "tb" / "goemotions" / "validation")
    validation = goemotions["metrics"]["validation"]
    for key in ("micro_f1", "macro_f1", "accuracy"):
        assert [value for _, value in events[f"epoch_{key}"]] == pytest.approx([e[key] for e in validation], abs=1e-6)
    assert events["_plugins"]["label_scores"] == "images" and [step for step, _ in events["label_scores"]] == [0, 1]
    for (epoch, text), figures in zip(events["classification_report"], validation):
        report = text.item().decode()
        assert f"after epoch {epoch + 1}" in report and all(label in report for label in EMOTIONS)
        micro = float(re.search(r"micro avg\s+[\d.]+\s+[\d.]+\s+([\d.]+)", report).group(1))
        assert micro == pytest.approx(figures["micro_f1"], abs=1e-4)  # the counts behind val_micro_f1


def test_evaluate_scores_the_export_on_the_test_file_as_the_run_did(goemotions):
    workdir = goemotions["workdir"]
    output = command(
        "evaluate", goemotions["export"], "--data", goemotions["data"] / "test.tsv", "--columns", "text,label,id",
        "--output-dir", workdir / "evaluations",
    )  # fmt: skip
    (folder,) = (workdir / "evaluations").iterdir()
    figures = json.loads((folder / "metrics.json").read_text())["test"]
    for key, value in goemotions["metrics"]["test"].items():
        assert figures[key] == pytest.approx(value, abs=1e-5), key
    assert (folder / "label_scores.png").is_file() and (folder / "classification_report.txt").is_file()
    assert "test micro F1" in output


def test_predict_lists_every_label_above_its_threshold(goemotions):
    texts = ["i am happy", "thank you so much", "where is my parcel"]
    lines = command("predict", goemotions["export"], *texts).splitlines()
    answers = json.loads(command("predict", goemotions["export"], *texts, "--json"))
    assert len(lines) == len(answers) == 3
    for line, answer in zip(lines, answers):
        assert line == "\t".join(f"{item['label']}\t{item['score']:.4f}" for item in answer["labels"])
        assert all(item["label"] in EMOTIONS for item in answer["labels"])


def test_inspect_shows_label_cardinality_and_cooccurrence(goemotions):
    # model.max_length: the tiny checkpoint's position embeddings take 64 tokens, not the recipe's 128
    output = command(
        "inspect", REPO / "recipes" / "goemotions.py", *goemotions_overrides(goemotions["data"]),
        goemotions["checkpoint"], "model.max_length=32", "--output-dir", goemotions["workdir"] / "inspect",
    )  # fmt: skip
    assert "labels per text in train: mean" in output
    (folder,) = (goemotions["workdir"] / "inspect").iterdir()
    overview = json.loads((folder / "overview.json").read_text())["multi_label"]
    cells = [line.split("\t")[1] for line in (goemotions["data"] / "train.tsv").read_text().splitlines()]
    assert overview["labels_per_text"]["train"]["texts_with_no_label"] == cells.count("")
    together = sum(cell.count(",") == 1 and set(cell.split(",")) == {"0", "2"} for cell in cells)
    assert overview["cooccurrence_train"]["anger"][EMOTIONS.index("joy")] == together


# --- sentence pairs ---------------------------------------------------------------------------------------------------


def test_pair_run_exports_a_text_and_text_pair_signature_checked_on_pairs(mrpc):
    facts = mrpc["metrics"]["export"]
    assert facts["inputs"] == ["text", "text_pair"] and facts["ids_inputs"][-1] == "token_type_ids"
    assert facts["parity"]["argmax_agreement"] == 1.0 and facts["parity"]["probe_texts"] == 9
    assert facts["parity"]["examples"] == 16 and "sentence pairs" in mrpc["stdout"]
    with (mrpc["run_dir"] / "predictions.csv").open(newline="") as handle:
        assert next(csv.reader(handle)) == ["text", "text_pair", "label", "predicted", "score"]


def test_predict_takes_pairs_as_arguments_and_as_a_tab_separated_file(mrpc, tmp_path):
    pairs = [('"where is my parcel', "my parcel where is"), ("refund please", "the app crashes at login")]
    by_arguments = json.loads(command("predict", mrpc["export"], pairs[0][0], "--pair", pairs[0][1], pairs[1][0],
                                      "--pair", pairs[1][1], "--json"))  # fmt: skip
    file = tmp_path / "pairs.txt"
    file.write_text("".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")  # the quote stays a character
    assert json.loads(command("predict", mrpc["export"], "--file", file, "--json")) == by_arguments
    file.write_text("no tab here\n")
    result = CliRunner().invoke(main, ["predict", str(mrpc["export"]), "--file", str(file)])
    assert result.exit_code == 2 and "line 1: expected two tab-separated fields" in result.stderr


def test_evaluate_scores_pairs_and_export_again_takes_the_next_version(mrpc):
    workdir, data = mrpc["workdir"], mrpc["data"]
    command(
        "evaluate", mrpc["export"], "--data", data / "msr_paraphrase_test.tsv", "--quoting", "none",
        "--text-column", "#1 String", "--text-pair-column", "#2 String", "--label-column", "Quality",
        "--output-dir", workdir / "evaluations",
    )  # fmt: skip
    (folder,) = (workdir / "evaluations").iterdir()
    figures = json.loads((folder / "metrics.json").read_text())["test"]
    for key, value in mrpc["metrics"]["test"].items():
        assert figures[key] == pytest.approx(value, abs=1e-5), key
    assert "exported" in command("export", mrpc["run_dir"])
    facts = json.loads((mrpc["run_dir"] / "export" / "mrpc" / "2" / "assets.extra" / "kerasft.json").read_text())
    assert facts["text_pair"] and facts["parity"]["examples"] == 16 and facts["parity"]["argmax_agreement"] == 1.0


def test_inspect_counts_tokens_per_text_and_per_pair(mrpc):
    output = command(
        "inspect", REPO / "recipes" / "mrpc.py", *mrpc_overrides(mrpc["data"]), mrpc["checkpoint"],
        "model.max_length=12", "--output-dir", mrpc["workdir"] / "inspect",
    )  # fmt: skip
    assert "pairs: tokens per first text median" in output
    (folder,) = (mrpc["workdir"] / "inspect").iterdir()
    pairs = json.loads((folder / "overview.json").read_text())["pairs"]
    assert pairs["tokens_per_pair"]["p50"] > pairs["tokens_per_first_text"]["p50"]
    assert pairs["pairs_truncated"]["max_length"] == 12 and pairs["pairs_truncated"]["share"] > 0
