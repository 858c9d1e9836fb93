#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each over its seed corpus (fuzz/corpus/<x>,
# copied so that new inputs stay out of the repository). A crash fails the run and leaves the
# reproducer in var/fuzz/.
#   bash scripts/run_fuzzers.sh build/fuzz 20
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/fuzz}
seconds=${2:-20}
mkdir -p var/fuzz
status=0
for bin in "$build"/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus_name=${name#fuzz_}
  work=$(mktemp -d)
  [ -d "fuzz/corpus/$corpus_name" ] && cp -r "fuzz/corpus/$corpus_name/." "$work/"
  echo "fuzz: $name for ${seconds}s"
  if ! "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 \
      -artifact_prefix=var/fuzz/"$name"- -print_final_stats=0 "$work" > "var/fuzz/$name.log" 2>&1; then
    echo "fuzz: $name FAILED (see var/fuzz/$name.log)"; tail -30 "var/fuzz/$name.log"; status=1
  else
    grep -E "^#[0-9]+.*DONE|Done [0-9]+ runs" "var/fuzz/$name.log" | tail -1 || true
  fi
  rm -rf "$work"
done
exit $status
