#!/usr/bin/env bash
# CPU benchmark, kiln side by side with ONNX Runtime and PyTorch on the same weights, in one run.
#   bash bench/run_cpu_bench.sh [results.jsonl]
# Needs the reference venv (.venv-ref: torch, transformers) to build the random-weight shape
# models and the ONNX exports once (scripts/setup_ref.sh); the ONNX Runtime peer runs from .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/bench/cpu-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$out")"
KILN=build/release/tools/kiln/kiln
MIN_SECONDS=${MIN_SECONDS:-3}
[ -x .venv-ref/bin/python ] || bash scripts/setup_ref.sh
export HF_HUB_OFFLINE=1
.venv-ref/bin/python bench/peers/make_shape_models.py
for m in all-MiniLM-L6-v2 bge-small-shape bert-base-shape; do
  [ -f "var/onnx/$m.opt.onnx" ] || .venv-ref/bin/python bench/peers/export_onnx.py "var/models/$m"
done

# Peers run back to back for each workload, so that a slow spell of this shared VM hits all of
# them rather than one peer's whole grid. A pause before each lets the memory a previous peer
# (PyTorch) released be reclaimed first: without it the next timing on this 2-vCPU VM was up to
# 30% slow.
run_all() {  # model batch-list seq-list
  local model=$1 name seq batch
  name=$(basename "$model")
  for seq in ${3//,/ }; do
    for batch in ${2//,/ }; do
      for p in fp32 bf16; do
        sleep 5
        "$KILN" bench --model "$model" --precision "$p" --batch "$batch" --seq "$seq" \
          --min-seconds "$MIN_SECONDS" --min-iters 5 --json | tee -a "$out"
      done
      sleep 5
      .venv/bin/python bench/peers/ort_bench.py --model "$name" --batch "$batch" --seq "$seq" \
        --min-seconds "$MIN_SECONDS" | tee -a "$out"
      sleep 5
      .venv-ref/bin/python bench/peers/torch_bench.py --model "$name" --batch "$batch" \
        --seq "$seq" --min-seconds "$MIN_SECONDS" | tee -a "$out"
    done
  done
}

run_all var/models/all-MiniLM-L6-v2 1,8,32 128,384
run_all var/models/bge-small-shape 1,8,32 128,384
run_all var/models/bert-base-shape 1,8 128
echo
.venv/bin/python bench/report.py "$out"
