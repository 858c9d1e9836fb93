"""Writes random-weight stand-ins for models whose weights we cannot download (run with .venv-ref).

    HF_HUB_OFFLINE=1 .venv-ref/bin/python bench/peers/make_shape_models.py

Speed depends on shapes, not on weight values, so a seeded random BertModel of the right
shape benchmarks like the real one:
    var/models/bge-small-shape  bge-small-en-v1.5's shape (12 x 384, 12 heads, FFN 1536),
                                with its sentence-transformers CLS pooling + normalize files
    var/models/bert-base-shape  bert-base-uncased's shape (12 x 768, 12 heads, FFN 3072)
Both use all-MiniLM-L6-v2's tokenizer files (the same uncased 30522-token BERT vocab).
Idempotent: a directory that already holds model.safetensors is left alone.
"""

import json
import os
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import BertConfig, BertModel

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "var/models"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json",
                   "special_tokens_map.json")

# name -> (seed, shape)
SHAPES = {
    "bge-small-shape": (1, dict(hidden_size=384, num_attention_heads=12, intermediate_size=1536)),
    "bert-base-shape": (2, dict(hidden_size=768, num_attention_heads=12, intermediate_size=3072)),
}
CLS_POOLED = {"bge-small-shape"}


def write_st_files(path, hidden):
    """bge-small-en-v1.5's sentence-transformers layout: CLS token, then L2 normalize."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": hidden, "pooling_mode_cls_token": True,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    (path / "1_Pooling").mkdir()
    (path / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (path / "1_Pooling/config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": True}, indent=2) + "\n")


def make(name, shape, seed):
    dest = MODELS / name
    if (dest / "model.safetensors").exists():
        print(f"{dest}: present, skipped")
        return
    tmp = dest.with_name(name + ".tmp")  # a crash never leaves a half-written model in place
    shutil.rmtree(tmp, ignore_errors=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, num_hidden_layers=12, max_position_embeddings=512,
                        **shape)
    BertModel(config).eval().save_pretrained(tmp)
    for f in TOKENIZER_FILES:
        shutil.copy(MODELS / "all-MiniLM-L6-v2" / f, tmp / f)
    if name in CLS_POOLED:
        write_st_files(tmp, config.hidden_size)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"{dest}: written")


def main():
    for name, (seed, shape) in SHAPES.items():
        make(name, shape, seed)


if __name__ == "__main__":
    main()
