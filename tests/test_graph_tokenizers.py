"""In-graph tokenizers: token-for-token parity with the fast tokenizers of every family, refusals, ops, TF-only
serving."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tokenizer_fixtures import (
    BUILDERS,
    PAIRS,
    PARITY_TEXTS,
    SENTENCEPIECE_DIFFERENCES,
    random_texts,
)
from transformers import AutoTokenizer

from kerasft.graph_tokenizers import UnsupportedTokenizer, for_tokenizer

MAX_LENGTH = 64


def fast_then_slow(fast: list[str]) -> list:
    """Every checkpoint here: those named in ``fast`` in the fast suite, the others in the slow one."""
    return fast + [pytest.param(name, marks=pytest.mark.slow) for name in [*BUILDERS, "minilm"] if name not in fast]


# One checkpoint of each pipeline runs in the fast suite; variants of the same code path are slow.
FAMILIES = fast_then_slow(["bert-uncased", "roberta", "xlm-roberta", "albert", "deberta-v2"])
# Pairs: one family of each pair template (BERT's and RoBERTa's) in the fast suite; the other families' own
# pipelines are there through their single texts.
PAIR_FAMILIES = fast_then_slow(["bert-uncased", "roberta"])
# ALBERT strips every combining mark before the character map, so only the others differ on stacked marks.
MARKS_KEPT = ["xlm-roberta", "deberta-v2"] + [
    pytest.param(name, marks=pytest.mark.slow) for name in ("xlm-roberta-bpe", "camembert")
]
TEXTS = PARITY_TEXTS + random_texts(150)
PAIR_TEXTS = PAIRS + list(zip(random_texts(40, seed=1), random_texts(40, seed=2)))
# Non-core ops of tensorflow-text that TF Serving links (model_servers/BUILD ->
# @org_tensorflow_text//tensorflow_text:ops_lib,
# the same op names and signatures in tensorflow-text 2.12.1 and 2.20.0), as far as these graphs use them.
TF_SERVING_TEXT_OPS = {
    "FastWordpieceTokenizeWithOffsets",
    "NormalizeUTF8",
    "SentencepieceOp",
    "SentencepieceTokenizeOp",
}


@pytest.fixture(scope="session")
def checkpoint_folders(tmp_path_factory, minilm_checkpoint) -> dict[str, Path]:
    """All tiny checkpoints (training them all takes about 2 s) and the packaged MiniLM."""
    root = tmp_path_factory.mktemp("tokenizers")
    return {name: build(root / name) for name, build in BUILDERS.items()} | {"minilm": minilm_checkpoint}


class Tokenizers(dict):
    """Each family's fast tokenizer and its in-graph form, traced once for single texts and once for pairs, on first
    use.

    Built with verify=False: the tests below compare far more texts than for_tokenizer's probe.
    """

    def __init__(self, folders: dict[str, Path]):
        super().__init__()
        self.folders = folders

    def __missing__(self, name: str):
        python = AutoTokenizer.from_pretrained(str(self.folders[name]))
        graph = for_tokenizer(python, max_length=MAX_LENGTH, verify=False)
        # without AutoGraph, as kerasft.export traces the tokenizers
        single = tf.function(
            lambda text: graph(text), input_signature=[tf.TensorSpec([None], tf.string)], autograph=False
        )
        pair = tf.function(
            lambda text, other: graph(text, text_pair=other),
            input_signature=[tf.TensorSpec([None], tf.string)] * 2,
            autograph=False,
        )
        self[name] = python, graph, single, pair
        return self[name]


@pytest.fixture(scope="session")
def tokenizers(checkpoint_folders) -> Tokenizers:
    return Tokenizers(checkpoint_folders)


def expected(python, texts, pairs=None) -> dict:
    return dict(python(texts, pairs, truncation=True, max_length=MAX_LENGTH, padding=True, return_tensors="np"))


def assert_same(got: dict, want: dict, texts):
    assert set(got) == set(want)
    for name, want_values in want.items():
        got_values = got[name].numpy() if hasattr(got[name], "numpy") else np.asarray(got[name])
        assert got_values.dtype == np.int32 and got_values.shape == want_values.shape, name
        rows = np.flatnonzero((got_values != want_values).any(axis=1))
        assert not rows.size, f"{name} differ on {[texts[row] for row in rows[:3]]!r}"


@pytest.mark.parametrize("family", FAMILIES)
def test_single_texts_equal_the_fast_tokenizer(tokenizers, family):
    python, _, single, _ = tokenizers[family]
    assert_same(single(tf.constant(TEXTS)), expected(python, TEXTS), TEXTS)


@pytest.mark.parametrize("family", PAIR_FAMILIES)
def test_pairs_equal_the_fast_tokenizer_with_longest_first_truncation(tokenizers, family):
    python, _, _, pair = tokenizers[family]
    first, second = [a for a, _ in PAIR_TEXTS], [b for _, b in PAIR_TEXTS]
    assert_same(pair(tf.constant(first), tf.constant(second)), expected(python, first, second), PAIR_TEXTS)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_text_at_a_time_and_an_empty_batch(tokenizers, family):
    python, _, single, _ = tokenizers[family]
    for text in ["", "x" * 300, PARITY_TEXTS[-1]]:
        assert_same(single(tf.constant([text])), expected(python, [text]), [text])
    empty = single(tf.constant([], tf.string))
    assert all(tensor.shape == (0, 2) for tensor in empty.values())  # attention still gets an axis


def test_wordpiece_ascii_texts_keep_the_python_word_split_and_word_limit_beside_other_texts(tokenizers):
    """A normalized ASCII text takes tensorflow-text's end-to-end WordPiece (kerasft.graph_tokenizers.wordpiece), any
    other text the regex word split: every ASCII character between two words, a word of exactly
    max_input_chars_per_word characters and one of one more, and, in the same batch, non-ASCII words under the
    limit in characters but over it in bytes keep the Python tokenizer's ids, each row in its place."""
    python, graph, single, _ = tokenizers["minilm"]
    vocab, limit = python.get_vocab(), graph.family.max_chars
    letter = next(c for c in "abcdefghijklmnopqrstuvwxyz" if c in vocab and "##" + c in vocab)
    wide = next(  # a two-byte letter the normalizer keeps, with a piece of its own inside words
        c for c in "абвгдежзиклмнопрст" if c in vocab and "##" + c in vocab and python.tokenize(c) == [c]
    )
    ascii_texts = [f"ab{chr(code)}cd" for code in range(1, 128)] + [
        f"go {letter * limit} now",
        f"go {letter * (limit + 1)} now",
        f"{letter * limit}.",
        "ab\x00cd",
    ]
    other_texts = [f"x {wide * (limit // 2 + 10)} y", f"{wide * limit}", f"{wide} ab,cd"]
    texts = [text for pair in zip(ascii_texts, other_texts * len(ascii_texts)) for text in pair]
    assert_same(single(tf.constant(texts)), expected(python, texts), texts)
    # the cases the limits tell apart: one more character makes a word [UNK], bytes alone do not
    unknown = python.unk_token_id
    assert python(f"go {letter * (limit + 1)} now")["input_ids"][2] == unknown
    assert unknown not in python(f"go {letter * limit} now")["input_ids"]
    assert unknown not in python(other_texts[0])["input_ids"]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_graph_stays_lean(tokenizers, family):
    """Every export traces, saves, loads and optimizes this graph. Built with TensorFlow's own ragged operations, a
    single text took 1,867-2,677 ops and a pair 3,595-5,301 across these families; on row splits
    (kerasft.graph_tokenizers.ragged) well under half of that."""
    _, _, single, pair = tokenizers[family]
    assert len(single.get_concrete_function().graph.get_operations()) < 1200
    assert len(pair.get_concrete_function().graph.get_operations()) < 2400


