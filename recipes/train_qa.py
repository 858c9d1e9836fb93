#!/usr/bin/env python3
"""Extractive QA on SQuAD v1.1: LoRA + span head (qa_outputs) on a base encoder, evaluated on
the official dev set with the official EM/F1. Optional knowledge distillation from a trained QA
teacher (live, or from its precomputed top-k logits).

    python recipes/train_qa.py --base minilm --output-dir models/minilm-squad-lora [--bf16]
    python recipes/train_qa.py --base bge-small --output-dir models/bge-small-squad-lora \
        --dump-teacher-topk /tmp/bge_topk.safetensors
    python recipes/train_qa.py --base minilm --output-dir models/minilm-squad-distilled-lora \
        --teacher models/bge-small-squad-lora --teacher-base bge-small      # live teacher
    python recipes/train_qa.py --base minilm --output-dir ... \
        --teacher-topk /tmp/bge_topk.safetensors

Distillation loss (as in transformers' run_squad_w_distillation / DistilBERT):
    alpha * T^2 * (KL(teacher_T || student_T)[start] + KL(...)[end]) / 2
  + (1 - alpha) * (CE(start) + CE(end)) / 2
with softmax over the token positions at temperature T; padding positions are masked out of
both. The teacher and student must tokenize identically (checked: same vocab.txt bytes and
lower-casing), so their logits index the same positions.

A --teacher-topk file (written by the teacher's run with --dump-teacher-topk) holds, for every
training feature in order, the teacher's K largest start and end logits with their positions,
and the probability mass of all the other positions at temperature T (as a log-sum-exp). The
student's teacher distribution is then exact on those K positions and spreads the remaining
mass evenly over the other real tokens: the total mass is right, only the tail's shape is
flattened. It exists because one device call can carry only one base model (64 MiB in all):
the teacher's call dumps it (~6 MB for SQuAD at K=8), the student's call reads it. The file
records a fingerprint of the features and T; a student whose features or T differ refuses it.
--teacher (live) gives the exact loss where both models fit (here, on the CPU).
"""

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import squad  # noqa: E402
from common import log  # noqa: E402

# The span head has two outputs (start, end). transformers sizes qa_outputs by num_labels, and
# bge-small's config.json declares one label, so it is set explicitly.
QA_KW = {"id2label": {0: "start", 1: "end"}, "label2id": {"start": 0, "end": 1}}
NEG = -1e4  # logit for masked positions (finite, so log-softmax stays finite)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common.add_common_args(p, epochs=3, batch_size=32, lr=5e-4, max_length=384)
    p.add_argument("--doc-stride", type=int, default=128)
    p.add_argument("--n-best", type=int, default=20)
    p.add_argument("--max-answer-length", type=int, default=30)
    p.add_argument("--teacher", default=None, metavar="ADAPTER_DIR",
                   help="trained QA teacher adapter (base from --teacher-base)")
    p.add_argument("--teacher-base", default=None,
                   help="teacher base model (short name or dir); default: the adapter's config")
    p.add_argument("--teacher-topk", default=None, metavar="FILE",
                   help="precomputed teacher top-k logits (from --dump-teacher-topk)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the distillation term")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--dump-teacher-topk", default=None, metavar="FILE",
                   help="after training (or with --eval-only), write this model's top-k "
                        "start/end logits on the training features, for a later student")
    p.add_argument("--topk", type=int, default=8)
    return p.parse_args(argv)


def squad_files(args):
    d = common.data_dir(args.data_dir) / "squad_v1.1"
    train = [common.find_file(d, "train-v1.1.explorer.part1.json.xz"),
             common.find_file(d, "train-v1.1.explorer.part2.json.xz")]
    dev = common.find_file(d, "dev-v1.1.json.zip")
    return train, dev


def file_key(path):
    return common.file_key(path)


def _examples_and_features(files, max_examples, tok, args, train):
    examples = squad.load_squad(files, max_examples)
    return examples, squad.prepare_features(examples, tok, args.max_length, args.doc_stride,
                                            train=train)


def features_fingerprint(feats, args):
    h = hashlib.sha256(f"{args.max_length}/{args.doc_stride}/{len(feats)}".encode())
    for f in feats:
        h.update(f["input_ids"].tobytes())
    return h.hexdigest()


