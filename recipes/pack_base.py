#!/usr/bin/env python3
"""Packs a base model directory small enough to carry to the GPU machine, and unpacks it there.

    python recipes/pack_base.py pack minilm .devcarry/base/minilm        # here
    python recipes/pack_base.py unpack .devcarry/base/minilm /tmp/kiln-bases/all-MiniLM-L6-v2

A device call carries at most 64 MiB in all (the tracked tree, data, wheels and this), and
the float32 checkpoints are 87 MiB (MiniLM-L6) and 127 MiB (bge-small). Each tensor is stored
in the smallest form that the checks below allow:
  - "grid": values that are exactly integer multiples of one scale per tensor or per row
    (bge-small here was dequantized from int8, so all its matrices are) -> uint8 codes, an
    int32 offset and a float32 scale per row; rebuilt bit for bit ((code + offset) * scale in
    float32) and checked at pack time;
  - "f32": 1-D tensors (biases, LayerNorm) and anything not floating point, unchanged;
  - "f16": everything else, rounded to float16 (relative error <= 2^-11); its two bytes are
    stored as separate planes (high bytes: sign/exponent, low bytes: mantissa), which xz
    compresses better than interleaved.
The planes go into one safetensors file, compressed with xz (so are tokenizer.json and
vocab.txt; config.json and the small tokenizer files stay plain). kiln_pack.json records, per
tensor, the encoding and the largest absolute difference from the original, and a one-line
note that the recipes copy into each model card (so a card says when the base it was trained
against was a float16-rounded copy). Training under --bf16 rounds these weights further in
every matmul anyway; evaluate with the exact float32 base here (recipes --eval-only) for the
reference numbers.
"""

import argparse
import hashlib
import json
import lzma
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parent))

SIDE_FILES = ["config.json", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
              "special_tokens_map.json"]
WEIGHTS = "weights.safetensors.xz"


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def try_grid(v):
    """(codes uint8, offset int32[rows], scale float32[rows]) if v is exactly k * scale with
    integer k spanning at most 256 values per row; per tensor first, then per row."""
    for rows in (v.reshape(1, -1), v.reshape(v.shape[0], -1)):
        a = np.abs(rows)
        scale = np.where(a > 0, a, np.inf).min(axis=1, keepdims=True).astype(np.float32)
        if not np.all(np.isfinite(scale)):
            continue
        k = np.rint(rows / scale)
        if not np.array_equal((k.astype(np.float32) * scale).astype(np.float32), rows):
            continue
        kmin = k.min(axis=1, keepdims=True)
        if np.any(k.max(axis=1, keepdims=True) - kmin > 255):
            continue
        codes = (k - kmin).astype(np.uint8).reshape(v.shape)
        return codes, kmin.astype(np.int32).ravel(), scale.ravel()
    return None


def rebuild_grid(codes, offset, scale, shape):
    rows = offset.shape[0]
    k = codes.reshape(rows, -1).astype(np.int32) + offset[:, None]
    return (k.astype(np.float32) * scale[:, None]).astype(np.float32).reshape(shape)


