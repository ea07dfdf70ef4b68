"""Small files in the formats the multi-label and sentence-pair recipes read offline, written by the tests.

GoEmotions' original tsv (no header: text, comma-separated label ids, comment id; names in
emotions.txt) and GLUE's MRPC tsv (header ``Quality  #1 ID  #2 ID  #1 String  #2 String``, quotes
as ordinary characters). Texts use the quickstart's words, which the tiny checkpoint's vocabulary
holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import REPO

EMOTIONS = ["anger", "gratitude", "joy", "neutral"]
CUES = {0: "i am so angry", 1: "thank you so much", 2: "i am happy"}
FILLER = "where is my parcel the app crashes at login please refund my order was charged twice".split()


def goemotions_rows(count: int, seed: int) -> list[tuple[str, str]]:
    """(text, label cell) rows: zero to two emotions, or neutral (id 3); some cells empty (no label at all)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(count):
        labels = sorted(rng.choice(3, size=int(rng.choice([0, 1, 1, 2])), replace=False).tolist())
        words = [CUES[label] for label in labels] + list(rng.choice(FILLER, size=int(rng.integers(2, 7))))
        rng.shuffle(words)
        cell = ",".join(map(str, labels)) if labels else ("3" if rng.random() < 0.8 else "")
        rows.append((" ".join(words), cell))
    return rows


def write_goemotions(folder: Path, sizes=(("train", 48), ("dev", 16), ("test", 16))) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emotions.txt").write_text("\n".join(EMOTIONS) + "\n", encoding="utf-8")
    for seed, (split, count) in enumerate(sizes):
        lines = [
            f"{text}\t{cell}\tc{split}{number}" for number, (text, cell) in enumerate(goemotions_rows(count, seed))
        ]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def goemotions_overrides(folder: Path) -> list[str]:
    """The overrides recipes/goemotions.py's docstring gives for the original files."""
    return [
        f"data.train={folder / 'train.tsv'}",
        f"data.validation={folder / 'dev.tsv'}",
        f"data.test={folder / 'test.tsv'}",
        "data.columns=text,labels,id",
        f"data.label_names={folder / 'emotions.txt'}",
    ]


def mrpc_rows(count: int, seed: int) -> list[tuple[int, str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(count):
        words = list(rng.choice(FILLER, size=int(rng.integers(3, 9))))
        same = bool(rng.random() < 0.6)
        other = list(words) if same else list(rng.choice(FILLER, size=int(rng.integers(3, 9))))
        rng.shuffle(other)
        first = " ".join(words)
        if number % 5 == 0:  # an unbalanced quote, as GLUE's files have: an ordinary character
            first = '"' + first
        rows.append((int(same), first, " ".join(other)))
    return rows


def write_mrpc(folder: Path, sizes=(("train", 40), ("test", 16))) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (split, count) in enumerate(sizes):
        lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        lines += [f"{label}\t{2 * n}\t{2 * n + 1}\t{a}\t{b}" for n, (label, a, b) in enumerate(mrpc_rows(count, seed))]
        (folder / f"msr_paraphrase_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def mrpc_overrides(folder: Path) -> list[str]:
    """The overrides recipes/mrpc.py's docstring gives for GLUE's files."""
    return [
        f"data.train={folder / 'msr_paraphrase_train.tsv'}",
        f"data.test={folder / 'msr_paraphrase_test.tsv'}",
        "data.text_column=#1 String",
        "data.text_pair_column=#2 String",
        "data.label_column=Quality",
    ]


def recipe_with(name: str, overrides: list[str]):
    from kerasft.recipe import apply_overrides, load_recipe

    return apply_overrides(load_recipe(REPO / "recipes" / f"{name}.py"), overrides)
