#!/bin/bash
# The 2-core AMD EPYC (AVX-512, bfloat16 instructions, no AMX) of 2026-12-01 04:12-04:39 UTC, each command under the
# CPU lock with nothing else running (the MRPC probe beside it paused with SIGSTOP). The CSVs are data_scale.py's
# own synthetic ones, written beforehand into /tmp/ds.
# 1. the code of 7ad99f1 (the session's start), the whole benchmark at 1M and load + tokenize at 10M:
python benchmarks/data_scale.py --sizes 1000000 --folder /tmp/ds --json data-1m.json > data-1m.log 2>&1
python benchmarks/data_scale.py --sizes 10000000 --no-batches --folder /tmp/ds --json data-10m.json > data-10m.log 2>&1
# 2. where the graph's time goes, before the change (7ad99f1 on PYTHONPATH), and the two word splits after it (run
#    as two scripts, merged into wordpiece_probe.py afterwards with the same computations):
(cd before && PYTHONPATH=$PWD python ../wordpiece_probe.py stages /tmp/ds/texts-1000000.csv 50000)
python wordpiece_probe.py paths /tmp/ds/texts-1000000.csv 50000
python benchmarks/make_emotion_style.py emo20k.txt --rows 20000 && python wordpiece_probe.py paths emo20k.txt 20000 ';'
# 3. load + tokenize at 1M, alternating a worktree of 7ad99f1 ("before", with this data_scale.py copied in) and the
#    change (ASCII texts through FastWordpieceTokenizer end to end, "after"):
for i in 1 2; do
  (cd before && python benchmarks/data_scale.py --sizes 1000000 --no-batches --folder /tmp/ds --json tokenize-1m-before-$i.json)
  python benchmarks/data_scale.py --sizes 1000000 --no-batches --folder /tmp/ds --json tokenize-1m-after-$i.json
done
# 4. load + tokenize at 10M, the change:
python benchmarks/data_scale.py --sizes 10000000 --no-batches --folder /tmp/ds --json tokenize-10m-after.json
