"""Tiny checkpoints of every tokenizer family, trained offline, and the parity corpus they are checked on.

Each builder trains a small tokenizer on TRAINING_TEXT (a few languages, so multilingual pieces,
accents and CJK exist) and saves it as a Hugging Face checkpoint folder, as `save_pretrained`
of the family's fast tokenizer class writes it: tokenizer.json, tokenizer_config.json, special
tokens and, for SentencePiece, the `.model` file the graph needs.

    folder = build_roberta(tmp_path)          # RobertaTokenizerFast, byte-level BPE
    tokenizer = AutoTokenizer.from_pretrained(folder)
"""

from __future__ import annotations

import io
import itertools
import random
from pathlib import Path

TRAINING_TEXT = [
    "Where is my parcel? I was charged twice for the same order.",
    "The app crashes at login, please refund my subscription!",
    "I'm happy with the delivery, but the box wasn't sealed.",
    "Don't stop now: we've got 12 more tests, and they'll pass.",
    "Café crème, naïve façade, résumé, jalapeño, Ångström, straße.",
    "Ça va très bien, merci ! Où est la gare ?",
    "Über die Brücke gehen Müller und Schäfer.",
    "배송이 언제 도착하나요? 환불을 요청합니다.",
    "한국어 텍스트를 토큰화합니다. 감사합니다!",
    "日本語のテキストです。配送はいつですか？",
    "東京は大きな都市です。ありがとうございます。",
    "我的包裹在哪里？请退款。谢谢！",
    "中文分词测试，北京欢迎你。",
    "مرحبا بالعالم، أين طلبي؟ شكرا جزيلا.",
    "النص العربي يكتب من اليمين إلى اليسار.",
    "Привет, мир! Где моя посылка?",
    "नमस्ते दुनिया, मेरा पार्सल कहाँ है?",
    "Ελληνικά: ΣΊΣΥΦΟΣ και η οδός.",
    "emoji 😀🎉 are fun 👍🏽 ❤️ 🇫🇷 👨‍👩‍👧",
    "Prices: $12.50, €9,99, 100% sure, 3.14159, 2024-01-31.",
    "URLs like https://example.com/a?b=c&d=e and mails a@b.co.",
    "``Quoted'' text and \"double quotes\" and 'single' ones.",
]

