"""The dynamic-batching gain as issue #3 defines it: throughput at the same p95 latency budget
with and without batching. Reads run_server_device.sh's perf_analyzer_dynamic.txt and
perf_analyzer_none.txt (one perf_analyzer summary per concurrency); for each budget, each mode's
best throughput among the concurrencies whose p95 stays within it, and their ratio. The budgets
are the unbatched run's own p95 at each of its concurrencies (what an operator running without
batching accepts today), plus any given with --budget-us.

usage: batching_gain.py OUT_DIR [--budget-us 5000 ...]
"""
import argparse
import re
from pathlib import Path


def points(path: Path) -> list[tuple[int, float, float]]:
    """(concurrency, infer/s, p95 us) of every run that reported both."""
    out = []
    for block in re.split(r"Request concurrency: ", path.read_text())[1:]:
        c = int(block.split()[0])
        t = re.search(r"Throughput: ([\d.]+) infer/sec", block)
        p = re.search(r"p95 latency: (\d+) usec", block)
        if t and p:
            out.append((c, float(t.group(1)), float(p.group(1))))
    return out


def best_within(runs: list[tuple[int, float, float]], budget: float):
    ok = [r for r in runs if r[2] <= budget]
    return max(ok, key=lambda r: r[1]) if ok else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--budget-us", type=float, action="append", default=[])
    a = ap.parse_args()
    dyn = points(a.out_dir / "perf_analyzer_dynamic.txt")
    none = points(a.out_dir / "perf_analyzer_none.txt")
    for name, runs in (("dynamic", dyn), ("none", none)):
        print(f"{name}: " + ", ".join(f"c={c} {t:,.0f}/s p95 {p / 1000:.2f} ms" for c, t, p in runs))
    budgets = sorted({p for _, _, p in none} | set(a.budget_us))
    print("| p95 budget | without batching | with dynamic batching | gain |")
    print("| --- | --- | --- | --- |")
    for b in budgets:
        n, d = best_within(none, b), best_within(dyn, b)
        fmt = lambda r: f"{r[1]:,.0f}/s (c={r[0]}, p95 {r[2] / 1000:.2f} ms)" if r else "none within"
        gain = f"{d[1] / n[1]:.2f}x" if n and d else "-"
        print(f"| {b / 1000:.2f} ms | {fmt(n)} | {fmt(d)} | {gain} |")


if __name__ == "__main__":
    main()
