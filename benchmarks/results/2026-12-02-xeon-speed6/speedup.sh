#!/bin/bash
# What train.mixed_precision=auto measures when a run starts (kerasft.precision.bfloat16_matmul_speedup), and how
# long it takes, in eight fresh processes. Under the CPU lock, nothing else running.
BENCH=${BENCH:-/work/bench-venv/bin/python}
date -u
for i in 1 2 3 4 5 6 7 8; do
  TF_CPP_MIN_LOG_LEVEL=3 $BENCH -c "
import time
import tensorflow as tf
from kerasft.precision import bfloat16_matmul_speedup
started = time.perf_counter()
speedup = bfloat16_matmul_speedup()
print(f'speedup {speedup:.2f} in {time.perf_counter() - started:.2f} s')
" 2>&1 | grep speedup
done
awk '/^cpu / {print "steal_ticks", $9}' /proc/stat
date -u
