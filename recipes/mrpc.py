"""MRPC: is the second sentence a paraphrase of the first? Sentence pairs from news (GLUE), two labels.

With a network (nyu-mll/glue, configuration "mrpc"; validation is GLUE's dev split):
    kerasft run recipes/mrpc.py
Offline, on GLUE's MRPC tsv files (header `Quality  #1 ID  #2 ID  #1 String  #2 String`, tab-separated;
quotes are ordinary characters, hence data.quoting=none) and a local checkpoint folder; validation is
carved from train (data.validation_fraction):
    kerasft run recipes/mrpc.py data.train=msr_paraphrase_train.tsv data.test=msr_paraphrase_test.tsv \
        data.text_column='#1 String' data.text_pair_column='#2 String' data.label_column=Quality \
        model.checkpoint=/path/to/checkpoint

Both sentences go through the checkpoint's pair template ([CLS] a [SEP] b [SEP] for BERT), truncated
longest first, in training and in the export (inputs text and text_pair).

Batches are drawn at random, as Hugging Face's Trainer draws them, not grouped by length. On a small pair
task the grouped order left kerasft's accuracy 4.9 points behind the Trainer's at a rate of 1e-4 (eighteen
seeds), and random batches brought it to 1.9; at this recipe's 2e-5, within a point
(BENCHMARKS.md, "Sentence pairs with random batches"). Random batches carry more padding than grouped
ones, so an epoch takes longer; on a task this small the accuracy is worth more.
"""

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

recipe = Recipe(
    name="mrpc",
    model=ModelConfig(checkpoint="bert-base-uncased", max_length=128),
    data=DataConfig(
        hub="nyu-mll/glue",
        hub_config="mrpc",
        text_column="sentence1",
        text_pair_column="sentence2",
        label_column="label",
        label_names=["not_equivalent", "equivalent"],  # GLUE's names; the tsv's Quality column holds 0 and 1
        quoting="none",
    ),
    train=TrainConfig(epochs=3, batch_size=32, learning_rate=2e-5, group_by_length=False),
)
