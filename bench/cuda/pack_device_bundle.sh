#!/usr/bin/env bash
# Packs what run_device.sh and run_server_device.sh need into .devcarry/ for a GPU machine that
# has CUDA 13 and PyTorch but none of kiln's Debian dependencies:
#   pkg.tar.xz          the CUDA tests, kiln_cuda_bench, server_core_test and the kiln CLI built
#                       here (build/release, configured with CUDA), Triton's perf_analyzer (from .venv), and every shared
#                       library they load beyond glibc and the CUDA toolkit's own
#   minilm_tokenizer/   MiniLM-L6's tokenizer and sentence-transformers pooling files
#   sst2_dev.tsv        SST-2 dev sentences (perf_analyzer's input data)
# There:
#   tar xJf .devcarry/pkg.tar.xz -C /tmp && export LD_LIBRARY_PATH=/tmp/pkg/lib:/usr/local/cuda/lib64
#   BIN=/tmp/pkg/bin bash bench/cuda/run_device.sh; bash bench/cuda/run_server_device.sh
# (the tests find their fixtures under the source path compiled in: link the checkout there).
# Name .devcarry in the device call's carry list.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build/release}
cmake --build "$BUILD" -j"${JOBS:-1}" --target cuda_ops_test cuda_encoder_test \
  kiln_cuda_bench kiln_gemm_bench server_core_test kiln_cli
rm -rf /tmp/pkg && mkdir -p /tmp/pkg/bin /tmp/pkg/lib .devcarry
bins=("$BUILD"/tests/unit/backend/cuda_ops_test "$BUILD"/tests/unit/backend/cuda_encoder_test
      "$BUILD"/bench/cuda/kiln_cuda_bench "$BUILD"/bench/cuda/kiln_gemm_bench
      "$BUILD"/tools/kiln/kiln)
# LEAN=1: no server test and no perf_analyzer, for calls that also carry a model (64 MiB in all).
[ "${LEAN:-0}" = 1 ] || bins+=("$BUILD"/tests/unit/server/server_core_test)
cp "${bins[@]}" /tmp/pkg/bin/
strip /tmp/pkg/bin/*
pa=.venv/lib/perf_analyzer/perf_analyzer
cudart12=$(ls .venv/lib/python3*/site-packages/nvidia/cuda_runtime/lib/libcudart.so.12 | head -1)
if [ -x "$pa" ] && [ "${LEAN:-0}" != 1 ]; then
  cp "$pa" /tmp/pkg/bin/
  cp -L "$cudart12" /tmp/pkg/lib/
  bins+=("$pa")
fi
# Libraries from this machine's system folders, except glibc's own (the device has a glibc at
# least as new) and the CUDA toolkit's (the device has its own CUDA 13).
for b in "${bins[@]}"; do
  LD_LIBRARY_PATH=$(dirname "$cudart12") ldd "$b" | awk '$3 ~ /^\// {print $3}'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libcudart.so.13|libcublas*) ;;
    libcudart.so.12) ;;  # copied above
    *) cp -L "$lib" /tmp/pkg/lib/ ;;
  esac
done
tar cJf "${PKG_TAR:-.devcarry/pkg.tar.xz}" -C /tmp pkg
mkdir -p .devcarry/minilm_tokenizer
(cd var/models/all-MiniLM-L6-v2 &&
  cp -r tokenizer.json vocab.txt tokenizer_config.json special_tokens_map.json modules.json \
    sentence_bert_config.json 1_Pooling "$OLDPWD/.devcarry/minilm_tokenizer/")
cp var/data/sst2_dev.tsv .devcarry/
grep -qx '/.devcarry/' .git/info/exclude || echo '/.devcarry/' >> .git/info/exclude
du -sh .devcarry .devcarry/pkg.tar.xz
