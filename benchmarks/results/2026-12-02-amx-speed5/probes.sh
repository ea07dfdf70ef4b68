#!/bin/bash
# This round's probes, one after another, from the repository's root, under the CPU lock, nothing else running.
# (train-2048-lazy.json comes from run.sh; frozen_signature.log from `python frozen_signature.py`.)
set -u
here=benchmarks/results/2026-12-02-amx-speed5
export PATH=$PWD/.venv/bin:$PATH
quiet() { grep -v -E '^(WARNING|I0000|E0000)'; }
date -u; git rev-parse --short HEAD
python $here/op_areas.py 2>&1 | quiet > $here/op_areas.log
python $here/layer_norm_fused.py 2>&1 | quiet > $here/layer_norm_fused.log
python $here/gelu_saved_cdf.py 2>&1 | quiet > $here/gelu_saved_cdf.log
python $here/dense_as_matmul.py 24 2>&1 | quiet > $here/dense_as_matmul.log
$here/allocator_and_xla.sh > $here/allocator_and_xla.log 2>&1
$here/serving_onednn_settings.sh /tmp/serving-onednn > $here/serving_onednn_settings.log 2>&1
date -u
