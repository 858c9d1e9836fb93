"""What every peer benchmark shares: options, workloads, the timing loop and the output line.

Imports only numpy and the standard library, so ort_bench.py runs in the light .venv.
"""

import argparse
import json
import os
import time

import numpy as np

# Token ids inside the uncased BERT vocab (30522) and clear of [PAD]/[CLS]/[SEP]/[unused*].
TOKEN_RANGE = (1000, 30000)


def parse_args(description, extra=None):
    """The options every peer takes; extra(parser), if given, adds a peer's own."""

    def ints(s):
        return [int(x) for x in s.split(",")]

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="name under var/models, var/onnx")
    p.add_argument("--batch", type=ints, default=[1, 8, 32], help="comma-separated batch sizes")
    p.add_argument("--seq", type=ints, default=[128, 384], help="comma-separated sequence lengths")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    p.add_argument("--min-seconds", type=float, default=3.0, help="time at least this long ...")
    p.add_argument("--min-iters", type=int, default=10, help="... and at least this many runs")
    p.add_argument("--warmup", type=int, default=2, help="untimed runs first (allocations, JIT)")
    if extra:
        extra(p)
    return p.parse_args()


def workloads(args):
    """Yields (batch, seq, inputs): every row full length with an all-ones mask, i.e. the
    padded batch a peer without ragged batching runs."""
    rng = np.random.default_rng(0)
    for batch in args.batch:
        for seq in args.seq:
            ids = rng.integers(*TOKEN_RANGE, size=(batch, seq), dtype=np.int64)
            yield batch, seq, {"input_ids": ids, "attention_mask": np.ones_like(ids),
                               "token_type_ids": np.zeros_like(ids)}


def measure(run, args):
    """Calls run() until both min_seconds and min_iters are reached; returns the latencies (s)."""
    for _ in range(args.warmup):
        run()
    latencies, start = [], time.perf_counter()
    while len(latencies) < args.min_iters or time.perf_counter() - start < args.min_seconds:
        t0 = time.perf_counter()
        run()
        latencies.append(time.perf_counter() - t0)
    return np.array(latencies)


def report(peer, model, batch, seq, latencies, threads):
    line = {"peer": peer, "model": model, "batch": batch, "seq": seq,
            "seq_per_s": round(batch * len(latencies) / latencies.sum(), 2),
            "p50_ms": round(float(np.percentile(latencies, 50)) * 1e3, 2),
            "p99_ms": round(float(np.percentile(latencies, 99)) * 1e3, 2),
            "iters": len(latencies), "threads": threads}
    print(json.dumps(line), flush=True)
