#!/bin/bash
# TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's own Eigen kernels instead of oneDNN's) against the default, one lever never
# tried before: the matmul peak, a training step at width 24 (mixed_bfloat16 and float32) and the exported model's
# serving at batch 1 and 64. Two alternating rounds of each. Run in a folder holding emotion_style_9000.txt, under the
# CPU lock, nothing else running; BENCH is the benchmark venv's python.
BENCH=${BENCH:-/work/bench-venv/bin/python}
REPO=${REPO:-/work/main}
steal() { awk '/^cpu / {print "steal_ticks", $9}' /proc/stat; }
date -u; git -C $REPO rev-parse --short HEAD; steal
for round in 1 2; do
  for setting in default off; do
    if [ $setting = off ]; then export TF_ENABLE_ONEDNN_OPTS=0; else unset TF_ENABLE_ONEDNN_OPTS; fi
    echo "== round $round, oneDNN $setting: peak"
    $BENCH $REPO/benchmarks/peak.py --repeats 10 2>&1 | grep -v "^WARNING\|E0000\|oneDNN custom"
    for policy in mixed_bfloat16 float32; do
      echo "== round $round, oneDNN $setting: step, $policy"
      $BENCH $REPO/benchmarks/step_profile.py --widths 24 --policy $policy --repeats 10 2>&1 | grep -v "^WARNING\|E0000\|oneDNN custom"
    done
    echo "== round $round, oneDNN $setting: serving"
    work=$(mktemp -d)
    $BENCH $REPO/benchmarks/serve_throughput.py --one kerasft $work --data emotion_style_9000.txt --sep ';' \
        --columns text,label --texts 2048 --single 200 2>&1 | grep RESULT | sed "s/\"labels\": \[[^]]*\], //"
    rm -rf $work
    steal
  done
done
date -u
