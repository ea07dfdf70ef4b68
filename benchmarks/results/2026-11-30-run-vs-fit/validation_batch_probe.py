"""Probe: validation pass seconds at several batch sizes (MiniLM, 1024 emotion-style texts, mixed bf16)."""
import os, sys, time
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1"); os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from kerasft import batching
from kerasft.recipe import DataConfig, ModelConfig, Recipe, TrainConfig, packaged_minilm
from kerasft.session import Session
recipe = Recipe(name="probe", model=ModelConfig(checkpoint=packaged_minilm(), max_length=128),
    data=DataConfig(train="/tmp/emotion_style_9000.txt", sep=";", columns=["text", "label"], train_samples=2048, validation_samples=1024, test_samples=64),
    train=TrainConfig(epochs=1, batch_size=32))
session = Session(recipe).prepare()
model = session.model
collate = batching.PadToLongest.for_device(session.tokenizer, session.precision.device_kind, session.precision.jit_compile, 128)
split = session.tokenized["validation"]
for size in [int(s) for s in sys.argv[1:]]:
    for attempt in range(3):
        ds, _ = batching.ordered_batches(split, size, collate)
        t = time.perf_counter(); model.evaluate(ds, verbose=0); print(size, attempt, round(time.perf_counter() - t, 2), flush=True)
