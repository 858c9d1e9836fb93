#!/usr/bin/env bash
# Sets up .venv-ref, the heavy Python reference environment (torch, transformers,
# sentence-transformers, ONNX export/fusion) used to regenerate tests/golden/models and to
# run the PyTorch/ONNX Runtime peer benchmarks in bench/peers. Developers and benchmarks
# only: CI and kiln itself never need it (they use the committed fixtures and .venv).
# Idempotent. An existing .venv-ref that is a symlink (a shared, pre-built venv) is only
# checked against the pins, never modified.
#   TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/setup_ref.sh
# takes torch from the CPU-only index instead of PyPI's CUDA build (~6 GB less).
set -euo pipefail
cd "$(dirname "$0")/.."

# The versions the committed fixtures were generated with (see tests/golden/models/README.md).
TORCH=torch==2.15.0
REQ=(transformers==5.24.0 sentence-transformers==6.2.0 onnx==1.23.2 onnxruntime==1.32.0
     onnxscript==0.7.2 safetensors==0.8.0 numpy==2.4.6)

check_pins() {
  .venv-ref/bin/python - "$TORCH" "${REQ[@]}" <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version
bad = []
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        got = version(name)
    except PackageNotFoundError:
        got = "missing"
    if got.split("+")[0] != want:  # a local tag (+cpu, +cu132) is the same release
        bad.append(f"{name} {got} (want {want})")
print("setup_ref: .venv-ref " + ("differs from the pins: " + ", ".join(bad) if bad else "matches the pins"))
sys.exit(1 if bad else 0)
PY
}

if [ -L .venv-ref ]; then
  echo "setup_ref: .venv-ref -> $(readlink .venv-ref) is not managed here; checking it"
  check_pins
  exit
fi

if [ ! -x .venv-ref/bin/python ]; then
  echo "setup_ref: creating .venv-ref"
  "${PYTHON:-python3}" -m venv .venv-ref
fi
stamp=.venv-ref/.kiln-requirements
want="$TORCH ${REQ[*]} ${TORCH_INDEX_URL:-}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup_ref: installing Python packages into .venv-ref"
  pip=(.venv-ref/bin/pip install -q --disable-pip-version-check)
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "${pip[@]}" --index-url "$TORCH_INDEX_URL" "$TORCH"  # then PyPI sees it as satisfied
  fi
  "${pip[@]}" "$TORCH" "${REQ[@]}"
  echo "$want" > "$stamp"
fi
check_pins
