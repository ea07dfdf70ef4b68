"""In-graph tokenizers: raw strings in, the fast Hugging Face tokenizer's ids out, token for token.

`for_tokenizer` reads a fast tokenizer's tokenizer.json and builds a tf.Module that replays it
with TensorFlow and tensorflow-text ops, so a SavedModel answers raw text under TF Serving. One
module per family: `wordpiece` (BERT), `byte_bpe` (RoBERTa, GPT-2), `sentencepiece` (XLM-R,
ALBERT, DeBERTa-v2/v3, CamemBERT). `added_tokens` finds [CLS]-like tokens in the text and
`templates` adds special tokens, truncates (longest first) and pads. Where a family or one of its
settings has no exact in-graph form, `UnsupportedTokenizer` says which and why in one line.
Before returning, the module is run on PROBE_TEXTS and compared with the Python tokenizer.

Example:
```python
from kerasft.graph_tokenizers import for_tokenizer, UnsupportedTokenizer

tokenizer = for_tokenizer(hf_tokenizer, max_length=128)
tokenizer(tf.constant(["I'm happy", ""]))
# {"input_ids": int32 [2, W], "attention_mask": int32 [2, W]} (+ "token_type_ids" for BERT-like models)
tokenizer(tf.constant(["a question"]), text_pair=tf.constant(["its context"]))
tokenizer.ops  # ("RegexSplitWithOffsets", ...): the tensorflow-text ops its graph uses
```
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from kerasft.graph_tokenizers.added_tokens import NOT_A_TOKEN, AddedTokens
from kerasft.graph_tokenizers.errors import MissingTokenizerFile, UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import column, interleave, merge_inner
from kerasft.graph_tokenizers.templates import Template

__all__ = ["PROBE_TEXTS", "GraphTokenizer", "MissingTokenizerFile", "UnsupportedTokenizer", "for_tokenizer"]

# Checked at build time against the Python tokenizer: a wrong reading of a tokenizer.json shows here.
PROBE_TEXTS = [
    "",
    " ",
    "Hello, World! It's 3.14 o'clock.",
    "  two  spaces\tand a tab\n",
    "Café naïve ÀÉÎ straße ΣΑΣ",
    "日本語のテキスト 한국어 中文 مرحبا",
    "emoji 😀 👨‍👩‍👧 🇫🇷",
    "e\u0301 zero\u200bwidth \x07control",
    "word " * 200,
]


class GraphTokenizer(tf.Module):
    """A family's normalizer and model, the added tokens and the template, as one callable module."""

    def __init__(
        self, family, added_tokens: AddedTokens, template: Template, max_length: int, pad_id: int, token_type_ids: bool
    ):
        super().__init__()
        self.family, self.added_tokens, self.template = family, added_tokens, template
        self.max_length, self.pad_id, self.token_type_ids = max_length, pad_id, token_type_ids

    @property
    def ops(self) -> tuple:
        """The tensorflow-text (non-core) ops this module's graph uses."""
        return tuple(sorted(self.family.ops))

    def __call__(self, text, text_pair=None):
        ids_a = self.token_ids(text)
        ids_b = None if text_pair is None else self.token_ids(text_pair)
        inputs = self.template.assemble(ids_a, ids_b, self.max_length, self.pad_id)
        if not self.token_type_ids:
            del inputs["token_type_ids"]
        return inputs

    def token_ids(self, texts):
        """Ragged [B, None] int32 ids of each text, added tokens included, special tokens not."""
        texts = tf.convert_to_tensor(texts, tf.string)
        segments, ids = self.added_tokens.split(texts, self.family.normalize)
        is_text = ids.values == NOT_A_TOKEN
        text_ids = self.family.tokenize(tf.boolean_mask(segments.values, is_text))
        token_ids = column(tf.boolean_mask(ids.values, ~is_text))
        return merge_inner(segments, interleave(is_text, text_ids, token_ids))


def family_of(spec: dict, hf_tokenizer):
    model, pre_tokenizer = spec.get("model") or {}, spec.get("pre_tokenizer") or {}
    kind = model.get("type")
    if kind == "WordPiece":
        from kerasft.graph_tokenizers.wordpiece import WordPiece

        return WordPiece.of(spec)
    if kind == "BPE" and pre_tokenizer.get("type") == "ByteLevel":
        from kerasft.graph_tokenizers.byte_bpe import ByteLevelBPE

        return ByteLevelBPE.of(spec)
    if kind in ("Unigram", "BPE"):
        from kerasft.graph_tokenizers.sentencepiece import SentencePiece

        return SentencePiece.of(spec, hf_tokenizer)
    raise UnsupportedTokenizer(
        f"{kind or 'unknown'} model: no in-graph form here (WordPiece, byte-level BPE and SentencePiece have one)"
    )


def for_tokenizer(hf_tokenizer, max_length: int, verify: bool = True) -> GraphTokenizer:
    """The in-graph form of a fast Hugging Face tokenizer, or UnsupportedTokenizer(one-line reason)."""
    name = type(hf_tokenizer).__name__
    if not getattr(hf_tokenizer, "is_fast", False):
        raise UnsupportedTokenizer(
            f"{name} is a slow (Python) tokenizer: the in-graph forms follow a fast tokenizer's tokenizer.json"
        )
    if hf_tokenizer.pad_token_id is None:
        raise UnsupportedTokenizer(f"{name} has no pad token, so a batch cannot be padded as the Python tokenizer pads")
    if hf_tokenizer.padding_side != "right":
        raise UnsupportedTokenizer(
            f"{name} pads on the {hf_tokenizer.padding_side}; the in-graph form pads on the right"
        )
    spec = json.loads(hf_tokenizer.backend_tokenizer.to_str())
    family = family_of(spec, hf_tokenizer)
    template = Template.of(spec)
    for pair in (False, True):
        if template.special_count(pair) != hf_tokenizer.num_special_tokens_to_add(pair=pair):
            raise UnsupportedTokenizer(
                f"{family.name}: the template adds a different number of special tokens than {name}"
            )
    tokenizer = GraphTokenizer(
        family,
        AddedTokens(spec.get("added_tokens") or []),
        template,
        max_length,
        hf_tokenizer.pad_token_id,
        token_type_ids="token_type_ids" in hf_tokenizer.model_input_names,
    )
    if verify:
        check_against(tokenizer, hf_tokenizer, PROBE_TEXTS, max_length)
    return tokenizer


def check_against(tokenizer: GraphTokenizer, hf_tokenizer, texts: list[str], max_length: int) -> None:
    """Raises UnsupportedTokenizer if the module's ids differ from the Python tokenizer's on texts and pairs of them."""
    pairs = list(reversed(texts))
    expected = hf_tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="np")
    expected_pairs = hf_tokenizer(
        texts, pairs, truncation=True, max_length=max_length, padding=True, return_tensors="np"
    )
    # Run eagerly: the same ops the export traces, whose parity check then runs these probe texts through the traced
    # graph as well. Tracing both forms here took about 2 s at the start of every run, running them 0.3 s.
    got = tokenizer(tf.constant(texts))
    got_pairs = tokenizer(tf.constant(texts), text_pair=tf.constant(pairs))
    for name in got:
        if not (
            np.array_equal(got[name].numpy(), expected[name])
            and np.array_equal(got_pairs[name].numpy(), expected_pairs[name])
        ):
            raise UnsupportedTokenizer(
                f"{tokenizer.family.name}: the in-graph {name} differ from {type(hf_tokenizer).__name__}'s on probe "
                "texts"
            )
