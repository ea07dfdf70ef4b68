"""SentencePiece checkpoints (XLM-R, CamemBERT, ALBERT, DeBERTa-v2/v3): tensorflow-text's SentencepieceTokenizer.

The fast tokenizer is not SentencePiece itself: it is a Unigram (or BPE) model over the vocabulary
and scores of tokenizer.json, after a normalizer sequence the converter wrote (ALBERT's quotes,
accents and case; DeBERTa's strip; the .model's precompiled character map) and a Metaspace
pre-tokenizer. So the graph runs the sentencepiece op on a model rebuilt from the checkpoint's
`.model` with tokenizer.json's pieces, ids and scores (every id the op returns is then the fast
tokenizer's id: fairseq offsets, CamemBERT's extra pieces and ALBERT's down-weighted "9,"-pieces
come along), the normalizer steps before the character map replayed with TF ops, and the character
map, whitespace handling and ▁ prefix left to the op.

Known difference, kept as a strict xfail in the tests: the Rust library applies the character map
per grapheme cluster (shortest match inside a cluster under 6 bytes, char by char in longer ones),
SentencePiece by longest match; they differ on decomposed text with a compatibility character
before a combining mark, or two or more marks stacked on one letter (NFC text is not affected).

Example:
```python
family = SentencePiece.of(json.loads(hf_tokenizer.backend_tokenizer.to_str()), hf_tokenizer)
family.tokenize(family.normalize(tf.constant(["Hello world"])))  # ragged int32 ids, no <s>/</s>
```
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import tensorflow as tf

from kerasft.graph_tokenizers.errors import MissingTokenizerFile, UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import between_nuls, interleave
from kerasft.graph_tokenizers.unicode_classes import WHITESPACE

NORMAL, UNKNOWN = 1, 2  # SentencePiece piece types
SPACE_RUN = " {2,}"


class SentencePiece(tf.Module):
    name = "SentencePiece"

    def __init__(self, model_proto: bytes, before_charsmap: list[dict], trailing_space_id: int | None, charsmap: bytes):
        super().__init__()
        import tensorflow_text as tf_text

        self.before_charsmap = before_charsmap
        # The tensorflow-text ops in the graph: NormalizeUTF8 only for ALBERT-style NFKD.
        self.ops = ("SentencepieceOp", "SentencepieceTokenizeOp") + ("NormalizeUTF8",) * any(
            step["type"] == "NFKD" for step in before_charsmap
        )
        self.trailing_space_id = trailing_space_id
        spaces, vanishing = spaces_and_vanishing(charsmap)
        self.space_like, self.vanishing = re2_class(spaces), re2_class(vanishing)
        self.vanishing_char = chr(vanishing[0]) if vanishing else ""
        self.model = tf_text.SentencepieceTokenizer(model=model_proto, out_type=tf.int32)

    @classmethod
    def of(cls, spec: dict, hf_tokenizer) -> SentencePiece:
        model_file = model_file_of(hf_tokenizer)
        steps = normalizer_steps(spec.get("normalizer"))
        charsmaps = [step for step in steps if step["type"] == "Precompiled"]
        if len(charsmaps) != 1:
            raise UnsupportedTokenizer("SentencePiece: the normalizer has no (or several) precompiled character maps")
        at = steps.index(charsmaps[0])
        before, after = steps[:at], steps[at + 1 :]
        for step in before:
            if step["type"] not in ("Replace", "NFKD", "StripAccents", "Lowercase", "Strip"):
                raise UnsupportedTokenizer(f"SentencePiece: normalizer step {step['type']} is not replicated here")
        # What follows the character map must be what SentencePiece does itself: squeeze spaces, and
        # strip the right end unless the fast tokenizer keeps a trailing ▁ (handled in tokenize()).
        kinds = [(step["type"], replace_pattern(step)) for step in after]
        strips_right = kinds in ([("Strip", None), ("Replace", SPACE_RUN)],)
        if not strips_right and kinds != [("Replace", SPACE_RUN)]:
            raise UnsupportedTokenizer(
                f"SentencePiece: normalizer steps {[kind for kind, _ in kinds]} after the character map are not "
                "replicated here"
            )
        if after and after[-1]["type"] == "Replace" and after[-1]["content"] not in (" ", "▁"):
            raise UnsupportedTokenizer("SentencePiece: spaces are squeezed into something else than a space")
        metaspace = metaspace_of(spec.get("pre_tokenizer"))
        charsmap = base64.b64decode(charsmaps[0]["precompiled_charsmap"])
        proto = rebuilt_model(model_file, spec, charsmap=charsmap, dummy_prefix=metaspace["prepend_scheme"] == "always")
        vocab = spec["model"]["vocab"]
        vocab = vocab if isinstance(vocab, dict) else {piece: index for index, (piece, _) in enumerate(vocab)}
        unk_id = spec["model"].get("unk_id", vocab.get(spec["model"].get("unk_token")))
        trailing_space_id = None if strips_right else vocab.get("▁", unk_id)
        return cls(proto, before, trailing_space_id, charsmap)

    def normalize(self, texts):
        """The fast tokenizer's normalizer steps before the character map (the op applies the map itself)."""
        import tensorflow_text as tf_text

        for step in self.before_charsmap:
            kind = step["type"]
            if kind == "Replace":
                texts = tf.strings.regex_replace(
                    texts, re.escape(step["pattern"]["String"]), step["content"].replace("\\", "\\\\")
                )
            elif kind == "NFKD":
                texts = between_nuls(lambda texts: tf_text.normalize_utf8(texts, "NFKD"), texts)
            elif kind == "StripAccents":  # the Rust StripAccents drops every combining mark (Mn, Mc, Me)
                texts = tf.strings.regex_replace(texts, r"\p{M}", "")
            elif kind == "Lowercase":  # char by char as in Rust: Σ is σ everywhere (tf.strings.lower gives a final ς)
                texts = between_nuls(
                    lambda texts: tf.strings.lower(tf.strings.regex_replace(texts, "Σ", "σ"), encoding="utf-8"), texts
                )
            elif kind == "Strip":
                ends = [f"^[{WHITESPACE}]+"] * bool(step.get("strip_left")) + [f"[{WHITESPACE}]+$"] * bool(
                    step.get("strip_right")
                )
                texts = tf.strings.regex_replace(texts, "|".join(ends), "") if ends else texts
        return texts

    def keep_jamo_apart(self, texts):
        """Puts a character the map deletes on each side of every Hangul jamo.

        Two or more jamo make a grapheme cluster of 6 bytes or more, which the Rust library maps
        character by character, so it never recomposes "ᄒ" "ᅡ" into "하"; SentencePiece would (longest
        match), unless something it deletes stands between them.
        """
        if not self.vanishing_char:
            return texts
        return tf.strings.regex_replace(texts, f"([{HANGUL_JAMO}])", self.vanishing_char + r"\1" + self.vanishing_char)

    def tokenize(self, texts):
        """Ids of normalized texts, ragged [N, None] int32."""
        ids = self.model.tokenize(self.keep_jamo_apart(texts))
        if self.trailing_space_id is None:
            return ids
        # Without a final Strip the fast tokenizer keeps a last "▁" word when the text ends in
        # something the character map turns into a space; SentencePiece always drops it.
        vanishing = f"[{self.vanishing}]*" if self.vanishing else ""
        ends_in_space = tf.strings.regex_full_match(texts, f"(?s).*[{self.space_like}]{vanishing}")
        extra = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([tf.shape(texts)[0], 1]), self.trailing_space_id))
        with_space = tf.concat(
            [tf.ragged.boolean_mask(ids, ends_in_space), tf.ragged.boolean_mask(extra, ends_in_space)], axis=1
        )
        return interleave(ends_in_space, with_space, tf.ragged.boolean_mask(ids, ~ends_in_space))


