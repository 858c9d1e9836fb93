"""ONNX Runtime INT8 peer: times the fused graph from export_onnx.py quantized by ORT (.venv).

    .venv/bin/python bench/peers/ort_int8_bench.py --model all-MiniLM-L6-v2 --batch 1,8,32 --seq 128

Quantizes var/onnx/<model>.opt.onnx with onnxruntime.quantization (cached under var/int8/) and
prints one JSON line per variant and (batch, seq) workload, timed as ort_bench.py times FP32:
  dynamic     quantize_dynamic: QInt8 weights, one scale per tensor; activations quantized at
              run time (one scale per tensor per run)
  dynamic-pc  the same with one weight scale per output channel
  qdq         quantize_static in the QDQ format: per-channel QInt8 weights, QUInt8 activations
              (U8S8, ORT's recommendation for x86) with ranges calibrated on SST-2 train texts

--prepare quantizes and exits. The qdq variant needs sympy (ORT's symbolic shape inference, for
the types of the fused ops' outputs), which .venv lacks and .venv-ref has: quantize it once with
.venv-ref/bin/python (same onnxruntime), after which .venv reads the cached model.
"""

from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_dynamic, quantize_static)
from tokenizers import Tokenizer

from ort_bench import open_session
from peer_common import measure, parse_args, report, workloads

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ["dynamic", "dynamic-pc", "qdq"]
CALIBRATION = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
# ONNX shape inference gives the fused contrib ops (Attention, SkipLayerNormalization, ...) no
# output types, and quantize_dynamic stops at the first MatMul that reads one unless told the
# default: every activation of these graphs is FP32.
TYPES = {"DefaultTensorType": onnx.TensorProto.FLOAT}


def add_quant_args(p):
    """The options of the quantized models (ort_int8_accuracy.py takes them too)."""
    p.add_argument("--variant", default="all", choices=VARIANTS + ["all"], help="which INT8 model")
    p.add_argument("--calibration", default="minmax", choices=list(CALIBRATION),
                   help="qdq: activation ranges from min/max, a histogram percentile or entropy")
    p.add_argument("--calib-samples", type=int, default=256,
                   help="qdq: calibration texts (the first of var/data/calib_sst2.txt)")
    p.add_argument("--calib-seq", type=int, default=128,
                   help="qdq: calibration texts truncated and padded to this many tokens")
    p.add_argument("--reduce-range", action="store_true",
                   help="qdq: 7-bit weights, against int16 saturation on x86 without VNNI")


def variants(args):
    return VARIANTS if args.variant == "all" else [args.variant]


def qdq_tag(args):
    """What sets a QDQ model apart: the peer name and cache file carry it."""
    tag = "qdq" if args.calibration == "minmax" else f"qdq-{args.calibration}"
    return tag + ("-rr" if args.reduce_range else "")


def peer_name(variant, args):
    return "onnxruntime-int8-" + (qdq_tag(args) if variant == "qdq" else variant)


class CalibrationTexts(CalibrationDataReader):
    """The first `samples` lines of var/data/calib_sst2.txt (the texts `kiln build` calibrates
    on), tokenized with the model's tokenizer and padded to `seq` tokens, in batches of 32."""

    def __init__(self, model, samples, seq, input_names):
        tok = Tokenizer.from_file(str(ROOT / "var/models" / model / "tokenizer.json"))
        pad = tok.padding or {}
        tok.enable_truncation(seq)
        tok.enable_padding(length=seq, pad_id=pad.get("pad_id", 0),
                           pad_token=pad.get("pad_token", "[PAD]"))
        lines = (ROOT / "var/data/calib_sst2.txt").read_text().splitlines()
        texts = [t for t in lines if t.strip()][:samples]
        encodings = tok.encode_batch(texts)
        inputs = {"input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
                  "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
                  "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64)}
        inputs = {k: v for k, v in inputs.items() if k in input_names}
        self.batches = iter([{k: v[i:i + 32] for k, v in inputs.items()}
                             for i in range(0, len(texts), 32)])

    def get_next(self):
        return next(self.batches, None)


def quantize_qdq(model, src, dst, args):
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference
    except ImportError as e:
        raise SystemExit(f"the qdq variant needs sympy ({e}); quantize it once with "
                         ".venv-ref/bin/python bench/peers/ort_int8_bench.py --model "
                         f"{model} --variant qdq --prepare") from None
    # Without the activations' types the quantizer leaves them FP32 (weight-only DequantizeLinear,
    # which ORT runs as MatMulNBits): symbolic inference knows the contrib ops.
    graph = SymbolicShapeInference.infer_shapes(onnx.load(str(src)), auto_merge=True)
    names = {i.name for i in graph.graph.input}
    reader = CalibrationTexts(model, args.calib_samples, args.calib_seq, names)
    # MatMuls only: ORT's fused Attention has no QDQ form (its QKV projection stays FP32, 1/4 of
    # the GEMM work), and a quantized EmbedLayerNormalization would dequantize the whole word
    # table on every run. MatMul outputs stay FP32, as their consumers (SkipLayerNormalization,
    # BiasGelu) are FP32 ops: ORT then runs MatMulIntegerToFloat rather than QLinearMatMul
    # and a DequantizeLinear (about as fast, and embedding cosine 0.990 rather than 0.934 on 64
    # SST-2 sentences of MiniLM). The residual stream still passes through the FFN input's
    # QuantizeLinear / DequantizeLinear pair: QDQ rewires every consumer of a quantized tensor.
    quantize_static(graph, str(dst), reader, quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul"], per_channel=True,
                    reduce_range=args.reduce_range, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CALIBRATION[args.calibration],
                    extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]})


def quantized_model(model, variant, args):
    """Path of `model`'s INT8 graph, quantizing var/onnx/<model>.opt.onnx the first time."""
    src = ROOT / "var/onnx" / f"{model}.opt.onnx"
    if variant == "qdq":
        name = f"{model}.{qdq_tag(args)}-{args.calib_samples}x{args.calib_seq}.onnx"
    else:
        name = f"{model}.{variant}.onnx"
    path = ROOT / "var/int8" / name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("tmp-" + name)  # renamed when complete: no half-written cache
    if variant == "qdq":
        quantize_qdq(model, src, tmp, args)
    else:
        # ORT's default op set: Attention and MatMul weights and the embedding tables.
        quantize_dynamic(str(src), str(tmp), per_channel=variant == "dynamic-pc",
                         weight_type=QuantType.QInt8, extra_options=TYPES)
    tmp.rename(path)
    return path


def bench_args(p):
    add_quant_args(p)
    p.add_argument("--prepare", action="store_true", help="quantize (if not cached) and exit")


def main():
    args = parse_args(__doc__.split("\n")[0], bench_args)
    for variant in variants(args):
        path = quantized_model(args.model, variant, args)
        if args.prepare:
            continue
        session = open_session(path, args.threads)
        names = {i.name for i in session.get_inputs()}
        for batch, seq, inputs in workloads(args):
            feed = {k: v for k, v in inputs.items() if k in names}
            latencies = measure(lambda: session.run(None, feed), args)
            report(peer_name(variant, args), args.model, batch, seq, latencies, args.threads)


if __name__ == "__main__":
    main()
