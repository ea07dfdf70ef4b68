"""MRPC at 1e-4 over many seeds: PyTorch trained on kerasft's own batches from kerasft's own initial weights.

    cd <worktree> && PYTHONPATH=$PWD TF_USE_LEGACY_KERAS=1 nice -n 19 /work/bench-venv/bin/python \
        benchmarks/results/2026-12-01-mrpc-pytorch-on-kerasft/pytorch_on_kerasft.py --seeds 0 1 2 --json F [--data D] \
        [--kerasft-overrides train.group_by_length=false]

Round 6 (BENCHMARKS.md) found kerasft 5 points behind the Trainer over twenty MRPC seeds at the quality benchmark's
settings (lr 1e-4 constant, 3 epochs, batch 32, float32, dropout as the checkpoint sets it), and the whole-run probe
(../2026-11-30-mrpc-whole-run/) found the same arithmetic on both sides until float noise takes over. Two things
separate a kerasft run from the Trainer's besides TensorFlow: where it starts (kerasft's head draw) and which
batches it sees (kerasft.batching's length-bucketed order). This probe keeps both of kerasft's and trains with
PyTorch: for each seed, kerasft's prepared session (the benchmark's own recipe, so the same head and batches as
its kerasft run of that seed), every weight copied into AutoModelForSequenceClassification, then
``torch.optim.Adam(eps=1e-7)`` in training mode (PyTorch's own dropout) over kerasft's 312 batches, and the test
split scored by kerasft.metrics as the benchmark scores both sides. If its accuracies follow kerasft's runs, the gap
lies in the start or the batches; if they follow the Trainer's, in TensorFlow.

``--kerasft-overrides train.group_by_length=false`` keeps kerasft's start (the head is drawn before batches are
planned) and draws random batches instead, as the Trainer's sampler does: the second probe, which tells the start
from the batches. Each seed's result is appended to ``--json`` as soon as it is done; seeds already there are
skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[1] / "2026-11-30-mrpc-step"))
sys.path.insert(0, str(HERE.parents[1] / "2026-11-29-quality" / "diagnosis"))

import numpy as np  # noqa: E402
import pairs_step_by_step as pairs_probe  # noqa: E402
import step_by_step as goemotions  # noqa: E402
import torch  # noqa: E402

from kerasft import batching  # noqa: E402
from kerasft import metrics as scores  # noqa: E402
from kerasft.train import training_plan  # noqa: E402


def test_probabilities(session, pt_model) -> np.ndarray:
    """Softmax of the PyTorch model on the test split, in input order, batches of 64 padded by kerasft's collate."""
    collate = batching.PadToLongest(session.tokenizer)
    split = session.tokenized["test"]
    inputs = [name for name in collate.columns(split) if name != batching.LABEL]
    rows = split.select_columns(inputs).to_list()
    out = []
    pt_model.eval()
    with torch.no_grad():
        for start in range(0, len(rows), 64):
            x = collate(rows[start : start + 64])
            x.pop(batching.LABEL, None)
            out.append(torch.softmax(pt_model(**goemotions.pt_inputs(x)).logits, dim=-1).numpy())
    return np.concatenate(out)


def one_seed(data: str, learning_rate: float, seed: int, overrides: list[str]) -> dict:
    started = time.perf_counter()
    session = pairs_probe.mrpc_session(data, None, learning_rate, seed, tuple(overrides))
    plan = training_plan(session)
    batches = goemotions.first_batches(session, plan.batches)
    pt_model, _ = pairs_probe.pytorch_copy(session.model, session.recipe.model.checkpoint, len(session.label_names))
    torch.manual_seed(seed)  # PyTorch's dropout masks
    pt_model.train()
    adam = torch.optim.Adam(pt_model.parameters(), lr=learning_rate, betas=(0.9, 0.999), eps=1e-7)
    losses = []
    for x, y in batches:
        adam.zero_grad()
        output = pt_model(**goemotions.pt_inputs(x), labels=torch.from_numpy(y.astype(np.int64)))
        output.loss.backward()
        adam.step()
        losses.append(output.loss.item())
    per_epoch = plan.steps_per_epoch
    epoch_losses = [round(float(np.mean(losses[e * per_epoch : (e + 1) * per_epoch])), 4) for e in range(plan.epochs)]
    truth = np.asarray(session.data.splits["test"][batching.LABEL])
    test = scores.classification_scores(truth, test_probabilities(session, pt_model))
    return {
        "seed": seed,
        "head_abs_sum": float(np.abs(session.model.classifier.kernel.numpy()).sum()),  # the same start with overrides
        "steps": len(batches),
        "train_loss": epoch_losses,
        "test": test,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/q16/mrpc")
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--kerasft-overrides", nargs="*", default=[])
    args = parser.parse_args()
    path = Path(args.json)
    fresh = {"learning_rate": args.lr, "kerasft_overrides": args.kerasft_overrides, "runs": []}
    report = json.loads(path.read_text()) if path.exists() else fresh
    done = {run["seed"] for run in report["runs"]}
    for seed in args.seeds:
        if seed in done:
            continue
        run = one_seed(args.data, args.lr, seed, args.kerasft_overrides)
        print(
            json.dumps({k: run[k] for k in ("seed", "train_loss", "seconds")} | {"accuracy": run["test"]["accuracy"]})
        )
        report["runs"].append(run)
        path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
