"""Load and tokenize 10M synthetic texts through kerasft's own path, in-graph: seconds and peak memory.

    PYTHONPATH=. python benchmarks/results/2026-12-01-tokenize-in-graph/tokenize_10m.py --rows 10000000 --json F

data_scale.py's first run without its epoch of batches (whose code this change does not touch) and without its
second, cached run: at 10M rows those take about 25 minutes more. The CSV is data_scale.py's synthetic one
(written into --folder once, not timed); the `datasets` cache is a new temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # benchmarks/
from data_scale import AnonymousPeak, write_csv  # noqa: E402
from train_throughput import cpu_times, steal_share  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "kerasft-data-scale")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    path = args.folder / f"texts-{args.rows}.csv"
    if not path.is_file():
        args.folder.mkdir(parents=True, exist_ok=True)
        write_csv(path, args.rows)
    with tempfile.TemporaryDirectory(dir=args.folder) as cache:
        os.environ["HF_DATASETS_CACHE"] = cache  # before `datasets` is imported
        from kerasft import data, tokenizing
        from kerasft.model import load_tokenizer
        from kerasft.recipe import DataConfig, packaged_minilm

        tokenizer = load_tokenizer(packaged_minilm())
        sampler, before = AnonymousPeak(), cpu_times()
        sampler.start()
        started = time.perf_counter()
        splits = data.load_splits(DataConfig(train=str(path)), seed=42).splits
        loaded = time.perf_counter()
        tokenizing.tokenize(splits, tokenizer, 128, log=True)
        done = time.perf_counter()
        sampler.stopped.set()
        sampler.join()
        result = {
            "rows": args.rows,
            "load_s": round(loaded - started, 2),
            "tokenize_s": round(done - loaded, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_anonymous_mb": round(sampler.own),
            "cpu_steal": round(steal_share(before, cpu_times()), 4),
        }
    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
