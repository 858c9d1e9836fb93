"""Writes kiln's LoRA adapter golden fixtures with PEFT (run with .venv-ref, after make_golden.py).

    HF_HUB_OFFLINE=1 .venv-ref/bin/python tests/golden/models/make_adapters.py

adapters/<name>/ : a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, as
`save_pretrained` writes them) on one of the tiny random checkpoints, its base named relative to
the adapter directory. LoRA A and B are drawn from N(0, 0.1) and the trained head and biases
from N(0, 0.2) (PEFT starts B at zero, which would hide a wrong merge). golden.safetensors holds, for the tiny inputs of
make_golden.py (lengths 3, 11, 24, 40), the outputs of PeftModel.from_pretrained(base, adapter)
run UNMERGED (the wrapped model called directly), so kiln's merge is checked against PEFT's
own forward:
    `input_ids.{i}`, `token_type_ids.{i}`   as in tiny/
    `last_hidden_state.{i}`  F32 [len, hidden]   the adapted encoder
    `logits.{i}`             F32 [num_labels] or [len, num_labels]
    `start_logits.{i}`, `end_logits.{i}`   F32 [len]
Cases: lora_bert_qa (QUESTION_ANS, no config.json: kiln names the class), lora_bert_seq_cls
(SEQ_CLS, pooler in modules_to_save, weights saved in float16, the task's config.json with
id2label saved next to the adapter), lora_distilbert_token_cls (TOKEN_CLS, rsLoRA, bias
"lora_only": trained biases replace the base's; labels LABEL_i), lora_roberta_embed
(FEATURE_EXTRACTION on the bare encoder: no head, no "roberta." in the names).
"""

import json
import os
import re
import shutil
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import save_file
from transformers import (AutoModel, AutoModelForQuestionAnswering,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification)

OUT = Path(__file__).resolve().parent
TINY = OUT / "tiny"
LENGTHS = (3, 11, 24, 40)
STD = 0.2
LORA_STD = 0.1  # with alpha/r = 2 (4 for rsLoRA) the update is of the weights' own size
BERT_TARGETS = ["query", "key", "value", "attention.output.dense", "intermediate.dense",
                "output.dense"]
DISTIL_TARGETS = ["q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"]

# name -> base, auto class, task type, extra LoraConfig, model kwargs, options, seed
CASES = {
    "lora_bert_qa": ("bert", AutoModelForQuestionAnswering, "QUESTION_ANS",
                     dict(target_modules=BERT_TARGETS), {}, {}, 21),
    "lora_bert_seq_cls": ("bert", AutoModelForSequenceClassification, "SEQ_CLS",
                          dict(target_modules=BERT_TARGETS, modules_to_save=["pooler"]),
                          dict(num_labels=3, id2label={0: "negative", 1: "neutral",
                                                       2: "positive"}),
                          {"fp16": True, "config": True}, 22),
    "lora_distilbert_token_cls": ("distilbert", AutoModelForTokenClassification, "TOKEN_CLS",
                                  dict(target_modules=DISTIL_TARGETS, use_rslora=True,
                                       bias="lora_only"),
                                  dict(num_labels=5), {}, 23),
    "lora_roberta_embed": ("roberta", AutoModel, "FEATURE_EXTRACTION",
                           dict(target_modules=BERT_TARGETS[:3]), {}, {}, 24),
}


def inputs_of(base):
    g = json.loads((TINY / base / "golden.json").read_text())
    from safetensors.torch import load_file
    t = load_file(str(TINY / base / "golden.safetensors"))
    out = []
    for i in range(len(g["lengths"])):
        out.append((t[f"input_ids.{i}"].long(), t.get(f"token_type_ids.{i}")))
    return out


def load_base(auto_cls, base, seed, kwargs):
    torch.manual_seed(seed)
    return auto_cls.from_pretrained(str(TINY / base), dtype=torch.float32,
                                    attn_implementation="eager", **kwargs).eval()


def make(name, base, auto_cls, task_type, lora_kw, model_kw, opts, seed):
    path = OUT / "adapters" / name
    shutil.rmtree(path, ignore_errors=True)
    model = load_base(auto_cls, base, seed, model_kw)
    model = get_peft_model(model, LoraConfig(task_type=task_type, r=4, lora_alpha=8,
                                             lora_dropout=0.0, **lora_kw))
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.requires_grad:  # LoRA A/B, trained biases, the head and modules_to_save
                std = LORA_STD if ".lora_" in n else STD
                p.copy_(std * torch.randn_like(p) + (1.0 if "LayerNorm" in n else 0.0))
    state = None
    if opts.get("fp16"):
        state = {k: v.half() for k, v in model.state_dict().items()}
    model.save_pretrained(str(path), safe_serialization=True, state_dict=state)
    cfg = json.loads((path / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = f"../../tiny/{base}"
    (path / "adapter_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    if opts.get("config"):  # as a trainer saving the task model's config does
        config = model.get_base_model().config
        config.architectures = [type(model.get_base_model()).__name__]
        config.save_pretrained(str(path))
    for f in path.iterdir():  # PEFT's README.md template is noise here
        if f.name == "README.md":
            f.unlink()
    # The reference: a fresh base + the saved adapter, unmerged, as a user of PEFT runs it.
    ref = PeftModel.from_pretrained(load_base(auto_cls, base, seed, model_kw), str(path)).eval()
    encoder = ref.get_base_model()
    encoder = getattr(encoder, "base_model", encoder) if task_type != "FEATURE_EXTRACTION" \
        else encoder
    tensors = {}
    with torch.inference_mode():
        for i, (ids, types) in enumerate(inputs_of(base)):
            kw = {"input_ids": ids[None]}
            if types is not None:
                kw["token_type_ids"] = types[None].long()
                tensors[f"token_type_ids.{i}"] = types.int()
            tensors[f"input_ids.{i}"] = ids.int()
            tensors[f"last_hidden_state.{i}"] = encoder(**kw).last_hidden_state[0]
            if task_type == "FEATURE_EXTRACTION":
                continue
            # PEFT 0.21.2's QA forward drops token_type_ids; the wrapped model (LoRA layers and
            # head injected in place) is the same forward with them.
            out = ref.get_base_model()(**kw)
            if hasattr(out, "start_logits"):
                tensors[f"start_logits.{i}"] = out.start_logits[0]
                tensors[f"end_logits.{i}"] = out.end_logits[0]
            else:
                tensors[f"logits.{i}"] = out.logits[0]
    for key in tensors:
        pattern = re.sub(r"[.][0-9]+$", ".{i}", key)
        assert f"`{pattern}`" in __doc__ or pattern.startswith(
            ("input_ids", "token_type_ids", "start_logits", "end_logits")), key
    save_file({k: v.detach().contiguous() for k, v in tensors.items()},
              str(path / "golden.safetensors"))
    meta = {"base": f"tiny/{base}", "task_type": task_type, "seed": seed, "init": f"lora N(0,{LORA_STD}), head N(0,{STD})",
            "lengths": list(LENGTHS), "reference": "PeftModel.from_pretrained, unmerged",
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "peft": peft.__version__}}
    (path / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"adapters/{name}: {task_type} on tiny/{base}")


def main():
    torch.set_num_threads(1)
    for name, spec in CASES.items():
        make(name, *spec)


if __name__ == "__main__":
    main()
