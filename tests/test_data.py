"""Data: each file format, label mapping, carved splits, seeded subsets, and clear errors for bad files."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys

import pytest
from datasets import ClassLabel, Dataset, DatasetDict

from kerasft.data import _stratification_labels, carve, encode_labels, load_file, load_splits
from kerasft.errors import UserError
from kerasft.recipe import DataConfig
from kerasft.tokenizing import resolve_max_length, tokenize

ROWS = [
    ("i didnt feel humiliated", "sadness"),
    ("i am so happy today", "joy"),
    ("that made me furious", "anger"),
    ("what a lovely surprise", "joy"),
    ("i feel so alone", "sadness"),
    ("stop shouting at me", "anger"),
]


def split_off(split, fraction: float, seed: int):
    """One carve of ``split``, as `load_splits` makes it: (the rest, the carved part)."""
    rest, part = carve(_stratification_labels(split), len(split), fraction, seed)
    return split.select(rest), split.select(part)


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    import pandas as pd

    frame = pd.DataFrame(ROWS, columns=["text", "label"])
    paths = {
        "csv": tmp_path / "d.csv",
        "tsv": tmp_path / "d.tsv",
        "json": tmp_path / "d.json",
        "jsonl": tmp_path / "d.jsonl",
        "parquet": tmp_path / "d.parquet",
        "txt": tmp_path / "d.txt",
    }
    frame.to_csv(paths["csv"], index=False)
    frame.to_csv(paths["tsv"], index=False, sep="\t")
    write(paths["json"], json.dumps([{"text": t, "label": label} for t, label in ROWS]))
    write(paths["jsonl"], "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in ROWS))
    frame.to_parquet(paths["parquet"])
    write(paths["txt"], "".join(f"{t};{label}\n" for t, label in ROWS))
    return paths


@pytest.mark.parametrize("kind", ["csv", "tsv", "json", "jsonl", "parquet", "txt"])
def test_every_format_loads_the_same_rows(files, kind):
    options = {"sep": ";", "columns": ["text", "label"]} if kind == "txt" else {}
    loaded = load_file(str(files[kind]), **options)
    assert list(zip(loaded["text"], loaded["label"])) == ROWS


def test_txt_keeps_quotes_and_na_words_as_text(tmp_path):
    path = write(tmp_path / "t.txt", 'she said "no" to me;anger\nNA;joy\nnull;sadness\n')
    loaded = load_file(str(path), sep=";", columns=["text", "label"])
    assert loaded["text"] == ['she said "no" to me', "NA", "null"]


def test_string_labels_become_sorted_class_ids_in_every_split(files):
    loaded = load_splits(
        DataConfig(train=str(files["csv"]), validation=str(files["json"]), test=str(files["parquet"])), seed=1
    )
    splits, names = loaded.splits, loaded.label_names
    assert names == ["anger", "joy", "sadness"]
    for split in splits.values():
        assert split.features["label"] == ClassLabel(names=names)
        assert [names[i] for i in split["label"]] == [label for _, label in ROWS]


def test_integer_labels_keep_their_ids():
    splits = DatasetDict(
        {
            "train": Dataset.from_dict({"text": ["a", "b", "c"], "label": [2, 0, 1]}),
            "test": Dataset.from_dict({"text": ["d"], "label": [1]}),
        }
    )
    encoded, names = encode_labels(splits)
    assert names == ["0", "1", "2"] and encoded["train"]["label"] == [2, 0, 1] and encoded["test"]["label"] == [1]


def test_hub_class_labels_keep_their_names():
    feature = ClassLabel(names=["sadness", "joy", "love"])
    train = Dataset.from_dict({"text": ["a", "b"], "label": [2, 0]}).cast_column("label", feature)
    encoded, names = encode_labels(DatasetDict({"train": train}))
    assert names == ["sadness", "joy", "love"] and encoded["train"]["label"] == [2, 0]


def test_custom_columns_are_renamed(tmp_path):
    path = write(tmp_path / "d.csv", "review,stars,extra\ngood,pos,1\nbad,neg,2\nfine,pos,3\nawful,neg,4\n")
    config = DataConfig(train=str(path), text_column="review", label_column="stars")
    loaded = load_splits(config, seed=0)
    splits, names = loaded.splits, loaded.label_names
    assert names == ["neg", "pos"] and splits["train"].column_names == ["text", "label"]


def test_missing_validation_and_test_are_carved_seeded_and_stratified(tmp_path):
    rows = "".join(f"text number {i};{'ab'[i % 2]}\n" for i in range(200))
    path = write(tmp_path / "d.txt", rows)
    config = DataConfig(train=str(path), sep=";", columns=["text", "label"], validation_fraction=0.1, test_fraction=0.2)
    first, again, other = (load_splits(config, seed=seed).splits for seed in (7, 7, 8))
    assert (len(first["train"]), len(first["validation"]), len(first["test"])) == (144, 16, 40)
    assert first["validation"]["text"] == again["validation"]["text"] != other["validation"]["text"]
    assert sorted(first["test"]["label"]).count(0) == 20  # stratified: half of each label
    assert not set(first["train"]["text"]) & (set(first["validation"]["text"]) | set(first["test"]["text"]))


@pytest.mark.parametrize(
    "labels",
    [
        "ab" * 50,
        "ab" * 49 + "cd",
        "".join(random.Random(0).sample("a" * 37 + "b" * 21 + "c" * 9 + "d" * 3 + "e" * 30, 100)),
    ],
    ids=["stratified", "a class of one", "five uneven classes"],
)
def test_split_off_carves_the_rows_train_test_split_carves(labels):
    split = encode_labels(DatasetDict(train=Dataset.from_dict({"text": list(range(100)), "label": list(labels)})))[0]
    rest, carved = split_off(split["train"], 0.15, seed=3)
    try:  # what kerasft did before it carved by itself
        expected = split["train"].train_test_split(test_size=0.15, seed=3, stratify_by_column="label")
    except ValueError:
        expected = split["train"].train_test_split(test_size=0.15, seed=3)
    assert (rest["text"], carved["text"]) == (expected["train"]["text"], expected["test"]["text"])


@pytest.mark.parametrize("empty_texts", [False, True], ids=["all texts", "an empty text dropped"])
def test_carving_two_splits_reads_no_column_row_by_row(tmp_path, monkeypatch, empty_texts):
    """The carved splits are the rows two carves make one after the other, and no column is read through an
    indices mapping (datasets gathers those one row at a time: 470 MB for 1M rows)."""
    from datasets.formatting import formatting

    rows = "".join(f"text number {i};{'abc'[i % 3]}\n" for i in range(300)) + (";a\n" if empty_texts else "")
    config = DataConfig(train=str(write(tmp_path / "d.txt", rows)), sep=";", columns=["text", "label"])
    gathered = []
    gather = formatting._query_table_with_indices_mapping

    def record(table, key, indices):
        if isinstance(key, str) or (isinstance(key, slice) and key.stop is None):  # a whole column, not a batch
            gathered.append(key)
        return gather(table, key, indices)

    monkeypatch.setattr(formatting, "_query_table_with_indices_mapping", record)
    splits = load_splits(config, seed=5).splits
    assert gathered == []
    monkeypatch.undo()
    train = load_file(str(config.train), ";", ["text", "label"])
    train = encode_labels(DatasetDict(train=train.filter(lambda row: bool(row["text"]))))[0]["train"]
    rest, test = split_off(train, config.test_fraction, 5)
    rest, validation = split_off(rest, config.validation_fraction, 5)
    assert [list(splits[name]["text"]) for name in ("train", "validation", "test")] == [
        list(rest["text"]),
        list(validation["text"]),
        list(test["text"]),
    ]


def test_large_string_texts_are_kept_as_they_are(tmp_path):
    """pyarrow reads the texts of a large CSV as large_string; they are strings already, not cast (a full copy)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    texts = [f"text number {i}" for i in range(40)]
    pq.write_table(
        pa.table({"text": pa.array(texts, pa.large_string()), "label": ["ab"[i % 2] for i in range(40)]}), path
    )
    splits = load_splits(DataConfig(train=str(path)), seed=0).splits
    assert splits["train"].features["text"].dtype == "large_string"
    assert sorted(text for name in ("train", "validation", "test") for text in splits[name]["text"]) == sorted(texts)


