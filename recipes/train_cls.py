#!/usr/bin/env python3
"""Sentiment classification on SST-2 (GLUE): LoRA + sequence-classification head on a base
encoder; accuracy on SST-2 dev (872 sentences).

    python recipes/train_cls.py --base minilm --output-dir models/minilm-sst2-lora [--bf16]

Data: ../shared/data/sst2/{train,dev}.tsv, GLUE layout: a header `sentence<TAB>label`, then one
sentence (lower-cased, PTB-tokenized) and its label per line; 1 = positive, 0 = negative.
The model is transformers' BertForSequenceClassification: [CLS] -> pooler (dense + tanh) ->
dropout -> classifier. The pooler is trained together with the classifier (modules_to_save):
bge-small's checkpoint has no pooler (it would start random), and MiniLM's was trained for
another objective.
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
from common import log  # noqa: E402

LABELS = ["negative", "positive"]
HEAD = ["classifier", "pooler"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(p, epochs=2, batch_size=32, lr=5e-4, max_length=128)
    return p.parse_args(argv)


def load_tsv(path, max_examples=0):
    rows = []
    with common.open_text(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["sentence", "label"]:
            raise SystemExit(f"{path}: header {header}, expected ['sentence', 'label']")
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            sentence, label = line.rsplit("\t", 1)
            rows.append((sentence, int(label)))
            if max_examples and len(rows) >= max_examples:
                break
    return rows


def encode(rows, tok, max_length):
    enc = tok([s for s, _ in rows], truncation=True, max_length=max_length)
    return [{"input_ids": np.asarray(ids, dtype=np.int32),
             "token_type_ids": np.zeros(len(ids), dtype=np.int8), "label": y}
            for ids, (_, y) in zip(enc["input_ids"], rows)]


def collate(feats, idx, device):
    rows = [feats[i] for i in idx]
    b = common.pad_batch(rows, ["input_ids", "token_type_ids"], [0, 0], device)
    b["labels"] = torch.tensor([r["label"] for r in rows], device=device)
    return b


def logits_of(model, b):
    return model(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
                 attention_mask=b["attention_mask"]).logits.float()


@torch.no_grad()
def evaluate(model, feats, args, device):
    t0 = time.time()
    logits = np.zeros((len(feats), 2), dtype=np.float32)
    for idx in common.eval_batches(feats, args.eval_batch_size):
        logits[idx] = logits_of(model, collate(feats, idx, device)).cpu().numpy()
    gold = np.array([f["label"] for f in feats])
    acc = float((logits.argmax(-1) == gold).mean()) * 100
    m = {"accuracy": acc, "sentences": len(feats), "eval_seconds": round(time.time() - t0, 1)}
    log(f"dev: accuracy {acc:.2f} on {len(feats)} sentences")
    return m, logits


def main(argv=None):
    args = parse_args(argv)
    device = common.setup_runtime(args)
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from peft import TaskType

    base = common.resolve_base(args.base)
    tok = AutoTokenizer.from_pretrained(str(base))
    d = common.data_dir(args.data_dir) / "sst2"
    dev = encode(load_tsv(common.find_file(d, "dev.tsv"), args.max_eval_examples), tok,
                 args.max_length)
    kw = dict(num_labels=2, id2label=dict(enumerate(LABELS)),
              label2id={l: i for i, l in enumerate(LABELS)})
    if args.eval_only:
        model = common.load_adapter_model(AutoModelForSequenceClassification, base,
                                          args.eval_only, **kw).to(device).eval()
        m, _ = evaluate(model, dev, args, device)
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "eval.json").write_text(json.dumps(
            {"adapter": args.eval_only, "base_dir": common.rel(base), "dev": m,
             "command": common.command_line(), "env": common.environment()}, indent=2) + "\n")
        return m

    train_rows = load_tsv(common.find_file(d, "train.tsv"), args.max_train_examples)
    train = encode(train_rows, tok, args.max_length)
    log(f"SST-2: {len(train)} train, {len(dev)} dev sentences")
    model = common.build_lora_model(AutoModelForSequenceClassification, base, args,
                                    task_type=TaskType.SEQ_CLS, modules_to_save=HEAD,
                                    **kw).to(device)
    trainable, total = common.parameter_counts(model)
    log(f"model: {base.name} + LoRA r={args.lora_r}: {trainable:,} trainable of {total:,}")

    def loss_fn(m, b):
        return F.cross_entropy(logits_of(m, b), b["labels"])

    stats = common.train(model, len(train), lambda idx: collate(train, idx, device), loss_fn,
                         args, device, unit="examples",
                         lengths=[len(f["input_ids"]) for f in train])
    common.round_trainable_to(model, args.save_dtype)
    metrics, logits = evaluate(model, dev, args, device)
    out = Path(args.output_dir)
    files = {k: v for k, v in common.save_adapter(model, out, args.save_dtype).items()
             if k.startswith("adapter_")}
    del model
    reloaded = common.load_adapter_model(AutoModelForSequenceClassification, base, out,
                                         **kw).to(device).eval()
    m2, logits2 = evaluate(reloaded, dev, args, device)
    reload_check = {"accuracy": m2["accuracy"],
                    "max_abs_logit_diff": float(np.abs(logits - logits2).max()),
                    "same_metrics": m2["accuracy"] == metrics["accuracy"]}
    log(f"reload check: {reload_check}")
    record = {
        "task": "sst2", "base": args.base, "base_dir": common.rel(base),
        "base_note": common.base_note(base), "args": vars(args), "command": common.command_line(),
        "env": common.environment(),
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                 "targets": common.LORA_TARGETS},
        "modules_to_save": HEAD, "trainable_params": trainable,
        "train": dict(stats, sentences=len(train)), "dev": metrics,
        "reload_check": reload_check, "files": files,
        "adapter": common.adapter_tensor_summary(out), "labels": LABELS,
    }
    common.write_run_record(out, record)
    if not args.no_card:
        common.write_model_card(
            out, title=args.model_name or out.name, task="Sentiment classification (SST-2)",
            base=args.base,
            data=["GLUE SST-2 train, 67,349 sentences (../shared/data/sst2/train.tsv)"
                  + (f"; first {args.max_train_examples} only" if args.max_train_examples
                     else ""),
                  "GLUE SST-2 dev, 872 sentences (../shared/data/sst2/dev.tsv)"
                  + (f"; first {args.max_eval_examples} only" if args.max_eval_examples
                     else "")],
            metrics_md=["| set | sentences | accuracy |", "| --- | --- | --- |",
                        f"| SST-2 dev | {metrics['sentences']} | {metrics['accuracy']:.2f} |",
                        "", "Labels: 0 = negative, 1 = positive (config id2label)."],
            record=record,
            usage=["from transformers import AutoModelForSequenceClassification",
                   "from peft import PeftModel",
                   "base = AutoModelForSequenceClassification.from_pretrained("
                   f"'{common.rel(base)}', num_labels=2)",
                   f"model = PeftModel.from_pretrained(base, '{common.rel(out)}').eval()"],
            notes=["The head is transformers' BERT pooler (dense 384x384 + tanh on [CLS]) and "
                   "a 384x2 classifier; both are stored whole in adapter_model.safetensors."])
    log(f"saved {out}: " + ", ".join(f"{k} {v:,} B" for k, v in files.items()))
    return metrics


if __name__ == "__main__":
    main()