# The parity corpus: every script and every kind of character the brief lists, and edge cases of
# whitespace, special-token look-alikes and length. Pairs are drawn from it, see PAIRS.
LONG_ENGLISH = "refund " * 400
LONG_MIXED = " ".join(itertools.islice(itertools.cycle(TRAINING_TEXT), 60))
PARITY_TEXTS = [
    "",
    " ",
    "   ",
    "hello",
    "Hello World",
    "  leading   spaces  and trailing   ",
    "tabs\tand\nnewlines\r\nmixed \t \n here",
    "\t\tstarts with tabs",
    "ends with newline\n",
    "Where's my REFUND?!",
    "don't\tstop\nnow, they'll've it",
    "It's 'quoted' and ``double'' and \"plain\"",
    "Café crème — naïve façade",
    "Cafe\u0301 cre\u0300me (combining accents)",
    "ᄒ\u1161ᆫ decomposed hangul and ㄱㅏ compatibility jamo",
    "ÀÉÎÕÜ straße ß ẞ İstanbul ǅ ǈ",
    "ΣΊΣΥΦΟΣ ΟΔΟΣ, ὈΔΥΣΣΕΎΣ",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    "ﬁne ligature ﬀ ﬃ ½ ² ℃ ㎏ Ⅻ",
    "日本語のテキスト",
    "東京タワーﾊﾝｶｸｶﾀｶﾅ",
    "한국어 텍스트 토큰화",
    "한국어텍스트띄어쓰기없음",
    "我的包裹在哪里？请退款。",
    "中文，標點符號！（全角）",
    "مرحبا بالعالم، أين طلبي؟",
    "שלום עולם",
    "नमस्ते दुनिया",
    "ภาษาไทยไม่มีช่องว่าง",
    "emoji 😀🎉 ok",
    "👍🏽 skin tone, 👨‍👩‍👧 family, 🏳️‍🌈 flag, 🇫🇷🇩🇪 flags, ❤️ heart, 1️⃣ keycap",
    "😀😀😀😀😀😀😀😀",
    "\u200b zero\u200bwidth\u200c non\u200djoiner \ufeff bom",
    "soft\u00adhyphen and nbsp\u00a0here and\u2009thin\u3000ideographic",
    "a\x00b\x07c\x1bd\x7fe",
    "control\x01\x02\x03 and \x85 next-line and \u2028 line sep",
    "replacement \ufffd char and private \ue000 use",
    "x" * 300,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "numbers 1234567890 3.14159 1,000,000 ١٢٣ ٣٫١٤",
    "punctuation!!! ??? ... --- ___ *** ((( ))) [[[ ]]] {{{ }}}",
    "https://example.com/path?query=1&x=y#frag mail@example.org",
    "<s> [CLS] [SEP] [MASK] <mask> </s> <pad> [PAD] <unk> [UNK] look-alikes",
    "text<mask>glued [MASK]glued <s>glued",
    "hello  <mask> world",  # XLM-R's <mask> takes in the whitespace before it (lstrip)
    "a \t <mask>",
    "<mask>  after  <mask>\t\tend  ",
    "＜ｓ＞ full-width angle brackets",
    "▁ literal lower one eighth block ▁▁ twice",
    "▁starts with the sentencepiece space",
    "ends with it▁",
    "mixed 한국어 and English and 日本語 and العربية in one",
    LONG_ENGLISH,
    LONG_MIXED,
    "supercalifragilistic" * 20,
    "한국어" * 60,
]
# Decomposed text the Rust library's character map treats per grapheme cluster and SentencePiece by
# longest match (see kerasft/graph_tokenizers/sentencepiece.py): the SentencePiece op alone would differ here.
SENTENCEPIECE_DIFFERENCES = [
    "e\u0301\u0302\u0303 three marks on one letter",
    "Ａ\u0301 full-width letter with a mark",
    "a\u0308\u0301 two marks on one letter, in 5 bytes",
    "e\u0301\u0302 ｶ\u3099 \u0600\u0301x １\u20dd \r\n\u0301 \x07\u0301 a\U0001f3fd",
]
PAIRS = [
    ("", ""),
    ("hello", ""),
    ("", "world"),
    ("Where is my parcel?", "I was charged twice."),
    ("한국어 텍스트", "日本語のテキスト"),
    ("emoji 👨‍👩‍👧 🇫🇷", "مرحبا بالعالم"),
    (LONG_ENGLISH, "short second"),
    ("short first", LONG_ENGLISH),
    (LONG_ENGLISH, LONG_MIXED),
    (LONG_MIXED, "word " * 30),
    ("word " * 30, "refund " * 31),
    ("  spaces  ", "\ttabs\t"),
    ("[SEP] <s>", "</s> [CLS]"),
]


def random_texts(count: int, seed: int = 0) -> list[str]:
    """Shuffled mixes of training words, odd characters and whitespace: the corpus' random part."""
    rng = random.Random(seed)
    words = " ".join(TRAINING_TEXT).split() + [
        "\u200d",
        "\u0301",
        "é",
        "🇫🇷",
        "👍🏽",
        "\t",
        "  ",
        "\n",
        "ß",
        "İ",
        "ǅ",
        "Σ",
        "x" * 120,
        "▁",
        "<s>",
        "[SEP]",
    ]
    texts = []
    for _ in range(count):
        size = rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 90])
        texts.append("".join(rng.choice(words) + rng.choice(["", " ", " ", " ", "  ", "\t"]) for _ in range(size)))
    return texts


def training_iterator(repeat: int = 20):
    for _ in range(repeat):
        yield from TRAINING_TEXT