def test_the_quoting_check_holds_a_line_at_a_time_not_the_file(tmp_path):
    """The check that refuses quotes joining lines streams the file: its memory does not grow with the file."""
    import tracemalloc

    from kerasft.data import _check_quoting

    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("text,label\n")
        handle.writelines(f'"a quoted text, number {i}",{"ab"[i % 2]}\n' for i in range(300_000))  # 10 MB, quotes
    tracemalloc.start()
    try:
        _check_quoting(path, ",")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert path.stat().st_size > 9_000_000 and peak < 3_000_000, peak


def test_samples_are_shuffle_then_select(files, tmp_path):
    rows = "".join(f"text {i};{'ab'[i % 2]}\n" for i in range(50))
    path = write(tmp_path / "d.txt", rows)
    config = DataConfig(train=str(path), test=str(path), sep=";", columns=["text", "label"], test_samples=10)
    splits = load_splits(config, seed=42).splits
    expected = load_file(str(path), ";", ["text", "label"]).shuffle(seed=42).select(range(10))
    assert splits["test"]["text"] == expected["text"]


def test_empty_texts_are_dropped_with_a_count(tmp_path, capsys):
    path = write(tmp_path / "d.csv", 'text,label\ngood,pos\n"",neg\n   ,neg\nbad,neg\nfine,pos\n')
    loaded = load_splits(DataConfig(train=str(path), validation=str(path), test=str(path)), seed=0)
    splits = loaded.splits
    assert loaded.dropped == {"train": 2, "validation": 2, "test": 2}
    assert splits["train"]["text"] == ["good", "bad", "fine"]
    assert "dropped 2 empty or missing texts from the train split" in capsys.readouterr().out


