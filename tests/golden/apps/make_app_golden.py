"""Golden outputs of the applications from Hugging Face pipelines on our own adapters.

    PYTHONPATH=var/tf4 HF_HUB_OFFLINE=1 .venv-ref/bin/python tests/golden/apps/make_app_golden.py [qa] [ner] [cls]

transformers 5 dropped the question-answering pipeline, so this runs with transformers 4.57.1
(`pip install --no-deps --target var/tf4 transformers==4.57.1 "tokenizers<0.23" requests
"huggingface_hub<1.0"`) on .venv-ref's torch and PEFT. Each model is the base from var/models plus
the committed adapter under models/ (PeftModel.from_pretrained, then merge_and_unload: PEFT
0.21.2's question-answering forward would drop token_type_ids), float32, eager attention.

qa.json   pipeline("question-answering") defaults (max_seq_len 384, doc_stride 128,
          max_answer_len 15, top_k 1) on 264 SQuAD v1.1 dev questions: every 40th question
          plus the 24 with the longest contexts (several windows each); answer, score, start, end.
ner.json  pipeline("token-classification", aggregation_strategy="simple") on 200 WNUT-17 test
          sentences (every 6th; words joined with spaces): entity_group, score, word, start, end.
cls.json  pipeline("text-classification", top_k=None) on 200 SST-2 dev sentences (every 4th):
          the score of each label.
"""

import json
import sys
import zipfile
from pathlib import Path

import torch
import transformers
from peft import PeftModel
from transformers import (AutoConfig, AutoModelForQuestionAnswering,
                          AutoModelForSequenceClassification, AutoModelForTokenClassification,
                          AutoTokenizer, pipeline)

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent
DATA = ROOT.parent / "shared" / "data"
MODELS = {"qa": ("minilm-squad-lora", AutoModelForQuestionAnswering),
          "ner": ("minilm-wnut17-lora", AutoModelForTokenClassification),
          "cls": ("minilm-sst2-lora", AutoModelForSequenceClassification)}


def load(task):
    name, auto = MODELS[task]
    adapter = ROOT / "models" / name
    base = ROOT / json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    config = AutoConfig.from_pretrained(str(adapter))
    model = auto.from_pretrained(str(base), config=config, dtype=torch.float32,
                                 attn_implementation="eager")
    model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    meta = {"model": f"models/{name}", "base": str(base.relative_to(ROOT)),
            "transformers": transformers.__version__, "torch": torch.__version__}
    return model, tokenizer, meta


def squad_questions():
    with zipfile.ZipFile(DATA / "squad_v1.1" / "dev-v1.1.json.zip") as z:
        data = json.loads(z.read("dev-v1.1.json"))["data"]
    qs = [(qa["id"], qa["question"], p["context"]) for a in data for p in a["paragraphs"]
          for qa in p["qas"]]
    picked = qs[::40][:240]
    longest = sorted(qs, key=lambda q: -len(q[2]))
    seen = {q[0] for q in picked}
    contexts = set()
    for q in longest:  # one question per long context
        if len(picked) >= 264:
            break
        if q[0] not in seen and q[2] not in contexts:
            picked.append(q)
            contexts.add(q[2])
    return picked


def make_qa():
    model, tok, meta = load("qa")
    qa = pipeline("question-answering", model=model, tokenizer=tok, device="cpu")
    items = []
    for qid, question, context in squad_questions():
        r = qa(question=question, context=context)
        windows = len(tok(question, context, truncation="only_second", max_length=384,
                          stride=128, return_overflowing_tokens=True)["input_ids"])
        items.append({"id": qid, "question": question, "context": context, "windows": windows,
                      "answer": r["answer"], "score": float(r["score"]), "start": r["start"],
                      "end": r["end"]})
    return {**meta, "pipeline": "question-answering, defaults", "items": items}


def make_ner():
    model, tok, meta = load("ner")
    ner = pipeline("token-classification", model=model, tokenizer=tok,
                   aggregation_strategy="simple", device="cpu")
    sents, words = [], []
    for line in (DATA / "wnut17" / "emerging.test.annotated").read_text().splitlines():
        if line.strip():
            words.append(line.split("\t")[0])
        elif words:
            sents.append(" ".join(words))
            words = []
    items = []
    for text in sents[::6][:200]:
        ents = [{"entity_group": e["entity_group"], "score": float(e["score"]), "word": e["word"],
                 "start": int(e["start"]), "end": int(e["end"])} for e in ner(text)]
        items.append({"text": text, "entities": ents})
    return {**meta, "pipeline": "token-classification, aggregation_strategy=simple",
            "items": items}


def make_cls():
    model, tok, meta = load("cls")
    clf = pipeline("text-classification", model=model, tokenizer=tok, top_k=None, device="cpu")
    lines = (DATA / "sst2" / "dev.tsv").read_text().splitlines()[1:]
    items = []
    for line in lines[::4][:200]:
        text = line.rsplit("\t", 1)[0]
        result = clf(text)
        if result and isinstance(result[0], list):  # some versions nest one input's list
            result = result[0]
        scores = {r["label"]: float(r["score"]) for r in result}
        items.append({"text": text, "scores": scores})
    return {**meta, "pipeline": "text-classification, top_k=None", "items": items}


def main():
    torch.set_num_threads(1)
    tasks = sys.argv[1:] or ["qa", "ner", "cls"]
    for task in tasks:
        out = {"qa": make_qa, "ner": make_ner, "cls": make_cls}[task]()
        path = OUT / f"{task}.json"
        path.write_text(json.dumps(out, indent=0, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(out['items'])} items")


if __name__ == "__main__":
    main()
