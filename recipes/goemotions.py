"""GoEmotions (simplified): Reddit comments, each with any of 27 emotions or neutral (28 labels): multi-label.

With a network (google-research-datasets/go_emotions, configuration "simplified"):
    kerasft run recipes/goemotions.py
Offline, on GoEmotions' original tsv files (no header: text, comma-separated label ids, comment id;
the label names in emotions.txt, one a line, in id order) and a local checkpoint folder:
    kerasft run recipes/goemotions.py data.train=train.tsv data.validation=dev.tsv data.test=test.tsv \
        data.columns=text,labels,id data.label_names=emotions.txt model.checkpoint=/path/to/checkpoint
(if kerasft says that quotes join lines in a file, add data.quoting=none).

Each label gets its own threshold, chosen on the validation split for F1 (train.threshold=tune);
the export holds them. Batches are drawn at random, as Hugging Face's Trainer draws them (not grouped by
length: in the benchmark's GoEmotions-shaped data a text's length goes with how many labels it has), and
the new head is drawn as PyTorch draws it. With both, kerasft's F1 on that data is the Trainer's within
seed noise, and 2.9 points (micro F1) higher than without (BENCHMARKS.md, multi-label round 4).
"""

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

recipe = Recipe(
    name="goemotions",
    model=ModelConfig(checkpoint="distilbert-base-uncased", max_length=128, head_init="normal"),
    data=DataConfig(
        hub="google-research-datasets/go_emotions",
        hub_config="simplified",
        text_column="text",
        label_column="labels",
        multi_label=True,
    ),
    train=TrainConfig(epochs=3, batch_size=32, learning_rate=5e-5, threshold="tune", group_by_length=False),
)
