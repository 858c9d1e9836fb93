#!/usr/bin/env bash
# On the H100 machine, one device call: the GPU tests, then run_server_device.sh for an A/B of
# two kiln binaries and of the CUDA wait (polling against sleeping), alternating, over the same
# model, data and pinning:
#   new            $PKG/bin/kiln (this checkout's bundle)
#   new-sleep      the same with KILN_CUDA_SPIN_US=$SPIN (poll $SPIN us, then sleep)
#   old            $OLD_KILN (default /tmp/kiln_old, e.g. .devcarry/old/kiln.xz unpacked)
#   new-qN         with QUEUES=N: the new kiln with N gRPC completion queues
# Each in MODES (default "dynamic none" for new, "dynamic" for the others) at CONCURRENCY.
# First the CUDA op and encoder tests (TESTS=0 skips them) and, with GEMM=1, kiln_gemm_bench.
# Results under $OUT/<variant>/; a summary of every run to stdout.
#   tar xJf .devcarry/pkg.tar.xz -C /tmp && xz -dc .devcarry/old/kiln.xz > /tmp/kiln_old
#   chmod +x /tmp/kiln_old && OUT=$OUT bash bench/cuda/run_server_ab_device.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-server-ab}
OLD_KILN=${OLD_KILN:-/tmp/kiln_old}
SPIN=${SPIN:-20}
export PKG CONCURRENCY=${CONCURRENCY:-16 64 128 256} CEILING= ENGINE=0 PA_TIMEOUT=${PA_TIMEOUT:-60}
mkdir -p "$OUT"
if [ "${TESTS:-1}" = 1 ]; then
  for t in cuda_ops_test cuda_encoder_test; do
    LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 timeout 300 "$PKG/bin/$t" > "$OUT/$t.txt" 2>&1
    echo "$t: exit $? $(grep -E '^\[  (PASSED|FAILED)' "$OUT/$t.txt" | tr '\n' ' ')"
  done
fi
# GEMM=1: FP16 against FP8 GEMMs of BERT-large (rows of b128 x s384 and b1 x s128) and
# BERT-base (b64 x s128) layers, before the servers (kiln_gemm_bench).
if [ "${GEMM:-0}" = 1 ]; then
  {
    LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 "$PKG/bin/kiln_gemm_bench" --hidden 1024 \
      --ffn 4096 --rows 49152,128
    LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 "$PKG/bin/kiln_gemm_bench" --hidden 768 \
      --ffn 3072 --rows 8192,128
  } > "$OUT/gemm_fp8.txt" 2>&1
  grep LAYER "$OUT/gemm_fp8.txt"
fi
run() {  # NAME MODES [VAR=VALUE...]: one run_server_device.sh pass
  local name=$1 modes=$2
  shift 2
  env "$@" OUT="$OUT/$name" MODES="$modes" timeout "${RUN_TIMEOUT:-240}" \
    bash bench/cuda/run_server_device.sh > "$OUT/$name.log" 2>&1
  echo "== $name ($*)"
  grep -h -E "== mode|concurrency|Throughput|p95" "$OUT/$name"/perf_analyzer_*.txt
}
run new "dynamic none"
run new-sleep dynamic SERVER_ENV="KILN_CUDA_SPIN_US=$SPIN"
[ -x "$OLD_KILN" ] && run old dynamic KILN="$OLD_KILN"
# QUEUES=N: the new kiln again with N gRPC completion queues (default: one per 8 CPUs).
[ -n "${QUEUES:-}" ] && run "new-q$QUEUES" "dynamic none" SERVE_ARGS="--grpc-completion-queues $QUEUES"
