"""Does a second run skip tokenization? Loads and tokenizes a local file twice, each time in a fresh process.

    python benchmarks/make_emotion_style.py big.txt --rows 20000
    python benchmarks/tokenize_cache.py big.txt --sep ';' --columns text,label

kerasft.data loads local files with `datasets.load_dataset` and tokenizes with `Dataset.map`, whose
results `datasets` caches on disk under a fingerprint of the input and the function. This runs both
steps with an empty cache folder (``HF_DATASETS_CACHE``), then again: the second time should read
everything from the cache. It prints the seconds of each step and which cache files were read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def load_and_tokenize(path: str, sep: str | None, columns: list[str] | None) -> dict:
    import datasets

    from kerasft import data, tokenizing
    from kerasft.model import load_tokenizer
    from kerasft.recipe import DataConfig, packaged_minilm

    tokenizer = load_tokenizer(packaged_minilm())
    started = time.perf_counter()
    splits = data.load_splits(DataConfig(train=path, sep=sep, columns=columns), seed=42).splits
    loaded = time.perf_counter()
    tokenized = tokenizing.tokenize(splits, tokenizer, 128)
    done = time.perf_counter()
    assert isinstance(tokenized["train"], datasets.Dataset)
    return {
        "load_s": loaded - started,
        "tokenize_s": done - loaded,
        "rows": sum(len(split) for split in tokenized.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("--sep", default=None)
    parser.add_argument("--columns", default=None)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    columns = args.columns.split(",") if args.columns else None
    if args.one:
        print("RESULT " + json.dumps(load_and_tokenize(args.data, args.sep, columns)))
        return
    with tempfile.TemporaryDirectory() as cache:
        for attempt in ("first run (empty cache)", "second run"):
            command = (
                [sys.executable, __file__, args.data, "--one"]
                + (["--sep", args.sep] if args.sep else [])
                + (["--columns", args.columns] if args.columns else [])
            )
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=True,
                env=os.environ | {"HF_DATASETS_CACHE": cache, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"},
            )
            result = json.loads(
                next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[len("RESULT ") :]
            )
            print(
                f"{attempt}: load_splits {result['load_s']:.2f} s, tokenize {result['tokenize_s']:.2f} s "
                f"({result['rows']} rows)"
            )


if __name__ == "__main__":
    main()
