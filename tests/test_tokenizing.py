"""Tokenizing: kerasft's fast path gives exactly the tokenizer's own ids, for every family, single texts and pairs;
large WordPiece splits go in-graph and store the same."""

from __future__ import annotations

import pyarrow as pa
import pytest
from datasets import Dataset
from tokenizer_fixtures import BUILDERS, PAIRS, PARITY_TEXTS, build_wordpiece

from kerasft import tokenizing
from kerasft.tokenizing import FastEncoder, GraphEncoder, tokenize


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


# The in-graph path (GraphEncoder): large WordPiece splits, tokenized by the export's graph on every core.
TEXTS = [text[:300] for text in PARITY_TEXTS]
PAIR_BATCH = {"text": [first[:300] for first, _ in PAIRS], "text_pair": [second[:300] for _, second in PAIRS]}


def wordpiece_tokenizer(name: str, folder):
    from transformers import AutoTokenizer

    from kerasft.recipe import packaged_minilm

    return AutoTokenizer.from_pretrained(packaged_minilm() if name == "minilm" else BUILDERS[name](folder))


@pytest.fixture(scope="module")
def uncased(tmp_path_factory):
    """An uncased WordPiece tokenizer and its in-graph form at max_length 16, built once: tests of the plumbing around
    the graph hand it to `GraphEncoder` through ``graph_tokenizers.for_tokenizer`` instead of building their own."""
    from transformers import AutoTokenizer

    from kerasft.graph_tokenizers import for_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path_factory.mktemp("uncased"), lowercase=True))
    return tokenizer, for_tokenizer(tokenizer, 16)


def arrow_batch(batch: dict, label: int = 0) -> pa.Table:
    return pa.table({**batch, "label": [label] * len(batch["text"])})


# each WordPiece tokenizer once, truncating (7) or not (512): a graph takes about 2 s to build and check
@pytest.mark.parametrize("name, max_length", [("bert-uncased", 7), ("bert-cased", 512), ("minilm", 7)])
def test_the_in_graph_path_stores_the_tokenizers_own_ids_for_texts_and_pairs(name, max_length, tmp_path, monkeypatch):
    wordpiece = wordpiece_tokenizer(name, tmp_path)
    monkeypatch.setattr(tokenizing, "SHARE_ROWS", 5)  # the batch spread over several shares and both threads
    encode = GraphEncoder(wordpiece, max_length)
    for batch in ({"text": TEXTS}, PAIR_BATCH):
        table = encode(arrow_batch(batch, label=3))
        assert not encode.disagreed
        assert table.column("label").to_pylist() == [3] * len(batch["text"])  # the other columns kept, texts not
        assert {name: table.column(name).to_pylist() for name in table.column_names if name != "label"} == (
            by_tokenizer(wordpiece, batch, max_length)
        )
    assert encode(pa.table({"text": pa.array([], pa.string())})).column("input_ids").to_pylist() == []


def test_tokenize_takes_the_in_graph_path_for_large_wordpiece_splits_and_stores_what_the_rust_path_stores(
    uncased, monkeypatch, capsys
):
    from kerasft import graph_tokenizers

    tokenizer, graph = uncased
    monkeypatch.setattr(graph_tokenizers, "for_tokenizer", lambda tokenizer, max_length: graph)
    monkeypatch.setattr(tokenizing, "tokenizing_processes", lambda rows: None)  # the Rust path in this process
    for columns in ({"text": TEXTS * 3}, {name: texts * 3 for name, texts in PAIR_BATCH.items()}):
        split = Dataset.from_dict({**columns, "label": list(range(len(columns["text"])))})
        monkeypatch.setattr(tokenizing, "PARALLEL_ROWS", 10**9)
        by_rust = tokenize(split, tokenizer, 16, log=True)
        assert "in-graph" not in capsys.readouterr().out
        monkeypatch.setattr(tokenizing, "PARALLEL_ROWS", 1)
        in_graph = tokenize(split, tokenizer, 16, log=True)
        assert "in-graph on" in capsys.readouterr().out
        assert in_graph.features == by_rust.features and in_graph.format == by_rust.format
        assert in_graph.to_dict() == by_rust.to_dict()