def collate(feats, idx, device, with_labels):
    rows = [feats[i] for i in idx]
    b = common.pad_batch(rows, ["input_ids", "token_type_ids"], [0, 0], device)
    if with_labels:
        b["start"] = torch.tensor([r["start"] for r in rows], device=device)
        b["end"] = torch.tensor([r["end"] for r in rows], device=device)
        b["idx"] = torch.as_tensor(np.asarray(idx), device=device)
    return b


def span_logits(model, b):
    # PEFT 0.21.2's PeftModelForQuestionAnswering.forward does not pass token_type_ids on to
    # the model for LoRA (only input_ids, attention_mask, ...): every segment id would be 0.
    # The wrapped transformers model has the LoRA layers and the head injected in place, so
    # calling it directly is the same forward with the question/context segment ids.
    net = model.get_base_model() if hasattr(model, "get_base_model") else model
    out = net(input_ids=b["input_ids"], token_type_ids=b["token_type_ids"],
              attention_mask=b["attention_mask"])
    pad = b["attention_mask"] == 0
    return (out.start_logits.float().masked_fill(pad, NEG),
            out.end_logits.float().masked_fill(pad, NEG))


def kd_term(student, teacher_logp, temperature):
    """KL(teacher_T || student_T) per row, batch-averaged, times T^2. teacher_logp holds the
    teacher's log-probabilities at temperature T; entries of -inf (padding) contribute 0."""
    log_ps = F.log_softmax(student / temperature, dim=-1)
    pt = teacher_logp.exp()
    kl = torch.where(pt > 0, pt * (teacher_logp - log_ps), torch.zeros_like(pt)).sum(-1)
    return kl.mean() * temperature ** 2


def live_teacher_logp(logits, mask, temperature):
    return F.log_softmax((logits / temperature).masked_fill(mask == 0, float("-inf")), dim=-1)


class TopkTeacher:
    """Teacher distributions rebuilt from a --dump-teacher-topk file: the K largest logits
    exactly, and the rest of the valid positions sharing the remaining probability mass evenly
    (the file keeps that mass, as a log-sum-exp at the dump's temperature). Padding gets 0."""

    def __init__(self, path, fingerprint, temperature, device):
        from safetensors.torch import load
        data = Path(path).read_bytes()
        if str(path).endswith(".xz"):
            import lzma
            data = lzma.decompress(data)
        self.t = {k: v.to(device) for k, v in load(data).items()}
        n = int.from_bytes(data[:8], "little")  # safetensors: header length, JSON header
        meta = json.loads(data[8:8 + n]).get("__metadata__", {})
        if meta.get("fingerprint") != fingerprint:
            raise SystemExit(f"{path}: its features fingerprint {meta.get('fingerprint')} is not "
                             f"this run's {fingerprint}: same data, --max-train-examples, "
                             f"--max-length, --doc-stride and tokenizer are needed")
        self.temperature = float(meta["temperature"])
        if self.temperature != temperature:
            raise SystemExit(f"{path} keeps the tail mass at T={self.temperature}; run the "
                             f"student with --temperature {self.temperature}")
        self.meta = meta
        log(f"teacher top-k from {path}: k={meta.get('topk')}, teacher {meta.get('teacher')}, "
            f"T={self.temperature}, mean probability mass outside the top-k "
            f"{meta.get('tail_mass')} (spread evenly over the other positions)")

    def logp(self, idx, mask):
        return [expand_side(self.t[f"{side}_val"][idx], self.t[f"{side}_idx"][idx],
                            self.t[f"{side}_tail"][idx], mask, self.temperature)
                for side in ("start", "end")]


def compress_side(logits, mask, k, temperature):
    """(top-k logits, their positions, log-sum-exp at T of the other valid positions) per row.
    logits have padding at NEG; a row with fewer than k real tokens repeats its best entry."""
    v, i = logits.topk(k, dim=-1)
    short = v <= NEG / 2
    v = torch.where(short, v[:, :1].expand_as(v), v)
    i = torch.where(short, i[:, :1].expand_as(i), i)
    scaled = (logits / temperature).masked_fill(mask == 0, float("-inf"))
    tail = torch.logsumexp(scaled.scatter(1, i, float("-inf")), dim=-1)
    return v, i, tail


