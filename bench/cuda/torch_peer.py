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


def run_mix(model, a, vocab: int, name_base: str) -> None:
    """Consecutive batches of the file's lengths (capped at --seq), each padded to its longest
    with an attention mask; one pass runs them all; seq/s of the median pass."""
    lens = [min(a.seq, max(1, int(x))) for x in open(a.lengths) if x.strip() and x[0] != "#"]
    for batch in [int(b) for b in a.batches.split(",")]:
        g = torch.Generator(device="cuda").manual_seed(23)
        inputs = []
        padded = 0
        for i in range(0, len(lens), batch):
            part = lens[i:i + batch]
            longest = max(part)
            ids = torch.randint(min(1000, vocab - 1), vocab, (len(part), longest), device="cuda",
                                generator=g)
            mask = torch.zeros_like(ids)
            for r, n in enumerate(part):
                mask[r, :n] = 1
            padded += longest * len(part)
            inputs.append((ids, mask))
        passes = []
        with torch.inference_mode():
            for i in range(a.warmup + a.iters):
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                for ids, mask in inputs:
                    model(input_ids=ids, attention_mask=mask)
                torch.cuda.synchronize()
                if i >= a.warmup:
                    passes.append(time.perf_counter() - t0)
        med = statistics.median(passes)
        p90 = sorted(passes)[int(0.9 * (len(passes) - 1))]
        print(f"RESULT\t{name_base}\t{a.label}\tcuda\t{a.dtype}\tbatch={batch}\tseq=mix\tconc=1\t"
              f"median_ms={med / len(inputs) * 1e3:.3f}\tp90_ms={p90 / len(inputs) * 1e3:.3f}\t"
              f"seq_per_s={len(lens) / med:.1f}\ttokens={sum(lens)}\tpadded_tokens={padded}",
              flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--label", default="")
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--dtype", default="fp16", choices=["fp16", "bf16"])
    ap.add_argument("--lengths", default="", help="file of token counts: batches of these real "
                    "lengths padded to each batch's longest (as a padded server does)")
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
    if a.lengths:
        run_mix(model, a, vocab, name_base)
        return
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