@pytest.mark.parametrize(
    "name, content, options, expected",
    [
        ("missing.csv", None, {}, "data file not found"),
        ("d.xlsx", "x", {}, "unknown format '.xlsx'"),
        ("empty.csv", "text,label\n", {}, "has no rows"),
        ("d.txt", "a;b\n", {}, "need data.sep and data.columns"),
        (
            "ragged.txt",
            "ok;joy\nfine;joy\nbad;line;joy\n",
            {"sep": ";", "columns": ["text", "label"]},
            "line 3: expected 2 fields",
        ),
        ("ragged.csv", "text,label\nok,joy\nbad,line,joy\n", {}, "could not be read"),
    ],
    ids=["missing file", "unknown format", "header only", "txt without sep", "ragged txt line", "ragged csv line"],
)
def test_bad_files_get_one_clear_line(tmp_path, name, content, options, expected):
    path = tmp_path / name
    if content is not None:
        write(path, content)
    with pytest.raises(UserError, match=expected) as error:
        load_file(str(path), **options)
    assert "\n" not in str(error.value)


def test_undecodable_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"text,label\ngood,pos\nbad \xff\xfe text,neg\n")
    with pytest.raises(UserError, match=r"line 3: not valid UTF-8"):
        load_file(str(path))


@pytest.mark.parametrize(
    "content, config, expected",
    [
        ("text,label\na,x\nb,x\n", {}, "single label"),
        ("words,label\na,x\nb,y\n", {}, "no text column 'text'"),
        ("text,tag\na,x\nb,y\n", {}, "no label column 'label'"),
    ],
    ids=["single class", "no text column", "no label column"],
)
def test_bad_splits_are_refused(tmp_path, content, config, expected):
    path = write(tmp_path / "d.csv", content)
    with pytest.raises(UserError, match=expected):
        load_splits(DataConfig(train=str(path), **config), seed=0)


