"""NSMC: Korean movie-review sentiment (the Naver Sentiment Movie Corpus, hub `e9t/nsmc`), multilingual BERT, cased.

With a network:
    kerasft run recipes/nsmc.py
Offline, on the corpus's own files (github.com/e9t/nsmc: ratings_train.txt and ratings_test.txt, tab-separated,
header `id<TAB>document<TAB>label`, label 0 negative, 1 positive) saved as .tsv, and a local checkpoint folder:
    kerasft run recipes/nsmc.py data.train=ratings_train.tsv data.test=ratings_test.tsv \
        model.checkpoint=/models/bert-base-multilingual-cased
The validation split is carved from train (10%, stratified). The export answers raw Korean text:
the checkpoint's WordPiece tokenizer (cased, CJK characters split) runs in the SavedModel's graph.
"""

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

recipe = Recipe(
    name="nsmc",
    model=ModelConfig(checkpoint="bert-base-multilingual-cased", max_length=128),
    data=DataConfig(hub="e9t/nsmc", text_column="document", label_column="label"),
    train=TrainConfig(epochs=2, batch_size=32, learning_rate=2e-5),
)
