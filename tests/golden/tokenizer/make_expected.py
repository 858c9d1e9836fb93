"""Writes the expected tokenizer outputs for the C++ parity test (tokenizer_parity_test).

Every case is encoded with the Hugging Face `tokenizers` package (the reference) and written
as one JSON line: the tokenizer, the input text(s), the options and the expected encoding with
character offsets, overflowing windows included. The corpus comes from Debian packages
(see corpus.py), so the output is deterministic. Usage:

    .venv/bin/python tests/golden/tokenizer/make_expected.py OUT.jsonl

The output is skipped when it is newer than this script, corpus.py and the fixtures.
"""
import json
import os
import random
import sys

os.environ.setdefault("RUST_BACKTRACE", "0")  # reference panics are expected cases, not noise

from tokenizers import Tokenizer
from tokenizers.implementations import BertWordPieceTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)
import corpus  # noqa: E402

MINILM = os.path.join(ROOT, "var", "models", "all-MiniLM-L6-v2")
ROBERTA = os.path.join(HERE, "roberta_bpe", "tokenizer.json")
STRATEGIES = ["longest_first", "only_first", "only_second"]


def load_tokenizers():
    minilm = Tokenizer.from_file(os.path.join(MINILM, "tokenizer.json"))
    vocab = BertWordPieceTokenizer(os.path.join(MINILM, "vocab.txt"), lowercase=True)
    roberta = Tokenizer.from_file(ROBERTA)
    toks = {"minilm_json": minilm, "minilm_vocab": vocab, "roberta": roberta}
    for t in toks.values():
        t.no_truncation()
        t.no_padding()
    return toks


def encoding_dict(e):
    return {
        "ids": e.ids,
        "type_ids": e.type_ids,
        "special": e.special_tokens_mask,
        "seq": [-1 if s is None else s for s in e.sequence_ids],
        "words": [-1 if w is None else w for w in e.word_ids],
        "offsets": [list(o) for o in e.offsets],
        "overflowing": [encoding_dict(o) for o in e.overflowing],
    }


def encode_case(tok, name, a, b=None, add_special=True, max_length=0, stride=0,
                strategy="longest_first"):
    case = {"tok": name, "a": a, "add_special": add_special, "max_length": max_length,
            "stride": stride, "strategy": strategy}
    if b is not None:
        case["b"] = b
    try:
        if max_length > 0:
            tok.enable_truncation(max_length, stride=stride, strategy=strategy)
        else:
            tok.no_truncation()
        if b is None:
            e = tok.encode(a, add_special_tokens=add_special)
        else:
            e = tok.encode(a, b, add_special_tokens=add_special)
        case["enc"] = encoding_dict(e)
    except BaseException as err:  # pyo3 panics derive from BaseException
        if isinstance(err, KeyboardInterrupt):
            raise
        case["error"] = str(err)[:200]
    return case


def cases(toks):
    sentences = corpus.sentences()
    adversarial = corpus.adversarial()
    rng = random.Random(20240917)
    questions = corpus.sample(corpus.wordnet_sentences(), 4000)
    contexts = corpus.gcide_paragraphs()
    for name, tok in toks.items():
        tok.no_truncation()
        # Plain singles, in batches (no truncation, specials on).
        for text in sentences + adversarial:
            yield encode_case(tok, name, text)
        for text in adversarial:
            yield encode_case(tok, name, text, add_special=False)
            yield encode_case(tok, name, text, text[::-1])
        # Question/context pairs with truncation, stride and overflow.
        for i in range(1200):
            q = questions[rng.randrange(len(questions))]
            ctx = " ".join(contexts[rng.randrange(len(contexts))] for _ in range(rng.randint(1, 4)))
            max_length = rng.choice([64, 96, 128, 192, 256, 384])
            stride = rng.choice([16, 32, 48, 64, 128])
            if stride >= max_length - 4:
                stride = 16
            strategy = STRATEGIES[i % 3]
            if rng.random() < 0.1:
                q, ctx = ctx, q  # long first sequence
            yield encode_case(tok, name, q, ctx, True, max_length, stride, strategy)
        # Singles with truncation/overflow, and a few edge parameters.
        for i in range(300):
            text = " ".join(contexts[rng.randrange(len(contexts))] for _ in range(rng.randint(1, 4)))
            max_length = rng.choice([8, 16, 32, 64, 128])
            stride = rng.choice([0, 1, 4, 8, 16, 32])
            yield encode_case(tok, name, text, None, rng.random() < 0.8, max_length, stride,
                              STRATEGIES[i % 3])
        for a, b in [("short", "also short"), ("x " * 12, "y " * 9), ("", ""), ("a", "")]:
            for max_length in (2, 3, 4, 5, 6, 10):
                for stride in (0, 1, 2, 3):
                    for strategy in STRATEGIES:
                        yield encode_case(tok, name, a, b, True, max_length, stride, strategy)
                        yield encode_case(tok, name, a, b, False, max_length, stride, strategy)


def up_to_date(out):
    if not os.path.exists(out):
        return False
    t = os.path.getmtime(out)
    deps = [os.path.abspath(__file__), os.path.join(HERE, "corpus.py"), ROBERTA,
            os.path.join(MINILM, "tokenizer.json"), os.path.join(MINILM, "vocab.txt")]
    return all(os.path.getmtime(d) < t for d in deps)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make_expected.py OUT.jsonl")
    out = sys.argv[1]
    if up_to_date(out):
        print("make_expected: up to date:", out)
        return
    if not corpus.available():
        sys.exit("make_expected: wordnet-base / dict-gcide are not installed")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    toks = load_tokenizers()
    n = 0
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for case in cases(toks):
            f.write(json.dumps(case, ensure_ascii=False))
            f.write("\n")
            n += 1
    os.replace(tmp, out)
    print("make_expected: wrote", n, "cases to", out)


if __name__ == "__main__":
    main()
