#!/usr/bin/env python3
"""Checks of the recipes' own logic that need no model weights and run in seconds:

    .venv-ref/bin/python recipes/selftest.py

- entity chunking for BIO and IOB1 against hand-worked conlleval results;
- the SQuAD v1.1 normalization, EM and F1 on hand-worked cases;
- run_qa-style labelling of answer spans on a real tokenizer, and the n-best decoding of
  logits that point at those labels back to the reference answers of 300 dev questions
  (when a base model and the data are present);
- the teacher top-k file: with k covering every position the rebuilt teacher distribution
  equals the live one, and with a small k it keeps the exact top-k probabilities and tail mass.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import ner_eval  # noqa: E402
import squad  # noqa: E402
import train_qa  # noqa: E402

failures = []


def check(name, got, want):
    ok = got == want if not isinstance(want, float) else abs(got - want) < 1e-9
    print(("ok  " if ok else "FAIL"), name, "" if ok else f"got {got!r}, want {want!r}")
    if not ok:
        failures.append(name)


def test_entities():
    check("bio", ner_eval.entities("B-person I-person O B-group I-group B-group O".split()),
          {("person", 0, 1), ("group", 3, 4), ("group", 5, 5)})
    # IOB1: I- after O starts a chunk; B- splits two adjacent chunks of one type.
    check("iob1", ner_eval.entities("I-PER I-PER O I-LOC B-LOC I-ORG I-LOC".split()),
          {("PER", 0, 1), ("LOC", 3, 3), ("LOC", 4, 4), ("ORG", 5, 5), ("LOC", 6, 6)})
    check("hyphenated type", ner_eval.entities("B-creative-work I-creative-work".split()),
          {("creative-work", 0, 1)})
    s = ner_eval.score([{("a", 0, 1), ("b", 3, 3)}], [{("a", 0, 1), ("b", 3, 4)}])
    check("span must match exactly", (s["precision"], s["recall"], s["f1"]), (50.0, 50.0, 50.0))


def test_squad_metric():
    check("normalize", squad.normalize_answer("The  Quick, brown-fox an apple!"),
          "quick brownfox apple")
    check("f1", squad.f1_score("the cat sat", "a cat sat down"), 0.8)
    check("em", squad.exact_match_score("The Cat.", "cat"), 1.0)
    ex = [{"id": "1", "answers": ["Denver Broncos", "the Broncos"]},
          {"id": "2", "answers": ["1990"]}]
    m = squad.squad_v1_metrics(ex, {"1": "Broncos"})  # question 2 unanswered counts as 0
    check("best reference, missing prediction", (m["exact_match"], round(m["f1"], 6)),
          (50.0, round(100 * 1.0 / 2, 6)))


def test_labels():
    try:
        base = common.resolve_base("minilm")
    except SystemExit:
        print("skip labels: no base model")
        return
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(base))
    ctx = "The Eiffel Tower was finished in 1889 in Paris. " * 12
    ex = [{"id": "x", "context": ctx, "question": "  When was it finished?",
           "answers": ["1889"], "answer_starts": [ctx.index("1889")]}]
    feats = squad.prepare_features(ex, tok, 64, 16, train=True)
    first = feats[0]
    span = tok.decode(first["input_ids"][first["start"]:first["end"] + 1])
    check("answer span of the first window", span, "1889")
    check("windows without the answer point at [CLS]",
          all((f["start"], f["end"]) == (0, 0) or
              tok.decode(f["input_ids"][f["start"]:f["end"] + 1]) == "1889" for f in feats),
          True)
    check("several windows", len(feats) > 3, True)


def test_oracle_decoding():
    """Logits that point at the labelled span of each window must decode to the reference
    answers: labelling, windows, offsets and n-best decoding agree end to end."""
    try:
        base = common.resolve_base("minilm")
        dev = common.find_file(common.data_dir() / "squad_v1.1", "dev-v1.1.json.zip")
    except SystemExit:
        print("skip oracle decoding: no base model or data")
        return
    import numpy as np
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(base))
    ex = squad.load_squad([dev], 300)
    labelled = squad.prepare_features(ex, tok, 128, 32, train=True)
    feats = squad.prepare_features(ex, tok, 128, 32, train=False)
    starts, ends = [], []
    for f in labelled:
        s = np.full(len(f["input_ids"]), -5.0, dtype=np.float32)
        e = s.copy()
        s[f["start"]] += 10 if f["start"] else 0  # [CLS]-labelled windows stay flat
        e[f["end"]] += 10 if f["end"] else 0
        starts.append(s)
        ends.append(e)
    m = squad.squad_v1_metrics(ex, squad.postprocess(ex, feats, starts, ends))
    print(f"     oracle EM {m['exact_match']:.2f} F1 {m['f1']:.2f} on {m['questions']}")
    # Not 100: a few references are parts of one token ("gold" in "golden", "5" in "50"),
    # which no token-level span can give; 290 of these 300 decode exactly.
    check("oracle spans decode to the answers (EM >= 96)", m["exact_match"] >= 96.0, True)


def test_topk():
    torch.manual_seed(0)
    logits = torch.randn(4, 40) * 3
    mask = torch.ones(4, 40, dtype=torch.long)
    mask[1, 30:] = 0
    mask[2, 5:] = 0  # shorter than k below
    logits = logits.masked_fill(mask == 0, train_qa.NEG)
    t = 2.0
    live = train_qa.live_teacher_logp(logits, mask, t)
    v, i, tail = train_qa.compress_side(logits, mask, 40, t)
    full = train_qa.expand_side(v, i, tail, mask, t)
    fin = mask == 1
    check("k = all positions rebuilds the live distribution",
          torch.allclose(full[fin], live[fin], atol=1e-5) and bool(torch.isinf(full[~fin]).all()),
          True)
    v, i, tail = train_qa.compress_side(logits, mask, 8, t)
    approx = train_qa.expand_side(v, i, tail, mask, t)
    top_ok = torch.allclose(approx.gather(1, i), live.gather(1, i), atol=1e-5)
    check("small k keeps the exact top-k probabilities", top_ok, True)
    check("probabilities sum to 1", torch.allclose(approx.exp().sum(-1), torch.ones(4)), True)
    check("padding gets no mass", bool((approx.exp()[~fin] == 0).all()), True)
    s = torch.randn(4, 40).masked_fill(mask == 0, train_qa.NEG)
    check("KL of a distribution with itself is 0",
          abs(float(train_qa.kd_term(logits, live, t))) < 1e-5, True)
    check("KL is positive otherwise", float(train_qa.kd_term(s, live, t)) > 0.1, True)


if __name__ == "__main__":
    test_entities()
    test_squad_metric()
    test_labels()
    test_oracle_decoding()
    test_topk()
    print(f"{len(failures)} failed" if failures else "all passed")
    sys.exit(1 if failures else 0)
