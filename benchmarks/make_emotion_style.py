"""Writes SYNTHETIC emotion-style data: `text;label` lines, six labels, lengths spread like dair-ai/emotion.

    python benchmarks/make_emotion_style.py OUT.txt [--rows 2048] [--seed 0]

The real dair-ai/emotion data cannot be downloaded here (no hub access), so the training benchmark
runs on this stand-in: lowercase first-person sentences ("i feel ..."), labels sadness, joy, love,
anger, fear, surprise with the real data's skewed frequencies, and word counts from 2 to 66 with a
median near 17 (a log-normal, clipped), like the real data. Each text carries one or two words
of its emotion among neutral filler, so the task is learnable but not trivial within one epoch.
The same seed always writes the same file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

LABELS = {  # the real data's label frequencies (train split, approximately)
    "sadness": 0.29,
    "joy": 0.335,
    "love": 0.08,
    "anger": 0.135,
    "fear": 0.12,
    "surprise": 0.04,
}
CUES = {
    "sadness": ["miserable", "heartbroken", "lonely", "gloomy", "hopeless", "depressed", "crushed", "unhappy"],
    "joy": ["happy", "cheerful", "delighted", "glad", "thrilled", "content", "joyful", "pleased"],
    "love": ["loving", "tender", "affectionate", "devoted", "romantic", "passionate", "caring", "fond"],
    "anger": ["furious", "irritated", "angry", "annoyed", "resentful", "outraged", "bitter", "mad"],
    "fear": ["scared", "anxious", "terrified", "nervous", "afraid", "frightened", "worried", "uneasy"],
    "surprise": ["amazed", "shocked", "astonished", "stunned", "surprised", "startled", "curious", "impressed"],
}
FILLER = (
    "i im feel feeling like really just so about the a that and to of my me it when this was have been but not "
    "today work people time day because still some what think know things little bit always never again home "
    "after before week friends family school life going get make little much more even though while morning night"
).split()
OPENINGS = [
    ["i", "feel"],
    ["i", "am", "feeling"],
    ["im", "feeling"],
    ["i", "feel", "so"],
    ["i", "was", "feeling"],
    ["i", "still", "feel"],
]


def make_rows(rows: int, seed: int) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    names = list(LABELS)
    labels = rng.choice(len(names), size=rows, p=np.array(list(LABELS.values())) / sum(LABELS.values()))
    words = np.clip(np.round(rng.lognormal(mean=np.log(17), sigma=0.55, size=rows)), 2, 66).astype(int)
    out = []
    for label, count in zip(labels, words):
        name = names[label]
        opening = OPENINGS[rng.integers(len(OPENINGS))]
        cue = CUES[name][rng.integers(len(CUES[name]))]
        text = (opening + [cue])[:count]
        filler = list(rng.choice(FILLER, size=max(0, count - len(text))))
        if count > 12:  # a second cue somewhere in longer texts
            filler[rng.integers(len(filler))] = CUES[name][rng.integers(len(CUES[name]))]
        out.append((" ".join(text + filler), name))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = make_rows(args.rows, args.seed)
    args.out.write_text("".join(f"{text};{label}\n" for text, label in rows), encoding="utf-8")
    counts = sorted(len(text.split()) for text, _ in rows)
    print(
        f"wrote {len(rows)} synthetic rows to {args.out}: {counts[0]}-{counts[-1]} words, median "
        f"{counts[len(counts) // 2]}"
    )


if __name__ == "__main__":
    main()
