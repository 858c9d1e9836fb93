"""ONNX Runtime CPU peer: times the fused FP32 graph from export_onnx.py (run with .venv).

    .venv/bin/python bench/peers/ort_bench.py --model all-MiniLM-L6-v2 --batch 1,8,32 --seq 128

Loads var/onnx/<model>.opt.onnx and prints one JSON line per (batch, seq) workload. Needs
only onnxruntime and numpy (no torch).
"""

from pathlib import Path

import onnxruntime as ort

from peer_common import measure, parse_args, report, workloads

ROOT = Path(__file__).resolve().parents[2]


def open_session(path, threads):
    """A CPU session as every ONNX Runtime peer runs it (ort_int8_bench.py too)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    # One request at a time: no inter-op parallelism, so all threads go to each kernel.
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main():
    args = parse_args(__doc__.split("\n")[0])
    session = open_session(ROOT / "var/onnx" / f"{args.model}.opt.onnx", args.threads)
    names = {i.name for i in session.get_inputs()}
    for batch, seq, inputs in workloads(args):
        feed = {k: v for k, v in inputs.items() if k in names}
        latencies = measure(lambda: session.run(None, feed), args)
        report("onnxruntime-fp32", args.model, batch, seq, latencies, args.threads)


if __name__ == "__main__":
    main()
