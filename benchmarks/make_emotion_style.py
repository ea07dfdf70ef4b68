"""Writes SYNTHETIC emotion-style data: `text;label` lines, six labels, lengths spread like dair-ai/emotion.

    python benchmarks/make_emotion_style.py OUT.txt [--rows 2048] [--seed 0] [--distinctive P --label-noise Q]

The real dair-ai/emotion data cannot be downloaded here (no hub access), so the training benchmark
runs on this stand-in: lowercase first-person sentences ("i feel ..."), labels sadness, joy, love,
anger, fear, surprise with the real data's skewed frequencies, and word counts from 2 to 66 with a
median near 17 (a log-normal, clipped), like the real data. Each text carries one or two words
of its emotion among neutral filler, so the task is learnable but not trivial within one epoch.
The same seed always writes the same file.

That task is easy: every model reaches ~99.8% in one epoch, so it cannot show what class weights or
schedules do. ``--distinctive P`` makes a harder one, where the rare labels are really hard: each
label keeps only two cue words of its own, and each cue of a text is one of them with probability P;
otherwise it is a word the label shares with its group (joy, love, surprise: pleasant; sadness,
anger, fear: unpleasant), which names the group but not the label. A text with shared cues only is
ambiguous, and a model that minimises the plain loss calls it the group's most frequent label, so
``love`` (8%) and ``surprise`` (4%) lose recall. ``--label-noise Q`` then gives a share Q of the rows
another label, drawn uniformly. Without these options the file is byte for byte the easy one.
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
# --distinctive: two cue words per label, and words shared within each group of labels
OWN_CUES = {
    "sadness": ["heartbroken", "gloomy"],
    "joy": ["cheerful", "delighted"],
    "love": ["affectionate", "devoted"],
    "anger": ["furious", "outraged"],
    "fear": ["terrified", "frightened"],
    "surprise": ["astonished", "stunned"],
}
SHARED_CUES = {
    "pleasant": ["wonderful", "warm", "excited", "moved", "lucky", "overwhelmed"],
    "unpleasant": ["upset", "tense", "awful", "shaken", "drained", "hurt"],
}
GROUP = {"joy": "pleasant", "love": "pleasant", "surprise": "pleasant"} | dict.fromkeys(
    ("sadness", "anger", "fear"), "unpleasant"
)
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


def make_rows(
    rows: int, seed: int, distinctive: float | None = None, label_noise: float = 0.0
) -> list[tuple[str, str]]:
    rng = np.random.default_rng(seed)
    names = list(LABELS)
    labels = rng.choice(len(names), size=rows, p=np.array(list(LABELS.values())) / sum(LABELS.values()))
    words = np.clip(np.round(rng.lognormal(mean=np.log(17), sigma=0.55, size=rows)), 2, 66).astype(int)

    def cue(name: str) -> str:
        if distinctive is None:
            return CUES[name][rng.integers(len(CUES[name]))]
        pool = OWN_CUES[name] if rng.random() < distinctive else SHARED_CUES[GROUP[name]]
        return pool[rng.integers(len(pool))]

    out = []
    for label, count in zip(labels, words):
        name = names[label]
        opening = OPENINGS[rng.integers(len(OPENINGS))]
        text = (opening + [cue(name)])[:count]
        filler = list(rng.choice(FILLER, size=max(0, count - len(text))))
        if count > 12:  # a second cue somewhere in longer texts
            filler[rng.integers(len(filler))] = cue(name)
        out.append((" ".join(text + filler), name))
    if label_noise:  # drawn after the texts, so that the texts are those of the same seed without noise
        for index in np.flatnonzero(rng.random(rows) < label_noise):
            out[index] = (out[index][0], str(rng.choice([other for other in names if other != out[index][1]])))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--distinctive", type=float, help="the harder task: each cue is one of its label's own words with this chance"
    )
    parser.add_argument("--label-noise", type=float, default=0.0, help="share of rows given another label")
    args = parser.parse_args()
    rows = make_rows(args.rows, args.seed, args.distinctive, args.label_noise)
    args.out.write_text("".join(f"{text};{label}\n" for text, label in rows), encoding="utf-8")
    counts = sorted(len(text.split()) for text, _ in rows)
    print(
        f"wrote {len(rows)} synthetic rows to {args.out}: {counts[0]}-{counts[-1]} words, median "
        f"{counts[len(counts) // 2]}"
    )


if __name__ == "__main__":
    main()
