"""Special tokens, single and pair templates, longest-first truncation and right padding, as TF ops.

`Template.of(spec)` reads the post-processor of a tokenizer.json (TemplateProcessing,
RobertaProcessing, BertProcessing, or none) and `Template.assemble` turns ragged token ids of the
first and optional second texts into padded model inputs, truncated the way the Rust tokenizers
library truncates with `truncation="longest_first"`.

Example:
```python
template = Template.of(json.loads(hf_tokenizer.backend_tokenizer.to_str()))
inputs = template.assemble(ids_a, ids_b, max_length=128, pad_id=hf_tokenizer.pad_token_id)
# {"input_ids": [B, W] int32, "attention_mask": [B, W] int32, "token_type_ids": [B, W] int32}
```
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from kerasft.graph_tokenizers.errors import UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import keep_first, row_ids, row_lengths

SEQUENCE = None  # a template item that stands for the text's own tokens, not a special token


@dataclass(frozen=True)
class Template:
    """Each template is a tuple of (token id or SEQUENCE, type id) items, A before B."""

    single: tuple
    pair: tuple

    @classmethod
    def of(cls, spec: dict) -> Template:
        processor = spec.get("post_processor")
        if processor and processor.get("type") == "Sequence":  # e.g. ByteLevel (offsets only) + a template
            adding = [step for step in processor["processors"] if step.get("type") != "ByteLevel"]
            if len(adding) > 1:
                raise UnsupportedTokenizer(f"post-processor: a sequence of {[step['type'] for step in adding]}")
            processor = adding[0] if adding else None
        kind = processor.get("type") if processor else None
        if kind is None or kind == "ByteLevel":
            return cls(single=((SEQUENCE, 0),), pair=((SEQUENCE, 0), (SEQUENCE, 1)))
        if kind in ("RobertaProcessing", "BertProcessing"):
            cls_id, sep_id = processor["cls"][1], processor["sep"][1]
            middle = ((sep_id, 0), (sep_id, 1)) if kind == "RobertaProcessing" else ((sep_id, 0),)
            # Both put the second text and what follows the first [SEP] in segment 1, as the Rust code does.
            return cls(
                single=((cls_id, 0), (SEQUENCE, 0), (sep_id, 0)),
                pair=((cls_id, 0), (SEQUENCE, 0), *middle, (SEQUENCE, 1), (sep_id, 1)),
            )
        if kind == "TemplateProcessing":
            return cls(single=_items(processor, "single"), pair=_items(processor, "pair"))
        raise UnsupportedTokenizer(f"post-processor {kind} has no in-graph template here")

    def special_count(self, pair: bool) -> int:
        return sum(1 for token, _ in (self.pair if pair else self.single) if token is not SEQUENCE)

    def assemble(self, ids_a, ids_b, max_length: int, pad_id: int) -> dict:
        """Truncates, adds special tokens, pads: ids_a/ids_b are ragged [B, None] int32 (ids_b may be None)."""
        items = self.single if ids_b is None else self.pair
        budget = max(max_length - self.special_count(pair=ids_b is not None), 0)
        if ids_b is None:
            sequences = [keep_first(ids_a, tf.fill(tf.shape(row_lengths(ids_a)), budget))]
        else:
            keep_a, keep_b = longest_first(row_lengths(ids_a), row_lengths(ids_b), budget)
            sequences = [keep_first(ids_a, keep_a), keep_first(ids_b, keep_b)]
        # Each row is the template's items in order, so an item starts where the row's items before it end: every
        # id's (row, column) is known, and the padded tensors are scattered at once (TensorFlow's ragged concat
        # and to_tensor would add some 200 ops to the graph).
        rows = tf.shape(sequences[0].row_splits, out_type=tf.int64)[0] - 1
        end = tf.zeros([rows], tf.int64)  # of each row's items so far
        positions, ids, types, next_sequence = [], [], [], iter(sequences)
        for token, type_id in items:
            if token is SEQUENCE:
                sequence = next(next_sequence)
                splits = sequence.row_splits
                row = row_ids(splits)
                columns = tf.gather(end, row) + tf.range(splits[-1]) - tf.gather(splits, row)
                positions.append(tf.stack([row, columns], axis=1))
                ids.append(sequence.values)
                end += row_lengths(sequence)
            else:
                positions.append(tf.stack([tf.range(rows), end], axis=1))
                ids.append(tf.fill([rows], tf.constant(token, tf.int32)))
                end += 1
            types.append(tf.fill(tf.shape(ids[-1]), tf.constant(type_id, tf.int32)))
        # At least 2 columns, so an empty batch (or a template without special tokens on empty texts)
        # still gives attention an axis to work on.
        width = tf.maximum(tf.reduce_max(tf.concat([end, [0]], axis=0)), 2)
        shape = tf.stack([rows, width])
        positions, ids = tf.concat(positions, axis=0), tf.concat(ids, axis=0)

        def scattered(values, empty):
            return tf.tensor_scatter_nd_update(tf.fill(shape, tf.constant(empty, tf.int32)), positions, values)

        return {
            "input_ids": scattered(ids, pad_id),
            "attention_mask": scattered(tf.ones_like(ids), 0),
            "token_type_ids": scattered(tf.concat(types, axis=0), 0),
        }


def _items(processor: dict, name: str) -> tuple:
    specials = processor["special_tokens"]
    items = []
    for item in processor[name]:
        if "Sequence" in item:
            items.append((SEQUENCE, item["Sequence"]["type_id"]))
        else:
            ids = specials[item["SpecialToken"]["id"]]["ids"]
            items.extend((token_id, item["SpecialToken"]["type_id"]) for token_id in ids)
    sequences = [item for item in items if item[0] is SEQUENCE]
    if len(sequences) != (1 if name == "single" else 2):
        raise UnsupportedTokenizer(f"TemplateProcessing: the {name} template repeats or omits a text")
    return tuple(items)


def longest_first(length_a, length_b, budget: int):
    """How many tokens of each text to keep, as the Rust tokenizers' TruncationStrategy::LongestFirst.

    With lengths n1 <= n2 (swapped back at the end): the shorter keeps everything if the longer can
    take the rest of the budget; otherwise both are cut to half the budget, the longer one getting
    the odd token. Texts that fit together are not cut.
    """
    length_a, length_b = tf.cast(length_a, tf.int64), tf.cast(length_b, tf.int64)
    budget = tf.constant(budget, tf.int64)
    shorter = tf.minimum(length_a, length_b)
    keep_shorter = shorter
    keep_longer = tf.where(shorter > budget, shorter, tf.maximum(shorter, budget - shorter))
    halve = keep_shorter + keep_longer > budget
    keep_shorter = tf.where(halve, budget // 2, keep_shorter)
    keep_longer = tf.where(halve, budget // 2 + budget % 2, keep_longer)
    swapped = length_a > length_b
    keep_a = tf.where(swapped, keep_longer, keep_shorter)
    keep_b = tf.where(swapped, keep_shorter, keep_longer)
    fits = length_a + length_b <= budget
    return tf.where(fits, length_a, keep_a), tf.where(fits, length_b, keep_b)
