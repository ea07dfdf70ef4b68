"""Data: load the splits with `datasets`, map labels to ids and keep their names (kerasft.tokenizing tokenizes them).

Every split comes out with canonical columns, whatever the source called them: ``text`` (str),
``text_pair`` (str, for sentence pairs: ``data.text_pair_column``) and ``label``: a ``ClassLabel``
whose names come from the training split or ``data.label_names``, or, with ``data.multi_label``,
a float32 multi-hot list of ``len(label_names)`` (a cell ``"joy,love"``, a list in json/parquet,
or an empty cell for none of the labels). kerasft.batching then turns them into tf.data pipelines
with `Dataset.to_tf_dataset`::

    data = load_splits(recipe.data, seed=42)      # data.splits, data.label_names, data.dropped, data.multi_label

Loading says what it did in one line (rows, seconds, whether `datasets`' on-disk cache served it:
`report_stage`, which tokenizing shares), with `datasets`' progress bars while it runs when stderr
is a terminal. `datasets` caches the loaded files under a fingerprint of each file (path, size,
modification time)::

    kerasft: data: loaded 1000000 rows from texts-1000000.csv in 1.4 s (cached for the next run)
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import numpy as np
from datasets import ClassLabel, DatasetDict, List, Value
from datasets.utils.stratify import approximate_mode

from kerasft.errors import UserError
from kerasft.hub import require_hub

datasets.disable_progress_bars()  # per-split bars for every map and filter drown the training log

SPLITS = ("train", "validation", "test")
TEXT, TEXT_PAIR, LABEL = "text", "text_pair", "label"

# File suffix -> (datasets builder, builder options).
FORMATS = {
    ".csv": ("csv", {}),
    ".tsv": ("csv", {"sep": "\t"}),
    ".txt": ("csv", {"quoting": csv.QUOTE_NONE}),  # `text;label` lines: quotes are part of the text
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
}


@dataclass(frozen=True)
class NamesFrom:
    """Where given label names come from, as an error message names it, and how to fix a label they lack."""

    where: str = "data.label_names"
    fix: str = "fix the data or data.label_names"


EXPORT_NAMES = NamesFrom("the export's labels", "fix the data, or evaluate an export trained with that label")


@dataclass
class Data:
    """The splits a run trains, validates and tests on, and the names of their label ids."""

    splits: DatasetDict  # train, validation, test: text (str), text_pair (str, pairs), label (ClassLabel or multi-hot)
    label_names: list[str]
    dropped: dict[str, int] = field(default_factory=dict)  # empty or missing texts dropped from each split as loaded
    multi_label: bool = False  # label is a float32 multi-hot list of len(label_names)
    pairs: bool = False  # a text_pair column: sentence pairs


def load_splits(data, seed: int) -> Data:
    """Loads train/validation/test with canonical ``text``/``label`` columns and the label names."""
    started = time.time()
    with progress_bars():
        raw = _load_raw(data)
    report_stage("loaded", f"{sum(map(len, raw.values()))} rows from {_sources(data)}", raw.values(), started)
    dropped: dict[str, int] = {}
    splits = DatasetDict({name: _canonical_columns(split, name, data) for name, split in raw.items()})
    splits = DatasetDict(
        {
            name: _drop_empty_texts(_refuse_empty_pairs(split, name), name, dropped, refuse=data.empty_texts == "error")
            for name, split in splits.items()
        }
    )
    names = read_label_names(data.label_names)
    if data.multi_label:
        splits, label_names = encode_multi_labels(splits, data.label_sep, names)
    else:
        splits, label_names = encode_labels(splits, names)
    splits = _carve_missing_splits(splits, data, seed)
    for name, count in (
        ("train", data.train_samples),
        ("validation", data.validation_samples),
        ("test", data.test_samples),
    ):
        if count is not None and count < len(splits[name]):
            splits[name] = splits[name].shuffle(seed=seed).select(range(count))
    return Data(splits, label_names, dropped, multi_label=data.multi_label, pairs=data.text_pair_column is not None)


def load_labelled(path: str, data, label_names: list[str], multi_label: bool) -> datasets.Dataset:
    """One labelled file with the canonical columns and ``label_names``' ids (`kerasft evaluate` on an export)."""
    split = _canonical_columns(load_file(path, data.sep, data.columns, data.quoting), "data", data)
    splits = DatasetDict({"data": _drop_empty_texts(_refuse_empty_pairs(split, "data"), "data")})
    if multi_label:
        return encode_multi_labels(splits, data.label_sep, label_names, first="data", names_from=EXPORT_NAMES)[0][
            "data"
        ]
    return encode_labels(splits, label_names, first="data", names_from=EXPORT_NAMES)[0]["data"]


