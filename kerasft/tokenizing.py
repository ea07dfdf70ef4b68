"""Tokenizing: the loaded splits (kerasft.data) get the checkpoint tokenizer's inputs, truncated, not padded.

    max_length = resolve_max_length(tokenizer, config, recipe.model.max_length)
    tokenized = tokenize(data.splits, tokenizer, max_length, log=True)  # pairs through the checkpoint's pair template

The result is ``tokenizer(text, text_pair, truncation=True, max_length=...)`` row by row, without
the attention mask, and without a single text's segment ids (`FastEncoder` says how it gets there
faster, and why neither).
`datasets` caches the tokenized splits under a fingerprint of the loaded data, the tokenizer and
``max_length``: a second run on the same files and checkpoint reads the token ids back instead of
tokenizing; a changed file, tokenizer or ``max_length`` makes a new fingerprint. Token ids stay in
those memory-mapped arrow files, never copied whole into NumPy. Processes that share the cache (a
multi-worker run's workers on a shared filesystem) tokenize the same data one at a time, so all but
the first read the first one's token ids (`tokenizing_lock`). Large splits (`PARALLEL_ROWS`) are
tokenized on every core: a WordPiece tokenizer's by its in-graph form, the export's, on one thread per
core (`GraphEncoder`, twice as fast), any other by the Rust tokenizer in one process per core::

    kerasft: data: tokenized 1000000 texts in 47.9 s in-graph on 2 threads (cached for the next run)
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import hashlib
import time
from pathlib import Path

import filelock
import numpy as np
import pyarrow as pa

from kerasft.data import TEXT, TEXT_PAIR, cache_files, progress_bars, report_stage, split_parts
from kerasft.errors import UserError
from kerasft.model import position_limit, token_inputs
from kerasft.strategy import usable_cores

PARALLEL_ROWS = 50_000  # a split this large is tokenized on every core; smaller, processes or the graph cost more
IN_GRAPH_MODELS = ("WordPiece",)  # the tokenizer models whose large splits are tokenized in-graph (faster_in_graph)
# The in-graph path takes this many rows at once and gives its threads shares of SHARE_ROWS: each `Dataset.map` batch
# ends in a wait for the slowest share, so a batch holds several shares a thread
GRAPH_BATCH_ROWS, SHARE_ROWS = 8_000, 1_000
# The stored columns' types: those `datasets` picks for these names from Python lists (FastEncoder's output)
STORED_TYPES = {"input_ids": pa.int32(), "token_type_ids": pa.int8()}
CHECK_EVERY = 32  # the in-graph path's ids are compared with the Rust tokenizer's on every 32nd row


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
    (batches pad themselves). Large splits are tokenized on every core: in this process by the in-graph tokenizer
    (`GraphEncoder`) where the tokenizer has an exact one, else by one process per core (`FastEncoder`). With
    ``log``, one line says how it went.

    The texts stay in ``splits`` only: `Dataset.map` writes every column it returns into the new cache
    file, and the texts need no second copy. With a single text's segment ids left out too
    (`FastEncoder`), 1M texts tokenized 5% faster (BENCHMARKS.md, data at scale).

    Pairs (a ``text_pair`` column) go through the checkpoint's pair template with ``longest_first``
    truncation, Hugging Face's default for pairs, which the export's in-graph tokenizer replays.
    """
    parts = split_parts(splits)
    rows = max(map(len, parts))
    with tokenizing_lock(splits, log):
        started = time.time()  # after any wait for another process: its cache files are older than this
        with progress_bars() if log else contextlib.nullcontext():
            large = rows >= PARALLEL_ROWS
            in_graph = GraphEncoder(tokenizer, max_length) if large and faster_in_graph(tokenizer) else None
            tokenized = _map_in_graph(splits, in_graph) if in_graph is not None else None
            if tokenized is not None:
                how = f" in-graph on {in_graph.threads} threads"
            else:
                processes = tokenizing_processes(rows)
                how = f" with {processes} processes" if processes else ""
                encode = FastEncoder(tokenizer, max_length)
                tokenized = splits.map(
                    encode, batched=True, num_proc=processes, remove_columns=_texts_of(parts[0]), desc="tokenizing"
                )
    if in_graph is not None and in_graph.disagreed:
        print(f"kerasft: warning: {in_graph.disagreed}; tokenized with the Rust tokenizer from there", flush=True)
    if log:
        report_stage("tokenized", f"{sum(map(len, parts))} texts", split_parts(tokenized), started, how)
    return tokenized


