"""Turns benchmark JSON lines (kiln bench --json, bench/peers/*_bench.py) into one markdown table.

    python bench/report.py results.jsonl

Rows are (model, batch, seq); columns are throughput per peer, kiln's ratio to ONNX Runtime and
PyTorch, latency, and kiln's fraction of the FMA roofline; with INT8 rows (bench/run_int8_bench.sh)
also kiln INT8's ratio to the fastest ONNX Runtime INT8 model. Standard library only.
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
    peers = ["kiln-fp32", "kiln-bf16", "kiln-int8", "kiln-int8-plan", "onnxruntime-fp32",
             "onnxruntime-int8-dynamic", "onnxruntime-int8-dynamic-pc", "onnxruntime-int8-qdq",
             "pytorch-fp32", "pytorch-bf16"]
    found = {p for v in rows.values() for p in v}
    present = [p for p in peers if p in found] + sorted(found - set(peers))
    int8 = "kiln-int8" in found
    head = ["model", "batch", "seq"] + [f"{p} seq/s" for p in present]
    head += ["fp32 / ORT", "bf16 / ORT", "fp32 / torch", "kiln fp32 p50 ms", "ORT p50 ms",
             "kiln bf16 p50 ms", "fp32 roofline", "bf16 roofline"]
    if int8:
        head += ["int8 / ORT int8", "kiln int8 p50 ms", "int8 roofline"]
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
        if int8:  # against the fastest of ORT's INT8 models on this workload
            ort8 = max((r for p, r in v.items() if p.startswith("onnxruntime-int8")),
                       key=lambda r: r["seq_per_s"], default=None)
            cells += [ratio(v.get("kiln-int8"), ort8), get(v, "kiln-int8", "p50_ms", "{:.2f}"),
                      get(v, "kiln-int8", "roofline", "{:.0%}")]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
