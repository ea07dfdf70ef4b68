"""Overview (`kerasft inspect`): what a careful user checks before training, done from the recipe itself.

The splits are exactly those `kerasft run` would train on (same loading, carving, sampling and
seed) and the token counts come from the checkpoint's tokenizer, special tokens included, as
``model.max_length`` counts them::

    overview, pictures = build_overview(Session(recipe))
    folder, overview = write_overview(Session(recipe), Path("runs"))  # runs/inspect-<recipe>-<timestamp>/
    # overview.json, class_distribution.png, words_per_text.png, tokens_per_text.png

Duplicates are found after case folding and collapsing whitespace ("Hello  world" = "hello world").

Multi-label data: each label counts the texts that have it, and the overview adds the label
cardinality (labels per text) and co-occurrence (texts with both labels of a pair of labels).
Sentence pairs: tokens are counted per text (first and second) and per pair, through the
checkpoint's pair template; the truncation share and the suggested max_length are the pairs'.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

OVERVIEW_FILE = "overview.json"
PICTURES = ("class_distribution.png", "words_per_text.png", "tokens_per_text.png")
COVERAGE = 0.99  # the suggested max_length truncates at most 1% of texts
LENGTHS = (32, 64, 128, 256, 512)  # truncation shares shown for these max_length values (up to the model's limit)
PERCENTILES = (50, 90, 95, 99)


def normalise(text: str) -> str:
    """The form duplicates are compared in: case-folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


def lengths_summary(values) -> dict:
    """Mean, min, max and nearest-rank percentiles (at least p% of the texts are no longer than ``p<p>``)."""
    values = np.asarray(values)
    if values.size == 0:
        return {"texts": 0}
    summary = {"texts": int(values.size), "mean": round(float(values.mean()), 2), "min": int(values.min())}
    summary |= {f"p{q}": int(np.percentile(values, q, method="inverted_cdf")) for q in PERCENTILES}
    return summary | {"max": int(values.max())}


def token_lengths(tokenizer, texts: list[str], chunk: int = 1000, pairs: list[str] | None = None) -> np.ndarray:
    """Tokens per text (or per pair, with ``pairs``) without truncation, special tokens included; tokenized in chunks
    to bound memory."""
    lengths = []
    for start in range(0, len(texts), chunk):
        second = None if pairs is None else pairs[start : start + chunk]
        encoded = tokenizer(
            texts[start : start + chunk], second, add_special_tokens=True, truncation=False, verbose=False
        )
        lengths.extend(len(ids) for ids in encoded["input_ids"])
    return np.asarray(lengths, dtype=np.int64)


def suggest_max_length(lengths: np.ndarray, limit: int, coverage: float = COVERAGE) -> int:
    """The smallest multiple of 8 that truncates at most ``1 - coverage`` of the texts, capped at the model's limit."""
    needed = int(np.percentile(lengths, coverage * 100, method="inverted_cdf")) if lengths.size else 8
    return int(min(limit, max(8, math.ceil(needed / 8) * 8)))


def truncation(lengths: np.ndarray, max_length: int) -> dict:
    count = int((lengths > max_length).sum())
    return {"max_length": int(max_length), "texts": count, "share": round(count / max(lengths.size, 1), 4)}


