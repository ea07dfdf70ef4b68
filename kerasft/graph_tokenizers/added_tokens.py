"""Added tokens ([CLS], <mask>, ...) found in text, as the Rust tokenizers' AddedVocabulary finds them.

The fast tokenizer cuts each text at every added token, so "hi [SEP] you" is "hi ", "[SEP]", " you":
the middle one becomes its id and the others are tokenized on their own (each gets its own prefix
space or ▁). Tokens marked `normalized=False` are found in the raw text, the others in the text
after the normalizer ran, so `AddedTokens` cuts in two stages. Each stage is one RE2 alternation,
longest token first, which picks the leftmost-longest match as the library's Aho-Corasick
automaton does.

Example:
```python
added = AddedTokens(spec["added_tokens"])          # spec: the tokenizer.json as a dict
segments, ids = added.split(tf.constant(["hi [SEP] you"]), normalize=lambda text: text)
# segments: [[b"hi ", b"[SEP]", b" you"]], ids: [[-1, 3, -1]] (-1: not an added token)
```
"""

from __future__ import annotations

import re

import tensorflow as tf

from kerasft.graph_tokenizers.errors import UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import column, interleave, merge_inner, regex_cut
from kerasft.graph_tokenizers.unicode_classes import WHITESPACE

NOT_A_TOKEN = -1


class AddedTokens(tf.Module):
    def __init__(self, tokens: list[dict]):
        super().__init__()
        for token in tokens:
            if token.get("single_word"):
                raise UnsupportedTokenizer(
                    f"added token {token['content']!r} is single_word, which is not replicated here"
                )
        self.raw_pattern = alternation([token for token in tokens if not token.get("normalized")])
        self.normalized_pattern = alternation([token for token in tokens if token.get("normalized")])
        self.ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant([token["content"] for token in tokens] or [""], tf.string),
                tf.constant([token["id"] for token in tokens] or [NOT_A_TOKEN], tf.int32),
            ),
            default_value=NOT_A_TOKEN,
        )

    def split(self, texts, normalize):
        """Segments of each text (ragged [B, None]) and their ids: an added token's, or -1 for normalized text."""
        segments = column(texts)
        ids = segments.with_values(tf.fill(tf.shape(texts), NOT_A_TOKEN))
        if self.raw_pattern:
            segments, ids = self.cut(segments, ids, self.raw_pattern)
        is_text = ids.values == NOT_A_TOKEN
        normalized = tf.where(is_text, normalize(segments.values), segments.values)
        segments = segments.with_values(normalized)
        if self.normalized_pattern:
            segments, ids = self.cut(segments, ids, self.normalized_pattern)
        return segments, ids

    def cut(self, segments, ids, pattern: str):
        """Cuts every text segment at each match of pattern; segments that are tokens already stay whole."""
        flat_segments, flat_ids = segments.values, ids.values
        is_text = flat_ids == NOT_A_TOKEN
        pieces = regex_cut(tf.boolean_mask(flat_segments, is_text), pattern)
        # A piece is a token if, stripped of the whitespace lstrip/rstrip took in, it is one; text
        # between tokens never matches a whole token (the split would have cut it there).
        stripped = tf.strings.regex_replace(pieces.values, f"^[{WHITESPACE}]+|[{WHITESPACE}]+$", "")
        is_token = tf.strings.regex_full_match(pieces.values, pattern)
        piece_ids = pieces.with_values(tf.where(is_token, self.ids.lookup(stripped), NOT_A_TOKEN))
        kept = column(tf.boolean_mask(flat_segments, ~is_text))
        kept_ids = column(tf.boolean_mask(flat_ids, ~is_text))
        new_segments = interleave(is_text, pieces, kept)
        new_ids = interleave(is_text, piece_ids, kept_ids)
        return merge_inner(segments, new_segments), merge_inner(ids, new_ids)


def alternation(tokens: list[dict]) -> str:
    """One RE2 pattern for all tokens, longest first; lstrip/rstrip take in the whitespace beside a token."""
    patterns = []
    for token in sorted(tokens, key=lambda token: -len(token["content"])):
        pattern = re.escape(token["content"])  # Python's escaping is valid RE2
        if token.get("lstrip"):
            pattern = f"[{WHITESPACE}]*" + pattern
        if token.get("rstrip"):
            pattern += f"[{WHITESPACE}]*"
        patterns.append(f"(?:{pattern})")
    return "|".join(patterns)
