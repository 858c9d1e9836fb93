"""Black-box tests of `kiln serve` over HTTP/REST with the official Triton client library
(tritonclient.http) and raw HTTP where the client cannot send a broken request. Model control,
readiness and shutdown are in server_lifecycle_test.py.

    .venv/bin/python tests/e2e/server_http_test.py BUILD_DIR/tools/kiln/kiln
"""
import gzip
import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

import numpy as np  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

MAX_INPUT = 1 << 20  # --http-max-input-size of the main server


def tensor(name, array, binary=True):
    dtype = "BYTES" if array.dtype == object else {
        np.float32: "FP32", np.int64: "INT64", np.int32: "INT32"}[array.dtype.type]
    t = httpclient.InferInput(name, list(array.shape), dtype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def ids_inputs(golden, items, binary=True, with_types=True):
    ids, mask, types = ks.padded_ids(golden, items, with_types)
    out = [tensor("input_ids", ids, binary), tensor("attention_mask", mask, binary)]
    if with_types:
        out.append(tensor("token_type_ids", types, binary))
    return out


class HttpTest(ks.ServerTestCase, unittest.TestCase):
    server_args = ("--http-max-input-size", str(MAX_INPUT))

    @classmethod
    def build_repository(cls, repo):
        ks.build_standard_repository(repo)

    def setUp(self):
        self.client = httpclient.InferenceServerClient(self.server.http_url, concurrency=16)

    def tearDown(self):
        self.client.close()

    # ------------------------------------------------------------ helpers

    def identity_request(self, client=None, **kwargs):
        x = np.arange(16, dtype=np.float32) * 0.5 - 3.0
        result = (client or self.client).infer("identity", [tensor("INPUT0", x)], **kwargs)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), x)
        return result

    def assert_serving(self):
        """After an error the server must still answer a valid request."""
        self.identity_request()

    def assert_error(self, status, fn, *args, **kwargs):
        with self.assertRaises(InferenceServerException) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status(), status, cm.exception.message())
        return cm.exception.message()

    def raw(self, method, path, body=b"", headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, dict(r.getheaders()), r.read()
        finally:
            conn.close()

    def assert_json_error(self, status, body, *words):
        doc = json.loads(body)
        self.assertIn("error", doc)
        for w in words:
            self.assertIn(w.lower(), doc["error"].lower())
        return doc["error"]

    def stats(self, model):
        s = self.client.get_inference_statistics(model)["model_stats"]
        self.assertEqual(len(s), 1)
        return s[0]

    # ------------------------------------------------------------ health and metadata

    def test_health(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())
        status, _, body = self.raw("GET", "/v2/health/ready")
        self.assertEqual((status, body), (200, b""))

    def test_server_metadata(self):
        md = self.client.get_server_metadata()
        self.assertEqual(md["name"], "kiln")
        self.assertTrue(md["version"])
        for ext in ("binary_tensor_data", "statistics", "model_repository"):
            self.assertIn(ext, md["extensions"])

    def test_model_ready(self):
        self.assertTrue(self.client.is_model_ready("identity"))
        self.assertTrue(self.client.is_model_ready("identity", "1"))
        self.assertTrue(self.client.is_model_ready("seq_cls", "2"))
        # Default version policy (latest 1): version 1 exists but is not served.
        self.assertFalse(self.client.is_model_ready("seq_cls", "1"))
        self.assertFalse(self.client.is_model_ready("seq_cls", "3"))
        self.assertFalse(self.client.is_model_ready("no_such_model"))
        status, _, _ = self.raw("GET", "/v2/models/no_such_model/ready")
        self.assertIn(status, (400, 404))  # Triton: 400; kiln: 404 with an error naming it

    def test_model_metadata(self):
        md = self.client.get_model_metadata("identity")
        self.assertEqual(md["name"], "identity")
        self.assertEqual(md["versions"], ["1"])
        self.assertEqual(md["inputs"], [{"name": "INPUT0", "datatype": "FP32", "shape": [16]}])
        self.assertEqual(md["outputs"], [{"name": "OUTPUT0", "datatype": "FP32", "shape": [16]}])
        # max_batch_size > 0: the batch dimension shows as -1.
        md = self.client.get_model_metadata("multi")
        self.assertEqual([(t["name"], t["datatype"], t["shape"]) for t in md["inputs"]],
                         [("INPUT0", "FP32", [-1, -1]), ("INPUT1", "INT64", [-1, 3]),
                          ("INPUT2", "BYTES", [-1, 1])])
        self.assertEqual([(t["name"], t["datatype"], t["shape"]) for t in md["outputs"]],
                         [("OUTPUT0", "FP32", [-1, -1]), ("OUTPUT1", "INT64", [-1, 3]),
                          ("OUTPUT2", "BYTES", [-1, 1])])
        md = self.client.get_model_metadata("seq_cls")
        self.assertEqual(md["versions"], ["2"])
        self.assertEqual({t["name"]: (t["datatype"], t["shape"]) for t in md["inputs"]},
                         {"input_ids": ("INT64", [-1, -1]), "attention_mask": ("INT64", [-1, -1]),
                          "token_type_ids": ("INT64", [-1, -1])})
        self.assertEqual({t["name"]: (t["datatype"], t["shape"]) for t in md["outputs"]},
                         {"logits": ("FP32", [-1, 3]), "probabilities": ("FP32", [-1, 3]),
                          "label": ("BYTES", [-1, 1]),
                          "last_hidden_state": ("FP32", [-1, -1, 64])})
        md = self.client.get_model_metadata("seq_cls", "2")
        self.assertEqual(md["versions"], ["2"])
        md = self.client.get_model_metadata("qa")  # max_batch_size 0: no batch dimension
        self.assertEqual({t["name"]: t["shape"] for t in md["outputs"]},
                         {"start_logits": [-1], "end_logits": [-1], "last_hidden_state": [-1, 64]})
        msg = self.assert_error("404", self.client.get_model_metadata, "no_such_model")
        self.assertIn("no_such_model", msg)
        self.assert_error("404", self.client.get_model_metadata, "seq_cls", "1")

    def test_model_metadata_minilm(self):
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        md = self.client.get_model_metadata("minilm")
        inputs = {t["name"]: (t["datatype"], t["shape"]) for t in md["inputs"]}
        self.assertEqual(inputs["TEXT"], ("BYTES", [-1, 1]))
        self.assertEqual(inputs["TEXT_PAIR"], ("BYTES", [-1, 1]))
        self.assertEqual(md["outputs"][0], {"name": "embedding", "datatype": "FP32",
                                            "shape": [-1, 384]})

    def test_model_config(self):
        c = self.client.get_model_config("identity")
        self.assertEqual(c["name"], "identity")
        self.assertEqual(c["backend"], "identity")
        self.assertEqual(c["max_batch_size"], 0)
        self.assertEqual(c["input"][0]["name"], "INPUT0")
        self.assertEqual(c["input"][0]["data_type"], "TYPE_FP32")
        self.assertEqual(c["input"][0]["dims"], [16])
        self.assertEqual(c["instance_group"][0]["count"], 2)
        self.assertEqual(c["instance_group"][0]["kind"], "KIND_CPU")
        # Outputs of an identity model are auto-completed from its inputs.
        c = self.client.get_model_config("multi")
        self.assertEqual([(o["name"], o["data_type"], o["dims"]) for o in c["output"]],
                         [("OUTPUT0", "TYPE_FP32", [-1]), ("OUTPUT1", "TYPE_INT64", [3]),
                          ("OUTPUT2", "TYPE_STRING", [1])])
        # A config without a name gets the folder's; dynamic batching values come through.
        c = self.client.get_model_config("batched")
        self.assertEqual(c["name"], "batched")
        self.assertEqual(c["max_batch_size"], 32)
        self.assertEqual(c["dynamic_batching"]["max_queue_delay_microseconds"], 20000)
        c = self.client.get_model_config("queue1")
        self.assertEqual(c["dynamic_batching"]["default_queue_policy"]["max_queue_size"], 1)
        # `backend: "kiln"` alone: max_batch_size, inputs and outputs auto-completed.
        c = self.client.get_model_config("deep_st")
        self.assertEqual(c["name"], "deep_st")
        self.assertEqual(c["max_batch_size"], 64)
        self.assertEqual([i["name"] for i in c["input"]],
                         ["input_ids", "attention_mask", "token_type_ids"])
        self.assertTrue(all(i["data_type"] == "TYPE_INT64" and i["dims"] == [-1]
                            for i in c["input"]))
        self.assertEqual([(o["name"], o["dims"]) for o in c["output"]],
                         [("embedding", [64]), ("last_hidden_state", [-1, 64])])
        # Declared inputs stay as written; only the outputs are auto-completed.
        c = self.client.get_model_config("qa")
        self.assertEqual(c["max_batch_size"], 0)
        self.assertEqual([i["name"] for i in c["input"]], ["input_ids", "token_type_ids"])
        self.assertEqual([o["name"] for o in c["output"]],
                         ["start_logits", "end_logits", "last_hidden_state"])
        self.assertEqual(self.client.get_model_config("seq_cls", "2")["output"][0]["dims"], [3])
        self.assert_error("404", self.client.get_model_config, "no_such_model")

    def test_repository_index(self):
        index = self.client.get_model_repository_index()
        names = sorted(e["name"] for e in index)
        expected = ks.STANDARD_MODELS + (["minilm"] if ks.minilm_present() else [])
        self.assertEqual(names, sorted(expected))
        for e in index:
            self.assertEqual(e["state"], "READY", e)
        self.assertEqual({e["name"]: e["version"] for e in index}["seq_cls"], "2")

    def test_load_unload_refused_in_none_mode(self):
        for fn in (self.client.load_model, self.client.unload_model):
            with self.assertRaises(InferenceServerException) as cm:
                fn("identity")
            self.assertIn("explicit", cm.exception.message())
        self.assertTrue(self.client.is_model_ready("identity"))

    # ------------------------------------------------------------ inference

    def test_identity_json_and_binary(self):
        x = np.linspace(-1, 1, 16).astype(np.float32)
        for in_binary in (False, True):
            for out_binary in (False, True):
                with self.subTest(in_binary=in_binary, out_binary=out_binary):
                    out = httpclient.InferRequestedOutput("OUTPUT0", binary_data=out_binary)
                    r = self.client.infer("identity", [tensor("INPUT0", x, in_binary)],
                                          outputs=[out], request_id=f"id-{in_binary}-{out_binary}")
                    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
                    resp = r.get_response()
                    self.assertEqual(resp["model_name"], "identity")
                    self.assertEqual(resp["model_version"], "1")
                    self.assertEqual(resp["id"], f"id-{in_binary}-{out_binary}")
                    self.assertEqual(resp["outputs"][0]["shape"], [16])
                    self.assertEqual(resp["outputs"][0]["datatype"], "FP32")
                    self.assertEqual("binary_data_size" in resp["outputs"][0].get(
                        "parameters", {}), out_binary)
        r = self.client.infer("identity", [tensor("INPUT0", x)], model_version="1")
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)

    def test_multi_datatypes(self):
        f = np.array([[1.5, -2.25, 3e-8, 1e30, 0.0], [7, 8, 9, 10, -0.0]], np.float32)
        i = np.array([[2**40, -5, 0], [-(2**62), 1, 2**53 + 1]], np.int64)
        for binary in (False, True):
            texts = ["héllo wörld ✓", ""] if not binary else [b"\x00\xff\x01 raw", "ünï".encode()]
            s = np.array([[t] for t in texts], dtype=object)
            with self.subTest(binary=binary):
                outs = [httpclient.InferRequestedOutput(n, binary_data=binary)
                        for n in ("OUTPUT0", "OUTPUT1", "OUTPUT2")]
                r = self.client.infer("multi", [tensor("INPUT0", f, binary),
                                                tensor("INPUT1", i, binary),
                                                tensor("INPUT2", s, binary)], outputs=outs)
                np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), f)
                self.assertEqual(r.as_numpy("OUTPUT1").dtype, np.int64)
                np.testing.assert_array_equal(r.as_numpy("OUTPUT1"), i)
                got = r.as_numpy("OUTPUT2")
                self.assertEqual(got.shape, (2, 1))
                want = [t if isinstance(t, bytes) else t.encode() for t in texts]
                self.assertEqual([g if isinstance(g, bytes) else g.encode()
                                  for g in got.reshape(-1)], want)
        # Only the requested output comes back.
        r = self.client.infer("multi", [tensor("INPUT0", f), tensor("INPUT1", i),
                                        tensor("INPUT2", np.array([[b"a"], [b"b"]], object))],
                              outputs=[httpclient.InferRequestedOutput("OUTPUT1")])
        self.assertEqual([o["name"] for o in r.get_response()["outputs"]], ["OUTPUT1"])
        self.assertIsNone(r.as_numpy("OUTPUT0"))

    def test_encoder_text_minilm_golden(self):
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        texts, golden = ks.minilm_golden()
        items = [0, 1, 13, 22, 23]  # SST-2, a question, ~200 tokens, truncated to 256
        batch = np.array([[texts[i].encode()] for i in items], dtype=object)
        for binary in (True, False):
            with self.subTest(binary=binary):
                r = self.client.infer("minilm", [tensor("TEXT", batch, binary)], outputs=[
                    httpclient.InferRequestedOutput("embedding", binary_data=binary)])
                emb = r.as_numpy("embedding")
                self.assertEqual(emb.shape, (len(items), 384))
                self.assertEqual(emb.dtype, np.float32)
                for row, i in enumerate(items):
                    self.assertLess(np.abs(emb[row] - golden[f"embedding.{i}"]).max(), 2e-5)
                    self.assertAlmostEqual(float(np.linalg.norm(emb[row])), 1.0, places=5)
        # All outputs (none named): only the embedding, not last_hidden_state.
        r = self.client.infer("minilm", [tensor("TEXT", batch[:1])])
        self.assertEqual([o["name"] for o in r.get_response()["outputs"]], ["embedding"])

    def test_encoder_text_minilm_matches_cli(self):
        # Texts that are not in the goldens, one far past the 256-token limit: the server must
        # tokenize and truncate exactly as `kiln infer` does.
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        texts = ks.sst2_sentences(40)[-3:] + [" ".join(ks.sst2_sentences(40)[:30])]
        cli = subprocess.run([ks.KILN, "infer", "--model", str(ks.MINILM_DIR), *texts],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(cli.returncode, 0, cli.stderr)
        want = [json.loads(line) for line in cli.stdout.splitlines()]
        self.assertEqual(want[-1]["tokens"], 256)
        batch = np.array([[t.encode()] for t in texts], dtype=object)
        emb = self.client.infer("minilm", [tensor("TEXT", batch)]).as_numpy("embedding")
        for row, w in enumerate(want):
            self.assertEqual(w["text"], texts[row])
            self.assertLess(np.abs(emb[row] - np.array(w["embedding"], np.float32)).max(), 1e-5)

    def test_encoder_text_minilm_hidden_state_and_ids(self):
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        texts, golden = ks.minilm_golden()
        r = self.client.infer("minilm", [tensor("TEXT", np.array([[texts[3]]], object))],
                              outputs=[httpclient.InferRequestedOutput("last_hidden_state")])
        hidden = r.as_numpy("last_hidden_state")
        want = golden["last_hidden_state.3"]
        self.assertEqual(hidden.shape, (1,) + want.shape)
        self.assertLess(np.abs(hidden[0] - want).max(), 2e-4)
        # The same sentence as token ids (the golden tokenizer's) gives the same embedding.
        ids = golden["input_ids.3"].astype(np.int64)[None]
        r = self.client.infer("minilm", [tensor("input_ids", ids)])
        self.assertLess(np.abs(r.as_numpy("embedding")[0] - golden["embedding.3"]).max(), 2e-5)

    def test_encoder_seq_cls_input_ids_golden(self):
        golden = ks.tiny_golden("bert_seq_cls")
        for binary in (True, False):
            with self.subTest(binary=binary):
                r = self.client.infer("seq_cls", ids_inputs(golden, [0, 1, 2, 3], binary),
                                      outputs=[httpclient.InferRequestedOutput(
                                          "logits", binary_data=binary)])
                logits = r.as_numpy("logits")
                self.assertEqual(logits.shape, (4, 3))
                for i in range(4):
                    self.assertLess(ks.rel_error(logits[i], golden[f"logits.{i}"]), 1e-4)
        self.assertEqual(r.get_response()["model_version"], "2")
        # last_hidden_state only when named: [rows, longest, hidden], zero beyond each row.
        r = self.client.infer("seq_cls", ids_inputs(golden, [0, 3]), outputs=[
            httpclient.InferRequestedOutput("last_hidden_state"),
            httpclient.InferRequestedOutput("logits")])
        hidden = r.as_numpy("last_hidden_state")
        self.assertEqual(hidden.shape, (2, 40, 64))
        self.assertLess(ks.rel_error(hidden[0, :3], golden["last_hidden_state.0"]), 1e-4)
        self.assertEqual(np.abs(hidden[0, 3:]).max(), 0.0)
        self.assertLess(ks.rel_error(hidden[1], golden["last_hidden_state.3"]), 1e-4)
        r = self.client.infer("seq_cls", ids_inputs(golden, [1]))
        self.assertEqual([o["name"] for o in r.get_response()["outputs"]],
                         ["logits", "probabilities", "label"])
        # The text-classification pipeline's view: softmax scores and the id2label name.
        z = golden["logits.1"].reshape(-1)
        p = np.exp(z - z.max())
        p /= p.sum()
        np.testing.assert_allclose(r.as_numpy("probabilities")[0], p, rtol=1e-4, atol=1e-6)
        names = {0: "negative", 1: "neutral", 2: "positive"}
        self.assertEqual(r.as_numpy("label")[0][0].decode(), names[int(np.argmax(z))])

    def test_encoder_embedding_token_cls_qa_golden(self):
        golden = ks.tiny_golden("bert_deep_st")
        r = self.client.infer("deep_st", ids_inputs(golden, [0, 1, 2, 3]))
        emb = r.as_numpy("embedding")
        self.assertEqual(emb.shape, (4, 64))
        for i in range(4):
            self.assertLess(ks.rel_error(emb[i], golden[f"embedding.{i}"]), 1e-4)
        golden = ks.tiny_golden("bert_token_cls")
        r = self.client.infer("token_cls", ids_inputs(golden, [1, 2]))
        logits = r.as_numpy("logits")
        self.assertEqual(logits.shape, (2, 24, 5))
        self.assertLess(ks.rel_error(logits[0, :11], golden["logits.1"]), 1e-4)
        self.assertLess(ks.rel_error(logits[1], golden["logits.2"]), 1e-4)
        # max_batch_size 0: a single sequence without the batch dimension.
        golden = ks.tiny_golden("bert_qa")
        ids = golden["input_ids.2"].astype(np.int64)
        types = golden["token_type_ids.2"].astype(np.int64)
        r = self.client.infer("qa", [tensor("input_ids", ids), tensor("token_type_ids", types)])
        self.assertEqual(r.as_numpy("start_logits").shape, (24,))
        self.assertLess(ks.rel_error(r.as_numpy("start_logits"), golden["start_logits.2"]), 1e-4)
        self.assertLess(ks.rel_error(r.as_numpy("end_logits"), golden["end_logits.2"]), 1e-4)

    def test_async_infer_many(self):
        n = 48
        pending = []
        for k in range(n):
            x = np.full((1, 4), k, np.float32) + np.arange(4, dtype=np.float32)
            pending.append((k, x, self.client.async_infer("batched", [tensor("INPUT0", x)],
                                                          request_id=f"req-{k}")))
        seen = set()
        for k, x, p in pending:
            r = p.get_result(timeout=30)
            rid = r.get_response()["id"]
            self.assertEqual(rid, f"req-{k}")
            self.assertNotIn(rid, seen)
            seen.add(rid)
            np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
        self.assertEqual(len(seen), n)

    def test_gzip_and_deflate_bodies(self):
        x = np.arange(16, dtype=np.float32)
        for req, resp in (("gzip", "gzip"), ("deflate", "deflate"), ("gzip", None)):
            with self.subTest(request=req, response=resp):
                for binary in (True, False):
                    r = self.client.infer("identity", [tensor("INPUT0", x, binary)],
                                          request_compression_algorithm=req,
                                          response_compression_algorithm=resp)
                    np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
        # Raw: a gzip JSON body and a gzip response.
        body = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [16],
                                       "data": x.tolist()}]}).encode()
        status, headers, out = self.raw("POST", "/v2/models/identity/infer", gzip.compress(body),
                                        {"Content-Encoding": "gzip", "Accept-Encoding": "gzip",
                                         "Content-Type": "application/json"})
        self.assertEqual(status, 200, out)
        self.assertEqual(headers.get("Content-Encoding"), "gzip")
        doc = json.loads(gzip.decompress(out))
        self.assertEqual(doc["outputs"][0]["data"], x.tolist())

    # ------------------------------------------------------------ errors

    def test_unknown_model(self):
        x = np.zeros(16, np.float32)
        msg = self.assert_error("404", self.client.infer, "no_such_model", [tensor("INPUT0", x)])
        self.assertIn("no_such_model", msg)
        self.assert_serving()
        self.assert_error("404", self.client.infer, "seq_cls", [tensor("INPUT0", x)],
                          model_version="7")
        self.assert_serving()

    def test_wrong_datatype(self):
        msg = self.assert_error("400", self.client.infer, "identity",
                                [tensor("INPUT0", np.zeros(16, np.int32))])
        self.assertIn("INPUT0", msg)
        self.assertIn("FP32", msg)
        self.assert_serving()

    def test_wrong_shape(self):
        for x in (np.zeros(8, np.float32), np.zeros((1, 16), np.float32)):
            msg = self.assert_error("400", self.client.infer, "identity", [tensor("INPUT0", x)])
            self.assertIn("shape", msg)
            self.assert_serving()
        msg = self.assert_error("400", self.client.infer, "batched",
                                [tensor("INPUT0", np.zeros((33, 4), np.float32))])
        self.assertIn("max_batch_size", msg)
        self.assert_serving()

    def test_missing_and_unknown_tensors(self):
        f = np.zeros((1, 2), np.float32)
        s = np.array([[b"x"]], object)
        msg = self.assert_error("400", self.client.infer, "multi",
                                [tensor("INPUT0", f), tensor("INPUT2", s)])
        self.assertIn("INPUT1", msg)
        msg = self.assert_error("400", self.client.infer, "identity",
                                [tensor("INPUT0", np.zeros(16, np.float32)),
                                 tensor("EXTRA", np.zeros(16, np.float32))])
        self.assertIn("EXTRA", msg)
        msg = self.assert_error("400", self.client.infer, "identity",
                                [tensor("INPUT0", np.zeros(16, np.float32))],
                                outputs=[httpclient.InferRequestedOutput("NOPE")])
        self.assertIn("NOPE", msg)
        # Encoder: neither TEXT nor input_ids; an id outside the vocabulary.
        msg = self.assert_error("400", self.client.infer, "seq_cls",
                                [tensor("attention_mask", np.ones((1, 3), np.int64))])
        self.assertIn("input_ids", msg)
        msg = self.assert_error("400", self.client.infer, "seq_cls",
                                [tensor("input_ids", np.array([[2, 9999]], np.int64))])
        self.assertIn("vocabulary", msg)
        self.assert_serving()

    def test_malformed_json(self):
        for body in (b'{"inputs": [', b"not json at all", b'{"inputs": 5}', b"[]"):
            with self.subTest(body=body):
                status, headers, out = self.raw("POST", "/v2/models/identity/infer", body,
                                                {"Content-Type": "application/json"})
                self.assertEqual(status, 400, out)
                self.assertIn("application/json", headers.get("Content-Type", ""))
                self.assert_json_error(status, out)
        status, _, out = self.raw("POST", "/v2/models/identity/infer", b'{"inputs": [')
        self.assert_json_error(status, out, "json")
        # Element count that does not match the shape.
        body = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [16],
                                       "data": list(range(15))}]}).encode()
        status, _, out = self.raw("POST", "/v2/models/identity/infer", body)
        self.assertEqual(status, 400, out)
        self.assert_json_error(status, out, "INPUT0")
        self.assert_serving()

    def test_binary_data_size_overrun(self):
        header = json.dumps({"inputs": [{"name": "INPUT0", "datatype": "FP32", "shape": [16],
                                         "parameters": {"binary_data_size": 64}}]}).encode()
        body = header + b"\x00" * 10  # 54 bytes short
        status, _, out = self.raw("POST", "/v2/models/identity/infer", body,
                                  {"Inference-Header-Content-Length": str(len(header)),
                                   "Content-Type": "application/octet-stream"})
        self.assertEqual(status, 400, out)
        self.assert_json_error(status, out)
        # A binary_data_size that the body holds but that does not fit the shape.
        status, _, out = self.raw("POST", "/v2/models/identity/infer", header.replace(
            b'"binary_data_size": 64', b'"binary_data_size": 32') + b"\x00" * 32,
            {"Inference-Header-Content-Length": str(len(header))})
        self.assertEqual(status, 400, out)
        self.assert_json_error(status, out, "INPUT0")
        # Inference-Header-Content-Length past the end of the body.
        status, _, out = self.raw("POST", "/v2/models/identity/infer", header,
                                  {"Inference-Header-Content-Length": str(len(header) + 100)})
        self.assertEqual(status, 400, out)
        self.assert_json_error(status, out)
        self.assert_serving()

    def test_body_over_max_input_size(self):
        body = b'{"inputs": []}' + b" " * (MAX_INPUT + 1024)
        try:
            status, _, out = self.raw("POST", "/v2/models/identity/infer", body)
        except (BrokenPipeError, ConnectionResetError) as e:
            self.fail(f"the server dropped the connection instead of answering 413: {e!r}")
        self.assertEqual(status, 413, out)
        self.assert_json_error(status, out)
        self.assert_serving()

    def test_compressed_body_inflating_over_max_input_size(self):
        body = gzip.compress(b'{"inputs": []}' + b" " * (2 * MAX_INPUT))
        self.assertLess(len(body), 16384)
        status, _, out = self.raw("POST", "/v2/models/identity/infer", body,
                                  {"Content-Encoding": "gzip"})
        self.assertEqual(status, 413, out)
        self.assert_serving()

    def test_corrupt_compressed_body(self):
        for enc in ("gzip", "deflate"):
            status, _, out = self.raw("POST", "/v2/models/identity/infer",
                                      b"\x1f\x8b\x08 definitely not gzip",
                                      {"Content-Encoding": enc})
            self.assertEqual(status, 400, out)
            self.assert_json_error(status, out)
        body = zlib.compress(b'{"inputs": [')
        status, _, out = self.raw("POST", "/v2/models/identity/infer", body,
                                  {"Content-Encoding": "deflate"})
        self.assertEqual(status, 400, out)
        self.assert_serving()

    def test_unknown_route_and_method(self):
        status, _, out = self.raw("GET", "/v2/nothing/here")
        self.assertEqual(status, 404)
        self.assert_json_error(status, out)
        status, _, out = self.raw("GET", "/v2/models/identity/infer")
        self.assertEqual(status, 405)
        self.assert_serving()

    # ------------------------------------------------------------ statistics and batching

    def test_statistics(self):
        golden = ks.tiny_golden("bert_seq_cls")
        before = self.stats("seq_cls")
        self.assertEqual(before["name"], "seq_cls")
        self.assertEqual(before["version"], "2")
        for key in ("success", "fail", "queue", "compute_input", "compute_infer",
                    "compute_output", "cache_hit", "cache_miss"):
            self.assertIn("count", before["inference_stats"][key])
            self.assertIn("ns", before["inference_stats"][key])
        self.client.infer("seq_cls", ids_inputs(golden, [0]))
        self.client.infer("seq_cls", ids_inputs(golden, [1]))
        self.client.infer("seq_cls", ids_inputs(golden, [2, 3]))
        with self.assertRaises(InferenceServerException):
            self.client.infer("seq_cls", [tensor("input_ids", np.array([[2, 9999]], np.int64))])
        after = self.stats("seq_cls")
        b, a = before["inference_stats"], after["inference_stats"]
        self.assertEqual(a["success"]["count"] - b["success"]["count"], 3)
        self.assertGreater(a["success"]["ns"], b["success"]["ns"])
        self.assertEqual(a["fail"]["count"] - b["fail"]["count"], 1)
        self.assertEqual(a["queue"]["count"] - b["queue"]["count"], 3)
        self.assertGreater(a["compute_infer"]["ns"], b["compute_infer"]["ns"])
        # No dynamic batching: one execution per request; inference_count counts rows.
        self.assertEqual(after["inference_count"] - before["inference_count"], 4)
        self.assertEqual(after["execution_count"] - before["execution_count"], 3)
        self.assertGreater(after["last_inference"], 1_600_000_000_000)  # ms since the epoch
        sizes = {s["batch_size"]: s["compute_infer"]["count"] for s in after["batch_stats"]}
        self.assertGreaterEqual(sizes.get(1, 0), 2)
        self.assertGreaterEqual(sizes.get(2, 0), 1)

    def test_statistics_queue_time(self):
        # One request waits out the 300 ms batch delay: that is queue time, not compute.
        before = self.stats("timeout_override")["inference_stats"]
        self.client.infer("timeout_override", [tensor("INPUT0", np.zeros((1, 4), np.float32))])
        after = self.stats("timeout_override")["inference_stats"]
        queue_ns = after["queue"]["ns"] - before["queue"]["ns"]
        self.assertGreater(queue_ns, 250e6)
        self.assertLess(after["compute_infer"]["ns"] - before["compute_infer"]["ns"], 50e6)
        self.assertGreaterEqual(after["success"]["ns"] - before["success"]["ns"], queue_ns)

    def test_statistics_all_and_unknown(self):
        names = {s["name"] for s in self.client.get_inference_statistics()["model_stats"]}
        self.assertTrue(set(ks.STANDARD_MODELS) <= names, names)
        s = self.client.get_inference_statistics("seq_cls", "2")["model_stats"]
        self.assertEqual([(x["name"], x["version"]) for x in s], [("seq_cls", "2")])
        self.assert_error("404", self.client.get_inference_statistics, "no_such_model")

    def test_dynamic_batching(self):
        before = self.stats("batched")
        n = 16
        start = threading.Barrier(n)
        results = [None] * n

        def one(k):
            client = httpclient.InferenceServerClient(self.server.http_url)
            x = np.full((1, 4), k, np.float32)
            start.wait()
            r = client.infer("batched", [tensor("INPUT0", x)])
            results[k] = np.array_equal(r.as_numpy("OUTPUT0"), x)
            client.close()

        threads = [threading.Thread(target=one, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(results, [True] * n)
        after = self.stats("batched")
        inferences = after["inference_count"] - before["inference_count"]
        executions = after["execution_count"] - before["execution_count"]
        self.assertEqual(inferences, n)
        self.assertLess(executions, inferences)
        self.assertTrue(any(s["batch_size"] > 1 for s in after["batch_stats"]),
                        after["batch_stats"])
        self.assertEqual(sum(s["batch_size"] * s["compute_infer"]["count"]
                             for s in after["batch_stats"]), after["inference_count"])
        self.assertEqual(self.server.metric("nv_inference_exec_count", model="batched",
                                            version="1"), after["execution_count"])
        self.assertEqual(self.server.metric("nv_inference_count", model="batched", version="1"),
                         after["inference_count"])

    def test_encoder_dynamic_batching_matches_items(self):
        # Concurrent requests of 1 or 2 sequences of lengths 3..40 are packed into ragged
        # batches; every request must get exactly its own rows' logits back.
        golden = ks.tiny_golden("bert_seq_cls")
        before = self.stats("seq_cls_dyn")
        rng = np.random.default_rng(5)
        plans = [list(rng.choice(4, size=int(rng.integers(1, 3)), replace=False))
                 for _ in range(24)]
        pending = [self.client.async_infer("seq_cls_dyn", ids_inputs(golden, items),
                                           request_id=str(k))
                   for k, items in enumerate(plans)]
        for k, (items, p) in enumerate(zip(plans, pending)):
            r = p.get_result(timeout=30)
            self.assertEqual(r.get_response()["id"], str(k))
            logits = r.as_numpy("logits")
            self.assertEqual(logits.shape, (len(items), 3))
            for row, i in enumerate(items):
                self.assertLess(ks.rel_error(logits[row], golden[f"logits.{i}"]), 1e-4)
        after = self.stats("seq_cls_dyn")
        rows = sum(len(items) for items in plans)
        self.assertEqual(after["inference_count"] - before["inference_count"], rows)
        self.assertLess(after["execution_count"] - before["execution_count"], len(plans))
        self.assertTrue(any(s["batch_size"] > 2 for s in after["batch_stats"]),
                        after["batch_stats"])

    def test_queue_full_rejects_with_503(self):
        n = 6
        x = np.zeros((1, 4), np.float32)
        pending = [self.client.async_infer("queue1", [tensor("INPUT0", x)]) for _ in range(n)]
        ok, rejected = 0, 0
        for p in pending:
            try:
                p.get_result(timeout=30)
                ok += 1
            except InferenceServerException as e:
                self.assertEqual(e.status(), "503", e.message())
                self.assertIn("queue", e.message())
                rejected += 1
        self.assertEqual(ok + rejected, n)
        self.assertGreaterEqual(ok, 1)
        self.assertGreaterEqual(rejected, 1)
        self.assert_serving()

    def test_queue_timeout_reject(self):
        x = np.zeros((1, 4), np.float32)
        t0 = time.monotonic()
        msg = self.assert_error("503", self.client.infer, "timeout_reject", [tensor("INPUT0", x)])
        self.assertLess(time.monotonic() - t0, 1.5)  # well before the 2 s batch delay
        self.assertIn("timeout", msg)
        # The request's own timeout (microseconds) where the policy allows overriding it.
        msg = self.assert_error("503", self.client.infer, "timeout_override",
                                [tensor("INPUT0", x)], timeout=20000)
        self.assertIn("timeout", msg)
        r = self.client.infer("timeout_override", [tensor("INPUT0", x)])
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
        # DELAY: past its 20 ms timeout the request still runs (after the 200 ms batch delay).
        r = self.client.infer("timeout_delay", [tensor("INPUT0", x + 1)])
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x + 1)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
