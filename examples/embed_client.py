"""Embeds sentences with kiln serve through the official Triton client (gRPC).

Usage: .venv/bin/python examples/embed_client.py [sentence ...]   (server from `make run`)
"""
import os
import sys

import numpy as np
import tritonclient.grpc as grpcclient

MODEL = "all-MiniLM-L6-v2"


def main() -> None:
    sentences = sys.argv[1:] or [
        "kiln runs BERT-family encoders fast on CPUs.",
        "A fast engine for transformer encoders.",
        "The cat sat on the mat.",
    ]
    client = grpcclient.InferenceServerClient(os.environ.get("KILN_GRPC", "localhost:8001"))
    text = np.array([[s.encode()] for s in sentences], dtype=np.object_)
    inp = grpcclient.InferInput("TEXT", list(text.shape), "BYTES")
    inp.set_data_from_numpy(text)
    result = client.infer(MODEL, [inp], outputs=[grpcclient.InferRequestedOutput("embedding")])
    emb = result.as_numpy("embedding")
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    print(f"{len(sentences)} embeddings of {emb.shape[1]} dims")
    sim = emb @ emb.T
    for i, s in enumerate(sentences):
        print(f"{sim[0, i]:.4f}  {s}")


if __name__ == "__main__":
    main()
