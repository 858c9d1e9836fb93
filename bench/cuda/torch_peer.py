"""PyTorch peer for bench/cuda: Hugging Face transformers in FP16/BF16, eager with SDPA
attention, on the same model directory and shapes as kiln_cuda_bench (no padding: every
sequence is `seq` tokens). Times with CUDA events; reports the device-only forward and the
forward plus the float32 hidden states copied to the host. With --compile MODE the model is
torch.compile'd (e.g. max-autotune); each shape's compile time is printed as a comment line.

usage: torch_peer.py MODEL_DIR --label NAME --batches 1,64 --seq 128 --dtype fp16 [--compile M]
"""
import argparse
import statistics
import time

import torch
from transformers import AutoModel


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--label", default="")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    ap.add_argument("--compile", default="", help="torch.compile mode, e.g. max-autotune "
                    "(the eager model when empty)")
    a = ap.parse_args()
    dtype = torch.float16 if a.dtype == "fp16" else torch.bfloat16
    model = AutoModel.from_pretrained(a.model, dtype=dtype, attn_implementation="sdpa")
    model = model.cuda().eval()
    name_base = "torch_eager_sdpa"
    if a.compile:
        model = torch.compile(model, mode=a.compile)
        name_base = "torch_compile_" + a.compile.replace("-", "_")
    vocab = model.config.vocab_size
    for batch in [int(b) for b in a.batches.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(17)
        ids = torch.randint(min(1000, vocab - 1), vocab, (batch, a.seq), device="cuda", generator=g)
        mask = torch.ones_like(ids)
        for to_host in (False, True):
            times = []
            with torch.inference_mode():
                if a.compile and not to_host:
                    t0 = time.time()
                    model(input_ids=ids, attention_mask=mask)  # compiles (and autotunes) this shape
                    torch.cuda.synchronize()
                    print(f"# compile {a.compile} batch={batch} seq={a.seq}: "
                          f"{time.time() - t0:.0f} s", flush=True)
                for i in range(a.warmup + a.iters):
                    start = torch.cuda.Event(enable_timing=True)
                    end = torch.cuda.Event(enable_timing=True)
                    start.record()
                    out = model(input_ids=ids, attention_mask=mask).last_hidden_state
                    if to_host:
                        out = out.float().cpu()
                    end.record()
                    end.synchronize()
                    if i >= a.warmup:
                        times.append(start.elapsed_time(end))
            med = statistics.median(times)
            p90 = sorted(times)[int(0.9 * (len(times) - 1))]
            name = name_base + ("+d2h" if to_host else "")
            print(f"RESULT\t{name}\t{a.label}\tcuda\t{a.dtype}\tbatch={batch}\tseq={a.seq}\tconc=1\t"
                  f"median_ms={med:.3f}\tp90_ms={p90:.3f}\tseq_per_s={batch / med * 1e3:.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
