"""IMDb: binary sentiment of movie reviews, BERT base, on seeded subsets (1000 train, 500 test).

    kerasft run recipes/imdb.py
Offline: data.train=<file> data.test=<file> model.checkpoint=<folder>.
Accuracy on the validation set (carved from the training subset) is shown after each epoch.
"""

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig

recipe = Recipe(
    name="imdb",
    model=ModelConfig(checkpoint="bert-base-uncased", max_length=512),
    data=DataConfig(hub="imdb", train_samples=1000, validation_samples=200, test_samples=500),
    train=TrainConfig(epochs=3, batch_size=8, learning_rate=5e-5),
)