@pytest.mark.parametrize("family", MARKS_KEPT)
def test_character_map_per_grapheme_cluster_on_stacked_combining_marks(tokenizers, family):
    python, _, single, _ = tokenizers[family]
    assert_same(
        single(tf.constant(SENTENCEPIECE_DIFFERENCES)),
        expected(python, SENTENCEPIECE_DIFFERENCES),
        SENTENCEPIECE_DIFFERENCES,
    )


def test_character_map_matches_the_rust_normalizer_on_random_mark_stacks(tokenizers):
    """Random letters, compatibility characters, controls and joiners with up to three marks after each."""
    import base64
    import random

    from tokenizers.normalizers import Precompiled

    python, graph, _, _ = tokenizers["xlm-roberta"]
    spec = json.loads(python.backend_tokenizer.to_str())
    charsmap = next(step for step in spec["normalizer"]["normalizers"] if step["type"] == "Precompiled")
    rust = Precompiled(base64.b64decode(charsmap["precompiled_charsmap"]))
    rng = random.Random(0)
    bases = [
        *"aeoAEOnNcCs0 ",
        "Ａ",
        "ﬁ",
        "½",
        "\x07",
        "\r",
        "\n",
        "\u3000",
        "ᄒ",
        "ｶ",
        "α",
        "и",
        "é",
        "\u200b",
        "ก",
        "\u0600",
    ]
    marks = [chr(code) for code in range(0x300, 0x370)] + ["\u0e33", "\u200d", "\u200c", "\ufe0f", "\u3099", "\uff9e"]
    texts = [
        "".join(rng.choice(bases) + "".join(rng.choices(marks, k=rng.choice([0, 1, 2, 3]))) for _ in range(5))
        for _ in range(2000)
    ]
    charsmap = tf.function(graph.family.apply_charsmap, autograph=False)
    got = [text.decode() for text in charsmap(tf.constant(texts)).numpy()]
    wrong = [text for text, mapped in zip(texts, got) if mapped != rust.normalize_str(text)]
    assert not wrong, wrong[:3]


