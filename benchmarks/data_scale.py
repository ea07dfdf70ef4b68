"""How a run's cost on data grows with the data: load + tokenize + one epoch of batch assembly, no model.

    python benchmarks/data_scale.py [--sizes 100000,1000000] [--texts synthetic|emotion-style] [--json FILE]
    python benchmarks/data_scale.py --sizes 10000000 --no-batches --json FILE   # load and tokenize only

For each size, a SYNTHETIC CSV of that many rows (written once into ``--folder`` and reused, not timed) goes
through kerasft's own modules as a run does. ``--texts synthetic`` (the default): texts of 3 to 60 words drawn
from a 5,000-word vocabulary of made-up words, which MiniLM's WordPiece cuts into about 85 tokens a text;
``--texts emotion-style``: make_emotion_style.py's English sentences (2-66 words, median 17; about 22 tokens a
text), as long as the emotion data's. Then: `data.load_splits` (validation and test carved from train),
`tokenizing.tokenize` with the packaged MiniLM tokenizer (max_length 128), then every global batch of one
training epoch (batch 32) through `batching.training_batches` and `Dataset.to_tf_dataset`, padded and read
into NumPy. Each size runs in a fresh process with an empty `datasets` cache, then again in another fresh
process on the same cache (the second run of the same recipe). ``--no-batches`` stops after tokenizing and
skips the second run, for a change that touches only loading or tokenizing: at 10M rows those two take about
25 minutes more. Peak RSS is the process's (ru_maxrss) and, separately, the largest of its tokenizing worker
processes'. ru_maxrss also counts the pages of memory-mapped arrow files the process has read, which the
kernel drops when memory runs short; so a sampler (every 0.2 s) records the peak of anonymous memory too
(``RssAnon``: what the process itself holds), for the process and for the sum of its tokenizing workers at one
moment. Each process's CPU steal (train_throughput.py's measure) says whether the host was busy meanwhile.

``--floor`` adds, in a third fresh process, the checkpoint's Rust tokenizer alone on the same texts
(``encode_batch_fast`` in batches of 1,000 as `Dataset.map` hands them over, with the tokenizer's own threads on
every core, the texts read into a list first and not timed): the least that tokenizing can cost with this
tokenizer, against which the tokenize stage is compared (``tokenize_over_tokenizer_alone``).

JSON: ``{"sizes": {"<n>": {"seconds": ..., "peak_rss_mb": ..., "cached_seconds": ..., ...}}, "cores": ...,
"texts": ...}`` (no ``cached_*`` or ``batches*`` figures with ``--no-batches``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import cpu_times, steal_share  # noqa: E402

REPO = Path(__file__).resolve().parents[1]  # this checkout's kerasft, not another one installed in the environment
LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
BATCH, MAX_LENGTH = 32, 128


BLOCK = 100_000  # rows drawn and written at a time, so that 10M rows need little memory


def write_rows(path: Path, rows: int, make_block) -> None:
    """A CSV of ``rows`` (text, label) rows, ``make_block(block_number, count)`` drawing each BLOCK of them."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for block, start in enumerate(range(0, rows, BLOCK)):
            writer.writerows(make_block(block, min(BLOCK, rows - start)))