def build_wordpiece(folder: Path, lowercase: bool) -> Path:
    """BertTokenizerFast over a WordPiece vocabulary trained here; cased (multilingual-style) or uncased."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizerFast

    trainer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=None, handle_chinese_chars=True)
    trainer.train_from_iterator(training_iterator(), vocab_size=700, min_frequency=1)
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=lowercase, model_max_length=512)
    tokenizer.save_pretrained(folder)
    return folder


def build_byte_bpe(folder: Path, add_prefix_space: bool = False, corpus=None, vocab_size: int = 900) -> Path:
    """RobertaTokenizerFast over byte-level BPE merges trained here (roberta-base's pipeline), on TRAINING_TEXT or
    ``corpus`` (benchmarks/tokenize_paths.py trains a roberta-sized vocabulary on its own texts)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        corpus or training_iterator(),
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(folder))
    tokenizer = RobertaTokenizerFast(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        add_prefix_space=add_prefix_space,
        model_max_length=512,
    )
    tokenizer.save_pretrained(folder)
    return folder


def train_sentencepiece(model_type: str, corpus=None, **options) -> bytes:
    """A serialized SentencePiece model (unigram or bpe) trained on TRAINING_TEXT (or ``corpus``); ids <unk>=0,
    <s>=1, </s>=2."""
    import sentencepiece

    model = io.BytesIO()
    settings = {"vocab_size": 400, "character_coverage": 0.995, "pad_id": -1, "hard_vocab_limit": False} | options
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus or training_iterator()),
        model_writer=model,
        model_type=model_type,
        minloglevel=2,
        **settings,
    )
    return model.getvalue()


def build_sentencepiece(
    folder: Path, family: str, model_type: str = "unigram", corpus=None, vocab_size: int = 400
) -> Path:
    """A SentencePiece checkpoint: family is xlm-roberta, camembert, albert or deberta-v2; trained on TRAINING_TEXT or
    ``corpus``."""
    from transformers import (
        AlbertTokenizerFast,
        CamembertTokenizerFast,
        DebertaV2TokenizerFast,
        XLMRobertaTokenizerFast,
    )

    folder.mkdir(parents=True, exist_ok=True)
    if family == "deberta-v2":  # DeBERTa-v3's spm.model: [PAD]=0, [CLS]=1, [SEP]=2, [UNK]=3 inside the model
        options = {
            "pad_id": 0,
            "bos_id": 1,
            "eos_id": 2,
            "unk_id": 3,
            "pad_piece": "[PAD]",
            "bos_piece": "[CLS]",
            "eos_piece": "[SEP]",
            "unk_piece": "[UNK]",
            "user_defined_symbols": ["[MASK]"],
        }
    elif family == "albert":
        options = {
            "pad_id": 0,
            "unk_id": 1,
            "bos_id": 2,
            "eos_id": 3,
            "pad_piece": "<pad>",
            "bos_piece": "[CLS]",
            "eos_piece": "[SEP]",
            "user_defined_symbols": ["[MASK]"],
        }
    else:
        options = {}
    model_path = folder / "source.model"  # save_pretrained copies it under the family's own file name
    model_path.write_bytes(train_sentencepiece(model_type, corpus, vocab_size=vocab_size, **options))
    fast_class = {
        "xlm-roberta": XLMRobertaTokenizerFast,
        "camembert": CamembertTokenizerFast,
        "albert": AlbertTokenizerFast,
        "deberta-v2": DebertaV2TokenizerFast,
    }[family]
    tokenizer = fast_class(vocab_file=str(model_path), model_max_length=512)
    tokenizer.save_pretrained(folder)
    return folder


# Every family's builder, by name (the graph tokenizers' and the fast encoder's tests run over them).
BUILDERS = {
    "bert-uncased": lambda folder: build_wordpiece(folder, lowercase=True),
    "bert-cased": lambda folder: build_wordpiece(folder, lowercase=False),
    "roberta": build_byte_bpe,
    "roberta-prefix-space": lambda folder: build_byte_bpe(folder, add_prefix_space=True),
    "xlm-roberta": lambda folder: build_sentencepiece(folder, "xlm-roberta"),
    "xlm-roberta-bpe": lambda folder: build_sentencepiece(folder, "xlm-roberta", model_type="bpe"),
    "camembert": lambda folder: build_sentencepiece(folder, "camembert"),
    "albert": lambda folder: build_sentencepiece(folder, "albert"),
    "deberta-v2": lambda folder: build_sentencepiece(folder, "deberta-v2"),
}
