"""Writes a BERT-family model directory with random weights (seeded) from a config.json, so kiln
and the PyTorch peer run the same weights on a machine that cannot download checkpoints.

usage: make_model.py CONFIG_JSON OUT_DIR
"""
import sys

import torch
from transformers import AutoConfig, AutoModel


def main() -> None:
    config_path, out = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    config = AutoConfig.from_pretrained(config_path)
    model = AutoModel.from_config(config)
    model.save_pretrained(out, safe_serialization=True)
    print(f"wrote {out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