def expand_side(vals, pos, tail, mask, temperature):
    """Teacher log-probabilities at T from compress_side's output: exact on the top-k, the
    tail mass spread evenly over the other valid positions, -inf on padding."""
    vals, pos, tail = vals.float() / temperature, pos.long(), tail.float()[:, None]
    n_valid = mask.sum(-1, keepdim=True).float()
    n_top = torch.zeros(mask.shape, device=mask.device).scatter(1, pos, 1.0).sum(-1, keepdim=True)
    w = (tail - (n_valid - n_top).clamp(min=1).log()).expand(mask.shape)
    w = w.masked_fill(mask == 0, float("-inf")).scatter(1, pos, vals)
    return F.log_softmax(w, dim=-1)


def load_teacher(args, student_base, device):
    from transformers import AutoModelForQuestionAnswering
    cfg = json.loads((Path(args.teacher) / "adapter_config.json").read_text())
    tbase = common.resolve_base(args.teacher_base or cfg["base_model_name_or_path"])
    same = common.same_vocabulary(student_base, tbase)
    log(f"teacher {args.teacher} on {tbase}; same vocabulary as the student: {same}")
    if not same:
        raise SystemExit("teacher and student tokenize differently: their logits would not align")
    model = common.load_adapter_model(AutoModelForQuestionAnswering, tbase, args.teacher,
                                      **QA_KW)
    return model.to(device).eval(), str(tbase)


@torch.no_grad()
def predict(model, feats, args, device, bf16=False):
    starts, ends = [None] * len(feats), [None] * len(feats)
    for idx in common.eval_batches(feats, args.eval_batch_size):
        b = collate(feats, idx, device, with_labels=False)
        with common.autocast(device, bf16):
            s, e = span_logits(model, b)
        s, e = s.cpu().numpy(), e.cpu().numpy()
        for j, i in enumerate(idx):
            n = len(feats[i]["input_ids"])
            starts[i], ends[i] = s[j, :n], e[j, :n]
    return starts, ends


def evaluate(model, dev_examples, dev_feats, args, device):
    t0 = time.time()
    s, e = predict(model, dev_feats, args, device)
    preds = squad.postprocess(dev_examples, dev_feats, s, e, args.n_best, args.max_answer_length)
    m = squad.squad_v1_metrics(dev_examples, preds)
    m["eval_seconds"] = round(time.time() - t0, 1)
    log(f"dev: EM {m['exact_match']:.2f} F1 {m['f1']:.2f} on {m['questions']} questions "
        f"({len(dev_feats)} features, {m['eval_seconds']}s)")
    return m, preds, (s, e)


@torch.no_grad()
def dump_topk(model, feats, fingerprint, args, device, teacher_name):
    """Per training feature: the top-k start and end logits (fp16) with their positions
    (int16), and the log-sum-exp at --temperature of the other valid positions (fp16). A
    path ending in .xz is compressed."""
    from safetensors.torch import save
    k, temp = args.topk, args.temperature
    out = {f"{s}_{t}": [] for s in ("start", "end") for t in ("val", "idx", "tail")}
    tail_mass = 0.0
    for lo in range(0, len(feats), args.eval_batch_size):
        idx = list(range(lo, min(lo + args.eval_batch_size, len(feats))))
        b = collate(feats, idx, device, with_labels=False)
        with common.autocast(device, args.bf16):
            logits = span_logits(model, b)
        valid = b["attention_mask"] == 1
        for side, lg in zip(("start", "end"), logits):
            v, i, tail = compress_side(lg, b["attention_mask"], k, temp)
            allp = torch.logsumexp((lg / temp).masked_fill(~valid, float("-inf")), dim=-1)
            tail_mass += float((tail - allp).exp().sum()) / 2
            out[f"{side}_val"].append(v.half().cpu())
            out[f"{side}_idx"].append(i.to(torch.int16).cpu())
            out[f"{side}_tail"].append(tail.half().cpu())
    tensors = {key: torch.cat(v) for key, v in out.items()}
    meta = {"fingerprint": fingerprint, "topk": str(k), "teacher": teacher_name,
            "temperature": str(temp), "tail_mass": f"{tail_mass / len(feats):.4f}"}
    data = save(tensors, metadata=meta)
    path = Path(args.dump_teacher_topk)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xz":
        import lzma
        data = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    path.write_bytes(data)
    log(f"wrote {path}: top-{k} of {len(feats)} features, {path.stat().st_size:,} bytes; mean "
        f"probability mass outside the top-k at T={temp}: {meta['tail_mass']}")
    return meta


