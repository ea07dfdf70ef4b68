"""for_tokenizer(verify=True) on the packaged MiniLM in a fresh process: PYTHONPATH=<tree> python verify_cost.py <label>."""
import os, sys, time
os.environ["TF_USE_LEGACY_KERAS"]="1"
import tensorflow as tf
from transformers import AutoTokenizer
from kerasft.recipe import packaged_minilm
from kerasft.graph_tokenizers import for_tokenizer
tok = AutoTokenizer.from_pretrained(packaged_minilm())
t = time.perf_counter(); g = for_tokenizer(tok, 128, verify=True); print(sys.argv[1], "for_tokenizer(verify=True)", round(time.perf_counter() - t, 3))
