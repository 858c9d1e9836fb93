#!/usr/bin/env bash
# Accuracy of `kiln build`'s optimizations: builds plans of one model with each configuration
# below and measures each with `kiln eval` against the FP32 model on held-out data (SST-2 dev,
# SQuAD v1.1 dev). Calibration texts are SQuAD v1.1 train questions and contexts, which the
# evaluation never reads. One JSON line per configuration: {"config", "build": <build report>,
# "eval": <eval report>}.
#   bash bench/build_accuracy.sh [MODEL_DIR] [results.jsonl]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-var/models/all-MiniLM-L6-v2}
out=${2:-var/bench/accuracy-$(basename "$model")-$(date +%Y%m%d-%H%M%S).jsonl}
KILN=${KILN:-build/release/tools/kiln/kiln}
CALIB=${CALIB:-var/data/calib_squad_train.txt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$(dirname "$out")"

configs=(
  "int8-dynamic|--precision int8"
  "int8-dynamic-sq0.7|--precision int8 --calibration $CALIB --smoothquant 0.7"
  "int8-static-max|--precision int8 --calibration $CALIB --calibrator max"
  "int8-static-percentile|--precision int8 --calibration $CALIB --calibrator percentile --percentile 99.999"
  "int8-static-entropy|--precision int8 --calibration $CALIB --calibrator entropy"
  "int8-static-mse|--precision int8 --calibration $CALIB --calibrator mse"
  "int8-static-mse-mixed0.005|--precision int8 --calibration $CALIB --calibrator mse --max-accuracy-drop 0.005"
  "int8-static-mse-mixed0.002|--precision int8 --calibration $CALIB --calibrator mse --max-accuracy-drop 0.002"
  "int8-dynamic-sq0.7-mixed0.0005|--precision int8 --calibration $CALIB --smoothquant 0.7 --max-accuracy-drop 0.0005"
  "fp32-2:4-magnitude|--sparsity 2:4 --prune-method magnitude --calibration $CALIB"
  "fp32-2:4-sparsegpt|--sparsity 2:4 --prune-method sparsegpt --calibration $CALIB"
)
for entry in "${configs[@]}"; do
  name=${entry%%|*}
  flags=${entry#*|}
  if [ -n "${ONLY:-}" ] && [[ ! "$name" =~ $ONLY ]]; then continue; fi
  # shellcheck disable=SC2086
  "$KILN" build "$model" -o "$work/m.plan" $flags --report "$work/build.json" -q > "$work/build.txt"
  "$KILN" eval --model "$work/m.plan" --reference "$model" --json --quiet > "$work/eval.json"
  printf '{"config": "%s", "flags": "%s", "build": %s, "eval": %s}\n' "$name" "$flags" \
    "$(cat "$work/build.json")" "$(cat "$work/eval.json")" | tee -a "$out" | cut -c1-200
done
echo "wrote $out"