def pack(src, dst, preset):
    src, dst = Path(src), Path(dst)
    if (dst / WEIGHTS).exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:  # the larger ones (tokenizer.json, vocab.txt) xz-compressed
        if (src / name).is_file():
            data = (src / name).read_bytes()
            if len(data) > 100_000:
                (dst / (name + ".xz")).write_bytes(lzma.compress(data, preset=9))
            else:
                (dst / name).write_bytes(data)
    weights = load_file(str(src / "model.safetensors"))
    planes, entries = {}, {}
    counts = {"grid": 0, "f32": 0, "f16": 0}
    for name, v in weights.items():
        e = {"shape": list(v.shape), "dtype": str(v.dtype)}
        grid = try_grid(v) if v.dtype == np.float32 and v.ndim >= 2 else None
        if grid is not None:
            codes, off, scale = grid
            assert np.array_equal(rebuild_grid(codes, off, scale, v.shape), v)
            planes[name + ".codes"], planes[name + ".offset"] = codes, off
            planes[name + ".scale"] = scale
            e.update(enc="grid", max_abs_diff=0.0)
        elif v.dtype != np.float32 or v.ndim < 2:
            planes[name] = v
            e.update(enc="f32", max_abs_diff=0.0)
        else:
            h = v.astype(np.float16)
            if not np.all(np.isfinite(h)):
                raise SystemExit(f"{name}: out of float16 range")
            b = h.view(np.uint8).reshape(-1, 2)  # little-endian: [low byte, high byte]
            planes[name + ".lo"] = np.ascontiguousarray(b[:, 0])
            planes[name + ".hi"] = np.ascontiguousarray(b[:, 1])
            e.update(enc="f16", max_abs_diff=float(np.abs(h.astype(np.float32) - v).max()),
                     max_rel_diff=float((np.abs(h.astype(np.float32) - v) /
                                         np.maximum(np.abs(v), 1e-30)).max()))
        counts[e["enc"]] += 1
        entries[name] = e
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "w.safetensors"
        save_file(planes, str(raw))
        with open(raw, "rb") as f, lzma.open(dst / WEIGHTS, "wb", preset=preset) as out:
            shutil.copyfileobj(f, out, 1 << 20)
    params = sum(int(np.prod(e["shape"])) for e in entries.values())
    lossy = [n for n, e in entries.items() if e["enc"] == "f16"]
    if lossy:
        worst = max(entries[n]["max_abs_diff"] for n in lossy)
        note = (f"unpacked from a transport copy: {len(lossy)} of {len(entries)} tensors "
                f"rounded to float16 (max abs diff {worst:.2e}), the rest exact")
    else:
        note = "unpacked from a lossless transport copy (bit-identical float32 weights)"
    meta = {"source": str(src), "source_sha256": sha256(src / "model.safetensors"),
            "params": params, "counts": counts, "note": note, "tensors": entries,
            "packed_bytes": (dst / WEIGHTS).stat().st_size}
    (dst / "kiln_pack.json").write_text(json.dumps(meta, indent=1) + "\n")
    total = sum(f.stat().st_size for f in dst.iterdir())
    print(f"packed {src} -> {dst}: {params:,} params, encodings {counts}, "
          f"{meta['packed_bytes']:,} B weights, {total:,} B in all ({total / 2**20:.1f} MiB)")
    print(f"note: {note}")
    return meta


def unpack(src, dst):
    src, dst = Path(src), Path(dst)
    meta = json.loads((src / "kiln_pack.json").read_text())
    dst.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
        elif (src / (name + ".xz")).is_file():
            (dst / name).write_bytes(lzma.decompress((src / (name + ".xz")).read_bytes()))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "w.safetensors"
        with lzma.open(src / WEIGHTS, "rb") as f, open(raw, "wb") as out:
            shutil.copyfileobj(f, out, 1 << 20)
        planes = load_file(str(raw))
    weights = {}
    for name, e in meta["tensors"].items():
        shape = tuple(e["shape"])
        if e["enc"] == "grid":
            weights[name] = rebuild_grid(planes[name + ".codes"], planes[name + ".offset"],
                                         planes[name + ".scale"], shape)
        elif e["enc"] == "f32":
            weights[name] = planes[name]
        else:
            b = np.stack([planes[name + ".lo"], planes[name + ".hi"]], axis=1)
            weights[name] = b.reshape(-1).view(np.float16).astype(np.float32).reshape(shape)
    save_file(weights, str(dst / "model.safetensors"), metadata={"format": "pt"})
    (dst / "kiln_pack.json").write_text(json.dumps(
        {k: v for k, v in meta.items() if k != "tensors"}, indent=1) + "\n")
    print(f"unpacked {src} -> {dst}: {len(weights)} tensors; {meta['note']}")


def verify(src, packed):
    """Unpacks to a temporary folder and compares with the original, tensor by tensor."""
    ref = load_file(str(Path(src) / "model.safetensors"))
    meta = json.loads((Path(packed) / "kiln_pack.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        unpack(packed, tmp)
        got = load_file(str(Path(tmp) / "model.safetensors"))
    bad = []
    for name, v in ref.items():
        d = float(np.abs(got[name].astype(np.float64) - v.astype(np.float64)).max())
        if d > meta["tensors"][name]["max_abs_diff"] or got[name].dtype != v.dtype:
            bad.append((name, d))
    exact = sum(np.array_equal(got[n], v) for n, v in ref.items())
    print(f"verify: {exact}/{len(ref)} tensors bit-identical, {len(bad)} beyond the recorded "
          "difference")
    if bad:
        raise SystemExit(f"verify failed: {bad[:5]}")


def main():
    import common
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pack")
    a.add_argument("base", help="minilm, bge-small or a model directory")
    a.add_argument("out")
    a.add_argument("--preset", type=int, default=9, help="xz preset (0-9)")
    a.add_argument("--no-verify", action="store_true")
    b = sub.add_parser("unpack")
    b.add_argument("packed")
    b.add_argument("out")
    args = p.parse_args()
    if args.cmd == "pack":
        src = common.resolve_base(args.base)
        pack(src, args.out, args.preset)
        if not args.no_verify:
            verify(src, args.out)
    else:
        unpack(args.packed, args.out)


if __name__ == "__main__":
    main()
