"""WordPiece (BERT, cased, uncased, multilingual) as TF ops: BertNormalizer, BertPreTokenizer, WordPiece.

tensorflow-text's own BERT normalization (FastBertNormalize, case folding + NFKC) differs from the
Python tokenizer on e.g. "ß", full-width letters and Σ, so the normalizer is replayed here with
RE2 and ICU ops, step by step in the Rust library's order. Then, for a normalized text that is all
ASCII, FastWordpieceTokenizer cuts the words itself and finds their pieces in one pass (its own
word split is BertPreTokenizer's on ASCII, see `tokenize`); any other text has its words cut with
one regex split, and FastWordpieceTokenizer finds the pieces of each word.

Example:
```python
family = WordPiece.of(json.loads(hf_tokenizer.backend_tokenizer.to_str()))
family.tokenize(family.normalize(tf.constant(["Héllo, world!"])))  # ragged int32 ids, no [CLS]/[SEP]
```
"""

from __future__ import annotations

import tensorflow as tf

from kerasft.graph_tokenizers.errors import UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import between_nuls, column, interleave, mask_rows, merge_inner, regex_cut
from kerasft.graph_tokenizers.unicode_classes import BERT_PUNCTUATION, CJK, WHITESPACE


class WordPiece(tf.Module):
    name = "WordPiece"

    def __init__(
        self,
        vocab: dict,
        unk_token: str,
        suffix: str,
        max_chars: int,
        clean_text: bool,
        chinese_chars: bool,
        strip_accents: bool,
        lowercase: bool,
    ):
        super().__init__()
        import tensorflow_text as tf_text

        self.clean_text, self.chinese_chars = clean_text, chinese_chars
        self.strip_accents, self.lowercase = strip_accents, lowercase
        self.max_chars = max_chars
        # The tensorflow-text ops in the graph (both tokenizers below are FastWordpieceTokenizeWithOffsets):
        # NormalizeUTF8 (NFD) only when accents are stripped.
        self.ops = ("FastWordpieceTokenizeWithOffsets",) + ("NormalizeUTF8",) * strip_accents
        self.unk_id = vocab[unk_token]
        tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
        if [vocab[token] for token in tokens] != list(range(len(tokens))):
            raise UnsupportedTokenizer("WordPiece: the vocabulary's ids are not 0..n-1")
        # no_pretokenization: each input is one word, cut here by words(); the byte limit is set past
        # the character limit the Python tokenizer applies (4 bytes a character at most), see tokenize().
        self.wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=tokens,
            suffix_indicator=suffix,
            max_bytes_per_word=4 * max_chars + 4,
            token_out_type=tf.int32,
            unknown_token=unk_token,
            no_pretokenization=True,
            support_detokenization=False,
        )
        # The same vocabulary, end to end: it splits a text at Unicode whitespace and at ASCII or Unicode (P*)
        # punctuation and CJK characters (tensorflow-text's fast_wordpiece_tokenizer_utils), as
        # BertPreTokenizer does after the normalizer spaced CJK characters out. It counts a word's length in
        # bytes, which for ASCII are the characters max_input_chars_per_word counts: so it takes ASCII texts only.
        self.ascii_wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=tokens,
            suffix_indicator=suffix,
            max_bytes_per_word=max_chars,
            token_out_type=tf.int32,
            unknown_token=unk_token,
            no_pretokenization=False,
            support_detokenization=False,
        )

    @classmethod
    def of(cls, spec: dict) -> WordPiece:
        normalizer, pre_tokenizer, model = spec.get("normalizer") or {}, spec.get("pre_tokenizer") or {}, spec["model"]
        if normalizer.get("type") != "BertNormalizer":
            raise UnsupportedTokenizer(
                f"WordPiece: normalizer {normalizer.get('type')} is not replicated here (BertNormalizer is)"
            )
        if pre_tokenizer.get("type") != "BertPreTokenizer":
            raise UnsupportedTokenizer(
                f"WordPiece: pre-tokenizer {pre_tokenizer.get('type')} is not replicated here (BertPreTokenizer is)"
            )
        if model["unk_token"] not in model["vocab"]:
            raise UnsupportedTokenizer(f"WordPiece: the unknown token {model['unk_token']!r} is not in the vocabulary")
        lowercase = bool(normalizer.get("lowercase"))
        strip_accents = normalizer.get("strip_accents")
        return cls(
            vocab=model["vocab"],
            unk_token=model["unk_token"],
            suffix=model.get("continuing_subword_prefix") or "##",
            max_chars=int(model.get("max_input_chars_per_word", 100)),
            clean_text=bool(normalizer.get("clean_text", True)),
            chinese_chars=bool(normalizer.get("handle_chinese_chars", True)),
            strip_accents=lowercase
            if strip_accents is None
            else bool(strip_accents),  # BERT's rule: None follows lowercase
            lowercase=lowercase,
        )

    def normalize(self, texts):
        """BertNormalizer: clean text, space out CJK, strip accents, lower-case (the Rust library's order)."""
        import tensorflow_text as tf_text

        if self.clean_text:  # drop NUL, U+FFFD and other/control characters but \t\n\r; whitespace becomes " "
            texts = tf.strings.regex_replace(texts, r"[\x{0}\x{FFFD}]|[^\P{C}\t\n\r]", "")
            # every other whitespace character becomes " ": leaving " " itself out of the class skips rewriting
            # each space as a space (the normalizer took a third less time, BENCHMARKS.md data at scale)
            texts = tf.strings.regex_replace(texts, f"[{WHITESPACE.replace(' ', '')}]", " ")
        if self.chinese_chars:
            texts = tf.strings.regex_replace(texts, f"([{CJK}])", r" \1 ")
        if self.strip_accents:
            texts = tf.strings.regex_replace(
                between_nuls(lambda texts: tf_text.normalize_utf8(texts, "NFD"), texts), r"\p{Mn}", ""
            )
        if self.lowercase:  # tf.strings.lower makes a word-final Σ into ς; the Rust library lower-cases char by char: σ
            texts = between_nuls(
                lambda texts: tf.strings.lower(tf.strings.regex_replace(texts, "Σ", "σ"), encoding="utf-8"), texts
            )
        return texts

    def tokenize(self, texts):
        """Ids of normalized texts, ragged [N, None] int32: words cut at whitespace and punctuation, then pieces.

        An ASCII text goes through the end-to-end tokenizer, 2.6x (85-token texts) to 6x (22-token texts) faster
        than cutting its words with a regex first (BENCHMARKS.md, data at scale, tenth round): on ASCII its word
        split (whitespace, ASCII punctuation) is BertPreTokenizer's and its byte count the character count.
        """
        ascii_only = tf.strings.regex_full_match(texts, r"[\x00-\x7F]*")
        others = self._words_then_pieces(tf.boolean_mask(texts, ~ascii_only))
        plain = self.ascii_wordpiece.tokenize(tf.boolean_mask(texts, ascii_only))
        return interleave(~ascii_only, others, plain)

    def _words_then_pieces(self, texts):
        """Ids of any normalized texts: words cut with one regex split, then each word's pieces."""
        words = regex_cut(texts, keep=f"[{BERT_PUNCTUATION}]", drop=f"[{WHITESPACE}]+")
        pieces = self.wordpiece.tokenize(words.values)
        # The Python tokenizer gives one [UNK] for a word over max_input_chars_per_word characters.
        too_long = tf.strings.length(words.values, unit="UTF8_CHAR") > self.max_chars
        unknown = column(tf.fill(tf.shape(too_long), self.unk_id))
        pieces = interleave(~too_long, mask_rows(pieces, ~too_long), mask_rows(unknown, too_long))
        return merge_inner(words, pieces)
