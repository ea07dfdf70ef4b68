#!/bin/bash
# the 2-core Intel Xeon with AMX of "Speed round 3", under the CPU lock, nothing else running
python benchmarks/data_scale.py --sizes 1000000 --folder /tmp/s14/ds --json data-1m.json > data-1m.log 2>&1
