#!/usr/bin/env bash
# On the H100: what FP8 linears give. First kiln_gemm_bench (FP16 against FP8 GEMMs of one
# BERT-large and one BERT-base layer, and the cost of quantizing their inputs). Then the engine
# on BERT-large b128 x s384 and BERT-base b64 x s128 from tuned --fast-gelu plans, with the FP8
# linears off, per tensor (KILN_CUDA_FP8=1) and per row (=rows), alternating, and a per-op
# profile. Last the FP8 op tests and the encoder parity tests (FP8 against CPU FP32) on the tiny
# checkpoints and the BERT-base shape. Needs the bundle of pack_device_bundle.sh unpacked at
# $PKG; results in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-fp8}
mkdir -p "$OUT" /work && ln -sfn "$PWD" /work/main
L="env LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64"
{
  $L "$PKG/bin/kiln_gemm_bench" --hidden 1024 --ffn 4096 --rows 49152,128
  $L "$PKG/bin/kiln_gemm_bench" --hidden 768 --ffn 3072 --rows 8192,128
} > "$OUT/gemm_fp8.txt" 2>&1
grep LAYER "$OUT/gemm_fp8.txt"
M=/tmp/kiln-models P=/tmp/kiln-plans
mkdir -p $M $P
for m in bert_base bert_large; do
  [ -f $M/$m/model.safetensors ] ||
    python3 bench/cuda/make_model.py bench/cuda/configs/$m.json $M/$m 2>&1 | tail -1
  [ -f $P/$m-fastgelu.plan ] || $L "$PKG/bin/kiln" build $M/$m -o $P/$m-fastgelu.plan \
    --device cuda --precision fp16 --fast-gelu -q 2>&1 | tail -1
done
B="$L $PKG/bin/kiln_cuda_bench"
{
  for pass in 1 2; do
    for fp8 in 0 1 rows; do
      export KILN_CUDA_FP8=$fp8
      $B $P/bert_large-fastgelu.plan --label bert-large-fp8$fp8-$pass --batches 128 --seq 384 \
        --iters 10 --warmup 3
      $B $P/bert_base-fastgelu.plan --label bert-base-fp8$fp8-$pass --batches 64 --seq 128 \
        --iters 100
    done
  done
  for fp8 in 0 1 rows; do
    KILN_CUDA_FP8=$fp8 $B $P/bert_large-fastgelu.plan --label bert-large-fp8$fp8-profile \
      --batches 128 --seq 384 --iters 5 --warmup 3 --profile
  done
} 2>&1 | grep -E 'RESULT|PROFILE' | cut -f3- | tee "$OUT/bench.txt"
unset KILN_CUDA_FP8
timeout 200 $L "$PKG/bin/cuda_ops_test" --gtest_filter="*Fp8*" 2>&1 |
  grep -E "OK|FAILED|PASSED|Failure|Expected|actual" | tee "$OUT/ops_fp8.txt"
KILN_CUDA_TEST_MODELS=$M/bert_base timeout 300 $L "$PKG/bin/cuda_encoder_test" \
  --gtest_filter="*Fp8*:*MatchesCpuFp32*" 2>&1 | grep -E "fp8 linears|hidden rel|OK|FAILED|PASSED" |
  tee "$OUT/parity.txt"
