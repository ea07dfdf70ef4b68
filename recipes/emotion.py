"""Emotion: six emotions in English tweets (dair-ai/emotion), DistilBERT, the classic workflow.

With a network:
    kerasft run recipes/emotion.py
Offline, on local `text;label` files and a local checkpoint folder:
    kerasft run recipes/emotion.py data.train=train.txt data.validation=val.txt data.test=test.txt \
        data.sep=';' data.columns=text,label model.checkpoint=/path/to/distilbert-base-uncased
"""

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

recipe = Recipe(
    name="emotion",
    model=ModelConfig(checkpoint="distilbert-base-uncased"),
    data=DataConfig(hub="dair-ai/emotion", text_column="text", label_column="label"),
    train=TrainConfig(epochs=2, batch_size=64, learning_rate=5e-5),
)
