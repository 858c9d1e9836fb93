"""How close the ONNX Runtime INT8 peers stay to ORT FP32 on held-out data (run with .venv).

    .venv/bin/python bench/peers/ort_int8_accuracy.py --model all-MiniLM-L6-v2

The embedding metrics of `kiln eval` (src/quant/eval.h, same data and definitions), with ORT
FP32 of the same fused graph as the reference, so that the two read side by side. One JSON line
per variant (ort_int8_bench.py's, quantized and cached the same way):
  hidden_cosine  last hidden states, token by token, of the SST-2 dev sentences
  cosine         pooled embeddings (mean over the tokens, or [CLS] where the model's
                 1_Pooling/config.json says so) of every text embedded: SST-2 dev, the first
                 --probe-train lines of sst2_probe_train.tsv, the queries and the paragraphs
  top_k_overlap  the first --paragraphs SQuAD dev questions against those paragraphs: the mean
                 fraction of FP32's top k (by cosine) that INT8's top k keeps; with recall@1 and
                 @k of each question's own paragraph
kiln eval's SST-2 probe accuracies are not reproduced (the probe texts count in `cosine` only).
Only all-MiniLM-L6-v2 has real weights: on the *-shape models these numbers mean nothing.

One text per run by default: ORT's dynamic quantization scales a whole input at once, so with
--batch > 1 a text's result depends on the texts (and padding) batched with it.
"""

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from ort_bench import open_session
from ort_int8_bench import add_quant_args, peer_name, quantized_model, variants

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "var/data"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="all-MiniLM-L6-v2", help="name under var/models, var/onnx")
    p.add_argument("--dev-sentences", type=int, default=0, help="SST-2 dev sentences (0: all)")
    p.add_argument("--probe-train", type=int, default=2000, help="SST-2 train lines embedded")
    p.add_argument("--paragraphs", type=int, default=300, help="retrieval corpus = query count")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--batch", type=int, default=1, help="texts per run (padded to the longest)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="intra-op threads")
    add_quant_args(p)
    return p.parse_args()


def column(name, col, limit):
    """Field `col` of the first `limit` (0: all) non-empty TAB-separated lines of var/data/name."""
    rows = [line.split("\t") for line in (DATA / name).read_text().splitlines() if line]
    return [r[col] for r in (rows[:limit] if limit > 0 else rows)]


def tokenizer(model):
    """The model's tokenizer, truncating where kiln does: the sentence-transformers
    max_seq_length when there is one, else max_position_embeddings."""
    d = ROOT / "var/models" / model
    tok = Tokenizer.from_file(str(d / "tokenizer.json"))
    limit = json.loads((d / "config.json").read_text())["max_position_embeddings"]
    st = d / "sentence_bert_config.json"
    if st.exists():
        limit = min(limit, json.loads(st.read_text()).get("max_seq_length") or limit)
    tok.no_padding()
    tok.enable_truncation(limit)
    return tok


def cls_pooling(model):
    pooling = ROOT / "var/models" / model / "1_Pooling/config.json"
    return pooling.exists() and json.loads(pooling.read_text()).get("pooling_mode_cls_token")


def hidden_states(session, encodings, batch):
    """Last hidden states of each encoding, its own tokens only: a list of [tokens, hidden]."""
    names = {i.name for i in session.get_inputs()}
    out = []
    for b in range(0, len(encodings), batch):
        chunk = encodings[b:b + batch]
        n = max(len(e.ids) for e in chunk)
        feed = {k: np.zeros((len(chunk), n), dtype=np.int64)
                for k in ("input_ids", "attention_mask", "token_type_ids")}
        for r, e in enumerate(chunk):
            feed["input_ids"][r, :len(e.ids)] = e.ids
            feed["attention_mask"][r, :len(e.ids)] = 1
            feed["token_type_ids"][r, :len(e.ids)] = e.type_ids
        h = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
        out += [h[r, :len(e.ids)].astype(np.float64) for r, e in enumerate(chunk)]
    return out


def outputs(session, sets, cls, batch):
    """Per set of encodings, its embeddings [texts, hidden]; and the SST-2 dev tokens' hidden
    states [tokens, hidden] (the first set)."""
    embeddings, dev_hidden = [], None
    for i, encodings in enumerate(sets):
        hidden = hidden_states(session, encodings, batch)
        if i == 0:
            dev_hidden = np.concatenate(hidden)
        pooled = np.stack([h[0] if cls else h.mean(axis=0) for h in hidden])
        embeddings.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return embeddings, dev_hidden


def row_cosines(a, b):
    """kiln's row_cosines: a zero row against a zero row counts as 1, against another as 0."""
    ab, aa, bb = (a * b).sum(axis=1), (a * a).sum(axis=1), (b * b).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = ab / np.sqrt(aa * bb)
    return np.where((aa == 0) & (bb == 0), 1.0, np.where((aa == 0) | (bb == 0), 0.0, c))


def cosine_stats(c):
    return {"mean": round(float(c.mean()), 6), "p1": round(float(np.percentile(c, 1)), 6),
            "min": round(float(c.min()), 6), "count": len(c)}


def top_k(queries, corpus, k):
    """Indices of the k paragraphs most cosine-similar to each query, best first, ties by the
    lower index (the rows are normalized already)."""
    return np.argsort(-(queries @ corpus.T), axis=1, kind="stable")[:, :k]


def overlap(a, b):
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def recall(ranking, gold, k):
    return round(float(np.mean([g in r[:k] for r, g in zip(ranking, gold)])), 6)


def main():
    args = parse_args()
    tok = tokenizer(args.model)
    queries = column("squad_dev_queries.tsv", 1, args.paragraphs)
    gold = [int(p) for p in column("squad_dev_queries.tsv", 0, args.paragraphs)]
    texts = [column("sst2_dev.tsv", 1, args.dev_sentences),
             column("sst2_probe_train.tsv", 1, args.probe_train), queries,
             column("squad_dev_corpus.tsv", 1, args.paragraphs)]
    sets = [tok.encode_batch(t) for t in texts]
    cls = cls_pooling(args.model)
    reference = open_session(ROOT / "var/onnx" / f"{args.model}.opt.onnx", args.threads)
    ref_emb, ref_hidden = outputs(reference, sets, cls, args.batch)
    ref_rank = top_k(ref_emb[2], ref_emb[3], args.top_k)
    for variant in variants(args):
        start = time.perf_counter()
        session = open_session(quantized_model(args.model, variant, args), args.threads)
        emb, hidden = outputs(session, sets, cls, args.batch)
        rank = top_k(emb[2], emb[3], args.top_k)
        cosines = np.concatenate([row_cosines(a, b) for a, b in zip(ref_emb, emb)])
        line = {"peer": peer_name(variant, args), "reference": "onnxruntime-fp32",
                "model": args.model,
                "hidden_cosine": cosine_stats(row_cosines(ref_hidden, hidden)),
                "embedding": {
                    "cosine": cosine_stats(cosines), "queries": len(queries),
                    "corpus": len(texts[3]), "top_k": args.top_k,
                    "top_k_overlap": round(overlap(ref_rank, rank), 6),
                    "reference_recall_1": recall(ref_rank, gold, 1),
                    "candidate_recall_1": recall(rank, gold, 1),
                    "reference_recall_k": recall(ref_rank, gold, args.top_k),
                    "candidate_recall_k": recall(rank, gold, args.top_k)},
                "seconds": round(time.perf_counter() - start, 1)}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
