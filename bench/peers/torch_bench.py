"""PyTorch CPU peer: transformers BertModel, eager mode, FP32 and BF16 autocast (.venv-ref).

    HF_HUB_OFFLINE=1 .venv-ref/bin/python bench/peers/torch_bench.py --model all-MiniLM-L6-v2 \
        --batch 1,8,32 --seq 128

Loads var/models/<model> with transformers' default attention (sdpa, what users get) and
prints one JSON line per (peer, batch, seq): "pytorch-fp32", then "pytorch-bf16"
(torch.autocast on CPU; Zen 4 has AVX512-BF16, so oneDNN runs the matmuls in BF16).
"""

import contextlib
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from transformers import BertModel

from peer_common import measure, parse_args, report, workloads

ROOT = Path(__file__).resolve().parents[2]
PEERS = {
    "pytorch-fp32": contextlib.nullcontext,
    "pytorch-bf16": lambda: torch.autocast("cpu", dtype=torch.bfloat16),
}


def main():
    args = parse_args(__doc__.split("\n")[0])
    torch.set_num_threads(args.threads)
    model = BertModel.from_pretrained(ROOT / "var/models" / args.model, dtype=torch.float32).eval()
    for peer, precision in PEERS.items():
        for batch, seq, inputs in workloads(args):
            feed = {k: torch.from_numpy(v) for k, v in inputs.items()}

            def run():
                with torch.inference_mode(), precision():
                    model(**feed)

            latencies = measure(run, args)
            report(peer, args.model, batch, seq, latencies, args.threads)


if __name__ == "__main__":
    main()
