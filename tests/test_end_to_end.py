"""`kerasft run` end to end on the tiny model: every promised file exists and the figures agree."""

from __future__ import annotations

import json
import re

import pytest

from conftest import kerasft, kerasft_in_process, read_rows, write_recipe

pytestmark = pytest.mark.slow  # whole runs and exports through the command


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_checkpoint):
    """One real run through the CLI, shared by the checks below: the shipped emotion recipe, offline, as the
    README shows it, on `text;label` files without a header (train.txt, val.txt, test.txt) and a local checkpoint."""
    from conftest import QUICKSTART_DATA, REPO

    workdir = tmp_path_factory.mktemp("e2e")
    for split, name in (("train", "train"), ("validation", "val"), ("test", "test")):
        rows = read_rows(QUICKSTART_DATA / f"{split}.csv")
        (workdir / f"{name}.txt").write_text(
            "".join(f"{row['text']};{row['label']}\n" for row in rows), encoding="utf-8"
        )
    data = {split: QUICKSTART_DATA / f"{split}.csv" for split in ("train", "validation", "test")}
    write_recipe(workdir / "tiny.py", tiny_checkpoint, data)  # for runs that need a recipe of their own
    result = kerasft(
        "run",
        REPO / "recipes" / "emotion.py",
        "data.train=train.txt",
        "data.validation=val.txt",
        "data.test=test.txt",
        "data.sep=;",
        "data.columns=text,label",
        f"model.checkpoint={tiny_checkpoint}",
        "model.max_length=32",
        "model.name=tiny",
        "train.batch_size=8",
        "train.learning_rate=1e-3",
        "train.keep_checkpoints=1",
        "train.lazy_adam=true",
        "train.threshold=0.3",  # a multi-label setting: this single-label run warns that it ignores it
        "data.train_samples=160",
        "data.test_samples=60",
        "train.epochs=3",
        "--run-name",
        "first",
        "--output-dir",
        workdir / "runs",
        "--tensorboard-dir",
        workdir / "tb",
        cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir, workdir / "runs" / "first", result


def test_run_directory_holds_every_promised_file(finished_run):
    _, run_dir, _ = finished_run
    for name in (
        "recipe.json",
        "metrics.json",
        "classification_report.txt",
        "classification_report.json",
        "confusion_matrix.png",
        "predictions.csv",
        "status.json",
    ):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "complete"
    assert (run_dir / "export" / "tiny" / "1" / "saved_model.pb").is_file()


def test_overrides_reach_the_run_and_recipe_json_records_them(finished_run):
    workdir, run_dir, result = finished_run
    recipe = json.loads((run_dir / "recipe.json").read_text())
    assert recipe["name"] == "emotion" and recipe["data"]["hub"] == "dair-ai/emotion"  # the local files took its place
    assert recipe["data"]["train"] == str((workdir / "train.txt").resolve()) and recipe["data"]["columns"] == [
        "text",
        "label",
    ]
    assert recipe["train"]["epochs"] == 3
    assert recipe["data"]["train_samples"] == 160
    assert recipe["model"]["max_length"] == 32
    assert recipe["run"]["replicas"] == 1
    assert (
        recipe["train"]["lazy_adam"] is True and recipe["run"]["optimizer"] == "LazyAdam"
    )  # the default is Adam (test_model.py)
    assert recipe["train"]["threshold"] == 0.3
    warning = "kerasft: warning: train.threshold=0.3 is for multi-label runs (data.multi_label=true); this single-label"
    assert warning in result.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [epoch["epoch"] for epoch in metrics["validation"]] == [1, 2, 3]
    assert {"loss", "accuracy"} <= set(metrics["validation"][0])


def test_keeps_only_the_last_n_checkpoints(finished_run):
    _, run_dir, _ = finished_run
    indexes = sorted(path.name for path in (run_dir / "checkpoints").glob("*.index"))
    assert indexes == ["epoch-3.index"]


def test_report_metrics_and_predictions_agree(finished_run):
    _, run_dir, _ = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    report = json.loads((run_dir / "classification_report.json").read_text())
    rows = read_rows(run_dir / "predictions.csv")
    assert len(rows) == metrics["examples"] == 60
    recount = sum(row["label"] == row["predicted"] for row in rows) / len(rows)
    assert report["accuracy"] == pytest.approx(metrics["accuracy"]) == pytest.approx(recount)
    assert report["macro avg"]["f1-score"] == pytest.approx(metrics["macro_f1"])
    assert report["weighted avg"]["f1-score"] == pytest.approx(metrics["weighted_f1"])
    text_report = (run_dir / "classification_report.txt").read_text()
    assert re.search(rf"accuracy\s+{metrics['accuracy']:.4f}", text_report)
    for label in ("account", "billing", "delivery", "feedback", "technical"):
        assert label in text_report and label in report


def test_predictions_are_in_the_test_files_order(finished_run):
    _, run_dir, _ = finished_run
    from datasets import load_dataset

    from conftest import QUICKSTART_DATA

    expected = load_dataset("csv", data_files=str(QUICKSTART_DATA / "test.csv"), split="train", keep_default_na=False)
    expected = expected.shuffle(seed=42).select(range(60))
    rows = read_rows(run_dir / "predictions.csv")
    assert [row["text"] for row in rows] == expected["text"]
    assert [row["label"] for row in rows] == expected["label"]


def test_tensorboard_event_files_for_train_and_validation(finished_run):
    workdir, run_dir, _ = finished_run
    for part in ("train", "validation"):
        assert list((workdir / "tb" / run_dir.name / part).glob("events.out.tfevents.*")), part


def test_prints_test_figures_and_paths(finished_run):
    _, run_dir, result = finished_run
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert f"test accuracy {metrics['accuracy']:.4f}" in result.stdout
    assert str(run_dir / "export" / "tiny" / "1") in result.stdout or "export/tiny/1" in result.stdout


def test_an_existing_run_is_never_overwritten(finished_run):
    workdir, run_dir, _ = finished_run
    before = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")}
    result = kerasft(
        "run",
        workdir / "tiny.py",
        "--run-name",
        "first",
        "--output-dir",
        workdir / "runs",
        "--tensorboard-dir",
        workdir / "tb",
        cwd=workdir,
    )
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*")} == before


def test_reexport_takes_the_next_version_and_answers_the_same(finished_run):
    workdir, run_dir, _ = finished_run
    result = kerasft_in_process("export", run_dir, cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (run_dir / "export" / "tiny" / "2" / "saved_model.pb").is_file()
    texts = ["where is my parcel", "i was charged twice", "the app crashes on login"]
    answers = [
        json.loads(
            kerasft_in_process("predict", run_dir / "export" / "tiny" / version, *texts, "--json", cwd=workdir).stdout
        )
        for version in ("1", "2")
    ]
    assert [a["label"] for a in answers[0]] == [a["label"] for a in answers[1]]
    assert answers[0][0]["score"] == pytest.approx(answers[1][0]["score"], abs=1e-5)


def test_reexport_of_a_missing_checkpoint_is_refused(finished_run):
    workdir, run_dir, _ = finished_run
    result = kerasft("export", run_dir, "--checkpoint", run_dir / "checkpoints" / "epoch-1", cwd=workdir)
    assert result.returncode == 2 and "no checkpoint" in result.stderr and "Traceback" not in result.stderr


def test_predict_prints_a_line_per_text_in_input_order(finished_run):
    workdir, run_dir, _ = finished_run
    texts = ["refund please", "", "my password stopped working", "Ünïcödé 😀"]
    plain = kerasft_in_process("predict", run_dir / "export" / "tiny", *texts, cwd=workdir)
    as_json = json.loads(
        kerasft_in_process(
            "predict", run_dir / "export" / "tiny", *texts, "--json", "--batch-size", "3", cwd=workdir
        ).stdout
    )
    lines = plain.stdout.strip("\n").split("\n")
    assert len(lines) == len(as_json) == len(texts)
    for line, item in zip(lines, as_json):
        label, score = line.split("\t")
        assert (
            set(item) == {"label", "score"}
            and label == item["label"]
            and float(score) == pytest.approx(item["score"], abs=1e-4)
        )


def test_predict_without_texts_is_refused(finished_run):
    workdir, run_dir, _ = finished_run
    result = kerasft("predict", run_dir / "export" / "tiny", cwd=workdir)
    assert result.returncode == 2 and "no texts" in result.stderr
