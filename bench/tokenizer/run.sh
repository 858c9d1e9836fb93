#!/usr/bin/env bash
# Tokenizer throughput: kiln (single thread) vs Hugging Face `tokenizers` (encode_batch with
# RAYON_NUM_THREADS=1, and with its default thread pool), on the same corpus in the same run.
#   bench/tokenizer/run.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${1:-build/release}
SECONDS_PER_RUN=${2:-3}
PY=.venv/bin/python
BIN=$BUILD/bench/tokenizer/tokenizer_bench
[ -x "$BIN" ] || { echo "missing $BIN: build the tokenizer_bench target" >&2; exit 1; }
[ -x "$PY" ] || { echo "missing .venv: run scripts/setup.sh" >&2; exit 1; }

CORPUS=$BUILD/tokenizer_bench_corpus.txt
$PY - "$CORPUS" <<'PYEOF'
import sys
sys.path.insert(0, "tests/golden/tokenizer")
import corpus
# One sentence per line; newlines inside a sentence would split it, so they become spaces.
lines = [s.replace("\n", " ").replace("\r", " ") for s in corpus.sentences()]
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(lines) + "\n")
PYEOF

field() { $PY -c "import json,sys; print(json.loads(sys.stdin.read())['$1'])"; }

printf "%-34s %12s %16s %16s %10s %10s\n" workload "kiln MB/s" "tokenizers 1T" "tokenizers nT" "ratio 1T" "ratio nT"
for spec in "wordpiece (MiniLM tokenizer.json)|var/models/all-MiniLM-L6-v2/tokenizer.json" \
            "byte-level BPE (RoBERTa fixture)|tests/golden/tokenizer/roberta_bpe/tokenizer.json"; do
  name=${spec%%|*}
  json=${spec##*|}
  kiln=$("$BIN" "$json" "$CORPUS" "$SECONDS_PER_RUN" | field mb_per_s)
  hf1=$(RAYON_NUM_THREADS=1 $PY bench/tokenizer/bench_tokenizers.py "$json" "$CORPUS" "$SECONDS_PER_RUN" | field mb_per_s)
  hfn=$($PY bench/tokenizer/bench_tokenizers.py "$json" "$CORPUS" "$SECONDS_PER_RUN" | field mb_per_s)
  r1=$($PY -c "print(f'{$kiln/$hf1:.2f}x')")
  rn=$($PY -c "print(f'{$kiln/$hfn:.2f}x')")
  printf "%-34s %12s %16s %16s %10s %10s\n" "$name" "$kiln" "$hf1" "$hfn" "$r1" "$rn"
done
echo "corpus: $(wc -l < "$CORPUS") sentences, $(wc -c < "$CORPUS") bytes (wordnet-base + dict-gcide); $(nproc) cores"
