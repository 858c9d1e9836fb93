"""SQuAD v1.1: loading, Hugging Face run_qa-style features, n-best span decoding and the
official v1.1 EM/F1.

The preprocessing follows transformers' examples/pytorch/question-answering/run_qa.py
(prepare_train_features / prepare_validation_features): the question is left-stripped, the
context alone is truncated ("only_second") into windows of max_length tokens overlapping by
doc_stride, and a window that does not hold the whole answer is labelled with the [CLS] index.
Features are not padded here; batches are padded to their longest row, which gives the same
logits for the real tokens as padding to max_length (absolute positions, masked attention).

The decoding follows utils_qa.postprocess_qa_predictions for SQuAD v1 (no null answer): the
n_best start and end logits of each window, spans inside the context with end >= start and at
most max_answer_length tokens, scored start + end logit; the best span over all windows of the
question wins, its text cut from the context by character offsets.

The metric is the official evaluate-v1.1.py definition, rewritten from the published script:
lower-case, strip punctuation, drop the articles a/an/the, collapse whitespace; exact match and
bag-of-tokens F1 against each reference answer, the best per question, averaged x100.
"""

import collections
import json
import re
import string

import numpy as np

from common import open_text


def load_squad(paths, max_examples=0):
    """Flattens SQuAD JSON files into examples, in file order."""
    examples = []
    for path in paths:
        with open_text(path) as f:
            data = json.load(f)["data"]
        for article in data:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    examples.append({
                        "id": qa["id"], "title": article.get("title", ""),
                        "context": para["context"], "question": qa["question"],
                        "answers": [a["text"] for a in qa["answers"]],
                        "answer_starts": [a["answer_start"] for a in qa["answers"]],
                    })
                    if max_examples and len(examples) >= max_examples:
                        return examples
    return examples


def prepare_features(examples, tokenizer, max_length, stride, train, chunk=2000):
    """Tokenized windows. Each feature: input_ids, token_type_ids, attention_mask, example
    (index into examples); train features add start/end positions, eval features add offsets
    (char spans, None outside the context)."""
    feats = []
    for lo in range(0, len(examples), chunk):
        part = examples[lo:lo + chunk]
        enc = tokenizer([e["question"].lstrip() for e in part], [e["context"] for e in part],
                        truncation="only_second", max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True,
                        padding=False)
        for i, sample in enumerate(enc["overflow_to_sample_mapping"]):
            ids = enc["input_ids"][i]
            seq = enc.sequence_ids(i)
            offsets = enc["offset_mapping"][i]
            f = {"input_ids": np.asarray(ids, dtype=np.int32),
                 "token_type_ids": np.asarray(enc["token_type_ids"][i], dtype=np.int8),
                 "example": lo + sample}
            if train:
                f["start"], f["end"] = _label(part[sample], ids, seq, offsets,
                                              tokenizer.cls_token_id)
            else:
                f["offsets"] = [o if s == 1 else None for o, s in zip(offsets, seq)]
            feats.append(f)
    return feats


def _label(example, ids, seq, offsets, cls_id):
    cls_index = ids.index(cls_id) if cls_id in ids else 0
    if not example["answers"]:
        return cls_index, cls_index
    start_char = example["answer_starts"][0]
    end_char = start_char + len(example["answers"][0])
    ts = 0
    while seq[ts] != 1:
        ts += 1
    te = len(ids) - 1
    while seq[te] != 1:
        te -= 1
    if not (offsets[ts][0] <= start_char and offsets[te][1] >= end_char):
        return cls_index, cls_index
    while ts < len(offsets) and offsets[ts][0] <= start_char:
        ts += 1
    while offsets[te][1] >= end_char:
        te -= 1
    return ts - 1, te + 1


def postprocess(examples, features, start_logits, end_logits, n_best=20, max_answer_length=30):
    """{example id: predicted text}. start_logits[i] / end_logits[i] cover feature i's tokens
    (any padding beyond len(input_ids) is ignored)."""
    by_example = collections.defaultdict(list)
    for i, f in enumerate(features):
        by_example[f["example"]].append(i)
    preds = {}
    for ei, ex in enumerate(examples):
        cands = []
        for fi in by_example.get(ei, []):
            n = len(features[fi]["input_ids"])
            s_log, e_log = start_logits[fi][:n], end_logits[fi][:n]
            offsets = features[fi]["offsets"]
            s_idx = np.argsort(s_log)[-1:-n_best - 1:-1]
            e_idx = np.argsort(e_log)[-1:-n_best - 1:-1]
            for s in s_idx:
                if offsets[s] is None:
                    continue
                for e in e_idx:
                    if offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                        continue
                    cands.append((float(s_log[s] + e_log[e]), offsets[s][0], offsets[e][1]))
        cands.sort(key=lambda c: c[0], reverse=True)
        best = cands[0] if cands else None
        text = ex["context"][best[1]:best[2]] if best else ""
        preds[ex["id"]] = text if text else "empty"  # utils_qa's fallback for no valid span
    return preds


# --- official SQuAD v1.1 metric ----------------------------------------------------------------

_PUNCT = set(string.punctuation)


def normalize_answer(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1_score(prediction, truth):
    p, t = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = collections.Counter(p) & collections.Counter(t)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(t)
    return 2 * precision * recall / (precision + recall)


def exact_match_score(prediction, truth):
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_v1_metrics(examples, predictions):
    """EM and F1 (x100) over all examples; a question without a prediction scores 0, as in the
    official script."""
    em = f1 = 0.0
    for ex in examples:
        if ex["id"] not in predictions:
            continue
        pred = predictions[ex["id"]]
        em += max(exact_match_score(pred, t) for t in ex["answers"])
        f1 += max(f1_score(pred, t) for t in ex["answers"])
    n = len(examples)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "questions": n}
