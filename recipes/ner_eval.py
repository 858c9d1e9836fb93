"""CoNLL files and entity-level scores for the NER recipe.

Entities are read off tag sequences the way conlleval and seqeval (default, non-strict mode)
do: a chunk starts at B-X, or at I-X after O or after a tag of another type, and ends before
O, B-*, or a tag of another type. That one reader serves both BIO (IOB2, WNUT-17) and IOB1
(wikigold, where B- only separates two adjacent entities of one type). A predicted entity
counts only if its type, first and last word all match a gold entity (exact span match);
precision, recall and F1 are micro-averaged over entities.
"""

import collections

import common


def read_conll(path):
    """[(words, tags)] from `word<TAB>tag` or `word tag` lines, blank lines between sentences;
    -DOCSTART- lines are dropped."""
    sents, words, tags = [], [], []
    with common.open_text(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                if words:
                    sents.append((words, tags))
                    words, tags = [], []
                continue
            word, tag = line.split("\t") if "\t" in line else line.rsplit(" ", 1)
            if word == "-DOCSTART-":
                continue
            words.append(word)
            tags.append(tag.strip())
    if words:
        sents.append((words, tags))
    return sents


def _split(tag):
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, typ = tag.split("-", 1)
    return prefix, typ


def entities(tags):
    """{(type, first, last)} read conlleval-style from B/I/O tags (IOB1 or IOB2)."""
    out = set()
    prev_prefix, prev_type, begin = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, typ = _split(tag)
        ends = prev_prefix != "O" and (prefix in ("O", "B") or typ != prev_type)
        if ends:
            out.add((prev_type, begin, i - 1))
        starts = prefix == "B" or (prefix == "I" and (prev_prefix == "O" or typ != prev_type))
        if starts:
            begin = i
        prev_prefix, prev_type = prefix, typ
    return out


def score(gold_sets, pred_sets, types=None):
    """Micro and per-type P/R/F1 (x100) over lists of entity sets; `types` restricts both."""
    tp, n_gold, n_pred = collections.Counter(), collections.Counter(), collections.Counter()
    for g, p in zip(gold_sets, pred_sets):
        if types is not None:
            g = {e for e in g if e[0] in types}
            p = {e for e in p if e[0] in types}
        for e in g:
            n_gold[e[0]] += 1
        for e in p:
            n_pred[e[0]] += 1
        for e in g & p:
            tp[e[0]] += 1

    def prf(t, ng, np_):
        p = t / np_ if np_ else 0.0
        r = t / ng if ng else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"precision": 100 * p, "recall": 100 * r, "f1": 100 * f, "gold": ng,
                "predicted": np_, "correct": t}

    all_types = sorted(set(n_gold) | set(n_pred))
    out = prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
    out["per_type"] = {t: prf(tp[t], n_gold[t], n_pred[t]) for t in all_types}
    return out
