"""Writes kiln's model golden fixtures from Hugging Face transformers (run with .venv-ref).

    HF_HUB_OFFLINE=1 .venv-ref/bin/python tests/golden/models/make_golden.py

Every fixture is a .safetensors file (read by kiln's own safetensors reader) plus a JSON
sidecar with the metadata. Outputs are deterministic: fixed seeds, float32, eager attention,
one thread. Per-item tensors carry the item index as a suffix: `{i}` below is 0, 1, 2, ...

minilm_l6.safetensors (+ minilm_l6.json): all-MiniLM-L6-v2 (var/models/all-MiniLM-L6-v2),
24 real texts (12 SST-2 dev sentences, 10 SQuAD v1.1 dev questions, one SQuAD context of
~200 tokens, one SQuAD context longer than 256 tokens that the tokenizer truncates), each
run alone (no padding):
    `input_ids.{i}`          I32 [len]       HF tokenizer, truncation to max_length 256
    `token_type_ids.{i}`     I32 [len]       all 0 (single texts)
    `last_hidden_state.{i}`  F32 [len, 384]  transformers BertModel
    `embedding.{i}`          F32 [384]       SentenceTransformer.encode (mean pool, normalize);
                                             checked against mean pool + L2 of last_hidden_state

tiny/<name>/ : random-weight HF checkpoints (config.json + model.safetensors), every weight
drawn from N(0, 0.2) and every LayerNorm weight from 1 + N(0, 0.2), so that a wrong op
shows up as a large error. Each holds golden.safetensors (+ golden.json) for 4 seeded random
inputs of lengths 3, 11, 24, 40: ids uniform in [5, vocab) with the first id 2 (BERT,
DistilBERT) or 0 (RoBERTa's <s>):
    `input_ids.{i}`          I32 [len]
    `token_type_ids.{i}`     I32 [len]       BERT only: first len//2 tokens 0, the rest 1
                                             (DistilBERT has none; RoBERTa's are all 0, not stored)
    `last_hidden_state.{i}`  F32 [len, hidden]   the base encoder (model.base_model)
    `logits.{i}`             F32 [num_labels]       *ForSequenceClassification
                             F32 [len, num_labels]  *ForTokenClassification
    `start_logits.{i}`       F32 [len]       *ForQuestionAnswering
    `end_logits.{i}`         F32 [len]       *ForQuestionAnswering
    `embedding.{i}`          F32 [hidden]    bert_deep_st: SentenceTransformer CLS pool + normalize
The _f16 / _bf16 checkpoints hold bert_seq_cls's weights rounded to that dtype; their
goldens are computed with those rounded weights upcast to float32.
"""

import copy
import hashlib
import json
import os
import random
import re
import shutil
import zipfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import sentence_transformers
import torch
import transformers
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer
from transformers import (AutoTokenizer, BertConfig, BertForQuestionAnswering,
                          BertForSequenceClassification, BertForTokenClassification, BertModel,
                          DistilBertConfig, DistilBertForQuestionAnswering,
                          DistilBertForSequenceClassification, DistilBertForTokenClassification,
                          DistilBertModel, RobertaConfig, RobertaForQuestionAnswering,
                          RobertaForSequenceClassification, RobertaForTokenClassification,
                          RobertaModel, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification)

ROOT = Path(__file__).resolve().parents[3]
OUT = Path(__file__).resolve().parent
DATA = Path("/work/shared/data")
MINILM = ROOT / "var/models/all-MiniLM-L6-v2"
MAX_LEN = 256  # sentence_bert_config.json max_seq_length of MiniLM
TINY_LENGTHS = (3, 11, 24, 40)
INIT_STD = 0.2

SEQ_LABELS = {0: "negative", 1: "neutral", 2: "positive"}
TOKEN_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}

BERT = dict(vocab_size=512, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, max_position_embeddings=128)
DISTILBERT = dict(vocab_size=512, dim=64, n_layers=2, n_heads=4, hidden_dim=128,
                  max_position_embeddings=128)
