#!/usr/bin/env bash
# On the H100: what `--precision fp8` plans give (E4M3 linears, per output channel weights and
# per token activations) against FP16 plans, both built here with --fast-gelu and tuned.
#   1. the GPU tests (cuda_encoder_test with the tuning tests, the FP8 op tests);
#   2. BERT-large (b128 x s384, b1 x s128) and BERT-base (b64 x s128, b1 x s128), FP16 and FP8
#      plans alternating (ALL=1: also FP8 on all four linears), two passes, then a
#      per-op profile of each at BERT-large b128;
#   3. with SWEEP=1, where FP8 starts to pay: FP8 forced at every size (KILN_CUDA_FP8_MIN_TOKENS=0)
#      against FP16 at batch 8, 16 and 32 x 128 tokens;
#   4. with BASE=dir (a real checkpoint, e.g. bge-small unpacked by recipes/pack_base.py):
#      `kiln eval` of FP16 and FP8 on the GPU against CPU FP32 on held-out data (var/data);
#   5. with GEMM=1, first kiln_gemm_bench (FP16 against FP8 GEMMs of one layer of each).
# Needs the bundle of pack_device_bundle.sh unpacked at $PKG; results in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-fp8}
mkdir -p "$OUT" /work && ln -sfn "$PWD" /work/main
L="env LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64"
if [ "${GEMM:-0}" = 1 ]; then
  {
    $L "$PKG/bin/kiln_gemm_bench" --hidden 1024 --ffn 4096 --rows 49152,128
    $L "$PKG/bin/kiln_gemm_bench" --hidden 768 --ffn 3072 --rows 8192,128
  } > "$OUT/gemm_fp8.txt" 2>&1
  grep LAYER "$OUT/gemm_fp8.txt"
fi
for t in cuda_encoder_test; do  # with the CudaTuning tests
  timeout 300 $L "$PKG/bin/$t" > "$OUT/$t.txt" 2>&1
  echo "$t: exit $? $(grep -E '^\[  (PASSED|FAILED)' "$OUT/$t.txt" | tr '\n' ' ')"
done
grep -E "precision fp8|FAILED|Failure" "$OUT/cuda_encoder_test.txt" | head -20
timeout 200 $L "$PKG/bin/cuda_ops_test" --gtest_filter="*Fp8*" > "$OUT/ops_fp8.txt" 2>&1
echo "cuda_ops_test *Fp8*: exit $? $(grep -E '^\[  (PASSED|FAILED)' "$OUT/ops_fp8.txt" | tr '\n' ' ')"
# shellcheck source=bench/cuda/bert_plans.sh
source bench/cuda/bert_plans.sh
$L "$PKG/bin/kiln" inspect $P/bert_base-fp8.plan > "$OUT/inspect_bert_base_fp8.txt" 2>&1
B="$L $PKG/bin/kiln_cuda_bench"
# Variants: label, plan precision, environment. ALL=1 adds the FP8 plan with all four linears in
# FP8 (KILN_CUDA_FP8_LINEARS=all; by default only QKV and FFN-in).
variants=("fp16 fp16 -" "fp8 fp8 -")
[ "${ALL:-0}" = 1 ] && variants+=("fp8all fp8 KILN_CUDA_FP8_LINEARS=all")
bench() {  # VARIANT EXTRA_ENV MODEL LABEL ARGS...: one kiln_cuda_bench run
  local name prec env extra=$2 m=$3 label=$4
  read -r name prec env <<< "$1"
  shift 4
  # shellcheck disable=SC2086
  env $([ "$env" = - ] || echo "$env") $extra $B $P/$m-$prec.plan --label "$label-$name" "$@"
}
{
  for pass in 1 2; do
    for v in "${variants[@]}"; do
      bench "$v" "" bert_large large-b128-$pass --batches 128 --seq 384 --iters 10 --warmup 3
      bench "$v" "" bert_large large-b1-$pass --batches 1 --seq 128 --iters 300
      bench "$v" "" bert_base base-b64-$pass --batches 64 --seq 128 --iters 100
      bench "$v" "" bert_base base-b1-$pass --batches 1 --seq 128 --iters 300
    done
  done
  # SWEEP=1: where FP8 starts to pay, FP8 forced at every size.
  if [ "${SWEEP:-0}" = 1 ]; then
    for m in bert_base bert_large; do
      for b in 8 16 32; do
        for v in "${variants[@]}"; do
          bench "$v" KILN_CUDA_FP8_MIN_TOKENS=0 $m $m-b$b-forced --batches $b --seq 128 \
            --iters 100
        done
      done
    done
  fi
  for v in "${variants[@]}"; do
    bench "$v" "" bert_large large-profile --batches 128 --seq 384 --iters 5 --warmup 3 --profile
  done
} 2>&1 | grep -E 'RESULT|PROFILE|^[a-z_:]+ .* ms/call|rror' | cut -f3- | tee "$OUT/bench.txt"
# BASE=dir: accuracy against CPU FP32 on held-out data, FP8 forced at every size (the eval's
# batches are small).
if [ -n "${BASE:-}" ]; then
  for v in "${variants[@]}"; do
    read -r name prec env <<< "$v"
    # shellcheck disable=SC2046
    timeout 240 env $([ "$env" = - ] || echo "$env") KILN_CUDA_FP8_MIN_TOKENS=0 $L \
      "$PKG/bin/kiln" eval --model "$BASE" --device cuda --precision $prec --quiet --json \
      > "$OUT/eval_$name.json" 2> "$OUT/eval_$name.err"
    echo "eval $name: exit $? $(head -c 1500 "$OUT/eval_$name.json")"
  done
fi
