#!/usr/bin/env bash
# On the H100: the tuning tests, then BERT-base/large batch-1 and throughput with tuned and
# --fast-gelu plans against the untuned model directory, and a per-op batch-1 profile.
# Needs the bundle of pack_device_bundle.sh in .devcarry/; results in $OUT.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/kiln-b1}; mkdir -p "$OUT"
mkdir -p /work && ln -sfn "$PWD" /work/main; tar xJf .devcarry/pkg.tar.xz -C /tmp
L="env LD_LIBRARY_PATH=/tmp/pkg/lib:/usr/local/cuda/lib64"
cd /work/main
timeout 120 $L /tmp/pkg/bin/cuda_encoder_test --gtest_brief=1 --gtest_filter='*Tuning*:*Record*' 2>&1 | tail -4
M=/tmp/kiln-models P=/tmp/kiln-plans; mkdir -p $M $P
for m in bert_base bert_large; do python3 bench/cuda/make_model.py bench/cuda/configs/$m.json $M/$m 2>&1 | tail -1; done
K="$L /tmp/pkg/bin/kiln"; B="$L /tmp/pkg/bin/kiln_cuda_bench"
for m in bert_base bert_large; do
  /usr/bin/time -f "%e s build $m" $K build $M/$m -o $P/$m-fastgelu.plan --device cuda --precision fp16 --fast-gelu -q 2>&1 | tail -2
done
$K build $M/bert_base -o $P/bert_base.plan --device cuda --precision fp16 -q 2>&1 | tail -1
$K inspect $P/bert_base-fastgelu.plan > $OUT/inspect_bert_base-fastgelu.txt 2>&1
$K inspect $P/bert_large-fastgelu.plan > $OUT/inspect_bert_large-fastgelu.txt 2>&1
{
$B $M/bert_base --label bert-base-heuristic --batches 1,64 --seq 128 --iters 100
$B $P/bert_base.plan --label bert-base-tuned --batches 1,64 --seq 128 --iters 100
$B $P/bert_base-fastgelu.plan --label bert-base-tuned-fastgelu --batches 1,64 --seq 128 --iters 100
$B $M/bert_large --label bert-large-heuristic --batches 1 --seq 128 --iters 100
$B $P/bert_large-fastgelu.plan --label bert-large-tuned-fastgelu --batches 1 --seq 128 --iters 100
$B $P/bert_large-fastgelu.plan --label bert-large-tuned-fastgelu --batches 128 --seq 384 --iters 10 --warmup 3
$B $P/bert_base-fastgelu.plan --label bert-base-tuned-fastgelu-b1 --batches 1 --seq 128 --iters 20 --profile
} 2>&1 | grep -E 'RESULT|PROFILE' | tee $OUT/bench.txt
grep -E 'GEMM algorithms|gemm +(16|32|64|128|256)x' $OUT/inspect_bert_base-fastgelu.txt | cut -c1-170
