"""Two ragged-tensor helpers the families share: pick rows from two ragged tensors, keep a row prefix.

Example:
```python
interleave(tf.constant([True, False, True]), tf.ragged.constant([[1], [2, 3]]), tf.ragged.constant([[9]]))
# [[1], [9], [2, 3]]
keep_first(tf.ragged.constant([[1, 2, 3], [4]]), tf.constant([2, 2]))  # [[1, 2], [4]]
```
"""

from __future__ import annotations

import tensorflow as tf


def interleave(take_first, first, second):
    """Rows of ragged `first` where take_first, of ragged `second` elsewhere, in the order of take_first."""
    take_first = tf.cast(take_first, tf.int64)
    count_first = tf.reduce_sum(take_first)
    order = tf.where(take_first == 1, tf.cumsum(take_first) - 1, count_first + tf.cumsum(1 - take_first) - 1)
    return tf.gather(tf.concat([first, second], axis=0), order)


def keep_first(ids, counts):
    """The first counts[i] values of each row i of a ragged [B, None] tensor."""
    counts = tf.cast(counts, ids.row_splits.dtype)
    rows = ids.value_rowids()
    position = tf.range(tf.shape(ids.flat_values, out_type=ids.row_splits.dtype)[0]) - tf.gather(ids.row_splits, rows)
    kept = position < tf.gather(counts, rows)
    return tf.RaggedTensor.from_row_lengths(
        tf.boolean_mask(ids.flat_values, kept), tf.minimum(ids.row_lengths(), counts)
    )


# 0xFF never occurs in UTF-8, so it can mark cuts in any valid text.
CUT = b"\xff"


def regex_cut(texts, keep: str, drop: str | None = None):
    """Ragged [N, None] pieces of 1-D texts: matches of `keep` are pieces of their own, matches of `drop` vanish.

    Like tensorflow-text's regex_split, but with core ops only, and regex_split stops at a NUL
    character, which byte-level BPE must keep: the matches are wrapped in 0xFF bytes, then split there.
    """
    pattern = f"({keep})" if drop is None else f"({keep})|{drop}"
    pieces = tf.strings.split(tf.strings.regex_replace(texts, pattern, CUT + rb"\1" + CUT), CUT)
    return tf.ragged.boolean_mask(pieces, pieces != b"")


def between_nuls(transform, texts):
    """transform(texts) for ICU-backed ops (normalize_utf8, tf.strings.lower) that stop at a NUL character.

    NUL characters are cut out as pieces of their own (a NUL in an op attribute would end it too,
    so no split or join separator is one), the other pieces transformed, and all joined again.
    """
    pieces = regex_cut(texts, keep=r"\x00")
    is_nul = pieces.flat_values == tf.constant("\x00")
    transformed = tf.where(is_nul, pieces.flat_values, transform(pieces.flat_values))
    return tf.strings.reduce_join(pieces.with_flat_values(transformed), axis=1)
