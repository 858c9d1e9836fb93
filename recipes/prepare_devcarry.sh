#!/usr/bin/env bash
# Prepares, on this machine, what recipes/device_train.sh needs on the GPU machine, under
# .devcarry/ (git-ignored; name the paths in the device call's `carry`):
#   .devcarry/wheels/peft-0.21.2-py3-none-any.whl   PEFT (pure Python; the device lacks it)
#   .devcarry/base/minilm, .devcarry/base/bge-small  base models packed by recipes/pack_base.py
#   .devcarry/data/{squad_v1.1,sst2,wnut17,wikigold} copies of ../shared/data (which does not
#                                                     travel), SST-2 train xz-compressed
# and prints what each device job must carry, with sizes (64 MiB per call in all, the
# tracked tree included).
#
#   bash recipes/prepare_devcarry.sh [minilm] [bge-small]     # default: both bases
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv-ref/bin/python}
PEFT_VERSION=0.21.2
SHARED=${KILN_DATA_DIR:-../shared/data}
grep -qx '/.devcarry/' .git/info/exclude || echo '/.devcarry/' >> .git/info/exclude

mkdir -p .devcarry/wheels
if [ ! -f .devcarry/wheels/peft-$PEFT_VERSION-py3-none-any.whl ]; then
  "$PY" -m pip download -q --no-deps --only-binary=:all: -d .devcarry/wheels \
    "peft==$PEFT_VERSION"
fi

mkdir -p .devcarry/data/squad_v1.1 .devcarry/data/sst2 .devcarry/data/wnut17 \
  .devcarry/data/wikigold
cp -u "$SHARED"/squad_v1.1/train-v1.1.explorer.part{1,2}.json.xz \
  "$SHARED"/squad_v1.1/dev-v1.1.json.zip .devcarry/data/squad_v1.1/
[ -f .devcarry/data/sst2/train.tsv.xz ] || xz -9 -T1 -c "$SHARED"/sst2/train.tsv \
  > .devcarry/data/sst2/train.tsv.xz
cp -u "$SHARED"/sst2/dev.tsv .devcarry/data/sst2/
cp -u "$SHARED"/wnut17/{wnut17train.conll,emerging.dev.conll,emerging.test.annotated} \
  .devcarry/data/wnut17/
cp -u "$SHARED"/wikigold/wikigold.conll.txt .devcarry/data/wikigold/

bases=("$@")
[ ${#bases[@]} -gt 0 ] || bases=(minilm bge-small)
for b in "${bases[@]}"; do
  if [ ! -f .devcarry/base/$b/kiln_pack.json ]; then
    OMP_NUM_THREADS=1 "$PY" recipes/pack_base.py pack "$b" .devcarry/base/$b
  fi
done

bytes() { du -cb "$@" 2>/dev/null | tail -1 | cut -f1; }
tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null \
  | tail -1 | cut -f1)
tree=$((tree + ${untracked:-0}))
report() {  # name, carried paths...
  local name=$1; shift
  local total=$(( tree + $(bytes "$@") ))
  awk -v n="$name" -v t="$total" -v c="$*" 'BEGIN {
    printf "  %-24s %5.1f MiB with the tree, %5.1f MiB left: carry %s\n", n, t / 1048576,
      64 - t / 1048576, c }'
}
awk -v t="$tree" 'BEGIN {
  printf "the tree (tracked + untracked, not ignored) travels anyway: %.1f MiB\n", t / 1048576 }'
echo "per device call (64 MiB in all):"
report "qa-bge" .devcarry/wheels .devcarry/base/bge-small .devcarry/data/squad_v1.1
report "qa-minilm qa-minilm-kd" .devcarry/wheels .devcarry/base/minilm .devcarry/data/squad_v1.1 \
  .devcarry/teacher
report "cls-minilm ner-minilm" .devcarry/wheels .devcarry/base/minilm .devcarry/data/sst2 \
  .devcarry/data/wnut17 .devcarry/data/wikigold
[ -d .devcarry/teacher ] || echo "  (qa-minilm-kd also needs .devcarry/teacher/ from qa-bge's" \
  "output: ~5-6 MB at top-8)"
