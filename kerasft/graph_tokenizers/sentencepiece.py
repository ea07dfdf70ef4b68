"""SentencePiece checkpoints (XLM-R, CamemBERT, ALBERT, DeBERTa-v2/v3): tensorflow-text's SentencepieceTokenizer.

The fast tokenizer is not SentencePiece itself: it is a Unigram (or BPE) model over the vocabulary
and scores of tokenizer.json, after a normalizer sequence the converter wrote (ALBERT's quotes,
accents and case; DeBERTa's strip; the .model's precompiled character map) and a Metaspace
pre-tokenizer. So the graph runs the sentencepiece op on a model rebuilt from the checkpoint's
`.model` with tokenizer.json's pieces, ids and scores (every id the op returns is then the fast
tokenizer's id: fairseq offsets, CamemBERT's extra pieces and ALBERT's down-weighted "9,"-pieces
come along), the normalizer steps before the character map replayed with TF ops, the character
map applied with TF ops as the Rust library applies it (below), and whitespace handling and the ▁
prefix left to the op.

The character map is not left to the op because the Rust library applies it per grapheme cluster
(a cluster under 6 bytes with a mapped prefix becomes the shortest such prefix's mapping, marks
after it dropped; longer clusters go char by char), SentencePiece by longest match: they differ on
decomposed text such as `e\u0301\u0302\u0303` or `Ａ\u0301`. So the graph cuts the text into
clusters (an approximation of UAX #29 that covers every case a cluster under 6 bytes can be: a
base with one or two marks or joiners, CR LF, a prepended concatenation mark), looks the
prefixes up in a table of the map's entries under 6 bytes, and hands the op the mapped text with
an empty map.

Example:
```python
family = SentencePiece.of(json.loads(hf_tokenizer.backend_tokenizer.to_str()), hf_tokenizer)
family.tokenize(family.normalize(tf.constant(["Hello world"])))  # ragged int32 ids, no <s>/</s>
```
"""

from __future__ import annotations

import base64
import re
import struct
from pathlib import Path

import tensorflow as tf

from kerasft.graph_tokenizers.errors import MissingTokenizerFile, UnsupportedTokenizer
from kerasft.graph_tokenizers.ragged import append_where, between_nuls, row_ids
from kerasft.graph_tokenizers.unicode_classes import WHITESPACE

NORMAL, UNKNOWN = 1, 2  # SentencePiece piece types
SPACE_RUN = " {2,}"


