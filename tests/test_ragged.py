"""kerasft.graph_tokenizers.ragged's lean steps against TensorFlow's own ragged operations, on rows that are empty
at the start, in the middle and at the end, and on no rows at all."""

import numpy as np
import pytest
import tensorflow as tf

from kerasft.graph_tokenizers import ragged

ROWS = [
    [[], [1, 2], [], [3], [4, 5, 6], []],
    [[7]],
    [[], []],
    [],
]


def as_ragged(rows):
    return tf.RaggedTensor.from_row_lengths(
        tf.constant([value for row in rows for value in row], tf.int32), [len(row) for row in rows]
    )


def in_graph(function, *args):
    """function traced without AutoGraph, as the export traces the tokenizers."""
    return tf.function(function, autograph=False)(*args)


def same(got, expected):
    assert got.to_list() == expected.to_list()
    assert got.row_splits.dtype == tf.int64


@pytest.mark.parametrize("rows", ROWS)
def test_row_ids_equal_value_rowids(rows):
    rows = as_ragged(rows)
    np.testing.assert_array_equal(in_graph(ragged.row_ids, rows.row_splits), rows.value_rowids())


@pytest.mark.parametrize("rows", ROWS)
def test_masking_values_and_rows_equals_tf_ragged_boolean_mask(rows):
    rows = as_ragged(rows)
    odd = rows.values % 2 == 1
    same(in_graph(ragged.mask_values, rows, odd), tf.ragged.boolean_mask(rows, rows.with_values(odd)))
    every_other = tf.range(rows.nrows()) % 2 == 0
    same(in_graph(ragged.mask_rows, rows, every_other), tf.ragged.boolean_mask(rows, every_other))


@pytest.mark.parametrize("rows", ROWS)
def test_merging_inner_rows_equals_merge_dims(rows):
    outer = as_ragged(rows)
    lengths = tf.cast(outer.values, tf.int64)  # inner row v is v long
    inner = tf.RaggedTensor.from_row_lengths(tf.range(tf.reduce_sum(lengths)), lengths)
    same(in_graph(ragged.merge_inner, outer, inner), outer.with_values(inner).merge_dims(1, 2))


@pytest.mark.parametrize("rows", ROWS)
def test_joining_rows_equals_reduce_join(rows):
    strings = tf.strings.as_string(as_ragged(rows))
    np.testing.assert_array_equal(in_graph(ragged.join_rows, strings), tf.strings.reduce_join(strings, axis=1))


@pytest.mark.parametrize("rows", ROWS)
def test_append_where_and_keep_first(rows):
    ragged_rows = as_ragged(rows)
    condition = tf.range(ragged_rows.nrows()) % 3 != 1
    appended = in_graph(lambda r, c: ragged.append_where(r, c, 99), ragged_rows, condition)
    assert appended.to_list() == [row + [99] * bool(keep) for row, keep in zip(rows, condition.numpy())]
    counts = tf.range(ragged_rows.nrows()) % 3
    kept = in_graph(ragged.keep_first, ragged_rows, counts)
    assert kept.to_list() == [row[:count] for row, count in zip(rows, counts.numpy())]


def test_interleave_and_column():
    first, second = as_ragged([[1], [], [2, 3]]), in_graph(ragged.column, tf.constant([8, 9]))
    assert second.to_list() == [[8], [9]]
    take_first = tf.constant([True, False, True, False, True])
    assert in_graph(ragged.interleave, take_first, first, second).to_list() == [[1], [8], [], [9], [2, 3]]