def main(argv=None):
    args = parse_args(argv)
    device = common.setup_runtime(args)
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from peft import TaskType

    base = common.resolve_base(args.base)
    tok = AutoTokenizer.from_pretrained(str(base))
    train_files, dev_file = squad_files(args)

    t0 = time.time()
    key = [common.file_sha256(base / n) for n in ("vocab.txt", "tokenizer.json",
                                                   "tokenizer_config.json")
           if (base / n).is_file()] + [args.max_length, args.doc_stride]
    dev_examples, dev_feats = common.cached(
        args.cache_dir, ["squad-dev", file_key(dev_file), args.max_eval_examples] + key,
        lambda: _examples_and_features([dev_file], args.max_eval_examples, tok, args, False))
    log(f"dev: {len(dev_examples)} questions -> {len(dev_feats)} features "
        f"({time.time() - t0:.1f}s)")
    need_train = not args.eval_only or args.dump_teacher_topk
    train_examples, train_feats, fingerprint = [], [], None
    if need_train:
        t0 = time.time()
        train_examples, train_feats = common.cached(
            args.cache_dir, ["squad-train", [file_key(f) for f in train_files],
                             args.max_train_examples] + key,
            lambda: _examples_and_features(train_files, args.max_train_examples, tok, args,
                                           True))
        fingerprint = features_fingerprint(train_feats, args)
        log(f"train: {len(train_examples)} questions -> {len(train_feats)} features "
            f"({time.time() - t0:.1f}s), fingerprint {fingerprint[:16]}")

    if args.eval_only:
        model = common.load_adapter_model(AutoModelForQuestionAnswering, base, args.eval_only,
                                          **QA_KW)
        model.to(device).eval()
        m, _, _ = evaluate(model, dev_examples, dev_feats, args, device)
        if args.dump_teacher_topk:
            dump_topk(model, train_feats, fingerprint, args, device, str(args.eval_only))
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "eval.json").write_text(json.dumps(
            {"adapter": args.eval_only, "base_dir": common.rel(base), "dev": m,
             "command": common.command_line(), "env": common.environment()}, indent=2) + "\n")
        return m

    model = common.build_lora_model(AutoModelForQuestionAnswering, base, args,
                                    task_type=TaskType.QUESTION_ANS,
                                    modules_to_save=["qa_outputs"], **QA_KW).to(device)
    trainable, total = common.parameter_counts(model)
    log(f"model: {base.name} + LoRA r={args.lora_r}: {trainable:,} trainable of {total:,}")

    teacher = topk = None
    teacher_name = None
    if args.teacher:
        teacher, teacher_name = load_teacher(args, base, device)
    elif args.teacher_topk:
        topk = TopkTeacher(args.teacher_topk, fingerprint, args.temperature, device)
        teacher_name = (f"{topk.meta.get('teacher')} (top-{topk.meta.get('topk')} file "
                        f"{Path(args.teacher_topk).name}, tail mass {topk.meta.get('tail_mass')})")
    distill = teacher is not None or topk is not None

    def loss_fn(m, b):
        s, e = span_logits(m, b)
        ce = (F.cross_entropy(s, b["start"]) + F.cross_entropy(e, b["end"])) / 2
        if not distill:
            return ce
        if teacher is not None:
            with torch.no_grad():
                ts, te = span_logits(teacher, b)
            ts = live_teacher_logp(ts, b["attention_mask"], args.temperature)
            te = live_teacher_logp(te, b["attention_mask"], args.temperature)
        else:
            ts, te = topk.logp(b["idx"], b["attention_mask"])
        kd = (kd_term(s, ts, args.temperature) + kd_term(e, te, args.temperature)) / 2
        return args.alpha * kd + (1 - args.alpha) * ce

    stats = common.train(model, len(train_feats),
                         lambda idx: collate(train_feats, idx, device, with_labels=True),
                         loss_fn, args, device, unit="features",
                         lengths=[len(f["input_ids"]) for f in train_feats])
    common.round_trainable_to(model, args.save_dtype)
    metrics, preds, logits = evaluate(model, dev_examples, dev_feats, args, device)
    files = common.save_adapter(model, args.output_dir, args.save_dtype)
    out = Path(args.output_dir)
    (out / "predictions.json").write_text(json.dumps(preds, indent=1, sort_keys=True) + "\n")
    files = {k: v for k, v in files.items() if k.startswith("adapter_")}
    dump_meta = None
    if args.dump_teacher_topk:
        dump_meta = dump_topk(model, train_feats, fingerprint, args, device, str(out))

    # Reload exactly as a user would (fresh base + PeftModel.from_pretrained) and re-evaluate.
    del model
    reloaded = common.load_adapter_model(AutoModelForQuestionAnswering, base, out,
                                         **QA_KW).to(device)
    reloaded.eval()
    m2, _, logits2 = evaluate(reloaded, dev_examples, dev_feats, args, device)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(logits[0] + logits[1],
                                                              logits2[0] + logits2[1]))
    reload_check = {"f1": m2["f1"], "exact_match": m2["exact_match"],
                    "max_abs_logit_diff": diff,
                    "same_metrics": m2["f1"] == metrics["f1"] and
                    m2["exact_match"] == metrics["exact_match"]}
    log(f"reload check: {reload_check}")

    base_note = common.base_note(base)
    record = {
        "task": "squad_v1.1", "base": args.base, "base_dir": common.rel(base),
        "base_note": base_note,
        "args": vars(args), "command": common.command_line(), "env": common.environment(),
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha, "dropout": args.lora_dropout,
                 "targets": common.LORA_TARGETS},
        "modules_to_save": ["qa_outputs"], "trainable_params": trainable,
        "train": dict(stats, questions=len(train_examples), features=len(train_feats)),
        "dev": metrics, "reload_check": reload_check, "files": files,
        "adapter": common.adapter_tensor_summary(out),
        "distillation": ({"teacher": teacher_name, "alpha": args.alpha,
                          "temperature": args.temperature,
                          "mode": "live" if teacher is not None else "top-k file"}
                         if distill else None),
        "teacher_topk_dump": dump_meta,
    }
    common.write_run_record(out, record)
    if not args.no_card:
        write_card(out, args, record)
    log(f"saved {out}: " + ", ".join(f"{k} {v:,} B" for k, v in files.items()))
    return metrics


