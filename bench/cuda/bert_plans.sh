# Sourced by the device scripts: random-weight BERT-base and BERT-large checkpoints in $M and
# their FP16 and FP8 plans (--fast-gelu, tuned on this GPU) in $P, each made once per machine.
# Needs $L (the environment prefix for the bundle's binaries) and $PKG.
M=${M:-/tmp/kiln-models} P=${P:-/tmp/kiln-plans}
mkdir -p "$M" "$P"
for m in bert_base bert_large; do
  [ -f "$M/$m/model.safetensors" ] ||
    python3 bench/cuda/make_model.py "bench/cuda/configs/$m.json" "$M/$m" 2>&1 | tail -1
  for prec in fp16 fp8; do
    [ -f "$P/$m-$prec.plan" ] || $L "$PKG/bin/kiln" build "$M/$m" -o "$P/$m-$prec.plan" \
      --device cuda --precision $prec --fast-gelu -q 2>&1 | tail -1
  done
done
