#!/usr/bin/env bash
# On a Hopper GPU machine: `kiln serve` with a MiniLM-L6-shaped embedding model on KIND_GPU
# instances (FP16, server-side tokenization, dynamic batching), driven by Triton's perf_analyzer
# over gRPC with real SST-2 sentences at rising concurrency; then the engine alone (kiln_cuda_bench)
# on the same weights for the server's overhead at GPU speed. Needs the bundle of
# pack_device_bundle.sh unpacked at $PKG (kiln, kiln_cuda_bench, perf_analyzer and their libraries)
# and, in .devcarry/, MiniLM's tokenizer files and SST-2 dev (see pack_device_bundle.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
PKG=${PKG:-/tmp/pkg}
OUT=${OUT:-/tmp/kiln-server-bench}
MODELS=${MODELS:-/tmp/kiln-models}
INSTANCES=${INSTANCES:-2}
CONCURRENCY=${CONCURRENCY:-1 4 16 64 256}
# The client gets cores of its own, as it would on another machine: perf_analyzer's one thread
# per concurrent request otherwise competes with the server's threads for the same cores.
# SERVER_CPUS / CLIENT_CPUS are taskset lists; empty = no pinning.
# The halves split physical cores, not vCPU numbers: with SMT, vCPU i's sibling is often
# i + nproc / 2, and a server and a client on two threads of one core slow each other down.
cores=()  # one entry per physical core: its sibling list, e.g. "0,8"
mapfile -t cores < <(cat /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list 2>/dev/null |
  sort -t, -k1,1n -u)
