#!/usr/bin/env bash
# Packs the kiln CLI and cuda_encoder_test built with CUDA (build-cuda) and the libraries it loads beyond glibc and the
# CUDA toolkit into .devcarry/kiln_pkg.tar.xz for bench/apps/h100_selection.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-cuda}
ninja -C "$BUILD" -j"${JOBS:-1}" kiln_cli cuda_encoder_test
rm -rf /tmp/kpkg && mkdir -p /tmp/kpkg/bin /tmp/kpkg/lib .devcarry
cp "$BUILD"/tools/kiln/kiln "$BUILD"/tests/unit/backend/cuda_encoder_test /tmp/kpkg/bin/
strip /tmp/kpkg/bin/*
ldd /tmp/kpkg/bin/* | awk '$3 ~ /^\// {print $3}' | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libcudart.so*|libcublas*) ;;
    *) cp -L "$lib" /tmp/kpkg/lib/ ;;
  esac
done
tar cJf .devcarry/kiln_pkg.tar.xz -C /tmp kpkg
du -sh .devcarry/kiln_pkg.tar.xz
