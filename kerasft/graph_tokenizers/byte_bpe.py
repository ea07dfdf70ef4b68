"""Byte-level BPE (RoBERTa, GPT-2) with core TF ops only: the GPT-2 split, then merges by rank.

No tensorflow-text op does BPE, so it is built here from tf.strings, a static hash table and a
while loop; the graph needs no custom op at all. Each call tokenizes the batch's distinct words
once, all at the same time: every step of the loop merges, in every word still changing, all
occurrences of that word's lowest-ranked pair, left to right, which is what the Rust library's
priority queue does when each merged token's pairs rank after the merge that made it (checked at
build time). Symbols are vocabulary ids, not strings, so a pair is one int64 key.

Example:
```python
family = ByteLevelBPE.of(json.loads(hf_tokenizer.backend_tokenizer.to_str()))
family.tokenize(tf.constant(["Hello world"]))  # ragged int32 ids, as hf_tokenizer(..., add_special_tokens=False)
```
"""

from __future__ import annotations

import tensorflow as tf

from kerasft.graph_tokenizers.errors import UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import from_splits, mask_values, merge_inner, regex_cut, row_ids, splits_of
from kerasft.graph_tokenizers.unicode_classes import WHITESPACE

OPS = ()  # core TensorFlow only

# The GPT-2 pattern without its whitespace alternatives \s+(?!\S)|\s+: RE2 has no lookahead, so
# whitespace runs are cut by hand in words() and only the rest goes through this pattern.
GPT2_WORDS = rf"'s|'t|'re|'ve|'m|'ll|'d| ?\p{{L}}+| ?\p{{N}}+| ?[^{WHITESPACE}\p{{L}}\p{{N}}]+"


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for each byte, as in its encoder.py and the tokenizers library."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [byte for byte in range(256) if byte not in printable]
    return {**{byte: chr(byte) for byte in printable}, **{byte: chr(256 + n) for n, byte in enumerate(others)}}


