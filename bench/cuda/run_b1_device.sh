#!/usr/bin/env bash
# On the H100: the CUDA tests, then BERT-base/large at batch 1 from --fast-gelu plans (tuned),
# with the small-batch GEMM kernel (KILN_CUDA_SMALL_GEMM=1) and without it, alternating, twice;
# THROUGHPUT=1 adds BERT-base b64 and BERT-large b128 s384. Needs the bundle of pack_device_bundle.sh in .devcarry/; results in
# $OUT. (Its 2026-11-27 run also compared programmatic dependent launch for kiln's own kernels:
# no gain, docs/results/h100-2026-11-27-tuning/bench_pdl.txt.)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-b1}
mkdir -p "$OUT" /work && ln -sfn "$PWD" /work/main
tar xJf .devcarry/pkg.tar.xz -C /tmp
L="env LD_LIBRARY_PATH=/tmp/pkg/lib:/usr/local/cuda/lib64"
cd /work/main
for t in cuda_ops_test cuda_encoder_test; do
  timeout 150 $L /tmp/pkg/bin/$t --gtest_brief=1 2>&1 | tail -3
done | tee "$OUT/tests.txt"
M=/tmp/kiln-models P=/tmp/kiln-plans
mkdir -p $M $P
for m in bert_base bert_large; do
  [ -f $M/$m/model.safetensors ] || python3 bench/cuda/make_model.py bench/cuda/configs/$m.json $M/$m 2>&1 | tail -1
  [ -f $P/$m-fastgelu.plan ] || $L /tmp/pkg/bin/kiln build $M/$m -o $P/$m-fastgelu.plan --device cuda --precision fp16 --fast-gelu -q 2>&1 | tail -1
done
B="$L /tmp/pkg/bin/kiln_cuda_bench"
{
  for pass in 1 2; do
    for small in 1 0; do
      export KILN_CUDA_SMALL_GEMM=$small
      $B $P/bert_base-fastgelu.plan --label bert-base-small$small-$pass --batches 1 --seq 128 --iters 300
      $B $P/bert_large-fastgelu.plan --label bert-large-small$small-$pass --batches 1 --seq 128 --iters 300
    done
  done
  unset KILN_CUDA_SMALL_GEMM
  if [ -n "${THROUGHPUT:-}" ]; then
    $B $P/bert_base-fastgelu.plan --label bert-base-fastgelu --batches 64 --seq 128 --iters 200
    $B $P/bert_large-fastgelu.plan --label bert-large-fastgelu --batches 128 --seq 384 --iters 10 --warmup 3
  fi
} 2>&1 | grep -E 'RESULT' | cut -f3- | tee "$OUT/bench.txt"
