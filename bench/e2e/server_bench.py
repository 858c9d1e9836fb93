"""Server benchmarks for docs/PERFORMANCE.md, all driven by Triton's perf_analyzer.

  1. overhead:  the built-in identity model over HTTP and gRPC at concurrency 1 and 16. The
                server-side overhead is perf_analyzer's own figure: the server's request
                duration minus queue and compute, from the statistics extension (Triton's
                quick start documents 41 us for its server).
  2. batching:  all-MiniLM-L6-v2 on real SST-2 sentences, with and without dynamic batching:
                the best throughput whose p95 latency stays within the budget.
  3. ragged:    the same model and load with token-budget ragged batches vs batches padded to
                the longest sentence (parameter batch_padding: longest).

Usage: .venv/bin/python bench/e2e/server_bench.py [--quick] [--only overhead,batching,ragged]
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.environ.get("KILN", os.path.join(ROOT, "build/release/tools/kiln/kiln"))
PERF = os.path.join(ROOT, ".venv/bin/perf_analyzer")
MINILM = os.path.join(ROOT, "var/models/all-MiniLM-L6-v2")
SST2 = "/work/shared/data/sst2/dev.tsv"
if not os.path.exists(SST2):
    SST2 = os.path.join(ROOT, "../shared/data/sst2/dev.tsv")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, repo, extra=()):
        self.http, self.grpc, self.metrics = free_port(), free_port(), free_port()
        self.proc = subprocess.Popen(
            [KILN, "serve", "--model-repository", repo, "--http-port", str(self.http),
             "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics), *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/v2/health/ready") as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("kiln serve exited: " + self.proc.stderr.read().decode())
            time.sleep(0.2)
        raise RuntimeError("kiln serve did not become ready")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)


def perf(model, url, protocol, concurrency, extra=(), interval_ms=3000):
    out = tempfile.mktemp(suffix=".csv")
    cmd = [PERF, "-m", model, "-u", url, "-i", protocol, "--concurrency-range", str(concurrency),
           "-p", str(interval_ms), "--max-trials", "10", "-s", "25", "--percentile", "95", "-f", out,
           "--verbose-csv", *extra]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"perf_analyzer failed ({' '.join(cmd)}):\n{run.stdout}\n{run.stderr}")
    with open(out) as f:
        row = next(csv.DictReader(f))
    os.unlink(out)
    # perf_analyzer's server-side summary line:
    #   Avg request latency: 23 usec (overhead 3 usec + queue 20 usec + compute input 0 usec +
    #   compute infer 0 usec + compute output 0 usec)
    m = re.findall(r"Avg request latency: (\d+) usec \(overhead (\d+) usec \+ queue (\d+) usec"
                   r" \+ compute input (\d+) usec \+ compute infer (\d+) usec \+ compute output"
                   r" (\d+) usec\)", run.stdout)
    if not m:
        raise RuntimeError("no server-side statistics in perf_analyzer's output:\n" + run.stdout)
    v = [int(x) for x in m[-1]]
    server = [v[0], v[1], v[2], v[3] + v[4] + v[5]]
    return {
        "concurrency": concurrency,
        "throughput": float(row["Inferences/Second"]),
        "p50_us": int(row["p50 latency"]),
        "p95_us": int(row["p95 latency"]),
        "p99_us": int(row["p99 latency"]),
        "server_request_us": server[0],
        "server_overhead_us": server[1],
        "server_queue_us": server[2],
        "server_compute_us": server[3],
    }


def overhead_buckets(metrics_port, model):
    """Cumulative kiln_server_overhead_seconds buckets of `model` from /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read().decode()
    out = []
    for m in re.finditer(r'kiln_server_overhead_seconds_bucket\{model="' + model +
                         r'",version="\d+",le="([^"]+)"\} (\d+)', text):
        out.append((float(m.group(1)), int(m.group(2))))
    return out


