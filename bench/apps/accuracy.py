"""Accuracy of the applications through `kiln serve`, next to the Hugging Face reference on the
same checkpoint: SQuAD v1.1 dev EM/F1 (all 10,570 questions) for the QA model at FP32, BF16 and
an INT8 plan from `kiln build`; SST-2 dev accuracy; WNUT-17 test entity F1. Every request goes
through the Triton client (gRPC) to a kiln serve started here.

    .venv/bin/python bench/apps/accuracy.py [--qa models/minilm-squad-lora] [--limit N]

The reference comes from bench/apps/hf_reference.py (var/apps_reference/<adapter>.json); without
it the reference column is empty. Targets (issue #6): FP32 within 0.1 F1 of the reference, BF16
within 0.3, INT8 >= 99% of FP32 F1 (MLPerf's bert-99 rule).
"""
import argparse
import json
import lzma
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1] / "tests/e2e"))
import app_data  # noqa: E402
import kiln_server as ks  # noqa: E402

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402

ROOT = app_data.ROOT
CONFIG = ('backend: "kiln"\nmax_batch_size: 8\ndynamic_batching {{ max_queue_delay_microseconds: 2000 }}\n'
          'instance_group {{ count: 1 kind: KIND_CPU }}\n{extra}')


def calibration_file(n=512):
    """SQuAD v1.1 *train* question<TAB>context lines for `kiln build` (never the dev set)."""
    path = ROOT / "var" / "apps_calibration" / "squad_train.tsv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        for part in sorted((app_data.DATA / "squad_v1.1").glob("train-v1.1.explorer.part*.json.xz")):
            with lzma.open(part, "rt") as f:
                for a in json.load(f)["data"]:
                    for p in a["paragraphs"]:
                        q = p["qas"][0]["question"].replace("\t", " ").replace("\n", " ")
                        lines.append(q + "\t" + p["context"].replace("\t", " ").replace("\n", " "))
        path.write_text("\n".join(lines[::max(1, len(lines) // n)][:n]) + "\n")
    return path


def base_parameter(repo, name, adapter):
    """The adapter's base, relative to the model's folder in the repository."""
    cfg = json.loads((ROOT / adapter / "adapter_config.json").read_text())
    base = os.path.relpath(ROOT / cfg["base_model_name_or_path"], repo / name)
    return f'parameters {{ key: "base_model" value {{ string_value: "{base}" }} }}\n'


def build_repository(repo, qa, precisions, ner, cls):
    names = {}
    for p in precisions:
        name = f"qa_{p}"
        names[name] = p
        model_dir = repo / name
        if p == "int8":
            (model_dir / "1").mkdir(parents=True)
            subprocess.run([ks.KILN, "build", str(ROOT / qa), "-o", str(model_dir / "1" / "model.plan"),
                            "--precision", "int8", "--calibration", str(calibration_file()),
                            "--smoothquant", "0.7", "-q"], check=True, cwd=ROOT,
                           stdout=subprocess.DEVNULL)
            ks.write_config(model_dir, CONFIG.format(extra=""))
        else:
            ks.add_model(repo, name, ROOT / qa, CONFIG.format(
                extra=f'parameters {{ key: "precision" value {{ string_value: "{p}" }} }}\n' +
                base_parameter(repo, name, qa)))
    if ner:
        ks.add_model(repo, "ner", ROOT / ner, CONFIG.format(extra=base_parameter(repo, "ner", ner)))
    if cls:
        ks.add_model(repo, "cls", ROOT / cls, CONFIG.format(extra=base_parameter(repo, "cls", cls)))
    return names


def infer_all(client, model, requests, outputs, concurrency=8):
    """Sends (inputs) requests with `concurrency` in flight; returns the results in order."""
    results = [None] * len(requests)
    sem = threading.Semaphore(concurrency)
    errors = []

    def done(i, result, error):
        if error is not None:
            errors.append(error)
        results[i] = result
        sem.release()

    for i, inputs in enumerate(requests):
        sem.acquire()
        client.async_infer(model, inputs, callback=lambda result, error, i=i: done(i, result, error),
                           outputs=[grpcclient.InferRequestedOutput(o) for o in outputs])
    for _ in range(concurrency):
        sem.acquire()
    if errors:
        raise RuntimeError(f"{model}: {len(errors)} errors, first: {errors[0]}")
    return results


def text_input(name, value):
    t = grpcclient.InferInput(name, [1, 1], "BYTES")
    t.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
    return t


def reference(adapter):
    path = ROOT / "var" / "apps_reference" / (Path(adapter).name + ".json")
    return json.loads(path.read_text())["metric"] if path.exists() else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qa", default="models/minilm-squad-lora")
    ap.add_argument("--ner", default="models/minilm-wnut17-lora")
    ap.add_argument("--cls", default="models/minilm-sst2-lora")
    ap.add_argument("--precisions", default="fp32,bf16,int8")
    ap.add_argument("--limit", type=int, default=0, help="first N SQuAD questions (0: all)")
    ap.add_argument("--json", default=str(ROOT / "var" / "apps_accuracy.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kiln_accuracy_"))
    repo = tmp / "models"
    repo.mkdir()
    names = build_repository(repo, args.qa, args.precisions.split(","), args.ner, args.cls)
    server = ks.KilnServer(repo, ready_timeout=600).start()
    client = grpcclient.InferenceServerClient(server.grpc_url)
    rows = []
    squad = app_data.squad_dev()
    if args.limit:
        squad = squad[:args.limit]
    ref = reference(args.qa)
    fp32_f1 = None
    for name, p in names.items():
        t0 = time.time()
        res = infer_all(client, name, [[text_input("question", ex["question"]),
                                        text_input("context", ex["context"])] for ex in squad],
                        ["answer"])
        secs = time.time() - t0
        preds = {ex["id"]: r.as_numpy("answer")[0, 0].decode() for ex, r in zip(squad, res)}
        m = app_data.squad_scores(squad, preds)
        if p == "fp32":
            fp32_f1 = m["f1"]
        rows.append({"task": "SQuAD v1.1 dev", "model": args.qa, "precision": p,
                     "n": len(squad), "metric": "EM / F1",
                     "kiln": f"{m['exact_match']:.2f} / {m['f1']:.2f}", "kiln_f1": m["f1"],
                     "reference": (f"{ref['exact_match']:.2f} / {ref['f1']:.2f}"
                                   if ref and not args.limit else ""),
                     "ref_f1": ref["f1"] if ref and not args.limit else None, "seconds": secs})
    if args.cls:
        data = app_data.sst2_dev()
        res = infer_all(client, "cls", [[text_input("TEXT", t)] for t, _ in data], ["label"])
        names_of = json.loads(client.get_model_config("cls", as_json=True)["config"]["parameters"]
                              ["labels"]["string_value"])
        acc = 100 * np.mean([r.as_numpy("label")[0, 0].decode() == names_of[y]
                             for r, (_, y) in zip(res, data)])
        r = reference(args.cls)
        rows.append({"task": "SST-2 dev", "model": args.cls, "precision": "fp32", "n": len(data),
                     "metric": "accuracy", "kiln": f"{acc:.2f}", "kiln_f1": acc,
                     "reference": f"{r['accuracy']:.2f}" if r else "",
                     "ref_f1": r["accuracy"] if r else None})
    if args.ner:
        data = app_data.wnut17_test()
        res = infer_all(client, "ner", [[text_input("TEXT", t)] for t, _ in data], ["entities"])
        preds = [{(e["entity_group"], e["start"], e["end"])
                  for e in json.loads(x.as_numpy("entities")[0, 0])} for x in res]
        m = app_data.entity_f1([g for _, g in data], preds)
        r = reference(args.ner)
        rows.append({"task": "WNUT-17 test", "model": args.ner, "precision": "fp32", "n": len(data),
                     "metric": "entity F1", "kiln": f"{m['f1']:.2f}", "kiln_f1": m["f1"],
                     "reference": f"{r['f1']:.2f}" if r else "", "ref_f1": r["f1"] if r else None})
    server.stop()
    server.cleanup()
    print("| task | model | precision | n | metric | kiln serve | HF reference | target |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        target = ""
        if row["precision"] in ("fp32", "bf16") and row["ref_f1"] is not None:
            tol = 0.1 if row["precision"] == "fp32" else 0.3
            gap = row["kiln_f1"] - row["ref_f1"]
            target = f"{gap:+.2f} (within {tol}: {'met' if abs(gap) <= tol else 'NOT met'})"
        if row["precision"] == "int8" and fp32_f1:
            ratio = row["kiln_f1"] / fp32_f1
            target = f"{100 * ratio:.2f}% of FP32 (>= 99%: {'met' if ratio >= 0.99 else 'NOT met'})"
        print(f"| {row['task']} | {row['model']} | {row['precision']} | {row['n']} | {row['metric']} "
              f"| {row['kiln']} | {row['reference']} | {target} |")
    Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