HANGUL_JAMO = r"\x{1100}-\x{11FF}\x{3130}-\x{318F}\x{A960}-\x{A97F}\x{D7B0}-\x{D7FF}"


def re2_class(codes: list[int]) -> str:
    return "".join(f"\\x{{{code:X}}}" for code in codes)


def spaces_and_vanishing(charsmap: bytes) -> tuple[list[int], list[int]]:
    """The code points of the characters the character map turns into a space, and into nothing.

    Found by asking the Rust normalizer about every space, control, format and symbol character
    (U+2581 ▁ and U+FFFD are symbols); letters, marks and digits never map to a space or nothing.
    """
    import unicodedata

    from tokenizers.normalizers import Precompiled

    normalizer = Precompiled(charsmap)
    spaces, vanishing = [ord(" ")], []
    for code in range(0x110000):
        if unicodedata.category(chr(code)) in ("Zs", "Zl", "Zp", "Cc", "Cf", "So", "Sk"):
            mapped = normalizer.normalize_str(chr(code))
            if mapped == "":
                vanishing.append(code)
            elif mapped.strip(" ") == "":
                spaces.append(code)
    return spaces, vanishing


def model_file_of(hf_tokenizer) -> Path:
    name = hf_tokenizer.vocab_files_names.get("vocab_file", "the SentencePiece .model file")
    path = getattr(hf_tokenizer, "vocab_file", None)
    if not path or not Path(path).is_file():
        where = Path(hf_tokenizer.name_or_path) / name if hf_tokenizer.name_or_path else name
        raise MissingTokenizerFile(
            f"SentencePiece: {type(hf_tokenizer).__name__} has tokenizer.json but no {where}, "
            "the .model file the in-graph tokenizer needs"
        )
    return Path(path)


