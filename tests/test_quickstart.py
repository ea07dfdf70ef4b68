"""The README's promise: the quickstart runs offline on the packaged MiniLM and learns the task."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from conftest import REPO, kerasft, read_rows

pytestmark = pytest.mark.slow  # a whole quickstart run on the real MiniLM


def test_quickstart_learns_well_above_the_majority_class(tmp_path):
    result = kerasft(
        "run",
        REPO / "recipes" / "quickstart.py",
        "--run-name",
        "qs",
        "--output-dir",
        tmp_path / "runs",
        "--tensorboard-dir",
        tmp_path / "tb",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / "qs"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    labels = [row["label"] for row in read_rows(REPO / "recipes" / "data" / "quickstart" / "test.csv")]
    majority = Counter(labels).most_common(1)[0][1] / len(labels)
    assert metrics["test"]["examples"] == len(labels) == 144
    assert metrics["test"]["accuracy"] >= majority + 0.5, (metrics["test"], majority)
    assert metrics["export"]["raw_text_signature"] and metrics["export"]["parity"]["argmax_agreement"] == 1.0
    assert re.search(r"test accuracy 0\.\d{4}", result.stdout)
    answer = kerasft(
        "predict",
        run_dir / "export" / "quickstart",
        "I was charged twice for the same order",
        "my parcel never arrived",
        "--json",
        cwd=tmp_path,
    )
    assert [item["label"] for item in json.loads(answer.stdout)] == ["billing", "delivery"]
