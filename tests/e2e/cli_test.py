"""Black-box tests of the `kiln` command on the real default model (run by ctest).

    python tests/e2e/cli_test.py BUILD_DIR/tools/kiln/kiln

Checks embeddings printed by `kiln infer` (arguments and stdin) against the golden
sentence-transformers embeddings, `kiln inspect`, `kiln bench --json`, and that bad input
gives a clear error and exit code 1. Standard library only.
"""
import json
import math
import struct
import subprocess
import sys
import unittest

KILN = sys.argv.pop(1) if len(sys.argv) > 1 else "build/release/tools/kiln/kiln"
MODEL = "var/models/all-MiniLM-L6-v2"
GOLDEN = "tests/golden/models/minilm_l6"


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        begin, end = t["data_offsets"]
        out[name] = struct.unpack(f"<{(end - begin) // 4}f", data[begin:end])
    return out


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def kiln(*args, stdin=None):
    return subprocess.run([KILN, *args], input=stdin, capture_output=True, text=True, timeout=120)


class CliTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(GOLDEN + ".json") as f:
            cls.texts = json.load(f)["texts"][:3]
        cls.golden = read_safetensors(GOLDEN + ".safetensors")

    def check_embeddings(self, stdout):
        lines = [json.loads(line) for line in stdout.splitlines()]
        self.assertEqual(len(lines), len(self.texts))
        for i, line in enumerate(lines):
            self.assertEqual(line["text"], self.texts[i])
            self.assertEqual(line["dims"], 384)
            self.assertGreater(cosine(line["embedding"], self.golden[f"embedding.{i}"]), 0.99999)

    def test_infer_arguments(self):
        r = kiln("infer", "--model", MODEL, *self.texts)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_embeddings(r.stdout)

    def test_infer_stdin_bf16(self):
        r = kiln("infer", "--model", MODEL, "--precision", "bf16", stdin="\n".join(self.texts))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [json.loads(line) for line in r.stdout.splitlines()]
        for i, line in enumerate(lines):
            self.assertGreater(cosine(line["embedding"], self.golden[f"embedding.{i}"]), 0.999)

    def test_similarity(self):
        r = kiln("infer", "--model", MODEL, "--similarity", "a cat", "a kitten", "tax law")
        self.assertEqual(r.returncode, 0, r.stderr)
        sim = json.loads(r.stdout.splitlines()[-1])["cosine_similarity"]
        self.assertAlmostEqual(sim[0][0], 1.0, places=3)
        self.assertGreater(sim[0][1], sim[0][2])  # cat ~ kitten more than tax law

    def test_inspect(self):
        r = kiln("inspect", MODEL, "--layers")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("6 layers, hidden 384, 12 heads x 32", r.stdout)
        self.assertIn("onednn:brg", r.stdout)

    def test_bench_json(self):
        r = kiln("bench", "--model", MODEL, "--batch", "2", "--seq", "16", "--min-seconds", "0.1",
                 "--min-iters", "2", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        row = json.loads(r.stdout.splitlines()[0])
        self.assertEqual((row["batch"], row["seq"]), (2, 16))
        self.assertGreater(row["seq_per_s"], 0)

    def test_errors(self):
        r = kiln("infer", "--model", "/nonexistent", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)
        r = kiln("infer", "--model", MODEL, "--precision", "fp8", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("fp8", r.stderr)
        r = kiln("infer", "--model", MODEL, "--task", "qa", "x")
        self.assertEqual(r.returncode, 1)
        self.assertIn("no qa head", r.stderr)
        # "\udcff" reaches the process as the lone byte 0xff: invalid UTF-8.
        r = kiln("infer", "--model", MODEL, "bad \udcff byte")
        self.assertEqual(r.returncode, 1)
        self.assertIn("INVALID_ARGUMENT", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