class SentencePiece(tf.Module):
    name = "SentencePiece"

    def __init__(
        self,
        model_proto: bytes,
        before_charsmap: list[dict],
        after_charsmap: list[dict],
        trailing_space_id: int,
        charsmap: bytes,
    ):
        super().__init__()
        import tensorflow_text as tf_text

        self.before_charsmap, self.after_charsmap = before_charsmap, after_charsmap
        # The tensorflow-text ops in the graph: NormalizeUTF8 only for ALBERT-style NFKD.
        self.ops = ("SentencepieceOp", "SentencepieceTokenizeOp") + ("NormalizeUTF8",) * any(
            step["type"] == "NFKD" for step in before_charsmap
        )
        self.trailing_space_id = trailing_space_id
        entries = charsmap_entries(charsmap)
        # No key holds a NUL (the map's strings end at one), so NUL marks "not in the map".
        self.charsmap = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(entries), tf.string), tf.constant(list(entries.values()), tf.string)
            ),
            default_value=NOT_MAPPED,
        )
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
        proto = rebuilt_model(model_file, spec, dummy_prefix=metaspace["prepend_scheme"] == "always")
        vocab = spec["model"]["vocab"]
        vocab = vocab if isinstance(vocab, dict) else {piece: index for index, (piece, _) in enumerate(vocab)}
        unk_id = spec["model"].get("unk_id", vocab.get(spec["model"].get("unk_token")))
        # The normalizer may strip the right end, but a segment before an added token found in the
        # normalized text can still end in a space (or a squeezed "▁"), which the fast tokenizer keeps.
        trailing_space_id = vocab.get("▁", unk_id)
        return cls(proto, before, after, trailing_space_id, charsmap)

    def normalize(self, texts):
        """The fast tokenizer's whole normalizer: the steps before the character map, the map, the steps after it.

        All of it, as added tokens marked `normalized` are found in the normalized text: XLM-R's
        squeezes "  " into "▁", which `<mask>`'s lstrip does not take in.
        """
        texts = self.apply_steps(self.before_charsmap, texts)
        return self.apply_steps(self.after_charsmap, self.apply_charsmap(texts))

    def apply_steps(self, steps: list[dict], texts):
        import tensorflow_text as tf_text

        for step in steps:
            kind = step["type"]
            if kind == "Replace":
                pattern = step["pattern"]
                pattern = re.escape(pattern["String"]) if "String" in pattern else pattern["Regex"]
                texts = tf.strings.regex_replace(texts, pattern, step["content"].replace("\\", "\\\\"))
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

    def apply_charsmap(self, texts):
        """The precompiled character map applied as the Rust library applies it: per grapheme cluster.

        A cluster under 6 bytes with a prefix in the map becomes the mapping of its shortest such
        prefix (what follows the prefix is dropped); other clusters, and clusters of 6 bytes or more,
        are mapped char by char. No map entry under 6 bytes has more than 3 characters (only ASCII
        characters are 1 byte, and they join nothing but CR LF), so three prefixes are looked up.
        """
        chars = tf.strings.unicode_split(texts, "UTF-8")
        flat, rows = chars.values, row_ids(chars.row_splits)
        index = tf.range(tf.size(flat, out_type=tf.int64))
        previous = tf.concat([tf.constant([""]), flat], axis=0)[:-1]
        is_control = tf.strings.regex_full_match(flat, CONTROL) & ~tf.strings.regex_full_match(flat, JOINERS)
        previous_control = tf.concat([tf.constant([True]), is_control], axis=0)[:-1]
        joins = (index != tf.gather(chars.row_splits, rows)) & (
            (tf.strings.regex_full_match(flat, EXTEND) & ~previous_control)
            | ((flat == "\n") & (previous == "\r"))
            | (tf.strings.regex_full_match(previous, PREPEND) & ~is_control & (flat != "\r") & (flat != "\n"))
        )
        starts = tf.ensure_shape(~joins, [None])  # regex_full_match leaves the shape unknown
        cluster = tf.cumsum(tf.cast(starts, tf.int64)) - 1
        clusters = tf.reduce_sum(tf.cast(starts, tf.int64))
        in_cluster = index - tf.gather(tf.boolean_mask(index, starts), cluster)
        whole = tf.strings.unsorted_segment_join(flat, cluster, clusters)
        mapped = self.charsmap.lookup(flat)
        char_by_char = tf.strings.unsorted_segment_join(tf.where(mapped == NOT_MAPPED, flat, mapped), cluster, clusters)
        result, found = char_by_char, tf.zeros_like(whole, tf.bool)
        for length in (1, 2, 3):  # shortest prefix first
            prefix = tf.strings.unsorted_segment_join(tf.where(in_cluster < length, flat, ""), cluster, clusters)
            value = self.charsmap.lookup(prefix)
            hit = ~found & (value != NOT_MAPPED) & (tf.strings.length(whole) < 6)
            result, found = tf.where(hit, value, result), found | hit
        return tf.strings.unsorted_segment_join(
            result, tf.boolean_mask(rows, starts), tf.size(texts, out_type=tf.int64)
        )

    def tokenize(self, texts):
        """Ids of normalized texts, ragged [N, None] int32."""
        # The steps after the map may squeeze spaces into "▁", which Metaspace reads as a space, and so
        # does SentencePiece once it is a space again (the map itself turns a raw "▁" into a space).
        texts = tf.strings.regex_replace(texts, "▁", " ")
        ids = self.model.tokenize(texts)
        # The fast tokenizer keeps a last "▁" word when the normalized text ends in a space;
        # SentencePiece always drops it.
        ends_in_space = tf.strings.regex_full_match(texts, "(?s).* ")
        return append_where(ids, ends_in_space, self.trailing_space_id)


