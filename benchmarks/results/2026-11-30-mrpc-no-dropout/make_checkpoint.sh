# The checkpoint: a copy of the packaged all-MiniLM-L6-v2 with hidden_dropout_prob and attention_probs_dropout_prob 0
cp -r "$(python -c "from kerasft.recipe import packaged_minilm; print(packaged_minilm())")" /tmp/s11/minilm-nodrop
python - <<EOF
import json; from pathlib import Path
p = Path("/tmp/s11/minilm-nodrop/config.json"); c = json.loads(p.read_text())
p.write_text(json.dumps(c | {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}, indent=2))
EOF
