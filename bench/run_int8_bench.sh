#!/usr/bin/env bash
# INT8 CPU benchmark, seq 128: kiln INT8 (quantized at load, and a plan from `kiln build`) side by
# side with kiln FP32/BF16, ONNX Runtime FP32 and ONNX Runtime's INT8 models of the same graph.
#   bash bench/run_int8_bench.sh [results.jsonl]
#   MODELS="all-MiniLM-L6-v2:1" MIN_SECONDS=0.5 bash bench/run_int8_bench.sh   # a quick look
# Needs what run_cpu_bench.sh needs (the shape models and ONNX exports, made with .venv-ref once);
# .venv-ref also quantizes ORT's static QDQ models once (its calibration needs sympy, which the
# light .venv lacks; the onnxruntime is the same). Accuracy: bench/peers/ort_int8_accuracy.py.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-var/bench/int8-$(date +%Y%m%d-%H%M%S).jsonl}
mkdir -p "$(dirname "$out")" var/plans
KILN=build/release/tools/kiln/kiln
MIN_SECONDS=${MIN_SECONDS:-3}
# kiln's plan: static INT8, per-tensor activation scales calibrated on the same 256 texts as ORT's
# QDQ model (kiln-int8 is the dynamic per-token kind). PLAN_FLAGS="--precision int8" builds a
# dynamic plan instead.
PLAN_FLAGS=${PLAN_FLAGS:---precision int8 --activation-scales static \
  --calibration var/data/calib_sst2.txt --calibration-samples 256}
MODELS=${MODELS:-all-MiniLM-L6-v2:1,8,32 bge-small-shape:1,8,32 bert-base-shape:1,8}  # name:batches
[ -x .venv-ref/bin/python ] || bash scripts/setup_ref.sh
export HF_HUB_OFFLINE=1
.venv-ref/bin/python bench/peers/make_shape_models.py
for e in $MODELS; do
  m=${e%%:*}
  [ -f "var/onnx/$m.opt.onnx" ] || .venv-ref/bin/python bench/peers/export_onnx.py "var/models/$m"
  .venv-ref/bin/python bench/peers/ort_int8_bench.py --model "$m" --prepare
  # Rebuilt every run: a plan's weights are packed for this machine and this kiln.
  rm -f "var/plans/$m.int8.plan"
  # shellcheck disable=SC2086
  "$KILN" build "var/models/$m" -o "var/plans/$m.int8.plan" $PLAN_FLAGS -q ||
    echo "kiln build failed: no kiln-int8-plan rows for $m" >&2
done

# Back to back for each workload, as in run_cpu_bench.sh: a slow spell of this shared VM hits
# every peer rather than one peer's whole grid; the pause lets the previous one's memory go.
run_all() {  # model batch-list
  local m=$1 batch p
  for batch in ${2//,/ }; do
    for p in fp32 bf16 int8; do
      sleep 5
      "$KILN" bench --model "var/models/$m" --precision "$p" --batch "$batch" --seq 128 \
        --min-seconds "$MIN_SECONDS" --min-iters 5 --json | tee -a "$out"
    done
    if [ -f "var/plans/$m.int8.plan" ]; then
      sleep 5
      # A plan's row is named by its own precision: kiln-int8-plan.
      "$KILN" bench --model "var/plans/$m.int8.plan" --name "$m" --batch "$batch" --seq 128 \
        --min-seconds "$MIN_SECONDS" --min-iters 5 --json | tee -a "$out"
    fi
    sleep 5
    .venv/bin/python bench/peers/ort_bench.py --model "$m" --batch "$batch" --seq 128 \
      --min-seconds "$MIN_SECONDS" | tee -a "$out"
    sleep 5
    .venv/bin/python bench/peers/ort_int8_bench.py --model "$m" --batch "$batch" --seq 128 \
      --min-seconds "$MIN_SECONDS" | tee -a "$out"
  done
}

for e in $MODELS; do
  run_all "${e%%:*}" "${e#*:}"
done
echo
.venv/bin/python bench/report.py "$out"
