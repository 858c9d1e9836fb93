#!/usr/bin/env bash
# Trains task adapters on the GPU machine. Run from the repo root there, after
# recipes/prepare_devcarry.sh here:
#
#   bash recipes/device_train.sh JOB [JOB...]
#
# JOB            base       data carried             writes ($OUT)
# qa-bge         bge-small  data/squad_v1.1          bge-small-squad-lora.tar (the QA teacher)
#                                                    bge-small-squad-topk8.safetensors.xz
# qa-minilm      minilm     data/squad_v1.1          minilm-squad-lora.tar (labels only)
# qa-minilm-kd   minilm     data/squad_v1.1 +        minilm-squad-distilled-lora.tar
#                           teacher/bge-small-squad-topk8.safetensors.xz
# cls-minilm     minilm     data/sst2                minilm-sst2-lora.tar
# ner-minilm     minilm     data/wnut17 data/wikigold  minilm-wnut17-lora.tar
# cls-bge, ner-bge: the same on bge-small.
#
# Each job's tar holds models/<name>/: adapter_config.json, adapter_model.safetensors,
# README.md (model card), metrics.json, train.log (+ predictions.json for QA). Every job uses
# seed 42, bf16 autocast, the recipe's default epochs, and a training time budget: its own
# (qa-bge 330 s, other QA 240 s, cls/ner 150 s; TRAIN_BUDGET_S overrides) or its share of what
# is left of the call (CALL_LIMIT_S, default 570 s, under the device tool's 600 s), whichever is
# less. The step count is cut, and the LR schedule with it, only if the speed measured over the
# first steps would overrun. A QA job adds ~60-100 s of loading, tokenizing, evaluating twice
# and the reload check, so qa-minilm ends within ~5.5 minutes at worst.
# Extra arguments for every job: EXTRA_ARGS="--epochs 2".
#
# The device's python (/opt/torch/.venv) has torch, transformers, accelerate, safetensors and
# huggingface_hub but no peft: the peft wheel from .devcarry/wheels is unzipped into /tmp/site
# (pure Python, no dependencies missing there). Base models arrive packed (recipes/pack_base.py)
# and are unpacked into var/models/ here.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/opt/torch/.venv/bin/python3}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-/tmp/kiln-out}
EXTRA_ARGS=${EXTRA_ARGS:-}
mkdir -p "$OUT" /tmp/site
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true KILN_FEATURE_CACHE=/tmp/kiln-cache
export KILN_DATA_DIR=$PWD/.devcarry/data

for whl in .devcarry/wheels/*.whl; do
  "$PY" -m zipfile -e "$whl" /tmp/site
done
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
"$PY" -c 'import torch, transformers, peft
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
print("torch", torch.__version__, "transformers", transformers.__version__, "peft",
      peft.__version__, "gpu", gpu)'

unpack_base() {  # short name -> var/models/<dir>
  local name=$1 dir
  case $name in minilm) dir=all-MiniLM-L6-v2 ;; bge-small) dir=bge-small-en-v1.5 ;; esac
  if [ ! -f "var/models/$dir/model.safetensors" ]; then
    "$PY" recipes/pack_base.py unpack ".devcarry/base/$name" "var/models/$dir"
  fi
}

# Per job: base, script, output name, default training budget (s), overhead guess (s: loading,
# tokenizing, evaluating twice, the reload check, the teacher dump).
job_spec() {
  case $1 in
    qa-bge)       echo "bge-small train_qa.py bge-small-squad-lora 330 100" ;;
    qa-minilm)    echo "minilm train_qa.py minilm-squad-lora 240 80" ;;
    qa-minilm-kd) echo "minilm train_qa.py minilm-squad-distilled-lora 240 80" ;;
    cls-minilm)   echo "minilm train_cls.py minilm-sst2-lora 150 40" ;;
    ner-minilm)   echo "minilm train_ner.py minilm-wnut17-lora 150 40" ;;
    cls-bge)      echo "bge-small train_cls.py bge-small-sst2-lora 150 40" ;;
    ner-bge)      echo "bge-small train_ner.py bge-small-wnut17-lora 150 40" ;;
    *) echo "unknown job $1" >&2; return 2 ;;
  esac
}

run_job() {  # job, training budget
  local job=$1 budget=$2 base script name extra=()
  read -r base script name _ _ <<< "$(job_spec "$job")"
  case $job in
    qa-bge) extra=(--dump-teacher-topk "$OUT/bge-small-squad-topk8.safetensors.xz" --topk 8
                   --temperature 2) ;;
    qa-minilm-kd) extra=(--teacher-topk .devcarry/teacher/bge-small-squad-topk8.safetensors.xz
                         --alpha 0.5 --temperature 2) ;;
  esac
  unpack_base "$base"
  local t0=$SECONDS
  echo "== $job: $script --base $base, training budget ${budget}s"
  # shellcheck disable=SC2086
  "$PY" "recipes/$script" --base "$base" --output-dir "models/$name" --bf16 --seed 42 \
    --time-budget-s "$budget" "${extra[@]}" $EXTRA_ARGS 2>&1 | tee "/tmp/$name.log"
  local rc=${PIPESTATUS[0]}
  mkdir -p "models/$name"
  cp "/tmp/$name.log" "models/$name/train.log"
  tar -C models -cf "$OUT/$name.tar" "$name"
  echo "== $job exit $rc in $((SECONDS - t0)) s -> $OUT/$name.tar"
  return "$rc"
}

[ $# -gt 0 ] || { sed -n '2,32p' "$0"; exit 2; }
for job in "$@"; do job_spec "$job" > /dev/null; done  # fail early on a typo
# Share what is left of the call (CALL_LIMIT_S) among the remaining jobs, after their
# overheads; a job never gets more than its own default (or TRAIN_BUDGET_S when set).
CALL_LIMIT_S=${CALL_LIMIT_S:-570}
jobs=("$@")
failed=()
for ((j = 0; j < ${#jobs[@]}; j++)); do
  over=0
  for ((k = j; k < ${#jobs[@]}; k++)); do
    read -r _ _ _ _ o <<< "$(job_spec "${jobs[k]}")"; over=$((over + o))
  done
  read -r _ _ _ own _ <<< "$(job_spec "${jobs[j]}")"
  own=${TRAIN_BUDGET_S:-$own}
  share=$(( (CALL_LIMIT_S - SECONDS - over) / (${#jobs[@]} - j) ))
  budget=$(( share < own ? share : own ))
  [ "$budget" -ge 30 ] || budget=30
  run_job "${jobs[j]}" "$budget" || failed+=("${jobs[j]}")
done
ls -l "$OUT"
if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; exit 1; fi
