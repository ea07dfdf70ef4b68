"""Tokenizing: the loaded splits (kerasft.data) get the checkpoint tokenizer's inputs, truncated, not padded.

    max_length = resolve_max_length(tokenizer, config, recipe.model.max_length)
    tokenized = tokenize(data.splits, tokenizer, max_length, log=True)  # pairs through the checkpoint's pair template

The result is exactly ``tokenizer(text, text_pair, truncation=True, max_length=...)`` row by row,
without the attention mask, and without a single text's segment ids (`FastEncoder` says how it gets
there faster, and why neither).
`datasets` caches the tokenized splits under a fingerprint of the loaded data, the tokenizer and
``max_length``: a second run on the same files and checkpoint reads the token ids back instead of
tokenizing; a changed file, tokenizer or ``max_length`` makes a new fingerprint. Token ids stay in
those memory-mapped arrow files, never copied whole into NumPy. Processes that share the cache (a
multi-worker run's workers on a shared filesystem) tokenize the same data one at a time, so all but
the first read the first one's token ids (`tokenizing_lock`). Large splits (`PARALLEL_ROWS`) are
tokenized by one process per core::

    kerasft: data: tokenized 1000000 texts in 54.2 s with 2 processes (cached for the next run)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import time
from pathlib import Path

import filelock

from kerasft.data import TEXT, TEXT_PAIR, cache_files, progress_bars, report_stage, split_parts
from kerasft.errors import UserError
from kerasft.model import position_limit, token_inputs
from kerasft.strategy import usable_cores

PARALLEL_ROWS = 50_000  # a split this large is tokenized by one process per core; smaller, processes cost more


def resolve_max_length(tokenizer, config, requested: int | None) -> int:
    """The recipe's max_length, else the smallest of the tokenizer's and the model's limits (and 512).

    A requested length the model's position embeddings cannot take is refused here, before any folder
    exists: training would otherwise stop at the first text that long, with TensorFlow's error.
    """
    positions = position_limit(config)
    if requested is not None:
        if positions is not None and requested > positions:
            raise UserError(
                f"model.max_length={requested} is more than the {positions} tokens the checkpoint's position "
                f"embeddings take; set model.max_length={positions} or less"
            )
        return requested
    limits = [512, tokenizer.model_max_length, positions or 512]
    return int(min(limit for limit in limits if limit))


def tokenize(splits, tokenizer, max_length: int, log: bool = False):
    """Every split (a DatasetDict or one Dataset) as the tokenizer's inputs and the labels: truncated, not padded
    (batches pad themselves). Large splits are tokenized by one process per core; with ``log``, one line says how
    it went.

    The texts stay in ``splits`` only: `Dataset.map` writes every column it returns into the new cache
    file, and the texts need no second copy. With a single text's segment ids left out too
    (`FastEncoder`), 1M texts tokenized 5% faster (BENCHMARKS.md, data at scale).

    Pairs (a ``text_pair`` column) go through the checkpoint's pair template with ``longest_first``
    truncation, Hugging Face's default for pairs, which the export's in-graph tokenizer replays.
    """
    parts = split_parts(splits)
    processes = tokenizing_processes(max(map(len, parts)))
    with tokenizing_lock(splits, log):
        started = time.time()  # after any wait for another process: its cache files are older than this
        with progress_bars() if log else contextlib.nullcontext():
            encode = FastEncoder(tokenizer, max_length)
            texts = [name for name in (TEXT, TEXT_PAIR) if name in parts[0].column_names]
            tokenized = splits.map(encode, batched=True, num_proc=processes, remove_columns=texts, desc="tokenizing")
    if log:
        how = f" with {processes} processes" if processes else ""
        report_stage("tokenized", f"{sum(map(len, parts))} texts", split_parts(tokenized), started, how)
    return tokenized


class FastEncoder:
    """``tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=...)`` with the inputs
    `kerasft.model.token_inputs` names but the attention mask, for `Dataset.map`, through the Rust tokenizer's
    ``encode_batch_fast`` when the checkpoint has a fast tokenizer.

    No attention mask is stored: before padding it is all ones, and kerasft.batching builds it
    with each batch (Hugging Face's own padding assumes the same of a missing mask). Storing it
    cost about 6% of tokenizing and a byte a token of cache. Segment ids are stored for pairs
    only: a single text's are all zeros, which the model assumes when given none.

    Why by hand: ``tokenizer(...)`` asks the Rust tokenizer for character offsets it then drops, and
    builds a `BatchEncoding` on the way; a million emotion-length texts tokenized in 80 s that way
    and in 56 s this way (BENCHMARKS.md, data at scale). The Rust tokenizer is a copy, given the
    truncation ``tokenizer(...)`` would set. Each process checks its first batch against
    ``tokenizer(...)`` and keeps to ``tokenizer(...)`` if they differ (a tokenizer class that adds
    its own Python steps), so the ids are always Hugging Face's.

        encode = FastEncoder(tokenizer, max_length=128)
        encode({"text": ["the cat sat on the mat", "a dog"]})  # {"input_ids": [[101, ...], [101, ...]]}
        splits.map(encode, batched=True)  # as `tokenize` does
    """

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        self.backend = None
        if getattr(tokenizer, "is_fast", False):
            self.backend = copy.deepcopy(tokenizer.backend_tokenizer)
            self.backend.no_padding()
            self.backend.enable_truncation(max_length, strategy="longest_first", direction=tokenizer.truncation_side)
        self.backend_agrees: bool | None = None  # this process' check of its first batch; None: not checked yet

    def __call__(self, batch) -> dict[str, list]:
        if self.backend is None or self.backend_agrees is False:
            return self._by_tokenizer(batch)
        encoded = self._by_backend(batch)
        if self.backend_agrees is None:
            expected = self._by_tokenizer(batch)
            self.backend_agrees = encoded == expected
            return expected
        return encoded

    def __getstate__(self) -> dict:
        # What `datasets` fingerprints (the cache key) and sends to worker processes: the settings, not the check,
        # so that a split mapped after another has the key it had in a run that read the other from the cache
        return {name: value for name, value in self.__dict__.items() if name != "backend_agrees"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, backend_agrees=None)

    def _type_ids(self, pairs) -> bool:
        return "token_type_ids" in token_inputs(self.tokenizer, pairs is not None)

    def _by_tokenizer(self, batch) -> dict[str, list]:
        texts, pairs = batch[TEXT], batch.get(TEXT_PAIR)
        encoded = self.tokenizer(
            texts,
            pairs,
            truncation=True,
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=self._type_ids(pairs),
        )
        return dict(encoded)

    def _by_backend(self, batch) -> dict[str, list]:
        pairs = batch.get(TEXT_PAIR)
        encodings = self.backend.encode_batch_fast(batch[TEXT] if pairs is None else list(zip(batch[TEXT], pairs)))
        encoded = {"input_ids": [encoding.ids for encoding in encodings]}
        if self._type_ids(pairs):
            encoded["token_type_ids"] = [encoding.type_ids for encoding in encodings]
        return encoded


@contextlib.contextmanager
def tokenizing_lock(splits, log: bool = False):
    """Processes sharing `datasets`' cache (a multi-worker run's workers, on a shared filesystem) tokenize the same
    data one at a time: the first writes the cache, the others then read it instead of tokenizing again.

    A file lock beside the data's cache files, keyed by their names (`datasets` names them by fingerprint), with
    `filelock`, the library `datasets` locks its own cache with. Data held in memory has no cache to share, and a
    cache folder that cannot take a lock file (read-only) tokenizes without one.
    """
    files = sorted({str(path) for path in cache_files(split_parts(splits))})
    if not files:
        yield
        return
    key = hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]
    # is_singleton: within one process the same lock is one re-entrant lock (only processes need to wait)
    lock = filelock.FileLock(str(Path(files[0]).parent / f"kerasft-tokenize-{key}.lock"), is_singleton=True)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if log:
            print(f"kerasft: data: waiting for another process tokenizing the same data ({lock.lock_file})", flush=True)
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def tokenizing_processes(rows: int) -> int | None:
    """How many processes tokenize a split of ``rows``: every core this process may use when it is large, else one
    (None: in this process)."""
    cores = usable_cores()
    return cores if rows >= PARALLEL_ROWS and cores > 1 else None
