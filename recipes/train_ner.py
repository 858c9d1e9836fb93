#!/usr/bin/env python3
"""NER on WNUT-17: LoRA + token-classification head on a base encoder; entity-level F1 on the
WNUT-17 test set, and on wikigold as a second (out-of-domain) test set.

    python recipes/train_ner.py --base minilm --output-dir models/minilm-wnut17-lora [--bf16]

Labels: BIO over WNUT-17's six types (person, location, corporation, product, creative-work,
group): 13 labels. Only the first sub-token of each word carries the word's label in training
(the others are ignored, -100), and the word's prediction is read from its first sub-token
(transformers' run_ner default, label_all_tokens=False). Words cut off by --max-length, and
words the tokenizer turns into no token at all, are predicted O.

wikigold uses CoNLL-2003's four types (PER, LOC, ORG, MISC) in IOB1. The label sets differ, so
it is scored only on what both sides define: predicted person -> PER, location -> LOC,
corporation and group -> ORG (wikigold's ORG covers companies, teams, bands and institutions,
which WNUT splits into corporation and group); predicted product and creative-work, and gold
MISC (nationalities, events, works, products...), are left out, since no mapping between them
is one to one. So the wikigold score is PER/LOC/ORG entity F1, zero-shot across domains
(tweets -> Wikipedia).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import ner_eval  # noqa: E402
from common import log  # noqa: E402

TYPES = ["person", "location", "corporation", "product", "creative-work", "group"]
LABELS = ["O"] + [f"{p}-{t}" for t in TYPES for p in ("B", "I")]
WIKIGOLD_MAP = {"person": "PER", "location": "LOC", "corporation": "ORG", "group": "ORG"}
WIKIGOLD_TYPES = {"PER", "LOC", "ORG"}
IGNORE = -100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(p, epochs=10, batch_size=16, lr=1e-3, max_length=256)
    return p.parse_args(argv)


def encode(sents, tok, max_length, with_labels):
    """Features: input_ids, token_type_ids, labels (first sub-token), first (the first token
    index of each word, -1 for a word with no token)."""
    lab = {l: i for i, l in enumerate(LABELS)}
    enc = tok([w for w, _ in sents], is_split_into_words=True, truncation=True,
              max_length=max_length)
    feats, lost = [], 0
    for i, (words, tags) in enumerate(sents):
        wids = enc.word_ids(i)
        first = np.full(len(words), -1, dtype=np.int32)
        labels = np.full(len(wids), IGNORE, dtype=np.int64)
        for pos, w in enumerate(wids):
            if w is not None and first[w] < 0:
                first[w] = pos
                if with_labels:
                    labels[pos] = lab[tags[w]]
        lost += int((first < 0).sum())
        ids = enc["input_ids"][i]
        feats.append({"input_ids": np.asarray(ids, dtype=np.int32),
                      "token_type_ids": np.zeros(len(ids), dtype=np.int8),
                      "labels": labels, "first": first, "tags": tags})
    return feats, lost


def collate(feats, idx, device):
    rows = [feats[i] for i in idx]
    b = common.pad_batch(rows, ["input_ids", "token_type_ids", "labels"], [0, 0, IGNORE],
                         device)
    return b


def logits_of(model, b):
    return model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                 attention_mask=b["attention_mask"]).logits.float()


@torch.no_grad()
def predict_tags(model, feats, args, device):
    """Word-level predicted tags per sentence, and the raw logits (for the reload check)."""
    tags, raw = [None] * len(feats), [None] * len(feats)
    for idx in common.eval_batches(feats, args.eval_batch_size):
        lg = logits_of(model, collate(feats, idx, device)).cpu().numpy()
        for row, i in zip(lg, idx):
            f = feats[i]
            raw[i] = row[:len(f["input_ids"])]
            best = row.argmax(-1)
            tags[i] = [LABELS[best[p]] if p >= 0 else "O" for p in f["first"]]
    return tags, raw


def evaluate(model, sets, args, device):
    out, raws = {}, {}
    for name, (feats, lost) in sets.items():
        t0 = time.time()
        pred, raw = predict_tags(model, feats, args, device)
        raws[name] = raw
        gold_e = [ner_eval.entities(f["tags"]) for f in feats]
        pred_e = [ner_eval.entities(p) for p in pred]
        if name == "wikigold":
            pred_e = [{(WIKIGOLD_MAP[t], a, b) for t, a, b in s if t in WIKIGOLD_MAP}
                      for s in pred_e]
            m = ner_eval.score(gold_e, pred_e, types=WIKIGOLD_TYPES)
        else:
            m = ner_eval.score(gold_e, pred_e)
        m.update(sentences=len(feats), words_without_token=lost,
                 eval_seconds=round(time.time() - t0, 1))
        log(f"{name}: entity P {m['precision']:.2f} R {m['recall']:.2f} F1 {m['f1']:.2f} "
            f"({m['gold']} gold, {m['predicted']} predicted, {len(feats)} sentences)")
        out[name] = m
    return out, raws


def eval_sets(args, tok):
    d = common.data_dir(args.data_dir)
    n = args.max_eval_examples

    def load(path):
        sents = ner_eval.read_conll(path)
        return sents[:n] if n else sents
    return {
        "wnut17_dev": encode(load(common.find_file(d / "wnut17", "emerging.dev.conll")), tok,
                             args.max_length, False),
        "wnut17_test": encode(load(common.find_file(d / "wnut17", "emerging.test.annotated")),
                              tok, args.max_length, False),
        "wikigold": encode(load(common.find_file(d / "wikigold", "wikigold.conll.txt")), tok,
                           args.max_length, False),
    }


def main(argv=None):
    args = parse_args(argv)
    device = common.setup_runtime(args)
    from transformers import AutoModelForTokenClassification, AutoTokenizer
    from peft import TaskType

    base = common.resolve_base(args.base)
    tok = AutoTokenizer.from_pretrained(str(base))
    sets = eval_sets(args, tok)
    kw = dict(num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
              label2id={l: i for i, l in enumerate(LABELS)})
    if args.eval_only:
        model = common.load_adapter_model(AutoModelForTokenClassification, base,
                                          args.eval_only, **kw).to(device).eval()
        m, _ = evaluate(model, sets, args, device)
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "eval.json").write_text(json.dumps(
            {"adapter": args.eval_only, "base_dir": common.rel(base), "eval": m,
             "command": common.command_line(), "env": common.environment()}, indent=2) + "\n")
        return m

    d = common.data_dir(args.data_dir)
    train_sents = ner_eval.read_conll(common.find_file(d / "wnut17", "wnut17train.conll"))
    if args.max_train_examples:
        train_sents = train_sents[:args.max_train_examples]
    train, lost = encode(train_sents, tok, args.max_length, True)
    log(f"WNUT-17 train: {len(train)} sentences ({lost} words without a token or cut off)")
    model = common.build_lora_model(AutoModelForTokenClassification, base, args,
                                    task_type=TaskType.TOKEN_CLS, modules_to_save=["classifier"],
                                    **kw).to(device)
    trainable, total = common.parameter_counts(model)
    log(f"model: {base.name} + LoRA r={args.lora_r}: {trainable:,} trainable of {total:,}")

    def loss_fn(m, b):
        lg = logits_of(m, b)
        return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), b["labels"].reshape(-1),
                               ignore_index=IGNORE)

    stats = common.train(model, len(train), lambda idx: collate(train, idx, device), loss_fn,
                         args, device, unit="sentences",
                         lengths=[len(f["input_ids"]) for f in train])
    common.round_trainable_to(model, args.save_dtype)
    metrics, raws = evaluate(model, sets, args, device)
    out = Path(args.output_dir)
    files = {k: v for k, v in common.save_adapter(model, out, args.save_dtype).items()
             if k.startswith("adapter_")}
    del model
    reloaded = common.load_adapter_model(AutoModelForTokenClassification, base, out,
                                         **kw).to(device).eval()
    m2, raws2 = evaluate(reloaded, sets, args, device)
    diff = max(float(np.abs(a - b).max()) for k in raws for a, b in zip(raws[k], raws2[k]))
    reload_check = {k: m2[k]["f1"] for k in m2}
    reload_check.update(max_abs_logit_diff=diff,
                        same_metrics=all(m2[k]["f1"] == metrics[k]["f1"] for k in m2))
    log(f"reload check: {reload_check}")
    record = {
        "task": "wnut17", "base": args.base, "base_dir": common.rel(base),
        "base_note": common.base_note(base), "args": vars(args),
        "command": common.command_line(), "env": common.environment(),
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                 "targets": common.LORA_TARGETS},
        "modules_to_save": ["classifier"], "trainable_params": trainable,
        "train": dict(stats, sentences=len(train)), "eval": metrics,
        "reload_check": reload_check, "files": files,
        "adapter": common.adapter_tensor_summary(out), "labels": LABELS,
        "subtokens": "first sub-token of each word labelled and read; the rest ignored",
        "wikigold_mapping": dict(WIKIGOLD_MAP, note="product, creative-work and gold MISC "
                                 "left out; scored on PER/LOC/ORG"),
    }
    common.write_run_record(out, record)
    if not args.no_card:
        write_card(out, args, record)
    log(f"saved {out}: " + ", ".join(f"{k} {v:,} B" for k, v in files.items()))
    return metrics


def write_card(out, args, r):
    rows = ["| set | sentences | gold entities | precision | recall | entity F1 |",
            "| --- | --- | --- | --- | --- | --- |"]
    names = {"wnut17_dev": "WNUT-17 dev", "wnut17_test": "WNUT-17 test",
             "wikigold": "wikigold (PER/LOC/ORG only, zero-shot)"}
    for k, m in r["eval"].items():
        rows.append(f"| {names[k]} | {m['sentences']} | {m['gold']} | {m['precision']:.2f} | "
                    f"{m['recall']:.2f} | {m['f1']:.2f} |")
    t = r["eval"]["wnut17_test"]["per_type"]
    rows += ["", "WNUT-17 test per type (F1): " + ", ".join(
        f"{k} {v['f1']:.1f}" for k, v in t.items())]
    rows += ["", "Entity-level micro F1, exact span and type match, conlleval/seqeval chunking."]
    common.write_model_card(
        out, title=args.model_name or out.name, task="Named-entity recognition (WNUT-17)",
        base=args.base,
        data=["WNUT-17 train, 3,394 sentences (../shared/data/wnut17/wnut17train.conll), "
              "CC BY 4.0" + (f"; first {args.max_train_examples} only"
                             if args.max_train_examples else ""),
              "WNUT-17 dev (emerging.dev.conll, 1,009) and test (emerging.test.annotated, "
              "1,287)", "wikigold (wikigold.conll.txt, 1,696 sentences, IOB1), CC BY 4.0"
              + (f"; each eval set cut to its first {args.max_eval_examples} sentences"
                 if args.max_eval_examples else "")],
        metrics_md=rows, record=r,
        usage=["from transformers import AutoModelForTokenClassification",
               "from peft import PeftModel",
               f"base = AutoModelForTokenClassification.from_pretrained('{r['base_dir']}', "
               f"num_labels={len(LABELS)})",
               f"model = PeftModel.from_pretrained(base, '{common.rel(out)}').eval()"],
        notes=["Labels (id order): " + ", ".join(LABELS),
               "Training labels the first sub-token of each word only; predictions are read "
               "from the first sub-token.",
               "wikigold mapping: person->PER, location->LOC, corporation/group->ORG; "
               "product, creative-work and gold MISC are not scored."])


if __name__ == "__main__":
    main()
