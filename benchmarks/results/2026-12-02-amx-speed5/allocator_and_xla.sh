#!/bin/bash
# step_profile.py's whole step at width 24 (median of 10) under three allocators, alternated three times; then
# TensorFlow's XLA auto-clustering (CPU) once. Run from the repository's root, under the CPU lock, nothing else running.
#   base:  glibc malloc as it comes (TensorFlow's oneDNN build allocates large tensors through its own BFC allocator)
#   glibc: glibc tuned to keep freed memory (mmap threshold 32 MB, no trimming, 256 MB top pad)
#   bfc:   TF_CPU_ALLOCATOR_USE_BFC=1
for round in 1 2 3; do
  for variant in base glibc bfc; do
    case $variant in
      base) setting="KERASFT_PROBE=1";;
      glibc) setting="GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456";;
      bfc) setting="TF_CPU_ALLOCATOR_USE_BFC=1";;
    esac
    line=$(env $setting /usr/bin/time -f "sys %S s, minor faults %R" python benchmarks/step_profile.py --widths 24 --repeats 10 2>&1 \
      | grep -E 'width  24|^sys' | tr -s ' ' | tr '\n' ' ')
    echo "round $round $variant: $line; steal ticks $(awk '/^cpu /{print $9}' /proc/stat)"
  done
done
echo "XLA auto-clustering:"
TF_XLA_FLAGS="--tf_xla_auto_jit=2 --tf_xla_cpu_global_jit" python benchmarks/step_profile.py --widths 24 --repeats 10 2>&1 \
  | grep -E 'first step|width  24'