@pytest.mark.parametrize("family", ["bert-uncased", "roberta"])
def test_token_type_ids_only_where_the_model_takes_them(tokenizers, family):
    python, _, single, _ = tokenizers[family]
    assert ("token_type_ids" in single(tf.constant(["a"]))) == ("token_type_ids" in python.model_input_names)


@pytest.mark.slow
def test_for_tokenizer_checks_its_graph_against_the_python_tokenizer(checkpoint_folders, monkeypatch):
    python = AutoTokenizer.from_pretrained(str(checkpoint_folders["bert-uncased"]))
    assert for_tokenizer(python, max_length=MAX_LENGTH).ops == ("FastWordpieceTokenizeWithOffsets", "NormalizeUTF8")
    from kerasft.graph_tokenizers.wordpiece import WordPiece

    monkeypatch.setattr(WordPiece, "normalize", lambda self, texts: texts)  # forget to lower-case
    assert "differ from BertTokenizerFast's on probe texts" in refusal(python)


def refusal(tokenizer) -> str:
    with pytest.raises(UnsupportedTokenizer) as refused:
        for_tokenizer(tokenizer, max_length=MAX_LENGTH)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_refusals_name_the_family_and_why(wordlevel_checkpoint, checkpoint_folders, tmp_path):
    from transformers import GPT2TokenizerFast, XLMRobertaTokenizer

    assert refusal(AutoTokenizer.from_pretrained(str(wordlevel_checkpoint))).startswith("WordLevel model")
    roberta = str(checkpoint_folders["roberta"])
    no_pad = GPT2TokenizerFast(vocab_file=f"{roberta}/vocab.json", merges_file=f"{roberta}/merges.txt")
    assert "no pad token" in refusal(no_pad)
    left = AutoTokenizer.from_pretrained(roberta, padding_side="left")
    assert "pads on the left" in refusal(left)
    slow = XLMRobertaTokenizer.from_pretrained(str(checkpoint_folders["xlm-roberta"]))
    assert "slow" in refusal(slow)


def test_a_sentencepiece_checkpoint_without_its_model_file_is_refused_naming_the_file(checkpoint_folders, tmp_path):
    folder = tmp_path / "no-model"
    shutil.copytree(checkpoint_folders["xlm-roberta"], folder)
    (folder / "sentencepiece.bpe.model").unlink()
    message = refusal(AutoTokenizer.from_pretrained(str(folder)))
    assert message.startswith("SentencePiece:") and "sentencepiece.bpe.model" in message


def test_an_unreplicated_normalizer_step_is_refused(checkpoint_folders, tmp_path):
    from tokenizers import normalizers

    python = AutoTokenizer.from_pretrained(str(checkpoint_folders["roberta"]))
    python.backend_tokenizer.normalizer = normalizers.NFKC()
    assert "normalizer NFKC" in refusal(python)


@pytest.mark.slow  # every code point through the Rust pre-tokenizer: 10 s
def test_whitespace_class_is_unicode_white_space_as_in_rust():
    """unicode_classes.WHITESPACE, checked over every code point against the GPT-2 regex of the tokenizers library."""
    from tokenizers import pre_tokenizers

    from kerasft.graph_tokenizers.unicode_classes import WHITESPACE

    split = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    characters = [chr(code) for code in range(0x110000) if not 0xD800 <= code < 0xE000]
    # A whitespace character c in "a" c c "b" is its own word twice; anything else is not.
    rust = {c for c in characters if c != " " and len(split.pre_tokenize_str(f"a{c}{c}b")) == 4} | {" "}
    in_graph = tf.strings.regex_full_match(tf.constant(characters), f"[{WHITESPACE}]").numpy()
    assert {c for c, match in zip(characters, in_graph) if match} == rust


