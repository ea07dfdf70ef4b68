"""The one exception of the package, in its own module so every family can raise it without import cycles."""


class UnsupportedTokenizer(Exception):
    """No exact in-graph form of this tokenizer: its one-line message names the family and why.

    The run prints the message and exports a model that takes token ids only.

    >>> str(UnsupportedTokenizer("byte-level BPE: the BPE model drops unknown bytes"))
    'byte-level BPE: the BPE model drops unknown bytes'
    """


class MissingTokenizerFile(UnsupportedTokenizer):
    """The checkpoint lacks a file the in-graph form needs (e.g. SentencePiece's ``.model`` beside tokenizer.json):
    the checkpoint is incomplete, so a run refuses it instead of exporting ids only."""
