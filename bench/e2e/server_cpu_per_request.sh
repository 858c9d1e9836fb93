#!/usr/bin/env bash
# Server CPU time and context switches per request: kiln serve pinned to CPU 0, Triton's
# perf_analyzer (from .venv) pinned to CPU 1, gRPC, Triton's identity model served inline on
# gRPC's threads ("identity") and through the dynamic batcher ("identity_batched": max batch 64,
# 200 us queue delay). CPU time (utime + stime) and context switches (voluntary and not, summed
# over the server's threads) come from /proc, the request count from its Prometheus metrics,
# all read at the same two instants.
#   bash bench/e2e/server_cpu_per_request.sh [KILN_BINARY] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-build/release/tools/kiln/kiln}
C=${2:-16}
repo=$(mktemp -d)
trap 'rm -rf "$repo"' EXIT
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
switches() {
  cat /proc/"$1"/task/*/status | awk '/ctxt_switches/ {s += $2} END {print s}'
}
successes() {
  curl -s localhost:18102/metrics |
    awk -v m="$1" 'index($0, "nv_inference_request_success{model=\"" m "\"") == 1 {print $2}'
}
taskset -c 0 "$BIN" serve --model-repository "$repo" --http-port 18100 --grpc-port 18101 \
  --metrics-port 18102 > "$repo/serve.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  curl -sf localhost:18100/v2/health/ready > /dev/null && break
  sleep 0.2
done
for model in identity identity_batched; do
  # perf_analyzer runs ~9 s; the window is its middle 6 s.
  timeout 9 taskset -c 1 .venv/bin/perf_analyzer -m $model -u localhost:18101 -i grpc \
    --concurrency-range "$C" --measurement-interval 2000 --max-trials 10 \
    --stability-percentage 80 > /dev/null 2>&1 &
  client=$!
  sleep 2
  n0=$(successes $model) t0=$(cpu_ticks $server) s0=$(switches $server)
  sleep 6
  n1=$(successes $model) t1=$(cpu_ticks $server) s1=$(switches $server)
  wait $client || true
  python3 -c "n = $n1 - $n0; cpu = ($t1 - $t0) / $(getconf CLK_TCK); \
print(f'$model c=$C: {n / 6:.0f} infer/s, {cpu * 1e6 / n:.1f} us server cpu and ' \
      f'{($s1 - $s0) / n:.2f} context switches per request')"
done
kill -INT $server
wait $server
