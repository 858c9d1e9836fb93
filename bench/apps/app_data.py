"""The evaluation sets of the applications and their official metrics, shared by
accuracy.py (kiln serve), hf_reference.py (Hugging Face pipelines) and model_selection.py.

- SQuAD v1.1 dev (10,570 questions): EM and F1 as the official evaluate-v1.1.py defines them
  (lower-case, drop punctuation and articles, collapse spaces; max over the gold answers).
- SST-2 dev (872 sentences): accuracy.
- WNUT-17 test (1,287 sentences; words joined with single spaces): entity-level micro F1 with
  exact character span and type match, gold entities read off the BIO tags as conlleval does.
"""
import collections
import json
import re
import string
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def squad_dev():
    with zipfile.ZipFile(DATA / "squad_v1.1" / "dev-v1.1.json.zip") as z:
        data = json.loads(z.read("dev-v1.1.json"))["data"]
    return [{"id": qa["id"], "question": qa["question"], "context": p["context"],
             "answers": [a["text"] for a in qa["answers"]]}
            for a in data for p in a["paragraphs"] for qa in p["qas"]]


def _normalize(s):
    s = "".join(ch for ch in s.lower() if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _f1(pred, gold):
    p, g = _normalize(pred).split(), _normalize(gold).split()
    same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def squad_scores(examples, predictions):
    """{"exact_match", "f1"} x100 over all examples (a missing prediction scores 0)."""
    em = f1 = 0.0
    for ex in examples:
        pred = predictions.get(ex["id"])
        if pred is None:
            continue
        em += max(float(_normalize(pred) == _normalize(g)) for g in ex["answers"])
        f1 += max(_f1(pred, g) for g in ex["answers"])
    return {"exact_match": 100 * em / len(examples), "f1": 100 * f1 / len(examples)}


def sst2_dev():
    lines = (DATA / "sst2" / "dev.tsv").read_text().splitlines()[1:]
    return [(t, int(y)) for t, y in (line.rsplit("\t", 1) for line in lines)]


def wnut17_test():
    """[(text, gold)]: gold is a set of (type, start, end) character spans of `text`."""
    out, words, tags = [], [], []
    for line in list((DATA / "wnut17" / "emerging.test.annotated").read_text().splitlines()) + [""]:
        if line.strip():
            w, t = line.split("\t")
            words.append(w)
            tags.append(t.strip())
            continue
        if not words:
            continue
        text, starts = "", []
        for w in words:
            starts.append(len(text) + (1 if text else 0))
            text = (text + " " + w) if text else w
        gold, cur = set(), None
        for i, t in enumerate(tags + ["O"]):
            kind = t[2:] if t != "O" else None
            if cur and (t == "O" or t.startswith("B-") or kind != cur[0]):
                gold.add((cur[0], starts[cur[1]], starts[i - 1] + len(words[i - 1])))
                cur = None
            if kind and cur is None:
                cur = (kind, i)
        out.append((text, gold))
        words, tags = [], []
    return out


def entity_f1(golds, preds):
    """Micro precision, recall, F1 (x100) of predicted (type, start, end) sets."""
    tp = sum(len(g & p) for g, p in zip(golds, preds))
    n_pred = sum(len(p) for p in preds)
    n_gold = sum(len(g) for g in golds)
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_gold if n_gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": 100 * precision, "recall": 100 * recall, "f1": 100 * f1}
