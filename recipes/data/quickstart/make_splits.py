"""Rebuild the quickstart train/validation/test splits from all.csv.

Usage (from any directory):

    python recipes/data/quickstart/make_splits.py

Reads ``all.csv`` (header ``text,label``) next to this script, checks it,
and writes ``train.csv``, ``validation.csv`` and ``test.csv`` next to it.
The split is stratified by label and fully deterministic (fixed seed), so
running the script again reproduces the committed files byte for byte.
Only the Python standard library is used.
"""

import csv
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 20240601
VAL_FRACTION = 0.10
TEST_FRACTION = 0.20
LABELS = ("billing", "delivery", "technical", "account", "feedback")

HERE = Path(__file__).resolve().parent


def normalise(text):
    """Lowercase, drop punctuation and collapse whitespace (duplicate check)."""
    return " ".join(re.sub(r"[^\w\s]", "", text.lower()).split())


def read_master(path):
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        if header != ["text", "label"]:
            raise ValueError(f"{path.name}: unexpected header {header!r}")
        rows = []
        for lineno, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ValueError(f"{path.name}:{lineno}: expected 2 fields, got {len(row)}")
            text, label = row[0].strip(), row[1].strip()
            if not text:
                raise ValueError(f"{path.name}:{lineno}: empty text")
            if label not in LABELS:
                raise ValueError(f"{path.name}:{lineno}: unknown label {label!r}")
            rows.append((text, label))
    dupes = [k for k, n in Counter(normalise(t) for t, _ in rows).items() if n > 1]
    if dupes:
        raise ValueError(f"{path.name}: near-duplicate texts: {dupes}")
    return rows


def stratified_split(rows, seed=SEED):
    rng = random.Random(seed)
    splits = {"train": [], "validation": [], "test": []}
    for label in LABELS:
        group = [r for r in rows if r[1] == label]
        rng.shuffle(group)
        n_test = round(len(group) * TEST_FRACTION)
        n_val = round(len(group) * VAL_FRACTION)
        splits["test"].extend(group[:n_test])
        splits["validation"].extend(group[n_test : n_test + n_val])
        splits["train"].extend(group[n_test + n_val :])
    for name in splits:  # mix labels within each file
        rng.shuffle(splits[name])
    return splits


def write_split(path, rows):
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)  # default dialect: quotes fields with commas/quotes
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main():
    rows = read_master(HERE / "all.csv")
    splits = stratified_split(rows)
    for name, split_rows in splits.items():
        write_split(HERE / f"{name}.csv", split_rows)
        counts = Counter(label for _, label in split_rows)
        detail = ", ".join(f"{label}={counts[label]}" for label in LABELS)
        print(f"{name}.csv: {len(split_rows)} rows ({detail})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