if [ ${#cores[@]} -ge 2 ]; then
  half_cores=$(( ${#cores[@]} / 2 ))
  split_server=$(IFS=,; echo "${cores[*]:0:$half_cores}")
  split_client=$(IFS=,; echo "${cores[*]:$half_cores}")
else
  half=$(( $(nproc) / 2 ))
  split_server=0-$((half - 1)) split_client=$half-$(( $(nproc) - 1 ))
fi
SERVER_CPUS=${SERVER_CPUS-$split_server}
CLIENT_CPUS=${CLIENT_CPUS-$split_client}
# CPU seconds the server has used so far (user, system) and since when it runs.
server_cpu() {
  local ticks; ticks=$(getconf CLK_TCK)
  awk -v t="$ticks" '{printf "  server cpu: user %.1f s, sys %.1f s\n", $14 / t, $15 / t}' "/proc/$1/stat"
  ps -o etimes= -p "$1" | awk '{print "  server wall: " $1 " s"}'
}
# Starts kiln serve on $repo (log to $1) and waits until it is ready; sets $server to its pid.
# The background job is kiln itself (taskset execs it), so `kill -INT $server` reaches it.
start_server() {
  # SERVER_ENV: extra environment for kiln (e.g. KILN_CUDA_SPIN_US=20); SERVE_ARGS: extra flags.
  # shellcheck disable=SC2086
  LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 "${server_pin[@]}" env ${SERVER_ENV:-} \
    "${KILN:-$PKG/bin/kiln}" serve --model-repository "$repo" --http-port 18000 \
    --grpc-port 18001 --metrics-port 18002 ${SERVE_ARGS:-} > "$1" 2>&1 &
  server=$!
  for _ in $(seq 120); do
    curl -sf localhost:18000/v2/health/ready > /dev/null && break
    sleep 0.5
  done
}
# perf_analyzer MODEL CONCURRENCY [ARGS...] over gRPC on the client's cores; the summary lines.
perf_analyzer() {
  local model=$1 c=$2
  shift 2
  "${client_pin[@]}" timeout "${PA_TIMEOUT:-90}" env LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 \
    "$PKG/bin/perf_analyzer" -m "$model" -u localhost:18001 -i grpc ${PA_ARGS:-} "$@" \
    --concurrency-range "$c" --measurement-interval 2000 --percentile 95 \
    --stability-percentage 50 --max-trials "${PA_TRIALS:-5}" 2>&1 |
    grep -E "concurrency|Throughput|p95|Avg request|Server:|Avg latency|Failed"
}
# Command prefixes; taskset execs its command, so $! of a pinned kiln is kiln itself.
server_pin=() client_pin=()
[ -n "$SERVER_CPUS" ] && server_pin=(taskset -c "$SERVER_CPUS")
[ -n "$CLIENT_CPUS" ] && client_pin=(taskset -c "$CLIENT_CPUS")
mkdir -p "$OUT" "$MODELS"
{ lscpu; echo "physical cores (sibling lists): ${cores[*]:-unknown}"
  echo "server cpus: ${SERVER_CPUS:-all}; client cpus: ${CLIENT_CPUS:-all}"; } > "$OUT/topology.txt"
# The bundle's libraries (its libstdc++ among them) only for its binaries, never for python3.
libs() { LD_LIBRARY_PATH=$PKG/lib:/usr/local/cuda/lib64 "$@"; }

m=$MODELS/minilm_l6
[ -f "$m/model.safetensors" ] || python3 bench/cuda/make_model.py bench/cuda/configs/minilm_l6.json "$m"
cp -r .devcarry/minilm_tokenizer/. "$m/"  # tokenizer.json, vocab.txt, pooling files
repo=/tmp/kiln-repo
rm -rf "$repo" && mkdir -p "$repo/minilm/1"
# The version folder holds a GPU plan built here (`kiln build --device cuda`), as TensorRT
# engines are built on the GPU they run on.
libs "$PKG/bin/kiln" build "$m" -o "$repo/minilm/1/model.plan" --device cuda --precision fp16
libs "$PKG/bin/kiln" inspect "$repo/minilm/1/model.plan" | head -12
python3 - "$OUT/sst2.json" <<'PY'
import json, sys
rows = open(".devcarry/sst2_dev.tsv", encoding="utf-8").read().splitlines()
texts = [r.split("\t", 1)[1] for r in rows if "\t" in r][:512]
data = [{"TEXT": {"content": [t], "shape": [1]}} for t in texts]
json.dump({"data": data}, open(sys.argv[1], "w"))
print(f"{len(texts)} SST-2 dev sentences")
PY

# MODES: "dynamic" (dynamic batching, max delay 200 us) and "none" (each request alone), with
# $INSTANCES KIND_GPU instances each: the dynamic-batching gain at GPU speed.
for mode in ${MODES:-dynamic none}; do
  batching=""
  [ "$mode" = dynamic ] && batching="dynamic_batching { max_queue_delay_microseconds: 200 }"
  cat > "$repo/minilm/config.pbtxt" <<CFG
backend: "kiln"
max_batch_size: 256
instance_group [ { count: $INSTANCES kind: KIND_GPU } ]
$batching
CFG
  start_server "$OUT/serve_$mode.log"
  {
    echo "== mode $mode, $INSTANCES instances, server cpus ${SERVER_CPUS:-all}, client cpus ${CLIENT_CPUS:-all}"
    for c in $CONCURRENCY; do
      # PERF=path/to/perf: a 10 s call-graph profile of the server at each concurrency
      # (KILN=an unstripped kiln for symbol names).
      if [ -n "${PERF:-}" ]; then
        (sleep 8; LD_LIBRARY_PATH=${PERF_LIBS:-} "$PERF" record -F 499 -g -p "$server" \
          -o "$OUT/perf_${mode}_c$c.data" -- sleep 10 > /dev/null 2>&1) &
      fi
      TIMEFORMAT="  client cpu: wall %R s, user %U s, sys %S s"
      time perf_analyzer minilm "$c" --input-data "$OUT/sst2.json"
      server_cpu "$server"  # cumulative: the difference between two lines is one run's
      wait  # the profile, if any
    done 2>&1
  } | tee "$OUT/perf_analyzer_$mode.txt"
  curl -s localhost:18002/metrics | grep -E "^nv_(inference_(count|exec_count|request_success)|gpu_|energy)" | tee "$OUT/metrics_$mode.txt"
  kill -INT $server; wait $server
  tail -3 "$OUT/serve_$mode.log"
done
# The ceiling of server and client together: Triton's identity model (no compute, no batching,
# runs on the gRPC thread), same pinning, same client settings.
if [ -n "${CEILING-1}" ]; then
  rm -rf "$repo" && mkdir -p "$repo" && cp -r model_repository/identity "$repo/"
  start_server "$OUT/serve_identity.log"
  {
    echo "== identity model (server and client ceiling)"
    for c in ${CEILING_CONCURRENCY:-16 64 256}; do
      perf_analyzer identity "$c"
    done
  } | tee "$OUT/perf_analyzer_identity.txt"
  kill -INT $server; wait $server
fi
# The engine alone, same weights: batches of fixed 32-token sequences (SST-2 dev averages ~25
# tokens with [CLS]/[SEP]).
[ "${ENGINE:-1}" = 1 ] || exit 0  # ENGINE=0: the server runs only
libs "$PKG/bin/kiln_cuda_bench" "$m" --label minilm-engine --batches 1,16,64,256 --seq 32 --iters 200 |
  tee "$OUT/engine.txt"
