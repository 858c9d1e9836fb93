#!/usr/bin/env bash
# Server CPU time and context switches per request. The server is pinned to CPU 0, and Triton's
# perf_analyzer (from .venv) is pinned to CPU 1; both talk gRPC at concurrency C. Servers:
#   identity          kiln's identity model, served inline on gRPC's threads
#   identity_batched  the same model through kiln's dynamic batcher (max batch 64, 200 us delay)
#   probe             bench/e2e/grpc_async_probe: an identity ModelInfer on gRPC's
#                     completion-queue API answered on the queue's thread, with no kiln code:
#                     the floor of gRPC's own cost.
# CPU time (utime + stime) and context switches (voluntary and not, summed over the server's
# threads) come from /proc, and the requests answered from kiln's metrics or the probe, all read
# at the start and at the end of a 6 s window in the middle of the client's run.
#   [SERVE_ARGS=...] bash bench/e2e/server_cpu_per_request.sh [KILN_BINARY] [CONCURRENCY] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/release/tools/kiln/kiln}
C=${2:-16}
PROBE=${3:-build/release}/bench/e2e/grpc_async_probe
work=$(mktemp -d)
# Whatever this script started goes with it, on success or failure.
trap 'kill $(jobs -p) 2> /dev/null; rm -rf "$work"' EXIT
repo=$work/repo
mkdir -p "$repo"
cp -r model_repository/identity "$repo/"
mkdir -p "$repo/identity_batched/1"
cat > "$repo/identity_batched/config.pbtxt" <<'CFG'
name: "identity_batched"
backend: "identity"
max_batch_size: 64
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 16 ] } ]
output [ { name: "OUTPUT0", data_type: TYPE_FP32, dims: [ 16 ] } ]
instance_group [ { count: 2, kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 200 }
CFG
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
switches() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'; }
wait_port() {
  for _ in $(seq 100); do
    (exec 3<> /dev/tcp/127.0.0.1/18101) 2> /dev/null && return 0
    sleep 0.2
  done
  return 1
}
successes() {  # requests answered so far by kiln (metrics) or the probe (SIGUSR1)
  if [ "$1" = probe ]; then
    kill -USR1 "$2"
    sleep 0.05
    awk '/^answered/ {n = $2} END {print n + 0}' "$work/probe.log"
  else
    curl -s localhost:18102/metrics |
      awk -v m="$1" 'index($0, "nv_inference_request_success{model=\"" m "\"") == 1 {print $2}'
  fi
}
# measure MODEL|probe SERVER_PID
measure() {
  local model=$1
  [ "$model" = probe ] && model=identity
  timeout 10 taskset -c 1 .venv/bin/perf_analyzer -m "$model" -u localhost:18101 -i grpc \
    --concurrency-range "$C" --measurement-interval 2000 --max-trials 10 \
    --stability-percentage 80 > "$work/pa.txt" 2>&1 &
  local client=$!
  sleep 2
  local n0 t0 s0 n1 t1 s1
  n0=$(successes "$1" "$2") t0=$(cpu_ticks "$2") s0=$(switches "$2")
  sleep 6
  n1=$(successes "$1" "$2") t1=$(cpu_ticks "$2") s1=$(switches "$2")
  wait $client || true
  python3 -c "n = $n1 - $n0; cpu = ($t1 - $t0) / $(getconf CLK_TCK); \
print(f'$1 c=$C: {n / 6:.0f} infer/s, {cpu * 1e6 / n:.1f} us server cpu and ' \
      f'{($s1 - $s0) / n:.2f} context switches per request')"
}
# shellcheck disable=SC2086  # SERVE_ARGS: extra flags, e.g. "--grpc-completion-queues 2"
taskset -c 0 "$BIN" serve --model-repository "$repo" --http-port 18100 --grpc-port 18101 \
  --metrics-port 18102 ${SERVE_ARGS:-} > "$work/serve.log" 2>&1 &
server=$!
wait_port
measure identity $server
measure identity_batched $server
kill -INT $server
wait $server
if [ -x "$PROBE" ]; then
  taskset -c 0 "$PROBE" --port 18101 --queues 1 > "$work/probe.log" 2>&1 &
  probe=$!
  wait_port
  measure probe $probe
  kill -INT $probe
  wait $probe
fi
