"""`kerasft inspect`: the data overview's numbers match a recount of the files, and its pictures are real PNGs."""

from __future__ import annotations

import csv
import json
from collections import Counter

import numpy as np
import pytest

from conftest import QUICKSTART_DATA, kerasft_in_process, read_rows, write_recipe

LONG_TEXT = "my parcel " * 30  # far past max_length=32 tokens


def _write(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def flawed_data(tmp_path):
    """Quickstart rows plus known flaws: empty texts, duplicates (one with another label), a long text, a train text
    in test."""
    train = read_rows(QUICKSTART_DATA / "train.csv")[:40]
    validation = read_rows(QUICKSTART_DATA / "validation.csv")[:15]
    test = read_rows(QUICKSTART_DATA / "test.csv")[:15]
    other = next(label for label in ("billing", "account") if label != train[1]["label"])
    train += [
        {"text": "", "label": "billing"},
        {"text": "   ", "label": "account"},
        {
            "text": "  " + train[0]["text"].upper().replace(" ", "   ") + " ",
            "label": train[0]["label"],
        },  # same text, other case/spacing
        {"text": train[1]["text"], "label": other},  # same text, another label
        {"text": LONG_TEXT, "label": "delivery"},
    ]
    validation += [{"text": "", "label": "feedback"}]
    test += [{"text": train[2]["text"], "label": train[2]["label"]}]  # leaked from train
    return {
        split: _write(tmp_path / f"{split}.csv", rows)
        for split, rows in (("train", train), ("validation", validation), ("test", test))
    }


def _key(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.mark.slow
def test_inspect_writes_an_overview_that_matches_a_recount(tmp_path, tiny_checkpoint, flawed_data):
    from PIL import Image
    from transformers import AutoTokenizer

    recipe = write_recipe(tmp_path / "tiny.py", tiny_checkpoint, flawed_data)
    result = kerasft_in_process("inspect", recipe, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = (tmp_path / "out").iterdir()
    assert folder.name.startswith("inspect-tiny-")
    overview = json.loads((folder / "overview.json").read_text())

    rows = {split: read_rows(path) for split, path in flawed_data.items()}
    kept = {split: [row for row in split_rows if row["text"].strip()] for split, split_rows in rows.items()}
    labels = sorted({row["label"] for row in kept["train"]})
    assert overview["labels"] == labels
    for split in rows:
        facts = overview["splits"][split]
        assert facts["texts"] == len(kept[split])
        assert facts["empty_texts_dropped"] == len(rows[split]) - len(kept[split])
        assert overview["class_counts"][split] == {
            label: Counter(row["label"] for row in kept[split])[label] for label in labels
        }
        keys = [_key(row["text"]) for row in kept[split]]
        assert facts["duplicate_texts"] == len(keys) - len(set(keys))
        by_text = {}
        for row in kept[split]:
            by_text.setdefault(_key(row["text"]), set()).add(row["label"])
        assert facts["texts_with_conflicting_labels"] == sum(len(found) > 1 for found in by_text.values())
    assert (
        overview["splits"]["train"]["empty_texts_dropped"] == 2
        and overview["splits"]["validation"]["empty_texts_dropped"] == 1
    )
    assert (
        overview["splits"]["train"]["duplicate_texts"] >= 2
        and overview["splits"]["train"]["texts_with_conflicting_labels"] >= 1
    )
    train_keys = {_key(row["text"]) for row in kept["train"]}
    assert (
        overview["in_several_splits"]["train&test"]["texts"]
        == len(train_keys & {_key(row["text"]) for row in kept["test"]})
        >= 1
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    lengths = np.array([len(tokenizer(row["text"])["input_ids"]) for split in kept.values() for row in split])
    tokens = overview["tokens_per_text"]["all"]
    assert tokens["max"] == lengths.max() and tokens["min"] == lengths.min() and tokens["texts"] == len(lengths)
    assert tokens["p50"] == sorted(lengths)[int(np.ceil(0.5 * len(lengths))) - 1]
    truncated = overview["max_length"]["truncated"]
    assert overview["max_length"]["used"] == 32 and truncated["texts"] == int((lengths > 32).sum()) >= 1
    assert truncated["share"] == pytest.approx((lengths > 32).mean(), abs=1e-4)
    suggested = overview["max_length"]["suggested"]
    assert suggested % 8 == 0 and (lengths > suggested).mean() <= 0.01 and suggested <= 64  # the tiny model's limit
    words = [len(row["text"].split()) for split in kept.values() for row in split]
    assert overview["words_per_text"]["all"]["max"] == max(words)

    for name in ("class_distribution.png", "words_per_text.png", "tokens_per_text.png"):
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.size[0] > 600, name
    assert sorted(overview["files"]) == sorted(path.name for path in folder.iterdir())

    out = result.stdout
    assert f"{len(kept['train'])}" in out and "max_length 32 (recipe) truncates" in out
    assert (
        "duplicate texts in train: " in out
        and "texts in both train and test: " in out
        and "empty texts in validation: 1" in out
    )
    assert str(folder) in out


def test_suggested_max_length_and_percentiles():
    from kerasft.overview import lengths_summary, suggest_max_length, truncation

    lengths = np.array([5] * 98 + [40, 300])
    assert lengths_summary(lengths) == {
        "texts": 100,
        "mean": 8.3,
        "min": 5,
        "p50": 5,
        "p90": 5,
        "p95": 5,
        "p99": 40,
        "max": 300,
    }
    assert suggest_max_length(lengths, limit=512) == 40  # 99% are no longer than 40
    assert suggest_max_length(lengths, limit=32) == 32  # never past the model's limit
    assert suggest_max_length(np.array([3, 4]), limit=512) == 8
    assert truncation(lengths, 32) == {"max_length": 32, "texts": 2, "share": 0.02}