def read_label_names(value: list[str] | None) -> list[str] | None:
    """``data.label_names``: names as given (``a,b,c``), or read from a file of one name a line, in id order."""
    if not value:
        return None
    given = Path(value[0]).expanduser() if len(value) == 1 else None
    if given is not None and given.is_dir():
        raise UserError(f"data.label_names {given} is a folder; give a file with one name a line, or a,b,c")
    if given is not None and given.is_file():
        where = f"data.label_names file {given}"
        try:
            names = [line.strip() for line in given.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            raise UserError(f"{where} is not UTF-8 text (byte {error.start}); save it as UTF-8") from None
        if len(names) < 2:
            raise UserError(f"{where} has {len(names)} name(s); give at least two, one name a line")
    else:
        names, where = list(value), "data.label_names"
        if len(names) < 2:
            raise UserError(
                f"{where} has 1 name; give at least two, as a,b,c or a file with one name a line (no file "
                f"{value[0]!r} was found)"
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(f"{where} repeats {', '.join(map(repr, repeated))}; each id needs a name of its own")
    return names


def _sources(data) -> str:
    local = [Path(path).name for name in SPLITS if (path := getattr(data, name))]
    return ", ".join(local) if local else f"hub dataset {data.hub}"


def _load_raw(data) -> dict[str, datasets.Dataset]:
    local = {name: getattr(data, name) for name in SPLITS if getattr(data, name)}
    if local:
        loaded = {name: load_file(path, data.sep, data.columns, data.quoting) for name, path in local.items()}
        if "train" not in loaded:
            raise UserError("data.validation/data.test are set but data.train is not: set data.train=<file>")
        return loaded
    require_hub(
        "dataset",
        data.hub,
        fix="download it once with a network, or set data.train=<file> (and data.validation/data.test) to local files",
    )
    try:
        loaded = datasets.load_dataset(data.hub, data.hub_config)
    except (FileNotFoundError, ValueError, datasets.exceptions.DatasetNotFoundError) as error:
        raise UserError(f"cannot load hub dataset {data.hub!r}: {_first_line(error)}") from error
    unknown = set(loaded) - set(SPLITS)
    if "train" not in loaded:
        raise UserError(f"hub dataset {data.hub!r} has no 'train' split (it has {', '.join(loaded)})")
    return {name: split for name, split in loaded.items() if name not in unknown}


def load_file(
    path: str, sep: str | None = None, columns: list[str] | None = None, quoting: str = "csv"
) -> datasets.Dataset:
    """Loads one local data file through `datasets.load_dataset`, choosing the builder by suffix.

    ``quoting="none"`` reads a .csv/.tsv's quotes as ordinary characters (.txt files always do).
    """
    file = Path(path)
    if file.is_dir():
        raise UserError(f"data file {file} is a folder; name a file in it ({', '.join(FORMATS)})")
    if not file.is_file():
        raise UserError(f"data file not found: {file} (check the path, or the recipe's data.train/validation/test)")
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise UserError(f"data file {file}: unknown format {suffix!r}; use one of {', '.join(FORMATS)}")
    builder, options = FORMATS[suffix]
    options = dict(options)
    if builder == "csv":
        if suffix == ".txt":
            if not sep or not columns:
                raise UserError(
                    f"data file {file}: .txt files need data.sep and data.columns (e.g. data.sep=';' "
                    "data.columns=text,label)"
                )
            _check_delimited_lines(file, sep, len(columns))
        elif quoting == "none":
            options["quoting"] = csv.QUOTE_NONE
        if sep:
            options["sep"] = sep
        if columns:
            options["column_names"] = columns
        options["keep_default_na"] = False  # a text that reads "NA" or "null" is a text, not a missing value
    if file.stat().st_size == 0:
        raise UserError(f"data file {file} is empty")
    if suffix != ".parquet":
        _check_utf8(file)
    if builder == "csv" and suffix != ".txt" and quoting == "csv":
        _check_quoting(file, sep or options.get("sep", ","))
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(
        datasets.logging.CRITICAL
    )  # the builders log a failure before raising it; we report it once, below
    try:
        loaded = datasets.load_dataset(builder, data_files=str(file), split="train", **options)
    except Exception as error:  # the builders raise many kinds; each cause is a problem in the file
        if "corresponds to no data" in str(_root_cause(error)):
            raise UserError(f"data file {file} has no rows") from error
        raise UserError(f"data file {file} could not be read: {_first_line(_root_cause(error))}") from error
    finally:
        datasets.logging.set_verbosity(verbosity)
    if len(loaded) == 0:
        raise UserError(f"data file {file} has no rows")
    return loaded


def _check_utf8(file: Path) -> None:
    """Refuses a file that is not UTF-8, naming the first bad line; reads 16 MB at a time (files of any size)."""
    decoder, lines = codecs.getincrementaldecoder("utf-8")(), 0
    with file.open("rb") as handle:
        while block := handle.read(1 << 24):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as error:
                line = lines + block[: error.start].count(b"\n") + 1
                column = error.start - (block.rfind(b"\n", 0, error.start) + 1)
                raise UserError(
                    f"data file {file} line {line}: not valid UTF-8 ({error.reason} at byte {column}); re-save the "
                    "file as UTF-8"
                ) from None
            lines += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise UserError(f"data file {file} ends inside a character ({error.reason}); re-save it as UTF-8") from None


def _check_delimited_lines(file: Path, sep: str, fields: int) -> None:
    with file.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line and line.count(sep) != fields - 1:
                raise UserError(
                    f"data file {file} line {number}: expected {fields} fields separated by {sep!r}, "
                    f"found {line.count(sep) + 1}; fix that line or check data.sep/data.columns"
                )


def _check_quoting(file: Path, sep: str) -> None:
    """Refuses a .csv/.tsv whose quotes join (or split) lines where reading them literally gives one row per line.

    GLUE's .tsv files have texts such as ``"Fuck" he said`` with no enclosing quotes: read as CSV, such a
    quote opens a field that runs on to the next quote, rows later, and rows silently disappear.

    Streams the file, in passes that hold a block or a line at a time: reading a 2 GB file whole took 2 GB of
    memory, the largest share of a 10M-row run's.
    """
    with file.open(encoding="utf-8") as handle:
        if not any('"' in block for block in iter(lambda: handle.read(1 << 20), "")):
            return
    lines, widths = 0, set()
    with file.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                lines += 1
                widths.add(line.count(sep))
    with file.open(encoding="utf-8", newline="") as handle:  # newline="": as the csv module reads files
        records = sum(1 for record in csv.reader(handle, delimiter=sep) if any(cell.strip() for cell in record))
    if records != lines and len(widths) == 1:  # read literally, every line is one row of the same width
        raise UserError(
            f"data file {file}: {lines} lines but {records} rows when quotes enclose fields (a text starting "
            "with a quote runs on to the next quote); if quotes are ordinary characters in this file, as in GLUE's "
            ".tsv files, set data.quoting=none"
        )


ROLES = (("text", "text_column", TEXT), ("text pair", "text_pair_column", TEXT_PAIR), ("label", "label_column", LABEL))


def _canonical_columns(split: datasets.Dataset, name: str, data) -> datasets.Dataset:
    roles = [(role, getattr(data, key), key, canonical) for role, key, canonical in ROLES if getattr(data, key, None)]
    for role, column, key, _ in roles:
        if column not in split.column_names:
            raise UserError(
                f"{name} split has no {role} column {column!r} (columns: {', '.join(split.column_names)}); "
                f"set data.{key}=<name>, or data.columns=... for files without a header"
            )
    split = split.select_columns([column for _, column, _, _ in roles])
    renames = {column: canonical for _, column, _, canonical in roles if column != canonical}
    split = split.rename_columns(renames) if renames else split
    for role, original, key, column in roles:
        feature = split.features[column]
        labels_in_lists = column == LABEL and getattr(data, "multi_label", False) and isinstance(feature, List)
        if not isinstance(feature, (ClassLabel, datasets.Value)) and not labels_in_lists:  # an object, an image...
            example = next((value for value in split[column] if value is not None), None)
            raise UserError(
                f"the {name} split's {role} column {original!r} holds {type(example).__name__} values (e.g. "
                f"{str(example)[:60]!r}), "
                f"not single {'labels' if role == 'label' else 'texts'}; point data.{key} at a column of plain "
                f"{'strings or integers' if role == 'label' else 'strings'}"
                + (", or set data.multi_label=true for lists of labels" if role == "label" else "")
            )
    for column in (TEXT, TEXT_PAIR):  # numbers read from a CSV column are texts too: "42" is a review
        # large_string: how pyarrow reads the text of a large CSV (10M rows); casting it wrote a 2 GB copy
        if column in split.column_names and split.features[column].dtype not in ("string", "large_string"):
            split = split.cast_column(column, datasets.Value("string"))
    return split


def _refuse_empty_pairs(split: datasets.Dataset, name: str) -> datasets.Dataset:
    """A pair with an empty or missing second text is refused: there is no pair to classify."""
    if TEXT_PAIR not in split.column_names:
        return split
    empty = [number for number, text in enumerate(split[TEXT_PAIR], start=1) if not (text and text.strip())]
    if empty:
        raise UserError(
            f"the {name} split has {len(empty)} empty or missing pair texts (data.text_pair_column; the first in data "
            f"row {empty[0]}); a pair needs both texts: fill them in or remove those rows"
        )
    return split


def _drop_empty_texts(
    split: datasets.Dataset, name: str, counts: dict | None = None, refuse: bool = False
) -> datasets.Dataset:
    """Drops rows whose text is empty or missing, saying how many; with ``refuse``, refuses the split instead."""
    kept = split.filter(
        lambda batch: [isinstance(text, str) and text.strip() != "" for text in batch[TEXT]],
        batched=True,
        batch_size=10_000,
    )
    dropped = len(split) - len(kept)
    if counts is not None:
        counts[name] = dropped
    if not dropped:  # the split itself: `filter`'s result reads every column through an indices mapping
        return split
    if refuse:
        first = next(
            number for number, text in enumerate(split[TEXT], start=1) if not (isinstance(text, str) and text.strip())
        )
        raise UserError(
            f"the {name} split has {dropped} empty or missing texts (the first in data row {first}); "
            "fill them in or remove them, or set data.empty_texts=drop to drop them"
        )
    print(f"kerasft: dropped {dropped} empty or missing texts from the {name} split")
    if len(kept) == 0:
        raise UserError(f"the {name} split has no non-empty texts")
    return kept


def encode_labels(
    splits: DatasetDict, label_names: list[str] | None = None, first: str = "train", names_from: NamesFrom = NamesFrom()
) -> tuple[DatasetDict, list[str]]:
    """Makes ``label`` a ClassLabel in every split, with the names found in ``first`` (train) in a stable order.

    String labels are sorted (``["anger", "fear", "joy", ...]``); integer labels keep their ids
    (names ``"0"``, ``"1"``, ...); a ClassLabel from the hub keeps its own names. ``label_names``
    (``data.label_names``) names the ids instead: a label is one of them, or an id into them.
    """
    feature = splits[first].features[LABEL]
    if label_names:
        names = list(label_names)
    elif isinstance(feature, ClassLabel):
        names = list(feature.names)
    else:
        values = _label_values(splits[first], first)
        if all(isinstance(value, str) for value in values):
            names = sorted(values)
        elif all(isinstance(value, int) and value >= 0 for value in values):
            names = [str(index) for index in range(max(values) + 1)]
        else:
            raise UserError(
                "labels must be all strings or all non-negative integers; found "
                + ", ".join(sorted(map(repr, values))[:5])
            )
    ids = LabelIds(names, given=bool(label_names), first=first, names_from=names_from)
    target = ClassLabel(names=names)
    encoded = {}
    for name, split in splits.items():
        feature = split.features[LABEL]
        if feature != target:
            values = _label_values(split, name)
            if isinstance(feature, ClassLabel) and not label_names:
                values = {feature.int2str(value) for value in values}
            unseen = sorted(str(value) for value in values if str(value) not in ids.index)
            if unseen and not label_names:
                raise UserError(
                    f"the {name} split has labels not seen in {first}: {', '.join(map(repr, unseen[:5]))}; fix the "
                    f"data or add examples of them to {first}"
                )
            to_id = {value: ids.id_of(value, name) for value in values}
            features = split.features.copy()
            features[LABEL] = target
            convert = feature.int2str if isinstance(feature, ClassLabel) and not label_names else (lambda value: value)
            split = split.map(
                lambda batch, convert=convert, to_id=to_id: {LABEL: [to_id[convert(value)] for value in batch[LABEL]]},
                batched=True,
                features=features,
            )
        encoded[name] = split
    return DatasetDict(encoded), names


def encode_multi_labels(
    splits: DatasetDict,
    label_sep: str = ",",
    label_names: list[str] | None = None,
    first: str = "train",
    names_from: NamesFrom = NamesFrom(),
) -> tuple[DatasetDict, list[str]]:
    """Makes ``label`` a float32 multi-hot list in every split: ``"joy,love"`` -> ``[0, 1, 1, 0]`` for
    names ``[anger, joy, love, sadness]``.

    A cell holds labels separated by ``label_sep`` (or is a list, in json/jsonl/parquet); an empty
    cell means none of the labels. Names, when ``label_names`` does not give them: a hub
    ``Sequence(ClassLabel)``'s, ``"0"``..``"n"`` for integer ids, else the labels found in
    ``first`` (train), sorted.
    """
    cells = {name: _label_cells(split, label_sep) for name, split in splits.items()}
    feature = splits[first].features[LABEL]
    inner = getattr(feature, "feature", feature)
    if label_names:
        names = list(label_names)
    elif isinstance(inner, ClassLabel):
        names = list(inner.names)
    else:
        found = {label for row in cells[first] for label in row}
        if not found:
            raise UserError(f"the {first} split has no labels at all: every label cell is empty")
        if all(_is_id(label) for label in found):
            names = [str(index) for index in range(max(int(label) for label in found) + 1)]
        else:
            names = sorted(str(label) for label in found)
    ids = LabelIds(names, given=bool(label_names), first=first, names_from=names_from)
    target = List(Value("float32"), length=len(names))
    encoded = {}
    for name, split in splits.items():
        inner = getattr(split.features[LABEL], "feature", split.features[LABEL])
        hot = []
        for row in cells[name]:
            vector = [0.0] * len(names)
            for label in row:
                if isinstance(inner, ClassLabel) and not label_names:
                    label = inner.int2str(label)
                vector[ids.id_of(label, name)] = 1.0
            hot.append(vector)
        encoded[name] = split.remove_columns(LABEL).add_column(LABEL, hot, feature=target)
    return DatasetDict(encoded), names


def _label_cells(split: datasets.Dataset, label_sep: str) -> list[list]:
    """Each row's labels: a list (json, parquet, the hub) as it is; a text cell split at ``label_sep``; a number
    alone."""
    rows = []
    for value in split[LABEL]:
        if value is None:
            rows.append([])
        elif isinstance(value, list):
            rows.append([item.strip() if isinstance(item, str) else item for item in value if item not in (None, "")])
        elif isinstance(value, str):
            rows.append([item.strip() for item in value.split(label_sep) if item.strip()])
        else:
            rows.append([value])
    return rows


def _is_id(label) -> bool:
    return (isinstance(label, int) and not isinstance(label, bool) and label >= 0) or (
        isinstance(label, str) and label.isdigit()
    )


@dataclass
class LabelIds:
    """Label -> id for every split, from the names the first split (train) or ``data.label_names`` gave.

    >>> LabelIds(["neg", "pos"], given=False).id_of("pos", "test")
    1
    >>> LabelIds(["neg", "pos"], given=True).id_of("0", "test")  # given names also take ids into them
    0
    """

    names: list[str]
    given: bool  # the names came from data.label_names (or an export): a label is one of them or an id into them
    first: str = "train"
    names_from: NamesFrom = field(default_factory=NamesFrom)
    index: dict[str, int] = field(init=False, repr=False)  # name -> id

    def __post_init__(self):
        if len(self.names) < 2:
            raise UserError(
                f"the {self.first} split has a single label ({self.names[0]!r}); a classifier needs at least two"
            )
        self.index = {name: number for number, name in enumerate(self.names)}

    def id_of(self, label, split: str) -> int:
        """The id of one label of ``split``: its name's position, or (given names, or integer labels) an id."""
        key = label if isinstance(label, str) else str(label)
        if key in self.index:
            return self.index[key]
        if self.given and _is_id(label) and int(key) < len(self.names):
            return int(key)
        if self.given and _is_id(label):
            raise UserError(
                f"the {split} split has label id {int(key)}, out of range for the {len(self.names)} names of "
                f"{self.names_from.where} (ids 0 to {len(self.names) - 1}); {self.names_from.fix}"
            )
        if self.given:
            raise UserError(
                f"the {split} split has label {key!r}, which is not in {self.names_from.where} "
                f"({', '.join(self.names[:5])}{', ...' if len(self.names) > 5 else ''}); {self.names_from.fix}"
            )
        raise UserError(
            f"the {split} split has labels not seen in {self.first}: {key!r}; fix the data or add examples of them "
            f"to {self.first}"
        )


def _label_values(split: datasets.Dataset, name: str) -> set:
    values = set(split.unique(LABEL))
    if None in values or "" in values:  # "": an empty cell of a CSV file, read with keep_default_na=False
        raise UserError(f"the {name} split has rows with no label; fill them in or remove them")
    return values


def _carve_missing_splits(splits: DatasetDict, data, seed: int) -> DatasetDict:
    """A missing validation or test split is carved from train, seeded and stratified by label (`carve`), one split
    after the other.

    The labels are read once, and every carved split is selected from train directly. Reading them
    again through the first carve's selection cost 470 MB and 8.5 s for 1M rows (datasets gathers an
    index-mapped column one row at a time, `Table.fast_gather`).
    """
    missing = [
        (name, fraction)
        for name, fraction in (("test", data.test_fraction), ("validation", data.validation_fraction))
        if name not in splits
    ]
    if missing:
        train = splits["train"]
        labels = _stratification_labels(train)
        rows = np.arange(len(train))
        for name, fraction in missing:
            rest, part = carve(None if labels is None else labels[rows], len(rows), fraction, seed)
            splits[name] = train.select(rows[part])
            rows = rows[rest]
            print(f"kerasft: no {name} split given; carved {len(splits[name])} examples ({fraction:.0%}) from train")
        if not len(rows):  # each carve takes at least one row
            carved = " and ".join(name for name, _ in missing)
            raise UserError(
                f"the train split's {len(train)} rows all went to the {carved} carved from it; give more training "
                "rows, or data.validation/data.test files"
            )
        splits["train"] = train.select(rows)
    return DatasetDict({name: splits[name] for name in SPLITS})


def carve(labels: np.ndarray | None, examples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (the rest, a seeded ``fraction``) of ``examples`` rows, stratified by ``labels`` when given and
    every class has two examples: the rows ``train_test_split(test_size=fraction, seed=seed,
    stratify_by_column="label")`` carves, falling back as it does to an unstratified split.

    `_stratified_split` draws them as `train_test_split` does, with the labels read as one column: datasets 5
    reads them row by row there (``np.asarray`` over its lazy ``Column``), 48 of the 51 s that
    loading 200,000 rows took.
    """
    carved = math.ceil(fraction * examples)
    try:
        if labels is None:  # multi-hot: no class to stratify by
            raise ValueError("not stratifiable")
        return _stratified_split(labels, examples - carved, carved, np.random.default_rng(seed))
    except ValueError:  # a class too small to stratify: a plain seeded split, as datasets falls back to
        permutation = np.random.default_rng(seed).permutation(examples)
        return permutation[carved:], permutation[:carved]


def _stratified_split(labels: np.ndarray, n_train: int, n_test: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """The first split of datasets' ``stratified_shuffle_split_generate_indices``: the same draws from ``rng`` in
    the same order, so the same rows.

    Written again because datasets' gathers every row number into a Python list of NumPy scalars (about 40 bytes a
    row); this one concatenates arrays. Carving 10M rows peaked at 0.90 GB with it, 1.10 GB with datasets'.
    """
    classes, class_of_row = np.unique(labels, return_inverse=True)
    class_counts = np.bincount(class_of_row)
    if class_counts.min() < 2 or n_train < len(classes) or n_test < len(classes):
        raise ValueError("not stratifiable")
    class_rows = np.split(np.argsort(class_of_row, kind="mergesort"), np.cumsum(class_counts)[:-1])
    train_counts = approximate_mode(class_counts, n_train, rng)
    test_counts = approximate_mode(class_counts - train_counts, n_test, rng)
    train, test = [], []
    for rows, count, in_train, in_test in zip(class_rows, class_counts, train_counts, test_counts):
        shuffled = rows.take(rng.permutation(count), mode="clip")
        train.append(shuffled[:in_train])
        test.append(shuffled[in_train : in_train + in_test])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _stratification_labels(split: datasets.Dataset) -> np.ndarray | None:
    """The label ids of a single-label split as one array; None for multi-hot labels."""
    if not isinstance(split.features[LABEL], ClassLabel):
        return None
    return split.select_columns([LABEL]).with_format("arrow")[:][LABEL].to_numpy()


@contextlib.contextmanager
def progress_bars():
    """`datasets`' progress bars while preparing data, on a terminal only: a log gets `report_stage`'s line instead."""
    if not sys.stderr.isatty():
        yield
        return
    datasets.enable_progress_bars()
    try:
        yield
    finally:
        datasets.disable_progress_bars()


def split_parts(splits) -> list[datasets.Dataset]:
    """The datasets of a DatasetDict, or the one Dataset."""
    return list(splits.values()) if isinstance(splits, DatasetDict) else [splits]


def cache_files(parts) -> list[Path]:
    """The arrow files in `datasets`' cache that hold ``parts`` (none for data held in memory)."""
    return [Path(entry["filename"]) for part in parts for entry in part.cache_files]


def report_stage(done: str, what: str, parts, started: float, how: str = "") -> None:
    """One line per stage: what, how long, and whether `datasets`' cache served it."""
    files = cache_files(parts)
    if not files:
        cache = "in memory"
    elif all(path.exists() and path.stat().st_mtime < started for path in files):
        cache = "read from the cache"
        how = ""  # how it would have been computed: nothing was
    else:
        cache = "cached for the next run"
    print(f"kerasft: data: {done} {what} in {time.time() - started:.1f} s{how} ({cache})", flush=True)


def _root_cause(error: BaseException) -> BaseException:
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