# Like roberta-base (514 = 512 + 2): positions start at padding_idx + 1 = 2, so 130 rows
# leave room for 128 tokens. eps 1e-5 as in real RoBERTa checkpoints.
ROBERTA = dict(BERT, max_position_embeddings=130, pad_token_id=1, bos_token_id=0,
               eos_token_id=2, type_vocab_size=1, layer_norm_eps=1e-5)
SEQ = dict(num_labels=3, id2label=SEQ_LABELS, label2id={v: k for k, v in SEQ_LABELS.items()})
TOK = dict(num_labels=5, id2label=TOKEN_LABELS, label2id={v: k for k, v in TOKEN_LABELS.items()})

# name -> (model class, config class, config kwargs, seed, first input id, has token types)
TINY = {
    "bert": (BertModel, BertConfig, BERT, 1, 2, True),
    "bert_seq_cls": (BertForSequenceClassification, BertConfig, {**BERT, **SEQ}, 2, 2, True),
    "bert_token_cls": (BertForTokenClassification, BertConfig, {**BERT, **TOK}, 3, 2, True),
    "bert_qa": (BertForQuestionAnswering, BertConfig, BERT, 4, 2, True),
    "bert_gelu_new": (BertModel, BertConfig, {**BERT, "hidden_act": "gelu_new"}, 5, 2, True),
    "distilbert": (DistilBertModel, DistilBertConfig, DISTILBERT, 6, 2, False),
    "distilbert_seq_cls": (DistilBertForSequenceClassification, DistilBertConfig,
                           {**DISTILBERT, **SEQ}, 7, 2, False),
    "distilbert_token_cls": (DistilBertForTokenClassification, DistilBertConfig,
                             {**DISTILBERT, **TOK}, 8, 2, False),
    "distilbert_qa": (DistilBertForQuestionAnswering, DistilBertConfig, DISTILBERT, 9, 2, False),
    "roberta": (RobertaModel, RobertaConfig, ROBERTA, 10, 0, False),
    "roberta_seq_cls": (RobertaForSequenceClassification, RobertaConfig, {**ROBERTA, **SEQ},
                        11, 0, False),
    "roberta_token_cls": (RobertaForTokenClassification, RobertaConfig, {**ROBERTA, **TOK},
                          12, 0, False),
    "roberta_qa": (RobertaForQuestionAnswering, RobertaConfig, ROBERTA, 13, 0, False),
    # model_type "xlm-roberta": RoBERTa's layout under another name and prefix-free config.
    "xlm_roberta_seq_cls": (XLMRobertaForSequenceClassification, XLMRobertaConfig,
                            {**ROBERTA, **SEQ}, 15, 0, False),
    # bge-small's depth (12 layers) at a tiny width, with sentence-transformers CLS pooling.
    "bert_deep_st": (BertModel, BertConfig,
                     {**BERT, "num_hidden_layers": 12, "intermediate_size": 256}, 14, 2, True),
}
LOW_PRECISION = {"bert_seq_cls_f16": torch.float16, "bert_seq_cls_bf16": torch.bfloat16}


def versions():
    return {"torch": torch.__version__, "transformers": transformers.__version__,
            "sentence_transformers": sentence_transformers.__version__}


def write(path, tensors, meta):
    """Saves tensors and the JSON sidecar, and checks every key is documented above."""
    for key in tensors:
        pattern = re.sub(r"\.\d+$", ".{i}", key)
        assert f"`{pattern}`" in __doc__, f"{key}: document `{pattern}` in the docstring"
    save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(path))
    path.with_suffix(".json").write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n")


def load_eager(path, cls, **config_overrides):
    # Reloading what was saved also proves the checkpoint round-trips; from_pretrained
    # upcasts F16/BF16 weights to the requested float32.
    return cls.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                               **config_overrides).eval()


# ---------------------------------------------------------------- MiniLM, real weights