TF_ONLY_SERVER = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    from tensorflow.python.framework import op_def_registry
    request = json.loads(sys.stdin.read())
    not_core = {family: sorted(op for op in ops if op_def_registry.get(op) is None)
                for family, ops in request["ops"].items()}
    import tensorflow_text  # registers its ops, as TF Serving's build links them
    texts, firsts, seconds = request["texts"], request["firsts"], request["seconds"]
    answers = {}
    for family, folder in request["folders"].items():
        served = tf.saved_model.load(folder)
        single = served.signatures["serving_default"](text=tf.constant(texts, tf.string))
        answers[family] = {"not_core": not_core[family], "single": {k: v.numpy().tolist() for k, v in single.items()}}
        if "pair" in served.signatures:
            pair = served.signatures["pair"](text=tf.constant(firsts), text_pair=tf.constant(seconds))
            answers[family]["pair"] = {k: v.numpy().tolist() for k, v in pair.items()}
    assert "transformers" not in sys.modules and "kerasft" not in sys.modules, "not a TF-only process"
    print(json.dumps(answers))
""")
SERVED_FAMILIES = ["bert-uncased", "roberta", "xlm-roberta", "albert", "deberta-v2"]
# The pair signature for one family of each pair template (BERT's, RoBERTa's): a pair adds only core ops around the
# single-text tokenizer, which every family's single signature serves here, and every family's pairs are checked in
# this process above. With all five pair signatures the fixture took 80.5 s, with two 69.4 s (2-core AVX2 machine).
SERVED_PAIR_FAMILIES = ["bert-uncased", "roberta"]
SERVED_TEXTS = [text for text in TEXTS if "\x00" not in text]  # JSON would carry it, but keep the stdin payload plain


class Served(tf.Module):
    """A tokenizer alone in a SavedModel, with a single-text and a pair signature."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer

    # Traced without AutoGraph, as kerasft.export traces its signatures: converting the tokenizers' source took 16 s
    # of this fixture's 113 s on a 2-core AVX2 machine.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)
    def single(self, text):
        return self.tokenizer(text)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None], tf.string, name="text_pair"),
        ],
        autograph=False,
    )
    def pair(self, text, text_pair):
        return self.tokenizer(text, text_pair=text_pair)


def graph_ops(saved_dir: Path) -> set[str]:
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString((saved_dir / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0].graph_def
    ops = {node.op for node in graph.node} | {
        node.op for function in graph.library.function for node in function.node_def
    }
    return ops - {function.signature.name for function in graph.library.function}


@pytest.fixture(scope="module")
def served(tokenizers, tmp_path_factory) -> dict:
    """Each family's tokenizer saved alone in a SavedModel, then all of them answered by one TensorFlow-only process."""
    folders, ops = {}, {}
    for family in SERVED_FAMILIES:
        module = Served(tokenizers[family][1])
        folder = tmp_path_factory.mktemp(f"served-{family}")
        signatures = {"serving_default": module.single}
        if family in SERVED_PAIR_FAMILIES:
            signatures["pair"] = module.pair
        tf.saved_model.save(module, str(folder), signatures=signatures)
        folders[family], ops[family] = str(folder), sorted(graph_ops(folder))
    request = {
        "folders": folders,
        "ops": ops,
        "texts": SERVED_TEXTS,
        "firsts": [a for a, _ in PAIR_TEXTS],
        "seconds": [b for _, b in PAIR_TEXTS],
    }
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    answer = subprocess.run(
        [sys.executable, "-I", "-c", TF_ONLY_SERVER],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    return json.loads(answer.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("family", SERVED_FAMILIES)
def test_saved_tokenizer_answers_the_same_ids_in_a_tensorflow_only_process(tokenizers, served, family):
    python, graph, _, _ = tokenizers[family]
    answers = served[family]
    firsts, seconds = [a for a, _ in PAIR_TEXTS], [b for _, b in PAIR_TEXTS]
    assert set(answers["not_core"]) == set(graph.ops) and set(graph.ops) <= TF_SERVING_TEXT_OPS
    assert_same(
        {k: np.array(v, np.int32) for k, v in answers["single"].items()}, expected(python, SERVED_TEXTS), SERVED_TEXTS
    )
    assert ("pair" in answers) == (family in SERVED_PAIR_FAMILIES)
    if family in SERVED_PAIR_FAMILIES:
        pair = {k: np.array(v, np.int32) for k, v in answers["pair"].items()}
        assert_same(pair, expected(python, firsts, seconds), PAIR_TEXTS)
