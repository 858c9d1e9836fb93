#!/usr/bin/env bash
# On the H100, kernel experiments side by side, each variant alternating with its baseline
# in the same call (two passes):
#   1. the GPU tests (cuda_ops_test, cuda_encoder_test);
#   2. (removed with its code: L2 prefetch of the next linears' weights, 2026-11-28);
#   3. the attention kernel's tiling (KILN_CUDA_ATTENTION=rows16 | rows32, default auto):
#      BERT-large b128 x s384 and BERT-base b64 x s128, end to end and per op (--profile);
#   4. FP8 plans with only QKV and FFN-in in FP8 (the default) against all four
#      (KILN_CUDA_FP8_LINEARS=all), and the FP16 plan, at BERT-large b128 x s384 and BERT-base
#      b64; then FP8 forced at every size (KILN_CUDA_FP8_MIN_TOKENS=0) at batch 8, 16, 32;
#   5. kiln_gemm_bench at batch sizes with weights from HBM and from L2 (--weight-mib 1);
#   6. FP16 plans tuned by an older kiln (bundle unpacked at $PREV) against this one's.
# Needs the bundle of pack_device_bundle.sh unpacked at $PKG; results in $OUT. PARTS="1 3 4 5 6"
# picks the parts (default 1 3 4 5).
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-kernels}
PARTS=${PARTS:-1 3 4 5}
PREV=${PREV:-/tmp/pkgprev}
mkdir -p "$OUT" /work && ln -sfn "$PWD" /work/main
L="env LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64"
part() { [[ " $PARTS " == *" $1 "* ]]; }
if part 1; then
  for t in cuda_ops_test cuda_encoder_test; do
    timeout 300 $L "$PKG/bin/$t" > "$OUT/$t.txt" 2>&1
    echo "$t: exit $? $(grep -E '^\[  (PASSED|FAILED)' "$OUT/$t.txt" | tr '\n' ' ')"
    grep -E "^\[  FAILED|Failure" "$OUT/$t.txt" | head -10
  done
fi
# shellcheck source=bench/cuda/bert_plans.sh
source bench/cuda/bert_plans.sh
B="$L $PKG/bin/kiln_cuda_bench"
run() {  # PLAN LABEL ENV... -- ARGS...: one kiln_cuda_bench run with the environment given
  local plan=$1 label=$2
  shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" $B "$P/$plan.plan" --label "$label" "$@"
}
{
  # Part 2, L2 prefetch at small batches, went with its code (docs/PERFORMANCE.md, 2026-11-28).
  if part 3; then
    for pass in 1 2; do
      for a in rows16 rows32; do
        run bert_large-fp16 "large-b128-$a-$pass" KILN_CUDA_ATTENTION=$a -- --batches 128 \
          --seq 384 --iters 10 --warmup 3
        run bert_base-fp16 "base-b64-$a-$pass" KILN_CUDA_ATTENTION=$a -- --batches 64 --seq 128 \
          --iters 100
      done
    done
    for a in rows16 rows32; do
      run bert_large-fp16 "large-b128-$a-profile" KILN_CUDA_ATTENTION=$a -- --batches 128 \
        --seq 384 --iters 5 --warmup 3 --profile
      run bert_base-fp16 "base-b64-$a-profile" KILN_CUDA_ATTENTION=$a -- --batches 64 \
        --seq 128 --iters 20 --warmup 3 --profile
    done
  fi
  if part 4; then
    for pass in 1 2; do
      for v in "fp16 KILN_CUDA_FP8_LINEARS=default" "fp8 KILN_CUDA_FP8_LINEARS=all" \
        "fp8 KILN_CUDA_FP8_LINEARS=default"; do
        read -r prec env <<< "$v"
        run bert_large-$prec "large-b128-$prec-${env#*=}-$pass" "$env" -- --batches 128 --seq 384 \
          --iters 10 --warmup 3
        run bert_base-$prec "base-b64-$prec-${env#*=}-$pass" "$env" -- --batches 64 --seq 128 \
          --iters 100
      done
    done
    # Where FP8 (QKV and FFN-in) starts to pay: forced at every size against FP16.
    for m in bert_base bert_large; do
      for b in 8 16 32; do
        for prec in fp16 fp8; do
          run $m-$prec "$m-b$b-$prec-forced" KILN_CUDA_FP8_MIN_TOKENS=0 -- --batches $b \
            --seq 128 --iters 100
        done
      done
    done
  fi
  if part 5; then
    # Batch-size GEMMs with their weights from HBM (rotated through 256 MiB) and from L2.
    for mib in 256 1; do
      $L "$PKG/bin/kiln_gemm_bench" --hidden 768 --ffn 3072 --rows 128,1024 --weight-mib $mib |
        sed "s/^/weights=${mib}MiB /"
      $L "$PKG/bin/kiln_gemm_bench" --hidden 1024 --ffn 4096 --rows 128 --weight-mib $mib |
        sed "s/^/weights=${mib}MiB /"
    done
  fi
  if part 6; then
    # Plans tuned by the kiln at $PREV (an older bundle) against this one's, same engine binary.
    for m in bert_base bert_large; do
      [ -f $P/$m-fp16-prev.plan ] || $L "$PREV/bin/kiln" build $M/$m -o $P/$m-fp16-prev.plan \
        --device cuda --precision fp16 --fast-gelu -q 2>&1 | tail -1
    done
    for pass in 1 2; do
      for plan in fp16-prev fp16; do
        for b in 1 8 32; do
          run bert_base-$plan "base-b$b-$plan-$pass" -- --batches $b --seq 128 --iters 300
          run bert_large-$plan "large-b$b-$plan-$pass" -- --batches $b --seq 128 --iters 200
        done
        run bert_base-$plan "base-b64-$plan-$pass" -- --batches 64 --seq 128 --iters 100
      done
    done
    $L "$PKG/bin/kiln" inspect $P/bert_base-fp16.plan > "$OUT/inspect_bert_base_fp16.txt" 2>&1
    $L "$PKG/bin/kiln" inspect $P/bert_base-fp16-prev.plan > "$OUT/inspect_bert_base_fp16_prev.txt" 2>&1
  fi
} 2>&1 | grep -E 'RESULT|PROFILE|LAYER|^[a-z_:0-9]+ .* ms/call|rror' | tee "$OUT/bench.txt"