def test_labels_unseen_in_train_are_refused(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\nc,x\nd,y\n")
    test = write(tmp_path / "test.csv", "text,label\ne,x\nf,z\n")
    with pytest.raises(UserError, match="test split has labels not seen in train: 'z'"):
        load_splits(DataConfig(train=str(train), validation=str(train), test=str(test)), seed=0)


def test_tokenized_batches_pad_per_batch_and_keep_order(tiny_checkpoint):
    import numpy as np
    from transformers import AutoTokenizer

    from kerasft.batching import PadToLongest, in_input_order, ordered_batches

    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    texts = ["short one", "a much longer text with many more words in it than the first", "mid sized text here"]
    split = tokenize(Dataset.from_dict({"text": texts, "label": [0, 1, 2]}), tokenizer, max_length=8)
    dataset, plan = ordered_batches(split, 2, PadToLongest(tokenizer))
    (first, first_labels), (second, second_labels) = list(dataset)
    assert first["input_ids"].shape == (2, 8)  # padded to the batch's longest, truncated at max_length, longest first
    assert second["input_ids"].shape == (1, len(tokenizer("short one")["input_ids"]))
    labels = np.concatenate([first_labels.numpy(), second_labels.numpy()])
    assert in_input_order(labels, plan).tolist() == [0, 1, 2]


def test_max_length_defaults_to_the_checkpoint_limit(tiny_checkpoint):
    from transformers import AutoConfig, AutoTokenizer

    tokenizer, config = AutoTokenizer.from_pretrained(tiny_checkpoint), AutoConfig.from_pretrained(tiny_checkpoint)
    assert resolve_max_length(tokenizer, config, None) == 64
    assert resolve_max_length(tokenizer, config, 16) == 16


def test_a_max_length_past_the_position_embeddings_is_refused_and_the_default_stays_within_them(tiny_checkpoint):
    from transformers import AutoConfig, AutoTokenizer

    from kerasft.model import position_limit

    tokenizer, config = AutoTokenizer.from_pretrained(tiny_checkpoint), AutoConfig.from_pretrained(tiny_checkpoint)
    assert resolve_max_length(tokenizer, config, 64) == 64
    with pytest.raises(UserError, match=r"max_length=65 is more than the 64 tokens .* model.max_length=64 or less"):
        resolve_max_length(tokenizer, config, 65)
    # RoBERTa's kind counts positions from after the padding index; DeBERTa-v2's relative positions have no table
    roberta = AutoConfig.for_model("roberta", max_position_embeddings=80, pad_token_id=1)
    tokenizer.model_max_length = 512  # as hub tokenizers say: the default is then the model's own limit
    assert position_limit(roberta) == 78 and resolve_max_length(tokenizer, roberta, None) == 78
    assert position_limit(AutoConfig.for_model("mpnet", max_position_embeddings=514, pad_token_id=1)) == 512
    assert position_limit(AutoConfig.for_model("deberta-v2", position_biased_input=False)) is None
    assert position_limit(AutoConfig.for_model("albert", max_position_embeddings=512)) == 512


def test_hub_dataset_while_offline_says_how_to_use_local_files(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(UserError, match="cannot be reached.*data.train=<file>"):
        load_splits(DataConfig(hub="dair-ai/emotion"), seed=0)


# --- datasets' cache: reused for the same inputs, never for changed ones ---------------------------------------------


def test_a_second_run_reuses_the_tokenized_data_but_a_changed_file_tokenizer_or_max_length_never_does(
    tmp_path, tiny_checkpoint, wordlevel_checkpoint, capsys
):
    from kerasft.model import load_tokenizer

    path = write(tmp_path / "train.csv", "text,label\n" + "".join(f"{text},{label}\n" for text, label in ROWS * 4))

    def prepare(checkpoint, max_length: int) -> tuple[list, list[str]]:
        capsys.readouterr()
        splits = load_splits(DataConfig(train=str(path)), seed=1).splits
        tokenized = tokenize(splits, load_tokenizer(str(checkpoint)), max_length, log=True)
        lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("kerasft: data:")]
        return list(tokenized["train"]["input_ids"]), lines

    def fresh(checkpoint, max_length: int) -> list:
        tokenizer = load_tokenizer(str(checkpoint))
        texts = list(load_splits(DataConfig(train=str(path)), seed=1).splits["train"]["text"])
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]

    first, lines = prepare(tiny_checkpoint, 16)
    assert len(lines) == 2 and lines[0].startswith("kerasft: data: loaded 24 rows from train.csv in ")
    assert lines[1].startswith("kerasft: data: tokenized 24 texts in ") and "(cached for the next run)" in lines[1]
    again, lines = prepare(tiny_checkpoint, 16)
    assert again == first and all(line.endswith("(read from the cache)") for line in lines)

    shorter, lines = prepare(tiny_checkpoint, 4)
    assert "(cached for the next run)" in lines[1] and shorter == fresh(tiny_checkpoint, 4) != first
    other, lines = prepare(wordlevel_checkpoint, 16)
    assert "(cached for the next run)" in lines[1] and other == fresh(wordlevel_checkpoint, 16)  # (same ids here)

    write(path, path.read_text(encoding="utf-8").replace("happy", "sad"))  # the same size, other texts
    changed, lines = prepare(tiny_checkpoint, 16)
    assert all("(cached for the next run)" in line for line in lines)
    assert changed == fresh(tiny_checkpoint, 16) != first


