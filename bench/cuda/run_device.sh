#!/usr/bin/env bash
# On a Hopper GPU machine: the CUDA tests, then kiln against the PyTorch peer on the same random
# weights (BERT-base, MiniLM-L6 and BERT-large shapes). BIN holds cuda_ops_test,
# cuda_encoder_test and kiln_cuda_bench (default: the build-cuda tree); results go to OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build-cuda}
OUT=${OUT:-/tmp/kiln-cuda-bench}
MODELS=${MODELS:-/tmp/kiln-models}
mkdir -p "$OUT" "$MODELS"
# LIBS: the bundle's libraries (pack_device_bundle.sh), for kiln's binaries only, never python3.
LIBS=${LIBS:-/tmp/pkg/lib}
libs() { LD_LIBRARY_PATH=$LIBS:/usr/local/cuda/lib64 "$@"; }
find_bin() { if [ -x "$BIN/$1" ]; then echo "$BIN/$1"; else find "$BIN" -name "$1" -type f | head -1; fi; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
for m in bert_base minilm_l6 bert_large; do
  [ -f "$MODELS/$m/model.safetensors" ] || python3 bench/cuda/make_model.py "bench/cuda/configs/$m.json" "$MODELS/$m"
done

export KILN_CUDA_TEST_MODELS="$MODELS/bert_base:$MODELS/minilm_l6"
libs timeout 240 "$(find_bin cuda_ops_test)" --gtest_brief=1 2>&1 | tee "$OUT/cuda_ops_test.txt"
libs timeout 240 "$(find_bin cuda_encoder_test)" --gtest_brief=1 2>&1 | tee "$OUT/cuda_encoder_test.txt"
unset KILN_CUDA_TEST_MODELS

BENCH="libs $(find_bin kiln_cuda_bench)"
{
  for p in fp16 bf16; do
    $BENCH "$MODELS/bert_base" --label bert-base --precision $p --batches 1,64 --seq 128
    python3 bench/cuda/torch_peer.py "$MODELS/bert_base" --label bert-base --dtype $p --batches 1,64 --seq 128
  done
  KILN_CUDA_GRAPHS=0 $BENCH "$MODELS/bert_base" --label bert-base-nographs --batches 1 --seq 128
  $BENCH "$MODELS/minilm_l6" --label minilm-l6 --batches 1,64 --seq 128
  python3 bench/cuda/torch_peer.py "$MODELS/minilm_l6" --label minilm-l6 --batches 1,64 --seq 128
  $BENCH "$MODELS/bert_base" --label bert-base --batches 64 --seq 128 --concurrency 4 --iters 30
  for b in 1 64; do
    $BENCH "$MODELS/bert_base" --label bert-base-b$b --batches $b --seq 128 --iters 20 --profile
  done
  $BENCH "$MODELS/bert_large" --label bert-large --batches 1 --seq 128
  $BENCH "$MODELS/bert_large" --label bert-large --batches 128 --seq 384 --iters 10 --warmup 3 --profile
  python3 bench/cuda/torch_peer.py "$MODELS/bert_large" --label bert-large --batches 1 --seq 128
  python3 bench/cuda/torch_peer.py "$MODELS/bert_large" --label bert-large --batches 128 --seq 384 --iters 10 --warmup 3
} 2>&1 | grep -v "Loading weights" | tee "$OUT/bench.txt"
echo "== summary"
grep PROFILE "$OUT/bench.txt" | cut -f2-
grep RESULT "$OUT/bench.txt" | cut -f2-
