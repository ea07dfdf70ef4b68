"""This CPU's matrix-multiply peak in TensorFlow, float32 and bfloat16: the limit model FLOPs are measured against.

    python benchmarks/peak.py [--size 2048] [--repeats 20] [--json peak.json]

A square matmul of ``--size`` in each dtype, on all cores (TensorFlow's default threads, as training
uses them), timed after a warm-up; GFLOP/s = 2 * size^3 / the median call's seconds. oneDNN computes
bfloat16 natively on CPUs with AVX512-BF16 or AMX; elsewhere it is emulated and slower than float32. Native is
not always faster: on a Xeon whose hypervisor hides AMX, bfloat16 ran at 0.54-0.73x float32 (BENCHMARKS.md, speed
round 6).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def matmul_gflops(size: int, dtype: str, repeats: int) -> float:
    """Median GFLOP/s of ``size`` x ``size`` matmuls in ``dtype``."""
    from kerasft.precision import matmul_seconds  # what train.mixed_precision=auto times, at a smaller size

    return 2 * size**3 / statistics.median(matmul_seconds(size, dtype, repeats)) / 1e9


def measure(size: int = 2048, repeats: int = 20) -> dict:
    return {
        "size": size,
        "float32_gflops": round(matmul_gflops(size, "float32", repeats), 1),
        "bfloat16_gflops": round(matmul_gflops(size, "bfloat16", repeats), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.size, args.repeats)
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
