#!/usr/bin/env bash
# The H100 columns of docs/MODEL_SELECTION.md: kiln bench on the CUDA backend (FP16 and BF16,
# batch 1 and 32, 192 tokens) for the QA adapters, run on the GPU machine from the repo root:
#
#   bash bench/apps/h100_selection.sh ADAPTER...      (e.g. minilm-squad-lora)
#
# Needs .devcarry/kiln_pkg.tar.xz (bench/apps/pack_h100.sh here) unless /tmp/kpkg exists from
# an earlier call, and the adapter's base: var/models/<base> or a transport copy in
# .devcarry/base/<minilm|bge-small> (recipes/pack_base.py). Writes $OUT/h100_selection.jsonl.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-out}
mkdir -p "$OUT"
if [ ! -x /tmp/kpkg/bin/kiln ]; then tar xJf .devcarry/kiln_pkg.tar.xz -C /tmp; fi
export LD_LIBRARY_PATH=/tmp/kpkg/lib:/usr/local/cuda/lib64
PY=/opt/torch/.venv/bin/python3
[ -x "$PY" ] || PY=python3
for short in minilm bge-small; do
  case $short in minilm) dir=all-MiniLM-L6-v2 ;; bge-small) dir=bge-small-en-v1.5 ;; esac
  if [ ! -f "var/models/$dir/model.safetensors" ] && [ -d ".devcarry/base/$short" ]; then
    "$PY" recipes/pack_base.py unpack ".devcarry/base/$short" "var/models/$dir"
  fi
done
if [ "${RUN_TESTS:-0}" = 1 ]; then  # the CUDA engine's tests (fixtures under the compiled path)
  [ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
  /tmp/kpkg/bin/cuda_encoder_test 2>&1 | tail -3 | tee -a "$OUT/h100_selection.log"
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm --format=csv,noheader | tee -a "$OUT/h100_selection.log"
for a in "$@"; do
  for p in fp16 bf16; do
    /tmp/kpkg/bin/kiln bench --device cuda --precision "$p" --model "models/$a" --batch 1 32 \
      --seq 192 --json --min-seconds 2 --name "$a/$p" | tee -a "$OUT/h100_selection.jsonl"
  done
done