NOT_MAPPED = "\x00"
# Grapheme cluster classes (UAX #29) as far as clusters under 6 bytes go: what extends a cluster
# (marks, joiners, Thai/Lao AM, halfwidth sound marks, skin tones, tags), what a cluster never
# extends across (controls; ZWNJ and ZWJ are format characters but extend), and prepended
# concatenation marks, which join what follows them.
EXTEND = r"[\p{M}\x{200C}\x{200D}\x{0E33}\x{0EB3}\x{FF9E}\x{FF9F}\x{1F3FB}-\x{1F3FF}\x{E0020}-\x{E007F}]"
CONTROL = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
JOINERS = r"[\x{200C}\x{200D}]"
PREPEND = (
    r"[\x{0600}-\x{0605}\x{06DD}\x{070F}\x{0890}\x{0891}\x{08E2}\x{0D4E}\x{110BD}\x{110CD}\x{111C2}\x{111C3}"
    r"\x{1193F}\x{11941}\x{11A3A}\x{11A84}-\x{11A89}\x{11D46}\x{11F02}]"
)


def charsmap_entries(charsmap: bytes, max_bytes: int = 5) -> dict[bytes, bytes]:
    """The precompiled character map's entries with keys of at most max_bytes bytes.

    The map is a 4-byte trie size, a Darts double-array trie over the keys' bytes whose leaves
    hold offsets, and the NUL-terminated mapped strings; read as spm_precompiled reads it.
    """
    size = int.from_bytes(charsmap[:4], "little")
    units = struct.unpack(f"<{size // 4}I", charsmap[4 : 4 + size])
    mapped = charsmap[4 + size :]

    def offset(unit: int) -> int:
        return unit >> 10 << ((unit & 512) >> 6)

    entries, stack = {}, [(offset(units[0]), b"")]
    while stack:
        position, key = stack.pop()
        for byte in range(1, 256):
            child = position ^ byte
            if child >= len(units) or units[child] & 0x800000FF != byte:
                continue
            following = child ^ offset(units[child])
            if units[child] >> 8 & 1:  # a key ends here; its leaf is the following unit
                start = units[following] & 0x7FFFFFFF
                entries[key + bytes([byte])] = mapped[start : mapped.index(b"\0", start)]
            if len(key) + 1 < max_bytes:
                stack.append((following, key + bytes([byte])))
    return entries


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


def identity_charsmap() -> bytes:
    """A character map whose one entry maps "a" to "a": SentencePiece copies every character as it is.

    Not an empty map, for which SentencePiece logs a line on every load. The trie: the root
    (offset 0x100) leads by byte 0x61 to unit 0x161 (label 0x61, has a leaf, offset 1), whose leaf
    unit 0x160 holds offset 0 into the mapped strings, b"a\\0". 512 units, as the readers do not
    check bounds: every byte after the root or after "a" leads to a unit in 0x100-0x1FF.
    """
    units = [0] * 0x200
    units[0], units[0x161], units[0x160] = 0x100 << 10, 0x61 | 1 << 8 | 1 << 10, 1 << 31
    trie = struct.pack(f"<{len(units)}I", *units)
    return len(trie).to_bytes(4, "little") + trie + b"a\0"


def rebuilt_model(model_file: Path, spec: dict, dummy_prefix: bool) -> bytes:
    """The checkpoint's SentencePiece model with tokenizer.json's pieces, ids and scores, and no character map.

    The graph applies the character map itself, per grapheme cluster (SentencePiece.apply_charsmap).
    """
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
    proto.normalizer_spec.precompiled_charsmap = identity_charsmap()
    proto.normalizer_spec.add_dummy_prefix = dummy_prefix
    proto.normalizer_spec.remove_extra_whitespaces = True
    proto.normalizer_spec.escape_whitespaces = True
    proto.ClearField("denormalizer_spec")
    return proto.SerializeToString()
