"""The ragged-tensor steps the families share, written on row splits with a handful of core ops each.

TensorFlow's own ragged operations validate their inputs and handle any rank, and each adds tens
of ops to the graph (`tf.ragged.boolean_mask` about 190, `merge_dims` and `value_rowids` about 70,
`from_row_splits` about 70 with its checks). A tokenizer chains dozens of them, so its graph had
some 2,300 ops for a single text and 4,600 for a pair, and every export paid seconds to trace, save,
load and optimize them. The rows here are right by construction (made from splits that cumsum and
gather produced), so these helpers build them unvalidated, for the rank-2 and rank-3 shapes the
tokenizers use.

Example:
```python
words = tf.ragged.constant([["a", ""], ["", "b", "c"]])
mask_values(words, words.flat_values != "")                      # [["a"], ["b", "c"]]
mask_rows(words, tf.constant([False, True]))                    # [["", "b", "c"]]
row_ids(tf.constant([0, 2, 2, 5], tf.int64))                    # [0, 0, 2, 2, 2]
append_where(tf.ragged.constant([[1], [2]]), tf.constant([True, False]), 9)  # [[1, 9], [2]]
interleave(tf.constant([True, False, True]), tf.ragged.constant([[1], [2, 3]]), tf.ragged.constant([[9]]))
# [[1], [9], [2, 3]]
keep_first(tf.ragged.constant([[1, 2, 3], [4]]), tf.constant([2, 2]))  # [[1, 2], [4]]
```
"""

from __future__ import annotations

import tensorflow as tf


def from_splits(values, splits):
    """A ragged tensor on row splits known to be valid (TensorFlow's checks would add some 70 ops)."""
    return tf.RaggedTensor.from_row_splits(values, splits, validate=False)


def column(values):
    """Ragged [N, 1]: each value a row of its own."""
    return from_splits(values, tf.range(tf.size(values, out_type=tf.int64) + 1))


def row_ids(splits):
    """The row of every value, from the row splits: ``value_rowids()`` in 14 ops instead of about 70.

    A row starts at each split but the first; counting those starts at or before each position gives
    its row (empty rows share a split and count twice). Splits past the last value, from empty rows at
    the end, are ignored by the count's size.
    """
    count = splits[-1]
    starts = tf.raw_ops.DenseBincount(input=splits[1:-1], size=count, weights=tf.zeros([0], splits.dtype))
    return tf.cumsum(starts)


def row_lengths(rows):
    return rows.row_splits[1:] - rows.row_splits[:-1]


def splits_of(lengths):
    return tf.concat([tf.zeros([1], lengths.dtype), tf.cumsum(lengths)], axis=0)


def mask_values(rows, keep):
    """Ragged [N, None] ``rows`` with only the values where ``keep`` (one bool per value)."""
    kept_before = splits_of(tf.cast(keep, rows.row_splits.dtype))
    return from_splits(tf.boolean_mask(rows.values, keep), tf.gather(kept_before, rows.row_splits))


def mask_rows(rows, keep):
    """Ragged [N, None] ``rows`` with only the rows where ``keep`` (one bool per row)."""
    splits = rows.row_splits
    values = tf.boolean_mask(rows.values, tf.gather(keep, row_ids(splits)))
    return from_splits(values, splits_of(tf.boolean_mask(row_lengths(rows), keep)))


def merge_inner(rows, inner):
    """Ragged [N, None] from [N, (a), (b)] given as ``rows`` (its outer rows over inner rows) and ``inner``
    (ragged [A, None], the inner rows): ``rows.with_flat_values(inner).merge_dims(1, 2)``."""
    return from_splits(inner.values, tf.gather(inner.row_splits, rows.row_splits))


def join_rows(rows):
    """Each row's strings joined: ``tf.strings.reduce_join(rows, axis=1)`` without its ragged machinery."""
    return tf.strings.unsorted_segment_join(rows.values, row_ids(rows.row_splits), tf.shape(rows.row_splits)[0] - 1)


def append_where(rows, condition, value):
    """Ragged int [N, None] ``rows`` with ``value`` appended to the rows where ``condition``."""
    splits = rows.row_splits
    added = tf.cast(condition, splits.dtype)
    new_splits = splits_of(row_lengths(rows) + added)
    # Each old value moves right by what the rows before it gained; each added value ends its row.
    moved = tf.range(splits[-1]) + tf.gather(new_splits[:-1] - splits[:-1], row_ids(splits))
    appended = tf.boolean_mask(new_splits[1:] - 1, condition)
    values = tf.concat([rows.values, tf.fill(tf.shape(appended), tf.constant(value, rows.values.dtype))], axis=0)
    return from_splits(tf.gather(values, tf.math.invert_permutation(tf.concat([moved, appended], axis=0))), new_splits)


def interleave(take_first, first, second):
    """Rows of ragged `first` where take_first, of ragged `second` elsewhere, in the order of take_first."""
    take_first = tf.cast(take_first, tf.int64)
    count_first = tf.reduce_sum(take_first)
    order = tf.where(take_first == 1, tf.cumsum(take_first) - 1, count_first + tf.cumsum(1 - take_first) - 1)
    splits = tf.concat([first.row_splits, first.row_splits[-1] + second.row_splits[1:]], axis=0)
    both = from_splits(tf.concat([first.values, second.values], axis=0), splits)
    return tf.gather(both, order)  # TensorFlow's RaggedGather: one kernel


def keep_first(ids, counts):
    """The first counts[i] values of each row i of a ragged [B, None] tensor."""
    splits = ids.row_splits
    counts = tf.cast(counts, splits.dtype)
    rows = row_ids(splits)
    position = tf.range(splits[-1]) - tf.gather(splits, rows)
    kept = position < tf.gather(counts, rows)
    return from_splits(tf.boolean_mask(ids.values, kept), splits_of(tf.minimum(row_lengths(ids), counts)))


# 0xFF never occurs in UTF-8, so it can mark cuts in any valid text.
CUT = b"\xff"


def regex_cut(texts, keep: str, drop: str | None = None):
    """Ragged [N, None] pieces of 1-D texts: matches of `keep` are pieces of their own, matches of `drop` vanish.

    Like tensorflow-text's regex_split, but with core ops only, and regex_split stops at a NUL
    character, which byte-level BPE must keep: the matches are wrapped in 0xFF bytes, then split there.
    """
    pattern = f"({keep})" if drop is None else f"({keep})|{drop}"
    pieces = tf.strings.split(tf.strings.regex_replace(texts, pattern, CUT + rb"\1" + CUT), CUT)
    return mask_values(pieces, pieces.values != b"")


def between_nuls(transform, texts):
    """transform(texts) for ICU-backed ops (normalize_utf8, tf.strings.lower) that stop at a NUL character.

    NUL characters are cut out as pieces of their own (a NUL in an op attribute would end it too,
    so no split or join separator is one), the other pieces transformed, and all joined again.
    """
    pieces = regex_cut(texts, keep=r"\x00")
    is_nul = pieces.values == tf.constant("\x00")
    return join_rows(pieces.with_values(tf.where(is_nul, pieces.values, transform(pieces.values))))