class ByteLevelBPE(tf.Module):
    name = "byte-level BPE"
    ops = OPS

    def __init__(self, vocab: dict, merges: list[tuple[str, str]], add_prefix_space: bool):
        super().__init__()
        self.add_prefix_space = add_prefix_space
        byte_chars = bytes_to_unicode()
        missing = [char for char in byte_chars.values() if char not in vocab]
        if missing:
            raise UnsupportedTokenizer(f"{self.name}: {len(missing)} of the 256 byte symbols are not in the vocabulary")
        self.byte_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([bytes([byte]) for byte in byte_chars]),
                tf.constant([vocab[char] for char in byte_chars.values()], tf.int64),
            ),
            default_value=-1,
        )
        self.width = max(vocab.values()) + 1  # a pair (a, b) of ids is the key a * width + b
        keys, results = pair_ranks(vocab, merges)
        self.ranks = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.int64), tf.range(len(keys), dtype=tf.int64)),
            default_value=len(keys),  # "no merge": ranks after every real one
        )
        self.no_merge = len(keys)
        self.merged_ids = tf.constant(results + [0], tf.int64)

    @classmethod
    def of(cls, spec: dict) -> ByteLevelBPE:
        model, pre_tokenizer = spec["model"], spec["pre_tokenizer"]
        if spec.get("normalizer"):
            raise UnsupportedTokenizer(
                f"byte-level BPE: normalizer {spec['normalizer'].get('type')} is not replicated here"
            )
        if not pre_tokenizer.get("use_regex", True):
            raise UnsupportedTokenizer("byte-level BPE: ByteLevel without the GPT-2 regex is not replicated here")
        for setting in ("dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback", "ignore_merges"):
            if model.get(setting):
                raise UnsupportedTokenizer(
                    f"byte-level BPE: the BPE model's {setting}={model[setting]!r} is not replicated here"
                )
        merges = [tuple(merge.split(" ")) if isinstance(merge, str) else tuple(merge) for merge in model["merges"]]
        return cls(model["vocab"], merges, add_prefix_space=bool(pre_tokenizer.get("add_prefix_space")))

    def normalize(self, texts):
        return texts

    def tokenize(self, texts):
        """Ids of texts, ragged [N, None] int32: the GPT-2 words, each word's bytes merged by rank."""
        words = self.words(texts)
        distinct, index = tf.unique(words.values)
        ids = tf.gather(self.merge(distinct), index)
        return merge_inner(words, ids)

    def words(self, texts):
        """The GPT-2 pre-tokenization of each text, ragged [N, None] strings.

        `\\s+(?!\\S)|\\s+` means: a whitespace run before a non-space keeps its last character apart,
        and that character, if it is " ", starts the next word (" ?\\p{L}+" and its siblings take it).
        """
        if self.add_prefix_space:  # as ByteLevel(add_prefix_space=True): unless it already starts with " "
            texts = tf.where(tf.strings.substr(texts, 0, 1) == " ", texts, tf.strings.join([" ", texts]))
        runs = regex_cut(texts, keep=f"[{WHITESPACE}]+")
        flat, rows = runs.values, row_ids(runs.row_splits)
        is_space = tf.strings.regex_full_match(flat, f"[{WHITESPACE}]+")
        before_word = is_space & tf.concat([rows[1:] == rows[:-1], [False]], axis=0)
        length = tf.strings.length(flat, unit="UTF8_CHAR")
        last = tf.strings.substr(flat, length - 1, tf.ones_like(length), unit="UTF8_CHAR")
        head = tf.strings.substr(flat, tf.zeros_like(length), length - 1, unit="UTF8_CHAR")
        lends_space = before_word & tf.equal(last, " ")
        gets_space = tf.concat([[False], lends_space[:-1]], axis=0)
        first = tf.where(before_word, head, tf.where(gets_space, tf.strings.join([" ", flat]), flat))
        second = tf.where(before_word & ~lends_space, last, "")
        chunks = from_splits(
            tf.reshape(tf.stack([first, second], axis=1), [-1]), tf.range(tf.size(flat, out_type=tf.int64) + 1) * 2
        )
        chunks = mask_values(chunks, chunks.values != "")
        words = regex_cut(chunks.values, keep=GPT2_WORDS)
        return merge_inner(runs, merge_inner(chunks, words))

    def merge(self, words):
        """Ragged [U, None] int32 ids of distinct words: their bytes, merged by rank until no pair merges."""
        pieces = tf.strings.bytes_split(words)
        symbols = self.byte_ids.lookup(pieces.flat_values)
        owners = row_ids(pieces.row_splits)

        def step(symbols, owners, _):
            rank = self.ranks.lookup(symbols[:-1] * self.width + symbols[1:])
            rank = tf.where(owners[:-1] == owners[1:], rank, self.no_merge)
            best = tf.math.unsorted_segment_min(rank, owners[:-1], tf.shape(words, out_type=tf.int64)[0])
            chosen = (rank == tf.gather(best, owners[:-1])) & (rank < self.no_merge)
            # Overlapping occurrences (the pair (x, x) in "x x x") merge left to right: every other one of a run.
            starts = chosen & ~tf.concat([[False], chosen[:-1]], axis=0)
            position = tf.range(tf.shape(chosen, out_type=tf.int64)[0])
            start_positions = tf.concat(
                [tf.boolean_mask(position, starts), [0]], axis=0
            )  # never empty: gather needs a row
            run_start = tf.gather(start_positions, tf.maximum(tf.cumsum(tf.cast(starts, tf.int64)) - 1, 0))
            chosen &= (position - run_start) % 2 == 0
            merged = tf.gather(self.merged_ids, tf.where(chosen, rank, self.no_merge))
            symbols = tf.where(tf.concat([chosen, [False]], 0), tf.concat([merged, [0]], 0), symbols)
            keep = ~tf.concat([[False], chosen], axis=0)
            return tf.boolean_mask(symbols, keep), tf.boolean_mask(owners, keep), tf.reduce_any(chosen)

        symbols, owners, _ = tf.while_loop(
            lambda symbols, owners, changed: changed,
            step,
            (symbols, owners, tf.size(symbols) > 1),  # no symbols: no loop
            shape_invariants=(tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([])),
        )
        # owners stay sorted through the merges: counting them gives each word's length
        lengths = tf.raw_ops.DenseBincount(
            input=owners, size=tf.shape(words, out_type=tf.int64)[0], weights=tf.zeros([0], tf.int64)
        )
        return from_splits(tf.cast(symbols, tf.int32), splits_of(lengths))


def pair_ranks(vocab: dict, merges: list[tuple[str, str]]) -> tuple[list[int], list[int]]:
    """Int64 keys of the merge pairs in rank order, and the id each makes; refuses merges the loop would misorder."""
    width = max(vocab.values()) + 1
    keys, results, made_at = [], [], {}
    for rank, (left, right) in enumerate(merges):
        if left not in vocab or right not in vocab or left + right not in vocab:
            raise UnsupportedTokenizer(
                f"byte-level BPE: merge {rank} ({left!r}, {right!r}) names a token not in the vocabulary"
            )
        # Merging every occurrence of a word's best pair at once equals the Rust priority queue only if
        # no pair involving a freshly made token outranks the merge that made it.
        if made_at.get(left, -1) >= rank or made_at.get(right, -1) >= rank:
            raise UnsupportedTokenizer(f"byte-level BPE: merge {rank} uses a token made by a later merge")
        made_at.setdefault(left + right, rank)
        keys.append(vocab[left] * width + vocab[right])
        results.append(vocab[left + right])
    if len(set(keys)) != len(keys):
        raise UnsupportedTokenizer("byte-level BPE: the merges list a pair twice")
    return keys, results
