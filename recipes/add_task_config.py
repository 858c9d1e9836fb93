"""Writes config.json (the task model's class and labels) into adapter directories trained
before recipes saved it, from the base model's config.json and the adapter's metrics.json:

    .venv-ref/bin/python recipes/add_task_config.py models/minilm-sst2-lora ...

The result equals what `save_adapter` now writes: the base config with `architectures` set
to the task class and id2label/label2id from the labels the recipe trained with.
"""

import json
import sys
from pathlib import Path

from transformers import AutoConfig

ROOT = Path(__file__).resolve().parents[1]
CLASSES = {"SEQ_CLS": "ForSequenceClassification", "TOKEN_CLS": "ForTokenClassification",
           "QUESTION_ANS": "ForQuestionAnswering"}


def main():
    for d in map(Path, sys.argv[1:]):
        adapter = json.loads((d / "adapter_config.json").read_text())
        metrics = json.loads((d / "metrics.json").read_text())
        labels = metrics.get("labels") or ["start", "end"]
        config = AutoConfig.from_pretrained(str(ROOT / adapter["base_model_name_or_path"]),
                                            num_labels=len(labels),
                                            id2label=dict(enumerate(labels)),
                                            label2id={l: i for i, l in enumerate(labels)})
        prefix = {"bert": "Bert", "roberta": "Roberta", "distilbert": "DistilBert"}[config.model_type]
        config.architectures = [prefix + CLASSES[adapter["task_type"]]]
        config.save_pretrained(str(d))
        print(d, config.architectures[0], labels)


if __name__ == "__main__":
    main()
