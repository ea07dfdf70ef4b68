#!/bin/bash
# before = a worktree of 216e59e (/tmp/s13/before), after = this change (/tmp/s13/after); each run under the CPU lock,
# nothing else running; data_scale.py alternated before, after, before, after, synthetic texts then emotion-style
for texts in synthetic emotion-style; do
  for i in 1 2; do
    for side in before after; do
      tree=/tmp/s13/$side
      flock /tmp/cpu.lock env PYTHONPATH=$tree python $tree/benchmarks/data_scale.py --sizes 1000000 --texts $texts \
        --folder /tmp/ds --json $texts-$side-$i.json > $texts-$side-$i.log 2>&1
    done
  done
done
# the two paths side by side (this change), 200,000 rows
python benchmarks/tokenize_paths.py --rows 200000 --repeats 2 --families minilm --json paths-wordpiece.json
python benchmarks/tokenize_paths.py --rows 200000 --repeats 2 --families roberta,xlm-roberta --json paths-bpe-sentencepiece.json
python benchmarks/tokenize_paths.py --rows 200000 --repeats 2 --families minilm --pairs --json paths-wordpiece-pairs.json