def quantile(before, after, q):
    """Quantile of the observations between two scrapes, interpolated within its bucket."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before)]
    total = counts[-1][1]
    if total == 0:
        return None
    rank, lower, prev = q * total, 0.0, 0
    for le, c in counts:
        if c >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - prev) / max(1, c - prev)
        lower, prev = le, c
    return lower


def bench_overhead(quick):
    repo = tempfile.mkdtemp()
    shutil.copytree(os.path.join(ROOT, "model_repository/identity"), os.path.join(repo, "identity"))
    server = Server(repo)
    rows = []
    try:
        for protocol, port in (("http", server.http), ("grpc", server.grpc)):
            for c in (1, 16):
                before = overhead_buckets(server.metrics, "identity")
                r = perf("identity", f"localhost:{port}", protocol, c,
                         interval_ms=1000 if quick else 3000)
                after = overhead_buckets(server.metrics, "identity")
                r["protocol"] = protocol
                p50 = quantile(before, after, 0.5)
                r["server_overhead_p50_us"] = round(p50 * 1e6, 1) if p50 is not None else None
                rows.append(r)
                print(f"overhead {protocol:4} c={c:2}: {r['throughput']:9.0f} infer/s  "
                      f"client p50 {r['p50_us']} us p99 {r['p99_us']} us  server overhead p50 "
                      f"{r['server_overhead_p50_us']} us, avg (request - compute) "
                      f"{r['server_request_us'] - r['server_compute_us']} us (request {r['server_request_us']}, queue "
                      f"{r['server_queue_us']}, compute {r['server_compute_us']})", flush=True)
    finally:
        server.stop()
        shutil.rmtree(repo)
    return rows


def sentences(n):
    out = []
    with open(SST2) as f:
        next(f)
        for line in f:
            out.append(line.split("\t")[0])
            if len(out) == n:
                break
    return out


def minilm_repo(config_body):
    repo = tempfile.mkdtemp()
    model = os.path.join(repo, "minilm")
    os.makedirs(model)
    os.symlink(MINILM, os.path.join(model, "1"))
    with open(os.path.join(model, "config.pbtxt"), "w") as f:
        f.write('name: "minilm"\nbackend: "kiln"\nmax_batch_size: 64\n' + config_body)
    return repo


def input_data(n):
    path = tempfile.mktemp(suffix=".json")
    with open(path, "w") as f:
        json.dump({"data": [{"TEXT": [s]} for s in sentences(n)]}, f)
    return path


def sweep(config_body, levels, data, quick):
    repo = minilm_repo(config_body)
    server = Server(repo)
    rows = []
    try:
        for c in levels:
            r = perf("minilm", f"localhost:{server.grpc}", "grpc", c, ["--input-data", data],
                     interval_ms=2000 if quick else 4000)
            rows.append(r)
            print(f"  c={c:3}: {r['throughput']:8.1f} seq/s  p50 {r['p50_us'] / 1000:7.1f} ms  "
                  f"p95 {r['p95_us'] / 1000:7.1f} ms", flush=True)
    finally:
        server.stop()
        shutil.rmtree(repo)
    return rows


def best_within(rows, budget_us):
    ok = [r for r in rows if r["p95_us"] <= budget_us]
    return max(ok, key=lambda r: r["throughput"]) if ok else None


NO_BATCHING = 'instance_group [{ count: 1, kind: KIND_CPU }]\n'
DYNAMIC = ('instance_group [{ count: 1, kind: KIND_CPU }]\n'
           'dynamic_batching { max_queue_delay_microseconds: 2000 }\n'
           'parameters { key: "max_batch_tokens" value: { string_value: "8192" } }\n')


def bench_batching(quick, budget_ms):
    data = input_data(872)
    levels = [1, 2, 4, 8] if quick else [1, 2, 4, 8, 16, 32, 64]
    print("batching: no dynamic batching", flush=True)
    plain = sweep(NO_BATCHING, [1, 2, 4] if quick else [1, 2, 4, 8, 16], data, quick)
    print("batching: dynamic batching", flush=True)
    dyn = sweep(DYNAMIC, levels, data, quick)
    os.unlink(data)
    a, b = best_within(plain, budget_ms * 1000), best_within(dyn, budget_ms * 1000)
    gain = b["throughput"] / a["throughput"] if a and b else None
    print(f"batching: best within p95 <= {budget_ms} ms: "
          f"{a and a['throughput']:.1f} vs {b and b['throughput']:.1f} seq/s -> "
          f"{gain and round(gain, 2)}x", flush=True)
    return {"budget_ms": budget_ms, "no_batching": plain, "dynamic": dyn, "gain": gain}


def bench_ragged(quick):
    data = input_data(872)
    levels = [16] if quick else [16, 32, 64]
    print("ragged: token-budget ragged batches", flush=True)
    ragged = sweep(DYNAMIC, levels, data, quick)
    print("ragged: padded to the longest request", flush=True)
    padded = sweep(DYNAMIC + 'parameters { key: "batch_padding" value: { string_value: '
                   '"longest" } }\n', levels, data, quick)
    os.unlink(data)
    ratios = [r["throughput"] / p["throughput"] for r, p in zip(ragged, padded)]
    print("ragged: throughput ratios " + ", ".join(f"c={r['concurrency']}: {x:.2f}x"
                                                   for r, x in zip(ragged, ratios)), flush=True)
    return {"ragged": ragged, "padded": padded, "ratios": ratios}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default="overhead,batching,ragged")
    ap.add_argument("--budget-ms", type=float, default=100.0)
    ap.add_argument("--out", default=os.path.join(ROOT, "var/bench/server_bench.json"))
    args = ap.parse_args()
    which = args.only.split(",")
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip(),
               "cpus": os.cpu_count()}
    if "overhead" in which:
        results["overhead"] = bench_overhead(args.quick)
    if "batching" in which:
        results["batching"] = bench_batching(args.quick, args.budget_ms)
    if "ragged" in which:
        results["ragged"] = bench_ragged(args.quick)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    print("wrote " + args.out)


if __name__ == "__main__":
    sys.exit(main())
