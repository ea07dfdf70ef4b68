"""Writes SYNTHETIC stand-ins for GoEmotions (multi-label) and MRPC (sentence pairs), in their original file formats.

    python benchmarks/make_multilabel_pairs.py goemotions OUT_DIR [--train 3000 --dev 500 --test 1000] [--seed 0]
    python benchmarks/make_multilabel_pairs.py mrpc OUT_DIR [--train 3668 --test 1725] [--seed 0]

The real data cannot be downloaded here (no Hugging Face hub, no GitHub), so the quality benchmark
(benchmarks/multilabel_pairs_quality.py) trains on these. They are built so that neither task is
solved by a word list, and so that neither side of the comparison reaches a ceiling that hides a
difference:

- ``goemotions``: GoEmotions' tsv layout (no header: text, comma-separated label ids, comment id)
  and ``emotions.txt``. Ten labels (nine emotions and neutral) with skewed frequencies; a comment
  has no emotion (neutral), one, two or three. Each emotion shows as one of several cue phrases,
  some shared by two emotions (``ugh`` is anger or annoyance), and about one comment in six also
  negates another emotion's cue (``not scared at all``), which must not count. Labels are noisy as
  annotations are: 5% of true labels are dropped, and 2% of comments get a spurious one.
- ``mrpc``: GLUE's MRPC tsv layout (header ``Quality  #1 ID  #2 ID  #1 String  #2 String``) with
  quotes as ordinary characters, about 68% paraphrases like the real data. A paraphrase restates
  a news sentence with synonyms, the passive voice, another clause order or a dropped detail; a
  non-paraphrase keeps most words but swaps who did what to whom, changes a number, the verb or
  a party, or negates it. 4% of labels are flipped.

The same seed always writes the same files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

EMOTIONS = {  # name -> (share of comments with it, cue phrases); the last label is neutral
    "admiration": (0.14, ["great job", "so impressive", "well done", "amazing work", "you nailed it", "brilliant"]),
    "amusement": (0.10, ["lol", "haha", "that's hilarious", "made me laugh", "so funny", "lmao"]),
    "anger": (0.07, ["furious", "so angry", "this is outrageous", "ugh", "absolutely livid", "makes my blood boil"]),
    "annoyance": (0.09, ["annoying", "ugh", "so irritating", "get on my nerves", "tired of this", "come on"]),
    "curiosity": (0.08, ["i wonder why", "how does that work", "curious about", "what happened next", "any idea why"]),
    "disappointment": (0.06, ["let down", "disappointing", "expected better", "what a shame", "not what i hoped"]),
    "fear": (0.05, ["scared", "terrified", "freaking me out", "so nervous", "afraid", "gives me chills"]),
    "gratitude": (0.11, ["thank you", "thanks so much", "really appreciate it", "grateful", "thanks a lot"]),
    "joy": (0.09, ["so happy", "this made my day", "delighted", "feeling great", "love this", "so glad"]),
}
NEUTRAL = "neutral"
TOPICS = (
    "the game last night|this thread|my landlord|the new update|the referee|your comment|the ending of the show|"
    "my cat|the traffic this morning|the recipe|that interview|the patch notes|my boss|the final episode|the mods|"
    "this subreddit|the weather|the trailer|my neighbour|the price change"
).split("|")
FILLER = (
    "honestly|i mean|to be fair|tbh|anyway|like|just|really|literally|you know|actually|seriously|at this point|"
    "for real|kind of|idk"
).split("|")
FRAMES = [
    "{filler} {cue} about {topic}",
    "{cue}, {topic} {filler}",
    "{topic}? {cue}",
    "{filler}, {topic} is {cue_bare}",
    "{cue} {filler}. {topic} again",
    "reading about {topic}: {cue}",
]
NEUTRAL_FRAMES = [
    "{topic} is on tuesday {filler}",
    "{filler} i saw {topic} yesterday",
    "does anyone have a link to {topic}",
    "{topic} was posted an hour ago",
    "i think {topic} starts at 8",
    "{filler}, {topic} is in the sidebar",
]


def goemotions_rows(count: int, rng: np.random.Generator) -> list[tuple[str, list[int]]]:
    names = list(EMOTIONS)
    shares = np.array([EMOTIONS[name][0] for name in names])
    rows = []
    for _ in range(count):
        size = rng.choice([0, 1, 2, 3], p=[0.28, 0.56, 0.13, 0.03])
        chosen = sorted(rng.choice(len(names), size=size, replace=False, p=shares / shares.sum()).tolist())
        parts = []
        for label in chosen:
            cue = rng.choice(EMOTIONS[names[label]][1])
            frame = rng.choice(FRAMES)
            parts.append(
                frame.format(filler=rng.choice(FILLER), cue=cue, cue_bare=cue, topic=rng.choice(TOPICS)).strip()
            )
        if not chosen:
            parts.append(rng.choice(NEUTRAL_FRAMES).format(topic=rng.choice(TOPICS), filler=rng.choice(FILLER)))
        if rng.random() < 0.17:  # another emotion's cue, negated: not that emotion
            other = rng.choice([index for index in range(len(names)) if index not in chosen])
            parts.insert(rng.integers(len(parts) + 1), f"not {rng.choice(EMOTIONS[names[other]][1])} at all though")
        labels = [label for label in chosen if rng.random() >= 0.05]
        if rng.random() < 0.02:
            labels = sorted(set(labels) | {int(rng.integers(len(names)))})
        rows.append((". ".join(parts), labels if labels else [len(names)]))  # no emotion left: neutral
    return rows


def write_goemotions(folder: Path, sizes: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "emotions.txt").write_text("\n".join([*EMOTIONS, NEUTRAL]) + "\n", encoding="utf-8")
    for split, count in sizes.items():
        lines = [
            f"{text}\t{','.join(map(str, labels))}\te{split[0]}{number:05d}"
            for number, (text, labels) in enumerate(goemotions_rows(count, rng))
        ]
        (folder / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


COMPANIES = (
    "Microsoft|Oracle|Intel|Siemens|Nokia|Pfizer|Boeing|Vodafone|Nestle|Toyota|Shell|Reuters|Disney|Cisco|Bayer|"
    "Unilever|Sony|Alcatel|Novartis|PeopleSoft"
).split("|")
PEOPLE = "Smith|Garcia|Chen|Muller|Okafor|Rossi|Tanaka|Dubois|Kowalski|Johansson|Patel|Haddad".split("|")
VERBS = {  # verb -> (past tense, synonyms in the past tense, past participle of each, in order)
    "acquire": ("acquired", ["bought", "took over"], ["acquired", "bought", "taken over"]),
    "sue": ("sued", ["took legal action against", "filed a lawsuit against"], ["sued", "taken to court", "sued"]),
    "hire": ("hired", ["recruited", "brought in"], ["hired", "recruited", "brought in"]),
    "beat": ("beat", ["defeated", "outbid"], ["beaten", "defeated", "outbid"]),
    "praise": ("praised", ["commended", "applauded"], ["praised", "commended", "applauded"]),
}
DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday".split("|")
SOURCES = ["a spokesman said", "the company said in a statement", "officials said", "analysts said", "sources said"]


def _sentence(a, verb, b, amount, day, source, passive=False, synonym=0, fronted=False, dropped=False, negated=False):
    past, synonyms, participles = VERBS[verb]
    verb_text = [past, *synonyms][synonym]
    if negated:
        verb_text = f"did not {verb}" if synonym == 0 else f"never {verb_text}"
    core = f"{b} was {participles[synonym]} by {a}" if passive and not negated else f"{a} {verb_text} {b}"
    money = f"for ${amount} million" if rng_flag(amount) else f"in a deal worth {amount} million dollars"
    detail = "" if dropped else f", {source}"
    if fronted:
        return f"On {day}, {core} {money}{detail}."
    return f"{core} {money} on {day}{detail}."


def rng_flag(amount: int) -> bool:
    return amount % 2 == 0  # the money phrase's form follows the amount, so both sentences of a pair share it


def mrpc_rows(count: int, rng: np.random.Generator) -> list[tuple[int, str, str]]:
    rows = []
    for _ in range(count):
        parties = COMPANIES if rng.random() < 0.7 else PEOPLE
        a, b = rng.choice(parties, size=2, replace=False)
        verb = rng.choice(list(VERBS))
        amount, day, source = int(rng.integers(2, 900)), rng.choice(DAYS), rng.choice(SOURCES)
        first = _sentence(a, verb, b, amount, day, source, fronted=rng.random() < 0.3)
        paraphrase = rng.random() < 0.68
        options = {
            "passive": rng.random() < 0.4,
            "synonym": int(rng.integers(3)),
            "fronted": rng.random() < 0.5,
            "dropped": rng.random() < 0.4,
        }
        if paraphrase:
            second = _sentence(a, verb, b, amount, day, rng.choice(SOURCES), **options)
        else:
            change = rng.choice(["swap", "amount", "verb", "party", "negate"], p=[0.3, 0.2, 0.2, 0.2, 0.1])
            if change == "swap":
                a, b = b, a
            elif change == "amount":
                amount = amount + int(rng.integers(1, 50))
            elif change == "verb":
                verb = rng.choice([other for other in VERBS if other != verb])
            elif change == "party":
                b = rng.choice([party for party in parties if party not in (a, b)])
            negated = change == "negate"
            second = _sentence(a, verb, b, amount, day, rng.choice(SOURCES), negated=negated, **options)
        label = int(paraphrase) if rng.random() >= 0.04 else int(not paraphrase)
        rows.append((label, first, second))
    return rows


def write_mrpc(folder: Path, sizes: dict[str, int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in sizes.items():
        lines = ["Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"]
        for number, (label, first, second) in enumerate(mrpc_rows(count, rng)):
            if rng.random() < 0.05:  # GLUE's texts have unbalanced quotes: ordinary characters (data.quoting=none)
                first = f'"{first}'
            lines.append(f"{label}\t{2 * number + 1}\t{2 * number + 2}\t{first}\t{second}")
        (folder / f"msr_paraphrase_{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["goemotions", "mrpc"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--train", type=int)
    parser.add_argument("--dev", type=int, default=500)
    parser.add_argument("--test", type=int)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.kind == "goemotions":
        write_goemotions(
            args.folder, {"train": args.train or 3000, "dev": args.dev, "test": args.test or 1000}, args.seed
        )
    else:
        write_mrpc(args.folder, {"train": args.train or 3668, "test": args.test or 1725}, args.seed)


if __name__ == "__main__":
    main()
