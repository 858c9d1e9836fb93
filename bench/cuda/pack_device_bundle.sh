#!/usr/bin/env bash
# Packs what run_device.sh needs into .devcarry/pkg.tar.xz for a GPU machine that has CUDA 13
# and PyTorch but none of kiln's Debian build dependencies: the CUDA test and benchmark binaries
# built here (build-cuda) and the shared libraries they need beyond the CUDA runtime. There:
#   tar xJf .devcarry/pkg.tar.xz -C /tmp && export LD_LIBRARY_PATH=/tmp/pkg/lib:/usr/local/cuda/lib64
#   BIN=/tmp/pkg/bin bash bench/cuda/run_device.sh
# (the tests find their fixtures under the source path compiled in: link the checkout there).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-cuda}
ninja -C "$BUILD" -j"${JOBS:-1}" cuda_ops_test cuda_encoder_test kiln_cuda_bench
rm -rf /tmp/pkg && mkdir -p /tmp/pkg/bin /tmp/pkg/lib .devcarry
cp "$BUILD"/tests/unit/backend/cuda_ops_test "$BUILD"/tests/unit/backend/cuda_encoder_test \
  "$BUILD"/bench/cuda/kiln_cuda_bench /tmp/pkg/bin/
strip /tmp/pkg/bin/*
for lib in libdnnl.so.2 libutf8proc.so.2 libOpenCL.so.1 libgomp.so.1; do
  cp -L "/lib/x86_64-linux-gnu/$lib" /tmp/pkg/lib/
done
tar cJf .devcarry/pkg.tar.xz -C /tmp pkg
grep -qx '/.devcarry/' .git/info/exclude || echo '/.devcarry/' >> .git/info/exclude
ls -la .devcarry/pkg.tar.xz
