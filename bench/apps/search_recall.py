"""Recall@10 of kiln_search's HNSW index against exact search on a real collection: every
distinct SQuAD v1.1 paragraph (train + dev, ~20.9k), embedded by all-MiniLM-L6-v2 in
`kiln serve`, queried with SQuAD dev questions through the Triton client.

    .venv/bin/python bench/apps/search_recall.py [--queries 2000] [--docs 0 (all)]

Prints recall@10 (HNSW ids found by exact search, averaged), how often the question's own
paragraph is in the top 10 (exact and HNSW), and the query latency of each index.
"""
import argparse
import json
import lzma
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/e2e"))
import kiln_server as ks  # noqa: E402

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402

DATA = ROOT.parent / "shared/data/squad_v1.1"


def paragraphs():
    docs, questions = [], []
    with zipfile.ZipFile(DATA / "dev-v1.1.json.zip") as z:
        dev = json.loads(z.read("dev-v1.1.json"))["data"]
    train = []
    for part in sorted(DATA.glob("train-v1.1.explorer.part*.json.xz")):
        with lzma.open(part, "rt") as f:
            train += json.load(f)["data"]
    seen = {}
    for split, data in (("dev", dev), ("train", train)):
        for a in data:
            for p in a["paragraphs"]:
                ctx = p["context"].replace("\n", " ")
                if ctx not in seen:
                    seen[ctx] = len(docs)
                    docs.append(ctx)
                if split == "dev":
                    questions += [(q["question"], seen[ctx]) for q in p["qas"]]
    return docs, questions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--docs", type=int, default=0)
    args = ap.parse_args()
    docs, questions = paragraphs()
    if args.docs:
        docs = docs[:args.docs]
        questions = [q for q in questions if q[1] < args.docs]
    questions = questions[::max(1, len(questions) // args.queries)][:args.queries]
    tmp = Path(tempfile.mkdtemp(prefix="kiln_search_"))
    repo = tmp / "models"
    for name, index in (("hnsw", "hnsw"), ("exact", "exact")):
        ks.write_config(repo / name, 'backend: "kiln_search"\n'
                        f'parameters {{ key: "embedding_model" value {{ string_value: "{ks.MINILM_DIR}" }} }}\n'
                        f'parameters {{ key: "index" value {{ string_value: "{index}" }} }}\n')
        (repo / name / "1").mkdir()
        (repo / name / "1" / "documents.txt").write_text("".join(d + "\n" for d in docs))
    t0 = time.time()
    server = ks.KilnServer(repo, ready_timeout=3600).start()
    load_s = time.time() - t0
    client = grpcclient.InferenceServerClient(server.grpc_url)
    results, latency = {}, {}
    for name in ("exact", "hnsw"):
        ids, times = [], []
        for q, _ in questions:
            inp = grpcclient.InferInput("QUERY", [1], "BYTES")
            inp.set_data_from_numpy(np.array([q.encode()], dtype=object))
            t = time.perf_counter()
            r = client.infer(name, [inp], outputs=[grpcclient.InferRequestedOutput("ids")],
                             parameters={"top_k": 10})
            times.append(time.perf_counter() - t)
            ids.append(r.as_numpy("ids")[0])
        results[name] = np.array(ids)
        latency[name] = np.percentile(np.array(times) * 1e3, [50, 99])
    server.stop()
    server.cleanup()
    found = sum(len(set(h) & set(e)) for h, e in zip(results["hnsw"], results["exact"]))
    recall = found / (10 * len(questions))
    own = {n: np.mean([q[1] in row for q, row in zip(questions, results[n])]) for n in results}
    print(f"collection: {len(docs)} SQuAD v1.1 paragraphs (train + dev), embedded in {load_s:.0f} s "
          f"(both indexes, server start included); {len(questions)} dev questions")
    print(f"recall@10 HNSW vs exact: {recall:.4f}")
    for n in ("exact", "hnsw"):
        print(f"{n:6s} own paragraph in top 10: {own[n]:.4f}; query p50 {latency[n][0]:.2f} ms, "
              f"p99 {latency[n][1]:.2f} ms (embedding + search, gRPC, one at a time)")


if __name__ == "__main__":
    main()
