"""Exports BertModel directories to ONNX and fuses them for ONNX Runtime (run with .venv-ref).

    HF_HUB_OFFLINE=1 .venv-ref/bin/python bench/peers/export_onnx.py \
        var/models/all-MiniLM-L6-v2 var/models/bge-small-shape var/models/bert-base-shape

For each directory writes var/onnx/<name>.onnx (the plain export: inputs input_ids,
attention_mask, token_type_ids int64 [batch, seq]; output last_hidden_state) and
var/onnx/<name>.opt.onnx (after onnxruntime.transformers' BERT fusions: Attention,
SkipLayerNormalization, EmbedLayerNormalization, BiasGelu). The fused graph is what ORT's own
BERT benchmarks run, so it is the fair peer. Prints the fused-op counts and the largest
difference between the fused graph under ONNX Runtime and torch.
"""

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.transformers.optimizer import optimize_model
from transformers import BertModel

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def sample_inputs(vocab, batch=2, seq=16):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, vocab, (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    mask[1, seq // 2:] = 0  # one padded row, so the mask path is checked too
    return ids, mask, torch.zeros_like(ids)


class Encoder(torch.nn.Module):
    """Positional inputs, one tensor out: what the tracer needs. BertModel.forward's
    decorators reject positional calls under tracing and it returns a ModelOutput."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.model(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).last_hidden_state


def export(model_dir, out_dir):
    name = model_dir.name
    # Eager attention traces to the MatMul/Softmax pattern that ORT's Attention fusion matches;
    # sdpa would export as one opaque subgraph that stays unfused.
    model = BertModel.from_pretrained(model_dir, dtype=torch.float32,
                                      attn_implementation="eager").eval()
    config = model.config
    inputs = sample_inputs(config.vocab_size)
    raw, opt = out_dir / f"{name}.onnx", out_dir / f"{name}.opt.onnx"
    # Reference first: the TorchScript exporter leaves the model in training mode (dropout on).
    with torch.inference_mode():
        ref = Encoder(model)(*inputs).numpy()
    dynamic = {n: {0: "batch", 1: "seq"} for n in (*INPUTS, "last_hidden_state")}
    # The TorchScript exporter (dynamo=False) gives the graph shape ORT's fusions were written
    # for; the dynamo exporter's graph fuses less.
    torch.onnx.export(Encoder(model), inputs, raw, input_names=list(INPUTS),
                      output_names=["last_hidden_state"], dynamic_axes=dynamic,
                      opset_version=OPSET, dynamo=False)
    fused = optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=1)
    fused.save_model_to_file(str(opt))
    counts = {op: n for op, n in fused.get_fused_operator_statistics().items() if n}
    print(f"{name}: fused ops {counts}")

    session = ort.InferenceSession(str(opt), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: t.numpy() for n, t in zip(INPUTS, inputs)})[0]
    # Padded positions are garbage by design in both; compare only real tokens.
    keep = inputs[1].numpy().astype(bool)
    diff = float(np.abs(got[keep] - ref[keep]).max())
    print(f"{name}: {raw} {opt}  max|ort(opt) - torch| = {diff:.2e}")
    assert diff < 1e-3, f"{name}: fused ONNX graph disagrees with torch"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "var/onnx")
    args = parser.parse_args()
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    for model_dir in args.model_dirs:
        export(model_dir.resolve(), args.out)


if __name__ == "__main__":
    main()