def write_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` synthetic texts of 3-60 words with a label each."""
    rng = np.random.default_rng(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "de", "va", "zu", "he"]
    vocabulary = np.array(
        ["".join(rng.choice(syllables, size=rng.integers(1, 4))) + str(number % 7) for number in range(5000)]
    )

    def block(_, count: int):
        lengths = rng.integers(3, 61, size=count)
        words = vocabulary[rng.integers(0, len(vocabulary), size=int(lengths.sum()))]
        ends = np.cumsum(lengths)
        labels = rng.choice(LABELS, size=count)
        return ((" ".join(words[end - length : end]), label) for end, length, label in zip(ends, lengths, labels))

    write_rows(path, rows, block)


def write_emotion_style_csv(path: Path, rows: int, seed: int = 0) -> None:
    """``rows`` of make_emotion_style.py's texts with their labels, each BLOCK drawn with its own seed."""
    from make_emotion_style import make_rows

    write_rows(path, rows, lambda block, count: make_rows(count, seed + block))


WRITERS = {"synthetic": ("texts", write_csv), "emotion-style": ("emotion-style", write_emotion_style_csv)}


def anonymous_mb(pid: int) -> float:
    """A process's resident anonymous memory (heap, NumPy buffers; not mapped files) in MB; 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("RssAnon:")), 0.0)


class AnonymousPeak(threading.Thread):
    """Samples this process's anonymous memory, and the sum over its child processes', keeping the peaks.

    Written by hand: ru_maxrss has no anonymous-only counterpart, and psutil is not a kerasft dependency."""

    def __init__(self, every: float = 0.2):
        super().__init__(daemon=True)
        self.every, self.own, self.children = every, 0.0, 0.0
        self.stopped = threading.Event()

    def run(self) -> None:
        pid = os.getpid()
        while not self.stopped.wait(self.every):
            self.own = max(self.own, anonymous_mb(pid))
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            self.children = max(self.children, sum(anonymous_mb(int(child)) for child in children))


def measure_once(path: str, batches: bool = True) -> dict:
    """One run's data preparation, in this process: seconds of each stage and the peak memory (without the epoch of
    batches if not ``batches``)."""
    from kerasft import batching, data, tokenizing
    from kerasft.model import load_tokenizer
    from kerasft.recipe import DataConfig, packaged_minilm

    tokenizer = load_tokenizer(packaged_minilm())
    sampler = AnonymousPeak()
    sampler.start()
    started = time.perf_counter()
    splits = data.load_splits(DataConfig(train=path), seed=42).splits
    loaded = time.perf_counter()
    tokenized = tokenizing.tokenize(splits, tokenizer, MAX_LENGTH, log=True)
    done = time.perf_counter()
    train = tokenized["train"]
    lengths = batching.token_lengths(train)
    stages = {"load_s": round(loaded - started, 2), "tokenize_s": round(done - loaded, 2)}
    if batches:
        plan = batching.Plan(len(train), BATCH, seed=42, epochs=1, lengths=lengths)
        count, tokens = 0, 0
        collate = batching.PadToLongest(tokenizer)
        for features, _ in batching.training_batches(train, plan, collate).as_numpy_iterator():
            count += 1
            tokens += features["input_ids"].size
        assert count == plan.steps_per_epoch
        stages |= {"batches_s": round(time.perf_counter() - done, 2), "batches": count, "padded_tokens": tokens}
    finished = time.perf_counter()
    sampler.stopped.set()
    sampler.join()
    return stages | {
        "seconds": round(finished - started, 2),
        "tokens_per_text": round(float(lengths.mean()), 1),  # the training split's, special tokens included
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_tokenizer_processes_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "peak_anonymous_mb": round(sampler.own),
        "peak_anonymous_tokenizer_processes_mb": round(sampler.children),
    }


def tokenizer_alone(path: str) -> dict:
    """Seconds for the checkpoint's Rust tokenizer alone to tokenize every text of ``path`` as kerasft's tokenize
    stage does (truncated to MAX_LENGTH, no padding, batches of 1,000), on every core (its own threads)."""
    from kerasft.model import load_tokenizer
    from kerasft.recipe import packaged_minilm
    from kerasft.tokenizing import FastEncoder

    with open(path, newline="", encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    backend = FastEncoder(load_tokenizer(packaged_minilm()), MAX_LENGTH).backend  # the Rust tokenizer kerasft calls
    started = time.perf_counter()
    for start in range(0, len(texts), 1000):
        backend.encode_batch_fast(texts[start : start + 1000])
    return {"tokenizer_alone_s": round(time.perf_counter() - started, 2)}


def run_fresh(path: Path, cache: str, mode: str = "--one", *flags: str) -> dict:
    before = cpu_times()
    done = subprocess.run(
        [sys.executable, __file__, mode, str(path), *flags],
        capture_output=True,
        text=True,
        env=os.environ | {"HF_DATASETS_CACHE": cache, "PYTHONPATH": str(REPO)},
    )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    for line in done.stdout.splitlines():
        if line.startswith("kerasft: data:"):
            print("    " + line, flush=True)
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])
    return result | {"cpu_steal": round(steal_share(before, cpu_times()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated row counts")
    parser.add_argument("--json", type=Path, help="write the results here (merged with a file already there)")
    parser.add_argument("--texts", choices=sorted(WRITERS), default="synthetic", help="which synthetic texts")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()) / "kerasft-data-scale")
    parser.add_argument("--floor", action="store_true", help="time the Rust tokenizer alone on the same texts too")
    parser.add_argument(
        "--no-batches", action="store_true", help="load and tokenize only: no epoch of batches, no second (cached) run"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--tokenizer-alone", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one or args.tokenizer_alone:
        result = measure_once(args.one, not args.no_batches) if args.one else tokenizer_alone(args.tokenizer_alone)
        print("RESULT " + json.dumps(result), flush=True)
        return
    results = json.loads(args.json.read_text()) if args.json and args.json.is_file() else {"sizes": {}}
    if results.get("texts", args.texts) != args.texts:
        raise SystemExit(f"{args.json} holds {results['texts']} texts; give another --json for {args.texts}")
    results["cores"], results["texts"] = len(os.sched_getaffinity(0)), args.texts
    prefix, write = WRITERS[args.texts]
    args.folder.mkdir(parents=True, exist_ok=True)
    for size in [int(size) for size in args.sizes.split(",")]:
        path = args.folder / f"{prefix}-{size}.csv"
        if not path.is_file():
            write(path, size)
        print(f"{size} rows ({path.stat().st_size / 1e6:.0f} MB):", flush=True)
        with tempfile.TemporaryDirectory(dir=args.folder) as cache:
            first = run_fresh(path, cache, "--one", *(["--no-batches"] if args.no_batches else []))
            print(f"  first run:  {first}", flush=True)
            results["sizes"][str(size)] = first
            if not args.no_batches:
                second = run_fresh(path, cache)
                print(f"  second run: {second}", flush=True)
                results["sizes"][str(size)] |= {
                    "cached_seconds": second["seconds"],
                    "cached_load_s": second["load_s"],
                    "cached_tokenize_s": second["tokenize_s"],
                    "cached_peak_rss_mb": second["peak_rss_mb"],
                    "cached_peak_anonymous_mb": second["peak_anonymous_mb"],
                    "cached_cpu_steal": second["cpu_steal"],
                }
            floor = run_fresh(path, cache, "--tokenizer-alone") if args.floor else None
        if floor:
            print(f"  the tokenizer alone: {floor}", flush=True)
            results["sizes"][str(size)] |= {
                "tokenizer_alone_s": floor["tokenizer_alone_s"],
                "tokenizer_alone_cpu_steal": floor["cpu_steal"],
                "tokenize_over_tokenizer_alone": round(first["tokenize_s"] / floor["tokenizer_alone_s"], 2),
            }
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