def build_overview(session) -> tuple[dict, dict[str, bytes]]:
    """The overview of a kerasft.session.Session's data, as a JSON-ready dict, and the pictures as ``{file name: PNG
    bytes}``."""
    from kerasft import data, plots
    from kerasft.tokenizing import resolve_max_length

    recipe, tokenizer = session.requested, session.tokenizer
    splits, label_names, dropped = session.data.splits, session.data.label_names, session.data.dropped
    limit = resolve_max_length(tokenizer, session.config, None)
    max_length = session.max_length

    multi_label, pairs = session.data.multi_label, session.data.pairs
    first = {name: list(split[data.TEXT]) for name, split in splits.items()}
    second = {name: list(split[data.TEXT_PAIR]) for name, split in splits.items()} if pairs else None
    # what duplicates and overlaps compare: the text, or both texts of a pair
    texts = {name: [f"{a} ||| {b}" for a, b in zip(first[name], second[name])] for name in splits} if pairs else first
    labels = {name: _label_lists(split[data.LABEL], label_names, multi_label) for name, split in splits.items()}
    words = {
        name: np.array([len(text.split()) for text in texts[name]], dtype=np.int64) - (1 if pairs else 0)
        for name in splits
    }
    tokens = {name: token_lengths(tokenizer, first[name], pairs=second[name] if pairs else None) for name in splits}
    all_tokens = np.concatenate(list(tokens.values()))
    by_class = {"words": {label: [] for label in label_names}, "tokens": {label: [] for label in label_names}}
    for name in splits:
        for names, word_count, token_count in zip(labels[name], words[name], tokens[name]):
            for label in names:
                by_class["words"][label].append(int(word_count))
                by_class["tokens"][label].append(int(token_count))

    tallies = {name: Counter(label for names in labels[name] for label in names) for name in splits}
    counts = {name: {label: tallies[name][label] for label in label_names} for name in splits}
    suggested = suggest_max_length(all_tokens, limit)
    overview = {
        "recipe": recipe.name,
        "checkpoint": recipe.model.checkpoint,
        "labels": label_names,
        "splits": {
            name: _split_facts(texts[name], labels[name], dropped.get(name, 0), tokens[name], max_length)
            for name in splits
        },
        "class_counts": counts,
        "class_shares": {
            name: {label: round(count / max(len(texts[name]), 1), 4) for label, count in row.items()}
            for name, row in counts.items()
        },
        "imbalance_ratio": {name: _imbalance(row) for name, row in counts.items()},
        "words_per_text": {
            "all": lengths_summary(np.concatenate(list(words.values()))),
            "by_class": {label: lengths_summary(by_class["words"][label]) for label in label_names},
            "by_split": {name: lengths_summary(words[name]) for name in splits},
        },
        "tokens_per_text": {
            "all": lengths_summary(all_tokens),
            "by_class": {label: lengths_summary(by_class["tokens"][label]) for label in label_names},
            "by_split": {name: lengths_summary(tokens[name]) for name in splits},
        },
        "max_length": {
            "recipe": recipe.model.max_length,
            "model_limit": limit,
            "used": max_length,
            "truncated": truncation(all_tokens, max_length),
            "truncated_at": {
                str(length): truncation(all_tokens, length)["share"]
                for length in sorted({*LENGTHS, max_length})
                if length <= limit
            },
            "suggested": suggested,
            "suggested_truncates": truncation(all_tokens, suggested),
        },
        "in_several_splits": _overlaps(texts),
    }
    if multi_label:
        overview["multi_label"] = _cardinality_and_cooccurrence(labels, label_names)
    if pairs:
        overview["pairs"] = {
            "tokens_per_first_text": lengths_summary(
                np.concatenate([token_lengths(tokenizer, first[n]) for n in splits])
            ),
            "tokens_per_second_text": lengths_summary(
                np.concatenate([token_lengths(tokenizer, second[n]) for n in splits])
            ),
            "tokens_per_pair": lengths_summary(all_tokens),
            "pairs_truncated": truncation(all_tokens, max_length),
        }
    overview["warnings"] = _warnings(overview)
    total = len(all_tokens)
    pictures = {
        "class_distribution.png": plots.class_distribution_png(
            counts, label_names, f"Texts per label in each split ({recipe.name}, {total} texts)"
        ),
        "words_per_text.png": plots.histograms_by_class_png(
            by_class["words"], f"Words per text, by label (all splits, {total} texts)", "words (split on whitespace)"
        ),
        "tokens_per_text.png": plots.histograms_by_class_png(
            by_class["tokens"],
            f"Tokens per text, by label (all splits, {total} texts): max_length {max_length} truncates "
            f"{overview['max_length']['truncated']['share']:.1%}",
            "tokens, special tokens included",
            limit=max_length,
            limit_label=f"max_length {max_length}",
        ),
    }
    return overview, pictures


def _label_lists(column, label_names: list[str], multi_label: bool) -> list[list[str]]:
    """Each example's label names: one, or (multi-label) those of its multi-hot row, possibly none."""
    if multi_label:
        return [[label_names[index] for index in np.flatnonzero(np.asarray(row) > 0.5)] for row in column]
    return [[label_names[index]] for index in column]


