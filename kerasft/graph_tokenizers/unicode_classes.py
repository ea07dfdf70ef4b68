"""Character classes, as RE2 patterns, that reproduce the Rust `tokenizers` library's own tests.

RE2 (tf.strings.regex_replace, tensorflow-text's regex_split) knows \\p{L}, \\p{N}, \\p{P}, \\p{M}
but its \\s is ASCII only, while Rust's `char::is_whitespace` and Oniguruma's \\s (the GPT-2 regex)
are Unicode White_Space: so whitespace is spelled out here. tests/test_graph_tokenizers.py checks
each class against the Python tokenizers over every code point.

Example:
```python
tf.strings.regex_replace("a\u3000b", f"[{WHITESPACE}]", " ")  # b"a b"
```
"""

# Unicode White_Space: Rust's char::is_whitespace, which BertNormalizer, BertPreTokenizer and Strip use.
WHITESPACE = r"\t\n\x{0B}\x{0C}\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"

# BertNormalizer's and BertPreTokenizer's punctuation: ASCII punctuation or a Unicode P* character.
BERT_PUNCTUATION = r"!-/:-@\[-`{-~\p{P}"

# BertNormalizer's CJK ranges (its _is_chinese_char), which get a space on each side.
CJK = (
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
    r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
