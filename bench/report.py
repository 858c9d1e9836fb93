"""Turns benchmark JSON lines (kiln bench --json, bench/peers/*_bench.py) into one markdown table.

    python bench/report.py results.jsonl

Rows are (model, batch, seq); columns are throughput per peer, kiln's ratio to ONNX Runtime and
PyTorch, latency, and kiln's fraction of the FMA roofline. Standard library only.
"""
import json
import sys
from collections import defaultdict


def main(path):
    rows = defaultdict(dict)
    for line in open(path):
        line = line.strip()
        if not line.startswith("{"):
            continue
        r = json.loads(line)
        rows[(r["model"], r["batch"], r["seq"])][r["peer"]] = r
    peers = ["kiln-fp32", "kiln-bf16", "onnxruntime-fp32", "pytorch-fp32", "pytorch-bf16"]
    present = [p for p in peers if any(p in v for v in rows.values())]
    head = ["model", "batch", "seq"] + [f"{p} seq/s" for p in present]
    head += ["fp32 / ORT", "bf16 / ORT", "fp32 / torch", "kiln fp32 p50 ms", "ORT p50 ms",
             "kiln bf16 p50 ms", "fp32 roofline", "bf16 roofline"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    def ratio(a, b):
        return f"{a['seq_per_s'] / b['seq_per_s']:.2f}x" if a and b else "-"

    def get(v, peer, key, fmt):
        return fmt.format(v[peer][key]) if peer in v and key in v[peer] else "-"

    for (model, batch, seq), v in sorted(rows.items()):
        cells = [model, str(batch), str(seq)]
        cells += [get(v, p, "seq_per_s", "{:.1f}") for p in present]
        k32, k16 = v.get("kiln-fp32"), v.get("kiln-bf16")
        ort, pt = v.get("onnxruntime-fp32"), v.get("pytorch-fp32")
        cells += [ratio(k32, ort), ratio(k16, ort), ratio(k32, pt)]
        cells += [get(v, "kiln-fp32", "p50_ms", "{:.2f}"), get(v, "onnxruntime-fp32", "p50_ms", "{:.2f}"),
                  get(v, "kiln-bf16", "p50_ms", "{:.2f}")]
        cells += [get(v, "kiln-fp32", "roofline", "{:.0%}"), get(v, "kiln-bf16", "roofline", "{:.0%}")]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