def _cardinality_and_cooccurrence(labels: dict[str, list[list[str]]], label_names: list[str]) -> dict:
    """Labels per text in each split, and in train how often two labels share a text (the most frequent pairs)."""
    cardinality = {}
    for name, rows in labels.items():
        sizes = Counter(len(names) for names in rows)
        cardinality[name] = {
            "mean": round(float(np.mean([len(names) for names in rows])) if rows else 0.0, 3),
            "texts_with_no_label": sizes.get(0, 0),
            "texts_by_label_count": {str(count): sizes[count] for count in sorted(sizes)},
        }
    index = {label: number for number, label in enumerate(label_names)}
    together = np.zeros((len(label_names), len(label_names)), dtype=np.int64)
    for names in labels.get("train", []):
        ids = [index[label] for label in names]
        for a in ids:
            for b in ids:
                together[a, b] += 1
    pairs = [
        (int(together[a, b]), label_names[a], label_names[b])
        for a in range(len(label_names))
        for b in range(a + 1, len(label_names))
        if together[a, b]
    ]
    return {
        "labels_per_text": cardinality,
        "cooccurrence_train": {label_names[a]: together[a].tolist() for a in range(len(label_names))},
        "most_frequent_pairs_train": [
            {"labels": [a, b], "texts": count} for count, a, b in sorted(pairs, key=lambda item: -item[0])[:10]
        ],
    }


def _split_facts(texts: list[str], labels: list[list[str]], dropped: int, tokens: np.ndarray, max_length: int) -> dict:
    seen, duplicates, labels_of = set(), 0, defaultdict(set)
    for text, names in zip(texts, labels):
        key = normalise(text)
        duplicates += key in seen
        seen.add(key)
        labels_of[key].add(tuple(sorted(names)))
    return {
        "texts": len(texts),
        "empty_texts_dropped": dropped,
        "duplicate_texts": duplicates,  # rows whose text already appeared earlier in the split
        "texts_with_conflicting_labels": sum(len(found) > 1 for found in labels_of.values()),
        "truncated": truncation(tokens, max_length),
    }


def _imbalance(row: dict) -> float | None:
    """Largest class over smallest; None when a label has no texts at all."""
    smallest = min(row.values())
    return round(max(row.values()) / smallest, 2) if smallest else None


def _overlaps(texts: dict[str, list[str]]) -> dict:
    """For each pair of splits: how many distinct texts are in both, with a few examples."""
    names = list(texts)
    keyed = {name: {} for name in names}
    for name in names:
        for text in texts[name]:
            keyed[name].setdefault(normalise(text), text)
    found = {}
    for index, first in enumerate(names):
        for second in names[index + 1 :]:
            shared = [keyed[first][key] for key in keyed[first] if key in keyed[second]]
            found[f"{first}&{second}"] = {"texts": len(shared), "examples": shared[:3]}
    return found


def _warnings(overview: dict) -> list[str]:
    notes = []
    for name, facts in overview["splits"].items():
        if facts["empty_texts_dropped"]:
            notes.append(f"empty texts in {name}: {facts['empty_texts_dropped']} (dropped before training)")
        if facts["duplicate_texts"]:
            notes.append(f"duplicate texts in {name}: {facts['duplicate_texts']} (ignoring case and spacing)")
        if facts["texts_with_conflicting_labels"]:
            notes.append(f"texts with more than one label in {name}: {facts['texts_with_conflicting_labels']}")
        missing = [label for label, count in overview["class_counts"][name].items() if count == 0]
        if missing:
            notes.append(f"{name} has no texts of {', '.join(missing)}")
    for pair, shared in overview["in_several_splits"].items():
        if shared["texts"]:
            first, second = pair.split("&")
            notes.append(
                f"texts in both {first} and {second}: {shared['texts']} ({second} figures will flatter the model)"
            )
    ratio = overview["imbalance_ratio"].get("train")
    if ratio is not None and ratio >= 3:
        notes.append(
            f"train is imbalanced ({ratio:g}:1 between the largest and smallest class): watch macro F1, not only "
            "accuracy"
        )
    cut = overview["max_length"]["truncated"]
    if cut["share"] > 1 - COVERAGE:
        notes.append(
            f"max_length {cut['max_length']} truncates {cut['share']:.1%} of texts; "
            f"model.max_length={overview['max_length']['suggested']} would truncate "
            f"{overview['max_length']['suggested_truncates']['share']:.1%}"
        )
    return notes


