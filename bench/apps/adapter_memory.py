"""Memory of several LoRA adapters of one base served at once: merged into their own copies of
the base (the default) against kept apart with parameter share_base (one base in memory).

    .venv/bin/python bench/apps/adapter_memory.py

Serves the four MiniLM adapters of models/ (SQuAD, SQuAD distilled, SST-2, WNUT-17) from one
kiln serve, reads the server's resident memory (VmRSS) once all are ready, sends each model the
same request in both modes and checks that the outputs agree.
"""
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests/e2e"))
import kiln_server as ks  # noqa: E402

import numpy as np  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402

ADAPTERS = {"qa": "minilm-squad-lora", "qa_kd": "minilm-squad-distilled-lora",
            "sst2": "minilm-sst2-lora", "wnut17": "minilm-wnut17-lora"}


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def strings(name, value):
    t = httpclient.InferInput(name, [1, 1], "BYTES")
    t.set_data_from_numpy(np.array([[value.encode()]], dtype=object))
    return t


def serve(share, count):
    repo = Path(tempfile.mkdtemp(prefix="kiln_adapters_")) / "models"
    names = list(ADAPTERS.items())[:count]
    for name, adapter in names:
        base = os.path.relpath(ks.MINILM_DIR, repo / name)
        ks.add_model(repo, name, ks.ROOT / "models" / adapter,
                     'backend: "kiln"\nmax_batch_size: 8\n'
                     f'parameters {{ key: "base_model" value {{ string_value: "{base}" }} }}\n'
                     f'parameters {{ key: "share_base" value {{ string_value: "{str(share).lower()}" }} }}\n')
    server = ks.KilnServer(repo).start()
    client = httpclient.InferenceServerClient(server.http_url)
    outputs = {}
    for name, _ in names:
        if name.startswith("qa"):
            r = client.infer(name, [strings("question", "Who designed the bridge?"),
                                    strings("context", "The bridge was designed by Joseph Strauss in 1917.")])
            outputs[name] = (r.as_numpy("answer")[0, 0], float(r.as_numpy("score")[0, 0]))
        else:
            r = client.infer(name, [strings("TEXT", "Barack Obama loved the film in Berlin .")])
            outputs[name] = r.as_numpy("logits").ravel()
    mb = rss_mb(server.proc.pid)
    server.stop()
    server.cleanup()
    return mb, outputs


def main():
    print("| adapters served | merged: RSS MB | share_base: RSS MB |")
    print("| --- | --- | --- |")
    for count in (1, 2, 4):
        merged, a = serve(False, count)
        shared, b = serve(True, count)
        for k in a:
            if isinstance(a[k], tuple):
                assert a[k][0] == b[k][0] and abs(a[k][1] - b[k][1]) < 1e-4, (k, a[k], b[k])
            else:
                assert np.allclose(a[k], b[k], atol=1e-4), k
        print(f"| {count} | {merged:.0f} | {shared:.0f} |")


if __name__ == "__main__":
    main()