def real_texts(tokenizer):
    """12 SST-2 sentences, 10 SQuAD questions, a ~200-token and a >256-token SQuAD context."""
    rng = random.Random(0)
    rows = (DATA / "sst2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sst2 = [r.split("\t")[0].strip() for r in rng.sample(rows, 12)]
    squad = json.load(zipfile.ZipFile(DATA / "squad_v1.1/dev-v1.1.json.zip").open("dev-v1.1.json"))
    paragraphs = [p for a in squad["data"] for p in a["paragraphs"]]
    questions = [q["question"] for q in rng.sample([q for p in paragraphs for q in p["qas"]], 10)]
    n_tokens = lambda t: len(tokenizer(t)["input_ids"])
    medium = next(p["context"] for p in paragraphs if 195 <= n_tokens(p["context"]) <= 205)
    long = next(p["context"] for p in paragraphs if n_tokens(p["context"]) > 300)
    sources = ["sst2/dev.tsv"] * 12 + ["squad_v1.1 dev question"] * 10 + \
              ["squad_v1.1 dev context (~200 tokens)", "squad_v1.1 dev context (truncated)"]
    return sst2 + questions + [medium, long], sources


def make_minilm():
    tokenizer = AutoTokenizer.from_pretrained(MINILM)
    texts, sources = real_texts(tokenizer)
    model = load_eager(MINILM, BertModel)
    st = SentenceTransformer(str(MINILM), device="cpu")
    assert st.max_seq_length == MAX_LEN
    st_emb = st.encode(texts, convert_to_tensor=True, batch_size=8)
    tensors, lengths, max_diff = {}, [], 0.0
    with torch.inference_mode():
        for i, text in enumerate(texts):
            enc = tokenizer(text, truncation=True, max_length=MAX_LEN, return_tensors="pt")
            hidden = model(input_ids=enc["input_ids"], token_type_ids=enc["token_type_ids"],
                           attention_mask=enc["attention_mask"]).last_hidden_state[0]
            pooled = torch.nn.functional.normalize(hidden.mean(0), dim=0)
            max_diff = max(max_diff, (pooled - st_emb[i]).abs().max().item())
            tensors[f"input_ids.{i}"] = enc["input_ids"][0].int()
            tensors[f"token_type_ids.{i}"] = enc["token_type_ids"][0].int()
            tensors[f"last_hidden_state.{i}"] = hidden
            tensors[f"embedding.{i}"] = st_emb[i].float()
            lengths.append(len(hidden))
    # ST pads its batches and uses its own attention kernel; 1e-5 still rules out a
    # different pooling or a missing normalization.
    assert max_diff < 1e-5, f"SentenceTransformer differs from mean pool + L2: {max_diff}"
    assert lengths[-1] == MAX_LEN and 190 <= lengths[-2] <= 210
    weights = (MINILM / "model.safetensors").read_bytes()
    write(OUT / "minilm_l6.safetensors", tensors, {
        "model_dir": "var/models/all-MiniLM-L6-v2",
        "model_sha256": hashlib.sha256(weights).hexdigest(),
        "max_length": MAX_LEN, "pooling": "mean", "normalize": True,
        "attn_implementation": "eager", "dtype": "float32",
        "st_vs_pooled_max_abs_diff": max_diff, "versions": versions(),
        "texts": texts, "sources": sources, "lengths": lengths})
    print(f"minilm_l6: {len(texts)} texts, lengths {min(lengths)}..{max(lengths)}, "
          f"ST vs pooled max diff {max_diff:.2e}")


# ---------------------------------------------------------------- tiny random checkpoints

def perturb(model, seed):
    """Large random weights (HF's std is 0.02): errors grow with them instead of hiding."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            for name, p in module.named_parameters(recurse=False):
                base = 1.0 if isinstance(module, torch.nn.LayerNorm) and name == "weight" else 0.0
                p.copy_(base + INIT_STD * torch.randn_like(p))


def tiny_inputs(seed, vocab, first_id, token_types):
    g = torch.Generator().manual_seed(1000 + seed)
    inputs = []
    for n in TINY_LENGTHS:
        ids = torch.randint(5, vocab, (n,), generator=g)
        ids[0] = first_id
        types = (torch.arange(n) >= n // 2).long() if token_types else None
        inputs.append((ids, types))
    return inputs


def golden_outputs(model, inputs, st=None):
    tensors = {}
    with torch.inference_mode():
        for i, (ids, types) in enumerate(inputs):
            kw = {"input_ids": ids[None]}
            if types is not None:
                kw["token_type_ids"] = types[None]
                tensors[f"token_type_ids.{i}"] = types.int()
            tensors[f"input_ids.{i}"] = ids.int()
            tensors[f"last_hidden_state.{i}"] = model.base_model(**kw).last_hidden_state[0]
            out = model(**kw)
            if hasattr(out, "logits"):
                tensors[f"logits.{i}"] = out.logits[0]
            if hasattr(out, "start_logits"):
                tensors[f"start_logits.{i}"] = out.start_logits[0]
                tensors[f"end_logits.{i}"] = out.end_logits[0]
            if st is not None:
                features = {**kw, "attention_mask": torch.ones_like(kw["input_ids"])}
                tensors[f"embedding.{i}"] = st(features)["sentence_embedding"][0]
                cls = torch.nn.functional.normalize(tensors[f"last_hidden_state.{i}"][0], dim=0)
                assert torch.allclose(tensors[f"embedding.{i}"], cls, atol=1e-6)
    return tensors


def write_st_config(path, hidden):
    """sentence-transformers files, written by hand in the classic (bge-small) format."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]
    pooling = {"word_embedding_dimension": hidden, "pooling_mode_cls_token": True,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False}
    (path / "1_Pooling").mkdir()
    (path / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (path / "1_Pooling/config.json").write_text(json.dumps(pooling, indent=2) + "\n")
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False}, indent=2) + "\n")


