#!/usr/bin/env bash
# On a Hopper GPU machine: GPU plans with GEMM autotuning (`kiln build --device cuda`) and with
# --fast-gelu against the untuned model directory, the real SQuAD length mix (ragged kiln vs
# padded PyTorch), and the PyTorch eager peer in the same call. Needs the bundle of
# pack_device_bundle.sh unpacked at $PKG; results go to $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-tuning-bench}
MODELS=${MODELS:-/tmp/kiln-models}
PLANS=${PLANS:-/tmp/kiln-plans}
mkdir -p "$OUT" "$MODELS" "$PLANS"
libs() { LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 "$@"; }
KILN="libs $PKG/bin/kiln"
BENCH="libs $PKG/bin/kiln_cuda_bench"
MIX=bench/cuda/lengths_squad_dev.txt

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
for m in bert_base bert_large; do
  [ -f "$MODELS/$m/model.safetensors" ] || python3 bench/cuda/make_model.py "bench/cuda/configs/$m.json" "$MODELS/$m"
done
# Plans: tuned (default) and tuned with the tanh GELU fused into the FFN-in GEMM.
for m in bert_base bert_large; do
  [ -f "$PLANS/$m.plan" ] || $KILN build "$MODELS/$m" -o "$PLANS/$m.plan" --device cuda --precision fp16 2>&1 | tail -2
  [ -f "$PLANS/$m-fastgelu.plan" ] || $KILN build "$MODELS/$m" -o "$PLANS/$m-fastgelu.plan" --device cuda --precision fp16 --fast-gelu 2>&1 | tail -2
  $KILN inspect "$PLANS/$m.plan" > "$OUT/inspect_$m.txt" 2>&1
  $KILN inspect "$PLANS/$m-fastgelu.plan" > "$OUT/inspect_$m-fastgelu.txt" 2>&1
done
{
  for m in bert_base:bert-base bert_large:bert-large; do
    dir=${m%%:*} label=${m##*:}
    $BENCH "$MODELS/$dir" --label "$label-heuristic" --batches 1 --seq 128 --iters 100
    $BENCH "$PLANS/$dir.plan" --label "$label-tuned" --batches 1 --seq 128 --iters 100
    $BENCH "$PLANS/$dir-fastgelu.plan" --label "$label-tuned-fastgelu" --batches 1 --seq 128 --iters 100
  done
  $BENCH "$MODELS/bert_base" --label bert-base-heuristic --batches 64 --seq 128
  $BENCH "$PLANS/bert_base.plan" --label bert-base-tuned --batches 64 --seq 128
  $BENCH "$PLANS/bert_base-fastgelu.plan" --label bert-base-tuned-fastgelu --batches 64 --seq 128
  $BENCH "$MODELS/bert_large" --label bert-large-heuristic --batches 128 --seq 384 --iters 10 --warmup 3
  $BENCH "$PLANS/bert_large.plan" --label bert-large-tuned --batches 128 --seq 384 --iters 10 --warmup 3
  $BENCH "$PLANS/bert_large-fastgelu.plan" --label bert-large-tuned-fastgelu --batches 128 --seq 384 --iters 10 --warmup 3 --profile
  # The real length mix: kiln ragged, PyTorch padded to each batch's longest.
  $BENCH "$PLANS/bert_base.plan" --label bert-base-squad-mix --lengths $MIX --batches 64 --seq 384 --iters 5 --warmup 1
  $BENCH "$PLANS/bert_large.plan" --label bert-large-squad-mix --lengths $MIX --batches 64 --seq 384 --iters 3 --warmup 1
  python3 bench/cuda/torch_peer.py "$MODELS/bert_base" --label bert-base-squad-mix --lengths $MIX --batches 64 --seq 384 --iters 5 --warmup 1
  python3 bench/cuda/torch_peer.py "$MODELS/bert_large" --label bert-large-squad-mix --lengths $MIX --batches 64 --seq 384 --iters 3 --warmup 1
  python3 bench/cuda/torch_peer.py "$MODELS/bert_base" --label bert-base --batches 1,64 --seq 128
  python3 bench/cuda/torch_peer.py "$MODELS/bert_large" --label bert-large --batches 1 --seq 128
  python3 bench/cuda/torch_peer.py "$MODELS/bert_large" --label bert-large --batches 128 --seq 384 --iters 10 --warmup 3
} 2>&1 | grep -v "Loading weights" | tee "$OUT/bench.txt"
echo "== summary"
grep PROFILE "$OUT/bench.txt" | cut -f2-
grep RESULT "$OUT/bench.txt" | cut -f2- | grep -v '+d2h'
head -8 "$OUT/inspect_bert_large.txt" | cut -c1-150
grep -A3 '^device' "$OUT/inspect_bert_large.txt" | cut -c1-200