def faster_in_graph(tokenizer) -> bool:
    """Whether the tokenizer's model is one whose in-graph form tokenizes faster than the Rust library: WordPiece
    (1.8x on 1M texts in BENCHMARKS.md's eighth data round, and faster since the tenth sends ASCII texts through
    tensorflow-text's end-to-end WordPiece), not byte-level BPE (0.5x) or SentencePiece (0.3x;
    benchmarks/tokenize_paths.py)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return type(getattr(backend, "model", None)).__name__ in IN_GRAPH_MODELS


def _map_in_graph(splits, encode: GraphEncoder):
    """``splits`` tokenized by ``encode`` over Arrow batches, or None where the tokenizer has no exact in-graph form
    (found at the first batch, so that a cache hit never builds the graph)."""
    from kerasft import graph_tokenizers

    first = split_parts(splits)[0]
    try:
        mapped = splits.with_format("arrow").map(
            encode, batched=True, batch_size=GRAPH_BATCH_ROWS, remove_columns=_texts_of(first), desc="tokenizing"
        )
    except graph_tokenizers.UnsupportedTokenizer:
        return None
    finally:
        encode.close()
    return mapped.with_format(first.format["type"])


def _texts_of(table) -> list[str]:
    """The text columns of a split or an Arrow batch."""
    return [name for name in (TEXT, TEXT_PAIR) if name in table.column_names]


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


class GraphEncoder:
    """`FastEncoder`'s output for large splits, made by the in-graph tokenizer the export serves with
    (kerasft.graph_tokenizers), in this process on every core; a `Dataset.map` function over Arrow batches.

    Why: the Rust tokenizer carries every character's offsets through normalization and splitting, and
    ``encode_batch_fast`` only drops them at the end. The in-graph form never makes them: on the packaged
    MiniLM's WordPiece and 1M texts of 3-60 words it took about half the time (BENCHMARKS.md, data at scale).
    TensorFlow runs the graph outside the GIL, so one thread per core tokenizes its share of each batch,
    where `FastEncoder` needs a process per core (and a forked TensorFlow runtime is not safe). Training
    then reads each text through the very graph the export answers with.

    The ids are checked against Hugging Face's: every `CHECK_EVERY`-th row of each batch goes through
    `FastEncoder` too, beside the graph. A difference sends that batch and the rest through `FastEncoder`,
    and ``disagreed`` says so (`tokenize` prints it).

        encode = GraphEncoder(tokenizer, max_length=128)
        splits.with_format("arrow").map(encode, batched=True, batch_size=GRAPH_BATCH_ROWS)
        # the first batch builds the graph: UnsupportedTokenizer where the tokenizer has no exact in-graph form

    The graph is built at the first batch, not before: a second run reading the tokenized data from
    `datasets`' cache never pays for it (about a second).
    """

    def __init__(self, tokenizer, max_length: int):
        self.reference, self.threads = FastEncoder(tokenizer, max_length), usable_cores()
        self.disagreed = ""  # what the check found, if anything
        # Built in the process that maps, from the settings (`__getstate__`): the graph, and its traced function for
        # single texts and for pairs
        self._graph = None
        self._traced_for: dict[bool, tuple] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __getstate__(self) -> dict:
        # What `datasets` fingerprints: the settings (the reference encoder's), not the threads, graphs or checks
        return {"reference": self.reference}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["reference"].tokenizer, state["reference"].max_length)

    def __call__(self, batch):
        texts, pairs = self._texts(batch, TEXT), self._texts(batch, TEXT_PAIR)
        if self.disagreed:
            encoded = self._arrow(self.reference(self._python(texts, pairs)))
        else:
            traced = self._traced(pairs is not None)  # built first: building calls the tokenizer, as the check does
            rows = slice(None, None, CHECK_EVERY)
            check = self._threads().submit(
                self.reference, self._python(texts[rows], None if pairs is None else pairs[rows])
            )
            encoded = self._in_graph(traced, texts, pairs)
            expected = check.result()
            got = {name: column[rows].to_pylist() for name, column in encoded.items()}
            if got != expected:
                first = next(row for row, ids in enumerate(got["input_ids"]) if ids != expected["input_ids"][row])
                self.disagreed = (
                    "the in-graph tokenizer's ids differ from the Rust tokenizer's on the text "
                    f"{texts[rows][first][:60]!r}"
                )
                encoded = self._arrow(self.reference(self._python(texts, pairs)))
        kept = batch.drop_columns(_texts_of(batch))
        for name, column in encoded.items():
            kept = kept.append_column(name, column)
        return kept

    def _in_graph(self, traced, texts, pairs) -> dict:
        import tensorflow as tf

        function, names = traced
        shares = [slice(start, start + SHARE_ROWS) for start in range(0, len(texts), SHARE_ROWS)] or [slice(0, 0)]

        def share(rows):
            columns = [texts] if pairs is None else [texts, pairs]
            inputs = [tf.constant(column[rows], tf.string) for column in columns]
            return [tensor.numpy() for tensor in function(*inputs)]

        results = list(self._threads().map(share, shares))  # each [lengths, ids, segment ids (if stored)]
        offsets = np.concatenate([[0], np.cumsum(np.concatenate([result[0] for result in results]))]).astype(np.int32)
        return {
            name: pa.ListArray.from_arrays(
                offsets, pa.array(np.concatenate([result[1 + index] for result in results]), STORED_TYPES[name])
            )
            for index, name in enumerate(names)
        }

    def _threads(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="kerasft-tokenizing")
        return self._pool

    def close(self) -> None:
        """Ends the threads (a run may tokenize several times: each call has its own encoder)."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _traced(self, pairs: bool):
        """The traced ``texts[, pairs] -> lengths, ids[, segment ids]``, and the names of what it returns after the
        lengths (segment ids only where `token_inputs` stores them)."""
        # TensorFlow is imported here, not with the module: a run's bad input is refused before TensorFlow loads
        import tensorflow as tf

        from kerasft import graph_tokenizers

        if pairs not in self._traced_for:
            tokenizer = self.reference.tokenizer
            if self._graph is None:
                self._graph = graph_tokenizers.for_tokenizer(tokenizer, self.reference.max_length)
            graph = self._graph
            names = [name for name in token_inputs(tokenizer, pairs) if name in STORED_TYPES]

            @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * (2 if pairs else 1))
            def encode(*texts):
                with tf.device("/cpu:0"):
                    inputs = graph(*texts)
                    lengths = tf.reduce_sum(inputs["attention_mask"], axis=1)
                    mask = tf.sequence_mask(lengths, tf.shape(inputs["input_ids"])[1])
                    return [lengths] + [tf.boolean_mask(inputs[name], mask) for name in names]

            self._traced_for[pairs] = encode, names
        return self._traced_for[pairs]

    @staticmethod
    def _texts(batch, name: str):
        if name not in batch.column_names:
            return None
        return batch.column(name).to_numpy(zero_copy_only=False)

    @staticmethod
    def _python(texts, pairs) -> dict:
        return {TEXT: list(texts)} if pairs is None else {TEXT: list(texts), TEXT_PAIR: list(pairs)}

    @staticmethod
    def _arrow(encoded: dict) -> dict:
        return {name: pa.array(values, pa.list_(STORED_TYPES[name])) for name, values in encoded.items()}


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
