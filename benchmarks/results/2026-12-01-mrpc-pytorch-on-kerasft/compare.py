"""MRPC at 1e-4: PyTorch on kerasft's batches and start (this folder's pytorch_on_kerasft.py) against kerasft's own runs
and the Trainer's (round 6, ../2026-11-30-mrpc-seeds-2/mrpc-seeds.json), seed by seed and as distributions.

    python benchmarks/results/2026-12-01-mrpc-pytorch-on-kerasft/compare.py pytorch-on-kerasft.json [more.json ...]

Each file is one probe (its ``kerasft_overrides`` name it); only the seeds every probe has are compared. A file
written by benchmarks/multilabel_pairs_quality.py (it has ``settings``) adds its kerasft runs as one more probe:
kerasft itself under those overrides (../2026-12-01-mrpc-kerasft-random-batches/).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

HERE = Path(__file__).resolve().parent
ROUND_6 = HERE.parent / "2026-11-30-mrpc-seeds-2" / "mrpc-seeds.json"
MAJORITY = 0.6754  # the test split's majority class: a run that ended predicting it alone


def main() -> None:
    sides = {}
    for path in sys.argv[1:]:
        probe = json.loads(Path(path).read_text())
        benchmark = "settings" in probe
        overrides = (probe["settings"] if benchmark else probe).get("kerasft_overrides", [])
        random = "train.group_by_length=false" in overrides
        if benchmark:
            name = "kerasft, " + ("random batches" if random else "its own overrides")
            sides[name] = {run["seed"]: run for run in probe["runs"] if run["side"] == "kerasft"}
            continue
        name = "pytorch, kerasft's start, " + ("random batches" if random else "kerasft's batches")
        sides[name] = {run["seed"]: run for run in probe["runs"]}
    probes = list(sides)
    for run in json.loads(ROUND_6.read_text())["runs"]:
        sides.setdefault(run["side"], {})[run["seed"]] = run
    seeds = sorted(set.intersection(*(set(side) for side in sides.values())))
    print("seed | " + " | ".join(sides) + " (test accuracy; epoch-3 training loss)")
    for seed in seeds:
        cells = [f"{side[seed]['test']['accuracy']:.4f}; {side[seed]['train_loss'][-1]:.3f}" for side in sides.values()]
        print(f"{seed} | " + " | ".join(cells))
    accuracy = {name: np.array([side[seed]["test"]["accuracy"] for seed in seeds]) for name, side in sides.items()}
    loss = {name: np.array([side[seed]["train_loss"][-1] for seed in seeds]) for name, side in sides.items()}
    for name in sides:
        values = accuracy[name]
        error = values.std(ddof=1) / np.sqrt(len(values))
        print(
            f"{name}: mean accuracy {values.mean():.4f} (standard error {error:.4f}), mean epoch-3 loss "
            f"{loss[name].mean():.4f}, runs at the majority class {(values < MAJORITY + 0.001).sum()} "
            f"of {len(values)}, at most 0.71: {(values < 0.7100).sum()}"
        )
    for probe_name in probes:
        for other in [name for name in sides if name != probe_name]:
            test = stats.mannwhitneyu(accuracy[probe_name], accuracy[other])
            print(
                f"{probe_name} minus {other}: {100 * (accuracy[probe_name] - accuracy[other]).mean():+.2f} points, "
                f"Mann-Whitney p = {test.pvalue:.3f}"
            )
    test = stats.mannwhitneyu(accuracy["kerasft"], accuracy["hf-trainer"])
    print(
        f"kerasft minus hf-trainer on these seeds: {100 * (accuracy['kerasft'] - accuracy['hf-trainer']).mean():+.2f} "
        f"points, Mann-Whitney p = {test.pvalue:.3f}"
    )


if __name__ == "__main__":
    main()