def normalizer_steps(normalizer: dict | None) -> list[dict]:
    if not normalizer:
        return []
    return list(normalizer["normalizers"]) if normalizer["type"] == "Sequence" else [normalizer]


def replace_pattern(step: dict) -> str | None:
    if step["type"] != "Replace":
        return None
    return step["pattern"].get("Regex", step["pattern"].get("String"))


def metaspace_of(pre_tokenizer: dict | None) -> dict:
    steps = (pre_tokenizer or {}).get("pretokenizers", [pre_tokenizer]) if pre_tokenizer else []
    if len(steps) != 1 or steps[0].get("type") != "Metaspace":
        raise UnsupportedTokenizer(
            f"SentencePiece: pre-tokenizer {[step.get('type') for step in steps]} is not replicated here (Metaspace "
            "alone is)"
        )
    metaspace = steps[0]
    if metaspace.get("replacement") != "▁" or not metaspace.get("split", True):
        raise UnsupportedTokenizer(
            "SentencePiece: a Metaspace with another replacement or without split is not replicated here"
        )
    if metaspace.get("prepend_scheme") not in ("always", "never"):
        raise UnsupportedTokenizer(
            f"SentencePiece: Metaspace prepend_scheme={metaspace.get('prepend_scheme')!r} is not replicated here"
        )
    return metaspace


def rebuilt_model(model_file: Path, spec: dict, charsmap: bytes, dummy_prefix: bool) -> bytes:
    """The checkpoint's SentencePiece model with tokenizer.json's pieces, ids and scores, and its character map."""
    from transformers.convert_slow_tokenizer import import_protobuf

    proto = import_protobuf().ModelProto()
    proto.ParseFromString(model_file.read_bytes())
    model = spec["model"]
    kind = {"Unigram": 1, "BPE": 2}[model["type"]]
    if proto.trainer_spec.model_type != kind:
        raise UnsupportedTokenizer(
            f"SentencePiece: {model_file.name} is not the {model['type']} model tokenizer.json describes"
        )
    if model.get("byte_fallback") or proto.trainer_spec.byte_fallback:
        raise UnsupportedTokenizer("SentencePiece: byte fallback is not replicated here")
    if proto.trainer_spec.treat_whitespace_as_suffix:
        raise UnsupportedTokenizer("SentencePiece: treat_whitespace_as_suffix is not replicated here")
    if kind == 1:
        pieces, unk_id = model["vocab"], model["unk_id"]
    else:  # BPE: tokenizer.json has no scores; the .model's scores order the merges, as the converter read them
        scores = {piece.piece: piece.score for piece in proto.pieces}
        pieces = [
            (piece, scores.get(piece, 0.0)) for piece, _ in sorted(model["vocab"].items(), key=lambda item: item[1])
        ]
        unk_id = model["vocab"].get(model.get("unk_token"))
    if unk_id is None or len({piece for piece, _ in pieces}) != len(pieces):
        raise UnsupportedTokenizer("SentencePiece: the vocabulary has no unknown piece, or a piece twice")
    del proto.pieces[:]
    for index, (piece, score) in enumerate(pieces):
        # All normal, so the op may return any id the fast tokenizer's model may (its <s>, <pad>, ...
        # are ordinary vocabulary entries to it); added tokens were cut out of the text before.
        proto.pieces.add(piece=piece, score=score, type=UNKNOWN if index == unk_id else NORMAL)
    proto.trainer_spec.unk_id = unk_id
    proto.trainer_spec.bos_id = proto.trainer_spec.eos_id = proto.trainer_spec.pad_id = -1
    proto.normalizer_spec.precompiled_charsmap = charsmap
    proto.normalizer_spec.add_dummy_prefix = dummy_prefix
    proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True
    proto.ClearField("denormalizer_spec")
    return proto.SerializeToString()