def test_only_wordpiece_goes_in_graph_the_families_whose_graph_is_slower_keep_the_rust_path(tokenizer, request):
    family = request.node.callspec.params["tokenizer"]
    assert tokenizing.faster_in_graph(tokenizer) == family.startswith("bert-")


def test_a_wordpiece_tokenizer_without_an_exact_in_graph_form_is_tokenized_by_rust(tmp_path, monkeypatch, capsys):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path / "tokenizer", lowercase=True))
    tokenizer.truncation_side = "left"  # the in-graph template cuts from the right only: the build refuses it
    Dataset.from_dict({"text": TEXTS, "label": [0] * len(TEXTS)}).save_to_disk(tmp_path / "data")
    split = Dataset.load_from_disk(tmp_path / "data")
    monkeypatch.setattr(tokenizing, "PARALLEL_ROWS", 1)
    monkeypatch.setattr(tokenizing, "tokenizing_processes", lambda rows: None)
    tokenized = tokenize(split, tokenizer, 9, log=True)
    assert "in-graph" not in capsys.readouterr().out
    assert tokenized["input_ids"] == by_tokenizer(tokenizer, {"text": TEXTS}, 9)["input_ids"]
    assert not [path.name for path in (tmp_path / "data").iterdir() if path.name.startswith("tmp")]


def test_a_text_the_graph_reads_differently_is_reported_and_tokenized_by_rust(uncased, tmp_path, monkeypatch, capsys):
    from transformers import AutoTokenizer

    from kerasft import graph_tokenizers

    cased = AutoTokenizer.from_pretrained(build_wordpiece(tmp_path / "cased", lowercase=False))
    uncased_graph = uncased[1]  # stands for a graph that reads a text differently from the cased tokenizer
    monkeypatch.setattr(graph_tokenizers, "for_tokenizer", lambda tokenizer, max_length: uncased_graph)
    texts = ["Where is my PARCEL?"] * 40 + ["Café crème"] * 40
    encode = GraphEncoder(cased, 16)
    table = encode(arrow_batch({"text": texts}))
    assert "'Where is my PARCEL?'" in encode.disagreed
    assert table.column("input_ids").to_pylist() == by_tokenizer(cased, {"text": texts}, 16)["input_ids"]
    assert (
        encode(arrow_batch({"text": texts[::-1]})).column("input_ids").to_pylist()
        == (by_tokenizer(cased, {"text": texts[::-1]}, 16)["input_ids"])
    )

    monkeypatch.setattr(tokenizing, "PARALLEL_ROWS", 1)
    tokenized = tokenize(Dataset.from_dict({"text": texts, "label": [0] * len(texts)}), cased, 16)
    assert "kerasft: warning: the in-graph tokenizer's ids differ" in capsys.readouterr().out
    assert tokenized["input_ids"] == by_tokenizer(cased, {"text": texts}, 16)["input_ids"]


def test_the_in_graph_cache_key_is_the_settings_not_the_threads_graphs_or_checks(uncased, monkeypatch):
    from datasets.fingerprint import Hasher

    from kerasft import graph_tokenizers

    tokenizer, graph = uncased
    monkeypatch.setattr(graph_tokenizers, "for_tokenizer", lambda tokenizer, max_length: graph)
    used, fresh = GraphEncoder(tokenizer, 16), GraphEncoder(tokenizer, 16)
    used(arrow_batch({"text": ["a first batch"]}))
    used.threads = fresh.threads + 3  # a machine with more cores reads the same cache
    assert used._graph is not None and Hasher.hash(used) == Hasher.hash(fresh)
    assert Hasher.hash(fresh) != Hasher.hash(GraphEncoder(tokenizer, 8))