def write_overview(session, output_dir: Path) -> tuple[Path, dict]:
    """Builds the overview and writes it into a new folder ``output_dir/inspect-<recipe>-<timestamp>``."""
    from kerasft.rundir import RunDir

    overview, pictures = build_overview(session)  # everything that can fail does so before the folder exists
    folder = RunDir.create(output_dir, None, f"inspect-{session.requested.name}")
    for name, png in pictures.items():
        folder.write(name, png)
    folder.write_json(OVERVIEW_FILE, overview | {"files": sorted([OVERVIEW_FILE, *pictures])})
    return folder.path, overview


def format_summary(overview: dict, folder: Path) -> str:
    """The compact text `kerasft inspect` prints."""
    splits, labels = overview["splits"], overview["labels"]
    names = list(splits)
    lines = [
        f"kerasft inspect: {overview['recipe']}: {sum(s['texts'] for s in splits.values())} texts, {len(labels)} labels"
    ]
    width = max(12, *map(len, labels))
    lines.append(f"  {'label':<{width}}" + "".join(f"{name:>12}" for name in names))
    for label in labels:
        lines.append(
            f"  {label:<{width}}"
            + "".join(
                f"{overview['class_counts'][name][label]:>7} {overview['class_shares'][name][label]:>4.0%}"
                for name in names
            )
        )
    lines.append(f"  {'texts':<{width}}" + "".join(f"{splits[name]['texts']:>12}" for name in names))
    for key, title in (("empty_texts_dropped", "empty"), ("duplicate_texts", "duplicates")):
        lines.append(f"  {title:<{width}}" + "".join(f"{splits[name][key]:>12}" for name in names))
    words, tokens, cut = overview["words_per_text"]["all"], overview["tokens_per_text"]["all"], overview["max_length"]
    lines.append(f"  words per text:  median {words['p50']}, p95 {words['p95']}, max {words['max']}")
    lines.append(
        f"  tokens per text: median {tokens['p50']}, p90 {tokens['p90']}, p95 {tokens['p95']}, p99 {tokens['p99']}, "
        f"max {tokens['max']}"
    )
    source = "recipe" if cut["recipe"] is not None else "model limit"
    lines.append(
        f"  max_length {cut['used']} ({source}) truncates {cut['truncated']['share']:.1%} of texts "
        f"({cut['truncated']['texts']}); suggested max_length {cut['suggested']} truncates "
        f"{cut['suggested_truncates']['share']:.1%}"
    )
    if "multi_label" in overview:
        for name, facts in overview["multi_label"]["labels_per_text"].items():
            counts = ", ".join(f"{count}: {texts}" for count, texts in facts["texts_by_label_count"].items())
            lines.append(f"  labels per text in {name}: mean {facts['mean']:.2f} (texts by label count: {counts})")
        frequent = overview["multi_label"]["most_frequent_pairs_train"][:5]
        if frequent:
            lines.append(
                "  labels most often together in train: "
                + ", ".join(f"{'+'.join(item['labels'])} {item['texts']}" for item in frequent)
            )
    if "pairs" in overview:
        facts = overview["pairs"]
        lines.append(
            f"  pairs: tokens per first text median {facts['tokens_per_first_text']['p50']}, second text median "
            f"{facts['tokens_per_second_text']['p50']}, pair median {facts['tokens_per_pair']['p50']} (p95 "
            f"{facts['tokens_per_pair']['p95']}); max_length {facts['pairs_truncated']['max_length']} truncates "
            f"{facts['pairs_truncated']['share']:.1%} of pairs (longest first)"
        )
    shared = ", ".join(f"{pair} {found['texts']}" for pair, found in overview["in_several_splits"].items())
    lines.append(f"  texts in more than one split: {shared}")
    lines += [f"  warning: {note}" for note in overview["warnings"]]
    lines.append(f"  wrote {', '.join(PICTURES)} and {OVERVIEW_FILE} to {folder}")
    return "\n".join(lines)
