"""Throughput of Hugging Face `tokenizers` on the same corpus as tokenizer_bench.

    bench_tokenizers.py TOKENIZER_JSON CORPUS.txt [SECONDS]

Prints JSON with MB/s for encode_batch (the thread count is whatever RAYON_NUM_THREADS says;
run.sh runs it once with 1 and once with the default).
"""
import json
import sys
import time

from tokenizers import Tokenizer


def main():
    tok = Tokenizer.from_file(sys.argv[1])
    tok.no_truncation()
    tok.no_padding()
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    with open(sys.argv[2], encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    nbytes = sum(len(l.encode()) for l in lines)
    tok.encode_batch(lines)  # warm-up
    passes = 0
    start = time.perf_counter()
    while True:
        tok.encode_batch(lines)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    print(json.dumps({"mb_per_s": round(nbytes * passes / 1e6 / elapsed, 2), "passes": passes}))


if __name__ == "__main__":
    main()