def test_processes_sharing_the_cache_tokenize_one_at_a_time_and_the_later_ones_read_the_first_ones_ids(
    tmp_path, tiny_checkpoint, capsys
):
    """Two workers of a run on a shared filesystem: the one that waited reads the cache instead of tokenizing."""
    import datasets

    from kerasft.model import load_tokenizer
    from kerasft.tokenizing import tokenizing_lock

    path = write(tmp_path / "train.csv", "text,label\n" + "".join(f"{text},{label}\n" for text, label in ROWS * 4))
    program = (
        "from kerasft.data import load_splits; from kerasft.model import load_tokenizer; "
        "from kerasft.tokenizing import tokenize; "
        "from kerasft.recipe import DataConfig; "
        f"splits = load_splits(DataConfig(train={str(path)!r}), seed=1).splits; "
        f"tokenize(splits, load_tokenizer({str(tiny_checkpoint)!r}), 16, log=True)"
    )
    splits = load_splits(DataConfig(train=str(path)), seed=1).splits
    with tokenizing_lock(splits):  # this process tokenizes first; the other waits for it
        other = subprocess.Popen(
            [sys.executable, "-c", program],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"HF_DATASETS_CACHE": str(datasets.config.HF_DATASETS_CACHE)},
        )
        stages = ("kerasft: data: waiting", "kerasft: data: tokenized")
        while (line := other.stdout.readline()) and not line.startswith(stages):
            pass  # its load lines
        assert line.startswith("kerasft: data: waiting for another process tokenizing the same data")
        tokenize(splits, load_tokenizer(str(tiny_checkpoint)), 16)
    assert other.wait(timeout=120) == 0
    assert other.stdout.read().strip().endswith("(read from the cache)")


def test_large_splits_are_tokenized_by_a_process_per_core(monkeypatch):
    from kerasft import tokenizing

    # the affinity kerasft.strategy.usable_cores reads
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert tokenizing.tokenizing_processes(tokenizing.PARALLEL_ROWS - 1) is None
    assert tokenizing.tokenizing_processes(tokenizing.PARALLEL_ROWS) == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert tokenizing.tokenizing_processes(10 * tokenizing.PARALLEL_ROWS) is None


def test_a_stage_read_from_the_cache_does_not_say_how_it_would_have_been_computed(tmp_path, capsys, monkeypatch):
    import time

    from kerasft import data

    cache_file = tmp_path / "cache-0.arrow"
    cache_file.write_bytes(b"")
    monkeypatch.setattr(data, "cache_files", lambda parts: [cache_file])
    data.report_stage("tokenized", "3 texts", [], time.time() + 1, " in-graph on 2 threads")  # the file is older
    data.report_stage("tokenized", "3 texts", [], 0, " in-graph on 2 threads")  # the file is newer: just written
    cached, computed = capsys.readouterr().out.splitlines()
    assert cached.startswith("kerasft: data: tokenized 3 texts in ") and cached.endswith(" s (read from the cache)")
    assert computed.endswith(" s in-graph on 2 threads (cached for the next run)")
