#!/usr/bin/env bash
# Extracts kiln's held-out evaluation sets and calibration texts from the shared labelled data
# (../shared/data, see its README.md and SOURCE.md files) into var/data/, as TSV and plain text
# so that `kiln eval` and `kiln build` read them without a JSON dependency. Idempotent: a stamp
# records what was written; delete var/data to force a rebuild. Python standard library only.
#
# Evaluation uses only dev sets; calibration uses only train sets, so the two never overlap:
#   sst2_dev.tsv           label<TAB>sentence    GLUE SST-2 dev, all 872 (probe/classifier test)
#   sst2_probe_train.tsv   label<TAB>sentence    SST-2 train rows 1-2000 (probe training only)
#   squad_dev_qa.tsv       id<TAB>question<TAB>context<TAB>answer[<TAB>answer...]
#                                                SQuAD v1.1 dev, all 10,570 questions
#   squad_dev_corpus.tsv   paragraph<TAB>context SQuAD v1.1 dev paragraphs (retrieval corpus)
#   squad_dev_queries.tsv  paragraph<TAB>question the first question of each dev paragraph
#   calib_sst2.txt         sentence              SST-2 train rows 10001-12000 (calibration)
#   calib_squad_train.txt  text                  SQuAD v1.1 train (part 1): 1000 questions and
#                                                1000 contexts, interleaved (calibration)
#   calib_squad_train_qa.tsv question<TAB>context SQuAD v1.1 train (part 1): 1000 pairs (QA
#                                                calibration)
# Tabs, carriage returns and newlines inside texts become spaces (lengths are unchanged).
# There is no STS (human similarity score) set in ../shared/data, so no Spearman evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."

SRC=${KILN_SHARED_DATA:-../shared/data}
OUT=var/data
VERSION="kiln-eval-data v1"

if [ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$VERSION" ]; then
  exit 0
fi
for f in sst2/train.tsv sst2/dev.tsv squad_v1.1/dev-v1.1.json.zip \
         squad_v1.1/train-v1.1.explorer.part1.json.xz; do
  if [ ! -f "$SRC/$f" ]; then
    echo "prepare_eval_data: missing $SRC/$f (set KILN_SHARED_DATA)" >&2
    exit 1
  fi
done
mkdir -p "$OUT"

python3 - "$SRC" "$OUT" <<'PY'
import json, lzma, os, sys, zipfile

src, out = sys.argv[1], sys.argv[2]

def clean(s):
    return s.replace("\t", " ").replace("\r", " ").replace("\n", " ")

def write(name, rows):
    tmp = os.path.join(out, name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write("\t".join(clean(x) for x in r) if isinstance(r, tuple) else clean(r))
            f.write("\n")
    os.replace(tmp, os.path.join(out, name))
    return len(rows)

def read_sst2(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header == ["sentence", "label"], header
        for line in f:
            sentence, label = line.rstrip("\n").split("\t")
            assert label in ("0", "1"), line
            rows.append((label, sentence.strip()))
    return rows

train = read_sst2(os.path.join(src, "sst2/train.tsv"))
dev = read_sst2(os.path.join(src, "sst2/dev.tsv"))
n = {}
n["sst2_dev.tsv"] = write("sst2_dev.tsv", dev)
n["sst2_probe_train.tsv"] = write("sst2_probe_train.tsv", train[:2000])
n["calib_sst2.txt"] = write("calib_sst2.txt", [s for _, s in train[10000:12000]])

with zipfile.ZipFile(os.path.join(src, "squad_v1.1/dev-v1.1.json.zip")) as z:
    squad_dev = json.load(z.open("dev-v1.1.json"))
qa, corpus, queries = [], [], []
for article in squad_dev["data"]:
    for para in article["paragraphs"]:
        p = str(len(corpus))
        corpus.append((p, para["context"]))
        queries.append((p, para["qas"][0]["question"]))
        for q in para["qas"]:
            answers = [a["text"] for a in q["answers"]]
            qa.append((q["id"], q["question"], para["context"], *answers))
n["squad_dev_qa.tsv"] = write("squad_dev_qa.tsv", qa)
n["squad_dev_corpus.tsv"] = write("squad_dev_corpus.tsv", corpus)
n["squad_dev_queries.tsv"] = write("squad_dev_queries.tsv", queries)

with lzma.open(os.path.join(src, "squad_v1.1/train-v1.1.explorer.part1.json.xz"), "rt",
               encoding="utf-8") as f:
    squad_train = json.load(f)
pairs, contexts = [], []
for article in squad_train["data"]:
    for para in article["paragraphs"]:
        contexts.append(para["context"])
        for q in para["qas"][:1]:
            pairs.append((q["question"], para["context"]))
# Every 9th paragraph, to spread the 1000 over many articles.
pairs = pairs[::9][:1000]
texts = []
for q, c in pairs:
    texts += [q, c]
n["calib_squad_train.txt"] = write("calib_squad_train.txt", texts)
n["calib_squad_train_qa.tsv"] = write("calib_squad_train_qa.tsv", pairs)

for name, count in n.items():
    print(f"prepare_eval_data: {out}/{name}: {count} rows")
PY
echo "$VERSION" > "$OUT/.stamp"
