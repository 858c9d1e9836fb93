"""The Hugging Face reference of the applications' accuracy: transformers pipelines on the same
checkpoint kiln serves (base from var/models + an adapter from models/, merged with PEFT),
float32 on the CPU, over the full evaluation sets of app_data.py.

    PYTHONPATH=var/tf4 HF_HUB_OFFLINE=1 .venv-ref/bin/python bench/apps/hf_reference.py \
        qa:models/minilm-squad-lora ner:models/minilm-wnut17-lora cls:models/minilm-sst2-lora

(transformers 4.57.1 from var/tf4: see tests/golden/apps/make_app_golden.py). Writes
var/apps_reference/<adapter>.json: the metric and every prediction, which accuracy.py prints
next to kiln's.
"""
import json
import os
import sys
import time
from pathlib import Path

import torch
import transformers
from peft import PeftModel
from transformers import (AutoConfig, AutoModelForQuestionAnswering,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer, pipeline)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import app_data  # noqa: E402

ROOT = app_data.ROOT
OUT = ROOT / "var" / "apps_reference"
AUTO = {"qa": AutoModelForQuestionAnswering, "ner": AutoModelForTokenClassification,
        "cls": AutoModelForSequenceClassification}


def load(task, adapter):
    adapter = ROOT / adapter
    base = ROOT / json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    model = AUTO[task].from_pretrained(str(base), config=AutoConfig.from_pretrained(str(adapter)),
                                       dtype=torch.float32, attn_implementation="eager")
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    return model, AutoTokenizer.from_pretrained(str(base))


def run(task, adapter):
    model, tok = load(task, adapter)
    t0 = time.time()
    if task == "qa":
        qa = pipeline("question-answering", model=model, tokenizer=tok, device="cpu")
        examples = app_data.squad_dev()
        preds = {ex["id"]: qa(question=ex["question"], context=ex["context"])["answer"]
                 for ex in examples}
        metric = app_data.squad_scores(examples, preds)
    elif task == "cls":
        clf = pipeline("text-classification", model=model, tokenizer=tok, device="cpu")
        data = app_data.sst2_dev()
        preds = [clf(t)[0]["label"] for t, _ in data]
        names = model.config.id2label
        metric = {"accuracy": 100 * sum(p == names[y] for p, (_, y) in zip(preds, data)) / len(data)}
    else:
        ner = pipeline("token-classification", model=model, tokenizer=tok,
                       aggregation_strategy="simple", device="cpu")
        data = app_data.wnut17_test()
        preds = [sorted((e["entity_group"], int(e["start"]), int(e["end"])) for e in ner(t))
                 for t, _ in data]
        metric = app_data.entity_f1([g for _, g in data], [set(map(tuple, p)) for p in preds])
    seconds = time.time() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    out = {"task": task, "adapter": adapter, "metric": metric, "seconds": seconds,
           "transformers": transformers.__version__, "torch": torch.__version__,
           "predictions": preds}
    (OUT / (Path(adapter).name + ".json")).write_text(json.dumps(out) + "\n")
    print(f"{adapter}: {metric} ({seconds:.0f} s)")


def main():
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    for spec in sys.argv[1:]:
        task, adapter = spec.split(":", 1)
        run(task, adapter)


if __name__ == "__main__":
    main()