def write_golden(path, model, inputs, meta, st=None):
    tensors = golden_outputs(model, inputs, st)
    meta = {**meta, "lengths": list(TINY_LENGTHS), "attn_implementation": "eager",
            "dtype_of_outputs": "float32", "versions": versions()}
    write(path / "golden.safetensors", tensors, meta)


def make_tiny():
    tiny = OUT / "tiny"
    shutil.rmtree(tiny, ignore_errors=True)
    for name, (cls, config_cls, kwargs, seed, first_id, token_types) in TINY.items():
        path = tiny / name
        model = cls(config_cls(**kwargs))
        perturb(model, seed)  # redraws every parameter, so construction's own init is moot
        model.save_pretrained(path)  # transformers 5 always writes model.safetensors
        st, pooling = None, {}
        if name == "bert_deep_st":
            write_st_config(path, model.config.hidden_size)
            st = SentenceTransformer(str(path), device="cpu").eval()
            pooling = {"pooling": "cls", "normalize": True}
        model = load_eager(path, cls)
        inputs = tiny_inputs(seed, model.config.vocab_size, first_id, token_types)
        meta = {"class": cls.__name__, "seed": seed, "input_seed": 1000 + seed,
                "first_id": first_id, **pooling,
                "init": f"N(0,{INIT_STD}); LayerNorm weight 1+N(0,{INIT_STD})"}
        if name == "bert_gelu_new":
            # The fixture must tell the tanh approximation from exact erf GELU.
            exact = load_eager(path, cls, hidden_act="gelu")
            with torch.inference_mode():
                diff = max((model(ids[None], token_type_ids=types[None]).last_hidden_state -
                            exact(ids[None], token_type_ids=types[None]).last_hidden_state)
                           .abs().max().item() for ids, types in inputs)
            assert diff > 1e-4, f"gelu_new vs gelu only {diff}: float32 noise is ~1e-6"
            meta["max_abs_diff_vs_exact_gelu"] = diff
        write_golden(path, model, inputs, meta, st)
        print(f"tiny/{name}: {cls.__name__}")
        if name == "bert_seq_cls":
            for low_name, dtype in LOW_PRECISION.items():
                low_path = tiny / low_name
                copy.deepcopy(model).to(dtype).save_pretrained(low_path)
                low = load_eager(low_path, cls)
                diff = (low.classifier.weight - model.classifier.weight).abs().max().item()
                assert diff > 0, "rounding to low precision should change the weights"
                write_golden(low_path, low, inputs,
                             {**meta, "stored_dtype": str(dtype).removeprefix("torch."),
                              "reference": "stored weights upcast to float32"})
                print(f"tiny/{low_name}: {cls.__name__} stored as {dtype}")


def main():
    torch.set_num_threads(1)  # small models; leaves the other core to whoever shares the box
    make_minilm()
    make_tiny()


if __name__ == "__main__":
    main()
