"""The evidence table of the training knobs: sweeps' test figures, averaged over seeds, per setting.

    python benchmarks/knobs_evidence.py runs/knobs-constant runs/knobs-linear --labels surprise,love [--json out.json]

Reads each sweep folder's sweep.json (kerasft.sweep), groups its complete points by every swept value
but ``train.seed`` (and by the overrides every point of that sweep shares), and prints a Markdown
table: per setting, the mean and standard deviation over seeds of the test macro F1, accuracy, and
the test recall of each label named in ``--labels``, then each seed's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

SEED = "train.seed"


def settings(sweep_dirs: list[Path]) -> dict[str, list[dict]]:
    """{setting: [point, ...]}; a setting names the swept values other than the seed, and the sweep's fixed ones."""
    grouped: dict[str, list[dict]] = {}
    for folder in sweep_dirs:
        sweep = json.loads((folder / "sweep.json").read_text())
        shared = [override for override in sweep["overrides"] if override.startswith("train.")]
        for point in sweep["points"]:
            if point["state"] != "complete":
                continue
            swept = [f"{key}={value}" for key, value in point["values"].items() if key != SEED]
            grouped.setdefault(", ".join(swept + shared) or "defaults", []).append(point)
    return grouped


def mean_sd(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {spread:.3f}"


def table(grouped: dict[str, list[dict]], labels: list[str]) -> tuple[str, list[dict]]:
    heading = ["setting", "seeds", "test macro F1", "test accuracy", *(f"{label} recall" for label in labels)]
    lines = ["| " + " | ".join(heading) + " |", "|---|---:|" + "---:|" * (len(heading) - 2)]
    rows = []
    for setting, points in grouped.items():
        points = sorted(points, key=lambda point: int(point["values"].get(SEED, 0)))
        f1 = [point["test"]["macro_f1"] for point in points]
        accuracy = [point["test"]["accuracy"] for point in points]
        recalls = {label: [point["test_recall"][label] for point in points] for label in labels}
        seeds = ",".join(point["values"].get(SEED, "?") for point in points)
        cells = [setting, seeds, mean_sd(f1), mean_sd(accuracy), *(mean_sd(recalls[label]) for label in labels)]
        lines.append("| " + " | ".join(cells) + " |")
        rows.append({"setting": setting, "seeds": seeds, "macro_f1": f1, "accuracy": accuracy, "recall": recalls})
    return "\n".join(lines), rows


def per_seed(rows: list[dict], labels: list[str]) -> str:
    lines = ["| setting | seed | test macro F1 | " + " | ".join(f"{label} recall" for label in labels) + " |"]
    lines.append("|---|---:|---:|" + "---:|" * len(labels))
    for row in rows:
        for index, seed in enumerate(row["seeds"].split(",")):
            recalls = " | ".join(f"{row['recall'][label][index]:.3f}" for label in labels)
            lines.append(f"| {row['setting']} | {seed} | {row['macro_f1'][index]:.3f} | {recalls} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweeps", nargs="+", type=Path, help="sweep folders (each with a sweep.json)")
    parser.add_argument("--labels", default="surprise,love", help="labels whose test recall to report")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    labels = [label.strip() for label in args.labels.split(",") if label.strip()]
    summary, rows = table(settings(args.sweeps), labels)
    print(summary + "\n\nEach seed:\n\n" + per_seed(rows, labels))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