def write_card(out, args, r):
    d = r["dev"]
    name = args.model_name or out.name
    metrics = [
        "| set | questions | EM | F1 |", "| --- | --- | --- | --- |",
        f"| SQuAD v1.1 dev (official file) | {d['questions']} | {d['exact_match']:.2f} | "
        f"{d['f1']:.2f} |",
        "",
        f"Decoding: max_length {args.max_length}, doc_stride {args.doc_stride}, n-best "
        f"{args.n_best}, max answer length {args.max_answer_length} (as transformers' "
        "run_qa/utils_qa); official SQuAD v1.1 normalization for EM/F1.",
    ]
    if r["distillation"]:
        dd = r["distillation"]
        metrics.append(f"Distilled from `{dd['teacher']}` ({dd['mode']}): alpha {dd['alpha']}, "
                       f"temperature {dd['temperature']}.")
    common.write_model_card(
        out, title=name, task="Extractive question answering (SQuAD v1.1)", base=args.base,
        data=["SQuAD v1.1 train, 87,599 questions (../shared/data/squad_v1.1, rebuilt from the "
              "SQuAD authors' explorer pages; answer_start is the first occurrence of the answer "
              "text), CC BY-SA 4.0" + (f"; first {args.max_train_examples} questions only"
                                       if args.max_train_examples else ""),
              "SQuAD v1.1 dev, 10,570 questions (official dev-v1.1.json)"
              + (f"; first {args.max_eval_examples} only" if args.max_eval_examples else "")],
        metrics_md=metrics, record=r,
        usage=["from transformers import AutoModelForQuestionAnswering",
               "from peft import PeftModel",
               "base = AutoModelForQuestionAnswering.from_pretrained(",
               f"    '{r['base_dir']}', num_labels=2)",
               f"model = PeftModel.from_pretrained(base, '{common.rel(out)}').eval()",
               "# merged weights for serving: model.merge_and_unload()"],
        notes=["Features are windows of the context (question first); the head predicts start "
               "and end logits per token; spans are decoded from the context tokens only."])


if __name__ == "__main__":
    main()
