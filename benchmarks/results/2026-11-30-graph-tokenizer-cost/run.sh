#!/bin/bash
cd /tmp/s11
for round in 1 2; do
for side in before after; do
  tree=/tmp/wt-before; [ $side = after ] && tree=/work/main
  (cd $tree/tests && PYTHONPATH=$tree:$tree/tests flock /tmp/cpu.lock /work/main/.venv/bin/python /tmp/s11/graph_tokenizer_cost.py --families minilm,bert-uncased,roberta,xlm-roberta,albert --repeats 3 --json /tmp/s11/cost-$side-$round.json) > /tmp/s11/cost-$side-$round.log 2>&1
done
done
