"""Tokenizing: kerasft's fast path gives exactly the tokenizer's own ids, for every family, single texts and pairs."""

from __future__ import annotations

import pytest
from datasets import Dataset
from tokenizer_fixtures import BUILDERS, PAIRS, PARITY_TEXTS, build_wordpiece

from kerasft.tokenizing import FastEncoder, tokenize


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def tokenizer(request, tmp_path_factory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(BUILDERS[request.param](tmp_path_factory.mktemp(request.param)))


def by_tokenizer(tokenizer, batch: dict, max_length: int) -> dict:
    """The tokenizer's own inputs but the attention mask (all ones before padding: the batches build it) and, for
    single texts, the segment ids (all zeros: the model's default)."""
    encoded = tokenizer(batch["text"], batch.get("text_pair"), truncation=True, max_length=max_length)
    assert all(set(mask) == {1} for mask in encoded["attention_mask"])
    left_out = {"attention_mask"}
    if "text_pair" not in batch and "token_type_ids" in encoded:
        assert all(set(types) == {0} for types in encoded["token_type_ids"])
        left_out.add("token_type_ids")
    return {name: values for name, values in encoded.items() if name not in left_out}


@pytest.mark.parametrize("max_length", [7, 512])
@pytest.mark.parametrize("side", ["right", "left"])
def test_the_fast_path_gives_the_tokenizers_own_inputs_for_texts_and_pairs(tokenizer, max_length, side):
    tokenizer.truncation_side = side
    try:
        # the corpus' 2,800-character texts cut to 300: the Rust tokenizer's overflow for pairs cut to 7 tokens takes
        # a minute per family at full length, the same in both paths, and 300 characters still truncate
        texts = {"text": [text[:300] for text in PARITY_TEXTS]}
        pairs = {"text": [first[:300] for first, _ in PAIRS], "text_pair": [second[:300] for _, second in PAIRS]}
        for batch in (texts, pairs):
            encode = FastEncoder(tokenizer, max_length)
            assert encode(batch) == by_tokenizer(tokenizer, batch, max_length)
            assert encode.backend_agrees, "the check fell back to the tokenizer: the fast path was not taken"
    finally:
        tokenizer.truncation_side = "right"


def test_a_backend_that_disagrees_with_the_tokenizer_is_dropped_for_the_tokenizer(tmp_path):
    from transformers import AutoTokenizer

    cased = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path / "cased", lowercase=False))
    uncased = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path / "uncased", lowercase=True))
    encode = FastEncoder(cased, 16)
    encode.backend = FastEncoder(uncased, 16).backend  # stands for a tokenizer class whose Python adds its own steps
    batch = {"text": ["Where is my PARCEL?", "Café crème"]}
    assert encode(batch) == by_tokenizer(cased, batch, 16) != FastEncoder(uncased, 16)(batch)
    assert encode.backend_agrees is False and encode(batch) == by_tokenizer(cased, batch, 16)


def test_a_slow_tokenizer_is_called_as_it_is(tmp_path):
    from transformers import BertTokenizer

    slow = BertTokenizer(vocab_file=str(build_wordpiece(tmp_path, lowercase=True) / "vocab.txt"))
    encode = FastEncoder(slow, 8)
    batch = {"text": PARITY_TEXTS[:20]}
    assert encode.backend is None and encode(batch) == by_tokenizer(slow, batch, 8)


def test_tokenize_in_several_processes_gives_the_tokenizers_ids(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from kerasft import tokenizing

    tokenizer = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path, lowercase=True))
    monkeypatch.setattr(tokenizing, "tokenizing_processes", lambda rows: 2)  # the path large splits take
    split = Dataset.from_dict({"text": PARITY_TEXTS * 3, "label": [0] * (3 * len(PARITY_TEXTS))})
    tokenized = tokenize(split, tokenizer, 9)
    assert tokenized["input_ids"] == tokenizer(PARITY_TEXTS * 3, truncation=True, max_length=9)["input_ids"]
    # what is stored: the labels and the ids; not the texts (the loaded split has them), the mask (the batches build
    # it) or a single text's segment ids (zeros, the model's default), although this BERT tokenizer makes both
    assert {"token_type_ids", "attention_mask"} <= set(tokenizer.model_input_names)
    assert tokenized.column_names == ["label", "input_ids"]


def test_the_cache_key_is_the_settings_not_whether_this_process_has_checked_its_first_batch(tmp_path):
    from datasets.fingerprint import Hasher
    from transformers import AutoTokenizer

    folder = build_wordpiece(tmp_path, lowercase=True)
    used, fresh = (FastEncoder(AutoTokenizer.from_pretrained(folder), 16) for _ in range(2))
    used({"text": ["a first batch"]})  # a run that tokenized train; another read train from the cache
    assert used.backend_agrees and Hasher.hash(used) == Hasher.hash(fresh)
    assert Hasher.hash(fresh) != Hasher.hash(FastEncoder(fresh.tokenizer, 8))
