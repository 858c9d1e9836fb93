"""The applications of `make run`'s repository through the Triton client library (gRPC):
question answering, named entities, classification and semantic search, pre- and post-processed
inside kiln (no Python-backend ensemble, no extra hop).

    .venv/bin/python examples/apps_client.py [--url localhost:8001]
"""
import argparse
import json

import numpy as np
import tritonclient.grpc as grpcclient


def text(name, *values):
    batch = np.array([[v.encode()] for v in values], dtype=object)
    t = grpcclient.InferInput(name, list(batch.shape), "BYTES")
    t.set_data_from_numpy(batch)
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="localhost:8001")
    client = grpcclient.InferenceServerClient(ap.parse_args().url)

    context = ("The Golden Gate Bridge was designed by engineer Joseph Strauss in 1917. It opened "
               "in 1937 and was the longest suspension bridge main span in the world until 1964.")
    r = client.infer("qa", [text("question", "Who designed the bridge?", "When did it open?"),
                            text("context", context, context)])
    for answer, score, start, end in zip(r.as_numpy("answer")[:, 0], r.as_numpy("score")[:, 0],
                                         r.as_numpy("start")[:, 0], r.as_numpy("end")[:, 0]):
        print(f"qa: {answer.decode()!r} (score {score:.3f}, characters {start}-{end})")

    r = client.infer("ner", [text("TEXT", "Barack Obama met Angela Merkel in Berlin .")])
    for e in json.loads(r.as_numpy("entities")[0, 0]):
        print(f"ner: {e['word']!r} {e['entity_group']} ({e['score']:.3f}) [{e['start']}, {e['end']})")

    r = client.infer("classify", [text("TEXT", "a gorgeous , witty , seductive movie .")])
    print(f"classify: {r.as_numpy('label')[0, 0].decode()} {r.as_numpy('probabilities')[0]}")

    q = grpcclient.InferInput("QUERY", [1], "BYTES")
    q.set_data_from_numpy(np.array([b"which team won the super bowl?"], dtype=object))
    r = client.infer("search", [q], parameters={"top_k": 3})
    for score, doc in zip(r.as_numpy("scores")[0], r.as_numpy("documents")[0]):
        print(f"search: {score:.3f} {doc.decode()[:90]}...")


if __name__ == "__main__":
    main()
