"""Black-box tests of `kiln serve` over gRPC with the official Triton client library
(tritonclient.grpc): the same API surface as server_http_test.py, plus streaming. Model
control, readiness and shutdown are in server_lifecycle_test.py.

    .venv/bin/python tests/e2e/server_grpc_test.py BUILD_DIR/tools/kiln/kiln
"""
import os
import queue
import sys
import time
import unittest
from functools import partial

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

NOT_FOUND = "StatusCode.NOT_FOUND"
INVALID = "StatusCode.INVALID_ARGUMENT"
UNAVAILABLE = "StatusCode.UNAVAILABLE"


def tensor(name, array):
    dtype = "BYTES" if array.dtype == object else {
        np.float32: "FP32", np.int64: "INT64", np.int32: "INT32"}[array.dtype.type]
    t = grpcclient.InferInput(name, list(array.shape), dtype)
    t.set_data_from_numpy(array)
    return t


def ids_inputs(golden, items, with_types=True):
    ids, mask, types = ks.padded_ids(golden, items, with_types)
    out = [tensor("input_ids", ids), tensor("attention_mask", mask)]
    if with_types:
        out.append(tensor("token_type_ids", types))
    return out


def collect(results, result, error):
    results.put((result, error))


class GrpcTest(ks.ServerTestCase, unittest.TestCase):
    @classmethod
    def build_repository(cls, repo):
        ks.build_standard_repository(repo)

    def setUp(self):
        self.client = grpcclient.InferenceServerClient(self.server.grpc_url)

    def tearDown(self):
        self.client.close()

    # ------------------------------------------------------------ helpers

    def assert_serving(self):
        x = np.arange(16, dtype=np.float32)
        r = self.client.infer("identity", [tensor("INPUT0", x)])
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)

    def assert_error(self, status, fn, *args, **kwargs):
        with self.assertRaises(InferenceServerException) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.status(), status, cm.exception.message())
        return cm.exception.message()

    def stats(self, model):
        s = self.client.get_inference_statistics(model, as_json=True)["model_stats"]
        self.assertEqual(len(s), 1)
        return s[0]

    # ------------------------------------------------------------ health and metadata

    def test_health(self):
        self.assertTrue(self.client.is_server_live())
        self.assertTrue(self.client.is_server_ready())

    def test_server_metadata(self):
        md = self.client.get_server_metadata()
        self.assertEqual(md.name, "kiln")
        self.assertTrue(md.version)
        for ext in ("binary_tensor_data", "statistics", "model_repository"):
            self.assertIn(ext, md.extensions)

    def test_model_ready(self):
        self.assertTrue(self.client.is_model_ready("identity"))
        self.assertTrue(self.client.is_model_ready("identity", "1"))
        self.assertTrue(self.client.is_model_ready("seq_cls", "2"))
        self.assertFalse(self.client.is_model_ready("seq_cls", "1"))
        self.assertFalse(self.client.is_model_ready("seq_cls", "3"))
        # Triton answers an unknown model with an error (NOT_FOUND) or ready=false.
        try:
            self.assertFalse(self.client.is_model_ready("no_such_model"))
        except InferenceServerException as e:
            self.assertEqual(e.status(), NOT_FOUND, e.message())

    def test_model_metadata(self):
        md = self.client.get_model_metadata("identity", as_json=True)
        self.assertEqual(md["name"], "identity")
        self.assertEqual(md["versions"], ["1"])
        self.assertEqual(md["inputs"], [{"name": "INPUT0", "datatype": "FP32", "shape": ["16"]}])
        md = self.client.get_model_metadata("multi")
        self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in md.inputs],
                         [("INPUT0", "FP32", [-1, -1]), ("INPUT1", "INT64", [-1, 3]),
                          ("INPUT2", "BYTES", [-1, 1])])
        self.assertEqual([(t.name, t.datatype, list(t.shape)) for t in md.outputs],
                         [("OUTPUT0", "FP32", [-1, -1]), ("OUTPUT1", "INT64", [-1, 3]),
                          ("OUTPUT2", "BYTES", [-1, 1])])
        md = self.client.get_model_metadata("deep_st")
        self.assertEqual(list(md.versions), ["1"])
        self.assertEqual({t.name: list(t.shape) for t in md.outputs},
                         {"embedding": [-1, 64], "last_hidden_state": [-1, -1, 64]})
        md = self.client.get_model_metadata("seq_cls", "2")
        self.assertEqual(list(md.versions), ["2"])
        msg = self.assert_error(NOT_FOUND, self.client.get_model_metadata, "no_such_model")
        self.assertIn("no_such_model", msg)
        self.assert_error(NOT_FOUND, self.client.get_model_metadata, "seq_cls", "1")

    def test_model_config(self):
        c = self.client.get_model_config("identity").config
        self.assertEqual((c.name, c.backend, c.max_batch_size), ("identity", "identity", 0))
        self.assertEqual(list(c.input[0].dims), [16])
        self.assertEqual(c.instance_group[0].count, 2)
        c = self.client.get_model_config("multi").config
        self.assertEqual([(o.name, list(o.dims)) for o in c.output],
                         [("OUTPUT0", [-1]), ("OUTPUT1", [3]), ("OUTPUT2", [1])])
        c = self.client.get_model_config("batched").config
        self.assertEqual(c.name, "batched")
        self.assertEqual(c.dynamic_batching.max_queue_delay_microseconds, 20000)
        policy = self.client.get_model_config("timeout_override").config.dynamic_batching \
            .default_queue_policy
        self.assertTrue(policy.allow_timeout_override)
        c = self.client.get_model_config("timeout_reject", as_json=True)["config"]
        policy = c["dynamic_batching"]["default_queue_policy"]
        self.assertEqual(policy.get("timeout_action", "REJECT"), "REJECT")  # 0 is omitted
        self.assertEqual(int(policy["default_timeout_microseconds"]), 50000)
        c = self.client.get_model_config("deep_st").config
        self.assertEqual(c.max_batch_size, 64)  # auto-completed
        self.assertEqual([i.name for i in c.input],
                         ["input_ids", "attention_mask", "token_type_ids"])
        self.assertEqual([(o.name, list(o.dims)) for o in c.output],
                         [("embedding", [64]), ("last_hidden_state", [-1, 64])])
        self.assert_error(NOT_FOUND, self.client.get_model_config, "no_such_model")

    def test_repository_index(self):
        index = self.client.get_model_repository_index().models
        expected = ks.STANDARD_MODELS + (["minilm"] if ks.minilm_present() else [])
        self.assertEqual(sorted(m.name for m in index), sorted(expected))
        self.assertTrue(all(m.state == "READY" for m in index))
        self.assertEqual({m.name: m.version for m in index}["seq_cls"], "2")

    def test_load_unload_refused_in_none_mode(self):
        for fn in (self.client.load_model, self.client.unload_model):
            with self.assertRaises(InferenceServerException) as cm:
                fn("identity")
            self.assertIn("explicit", cm.exception.message())
        self.assertTrue(self.client.is_model_ready("identity"))

    # ------------------------------------------------------------ inference

    def test_identity(self):
        x = np.linspace(-3, 3, 16).astype(np.float32)
        r = self.client.infer("identity", [tensor("INPUT0", x)], request_id="g-1",
                              outputs=[grpcclient.InferRequestedOutput("OUTPUT0")])
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
        resp = r.get_response()
        self.assertEqual((resp.model_name, resp.model_version, resp.id), ("identity", "1", "g-1"))
        self.assertEqual(list(resp.outputs[0].shape), [16])
        r = self.client.infer("identity", [tensor("INPUT0", x)], model_version="1")
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)

    def test_multi_datatypes(self):
        f = np.array([[1.5, -2.25, 3e-8], [7, 8, -0.0]], np.float32)
        i = np.array([[2**40, -5, 0], [-(2**62), 1, 2**53 + 1]], np.int64)
        s = np.array([[b"\x00\xff\x01 raw"], ["ünï ✓".encode()]], dtype=object)
        r = self.client.infer("multi", [tensor("INPUT0", f), tensor("INPUT1", i),
                                        tensor("INPUT2", s)])
        np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), f)
        self.assertEqual(r.as_numpy("OUTPUT1").dtype, np.int64)
        np.testing.assert_array_equal(r.as_numpy("OUTPUT1"), i)
        self.assertEqual(r.as_numpy("OUTPUT2").reshape(-1).tolist(), s.reshape(-1).tolist())
        r = self.client.infer("multi", [tensor("INPUT0", f), tensor("INPUT1", i),
                                        tensor("INPUT2", s)],
                              outputs=[grpcclient.InferRequestedOutput("OUTPUT2")])
        self.assertEqual([o.name for o in r.get_response().outputs], ["OUTPUT2"])

    def test_encoder_text_minilm_golden(self):
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        texts, golden = ks.minilm_golden()
        items = [2, 5, 14, 22]
        batch = np.array([[texts[i].encode()] for i in items], dtype=object)
        r = self.client.infer("minilm", [tensor("TEXT", batch)])
        emb = r.as_numpy("embedding")
        self.assertEqual(emb.shape, (len(items), 384))
        for row, i in enumerate(items):
            self.assertLess(np.abs(emb[row] - golden[f"embedding.{i}"]).max(), 2e-5)

    def test_encoder_input_ids_golden(self):
        golden = ks.tiny_golden("bert_seq_cls")
        r = self.client.infer("seq_cls", ids_inputs(golden, [3, 0, 2]))
        logits = r.as_numpy("logits")
        self.assertEqual(logits.shape, (3, 3))
        for row, i in enumerate([3, 0, 2]):
            self.assertLess(ks.rel_error(logits[row], golden[f"logits.{i}"]), 1e-4)
        self.assertEqual(r.get_response().model_version, "2")
        golden = ks.tiny_golden("bert_deep_st")
        r = self.client.infer("deep_st", ids_inputs(golden, [1, 2]), outputs=[
            grpcclient.InferRequestedOutput("embedding"),
            grpcclient.InferRequestedOutput("last_hidden_state")])
        self.assertLess(ks.rel_error(r.as_numpy("embedding")[1], golden["embedding.2"]), 1e-4)
        hidden = r.as_numpy("last_hidden_state")
        self.assertEqual(hidden.shape, (2, 24, 64))
        self.assertLess(ks.rel_error(hidden[0, :11], golden["last_hidden_state.1"]), 1e-4)
        golden = ks.tiny_golden("bert_qa")
        r = self.client.infer("qa", [tensor("input_ids", golden["input_ids.3"].astype(np.int64))])
        # No token_type_ids (optional): all 0, which differs from the golden's segment ids,
        # so only the shape is checked here; with them, the values match.
        self.assertEqual(r.as_numpy("end_logits").shape, (40,))
        r = self.client.infer("qa", [
            tensor("input_ids", golden["input_ids.3"].astype(np.int64)),
            tensor("token_type_ids", golden["token_type_ids.3"].astype(np.int64))])
        self.assertLess(ks.rel_error(r.as_numpy("end_logits"), golden["end_logits.3"]), 1e-4)

    def test_async_infer_many(self):
        n = 48
        results = queue.Queue()
        sent = {}
        for k in range(n):
            x = np.full((1, 4), k, np.float32) - np.arange(4, dtype=np.float32)
            sent[f"req-{k}"] = x
            self.client.async_infer("batched", [tensor("INPUT0", x)], partial(collect, results),
                                    request_id=f"req-{k}")
        seen = set()
        for _ in range(n):
            result, error = results.get(timeout=30)
            self.assertIsNone(error)
            rid = result.get_response().id
            self.assertNotIn(rid, seen)
            seen.add(rid)
            np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), sent[rid])
        self.assertEqual(seen, set(sent))
        time.sleep(0.1)
        self.assertTrue(results.empty(), "a request was answered twice")

    def test_stream_infer(self):
        results = queue.Queue()
        self.client.start_stream(callback=partial(collect, results))
        try:
            sent = {}
            golden = ks.tiny_golden("bert_seq_cls")
            for k in range(12):
                x = np.full((1, 4), k * 1.5, np.float32)
                sent[f"s-{k}"] = x
                self.client.async_stream_infer("batched", [tensor("INPUT0", x)],
                                               request_id=f"s-{k}")
            # An encoder request and a failing request on the same stream.
            self.client.async_stream_infer("seq_cls", ids_inputs(golden, [1]), request_id="enc")
            self.client.async_stream_infer("no_such_model", [tensor("INPUT0", x)],
                                           request_id="bad")
            self.client.async_stream_infer("identity", [tensor("INPUT0", np.zeros(16, np.float32))],
                                           request_id="after")
            got, errors = {}, []
            for _ in range(len(sent) + 3):
                result, error = results.get(timeout=30)
                if error is not None:
                    errors.append(error)
                    continue
                got[result.get_response().id] = result
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("no_such_model", errors[0].message())
            for rid, x in sent.items():
                np.testing.assert_array_equal(got[rid].as_numpy("OUTPUT0"), x)
            self.assertLess(ks.rel_error(got["enc"].as_numpy("logits")[0], golden["logits.1"]),
                            1e-4)
            self.assertIn("after", got)  # the stream survives the error
        finally:
            self.client.stop_stream()
        self.assertTrue(results.empty())

    # ------------------------------------------------------------ errors

    def test_errors(self):
        x = np.zeros(16, np.float32)
        msg = self.assert_error(NOT_FOUND, self.client.infer, "no_such_model",
                                [tensor("INPUT0", x)])
        self.assertIn("no_such_model", msg)
        self.assert_serving()
        msg = self.assert_error(INVALID, self.client.infer, "identity",
                                [tensor("INPUT0", np.zeros(16, np.int64))])
        self.assertIn("INPUT0", msg)
        self.assert_serving()
        msg = self.assert_error(INVALID, self.client.infer, "identity",
                                [tensor("INPUT0", np.zeros((2, 16), np.float32))])
        self.assertIn("shape", msg)
        self.assert_serving()
        msg = self.assert_error(INVALID, self.client.infer, "multi",
                                [tensor("INPUT0", np.zeros((1, 2), np.float32)),
                                 tensor("INPUT1", np.zeros((1, 3), np.int64))])
        self.assertIn("INPUT2", msg)
        self.assert_serving()
        msg = self.assert_error(INVALID, self.client.infer, "identity", [tensor("INPUT0", x)],
                                outputs=[grpcclient.InferRequestedOutput("NOPE")])
        self.assertIn("NOPE", msg)
        self.assert_error(INVALID, self.client.infer, "batched",
                          [tensor("INPUT0", np.zeros((40, 4), np.float32))])
        self.assert_serving()

    def test_wrong_byte_count(self):
        # A shape that disagrees with the raw contents the client sends.
        t = grpcclient.InferInput("INPUT0", [16], "FP32")
        t.set_data_from_numpy(np.zeros(16, np.float32))
        t.set_shape([12])
        msg = self.assert_error(INVALID, self.client.infer, "identity", [t])
        self.assertIn("INPUT0", msg)
        self.assert_serving()

    # ------------------------------------------------------------ statistics and batching

    def test_statistics(self):
        golden = ks.tiny_golden("bert_deep_st")
        before = self.stats("deep_st")
        self.assertEqual((before["name"], before["version"]), ("deep_st", "1"))
        self.client.infer("deep_st", ids_inputs(golden, [0, 1, 2]))
        self.client.infer("deep_st", ids_inputs(golden, [3]))
        after = self.stats("deep_st")
        b, a = before["inference_stats"], after["inference_stats"]
        count = lambda d, k: int(d[k].get("count", 0))  # proto3 JSON omits zeros
        self.assertEqual(count(a, "success") - count(b, "success"), 2)
        self.assertEqual(count(a, "queue") - count(b, "queue"), 2)
        self.assertGreater(int(a["compute_infer"]["ns"]), int(b["compute_infer"].get("ns", 0)))
        self.assertEqual(int(after["inference_count"]) - int(before.get("inference_count", 0)), 4)
        self.assertEqual(int(after["execution_count"]) - int(before.get("execution_count", 0)),
                         2)
        sizes = {int(s["batch_size"]) for s in after["batch_stats"]}
        self.assertTrue({1, 3} <= sizes, sizes)
        with self.assertRaises(InferenceServerException):
            self.client.infer("deep_st", [tensor("input_ids", np.array([[2, 9999]], np.int64))])
        self.assertEqual(int(self.stats("deep_st")["inference_stats"]["fail"]["count"]) -
                         count(b, "fail"), 1)
        proto = self.client.get_inference_statistics("deep_st").model_stats[0]
        self.assertEqual(proto.inference_count, int(after["inference_count"]))
        names = {s.name for s in self.client.get_inference_statistics().model_stats}
        self.assertTrue(set(ks.STANDARD_MODELS) <= names, names)
        self.assert_error(NOT_FOUND, self.client.get_inference_statistics, "no_such_model")

    def test_statistics_queue_time(self):
        # One request waits out the 300 ms batch delay: that is queue time, not compute.
        before = self.client.get_inference_statistics("timeout_override").model_stats[0]
        self.client.infer("timeout_override", [tensor("INPUT0", np.zeros((1, 4), np.float32))])
        after = self.client.get_inference_statistics("timeout_override").model_stats[0]
        b, a = before.inference_stats, after.inference_stats
        queue_ns = a.queue.ns - b.queue.ns
        self.assertEqual(a.queue.count - b.queue.count, 1)
        self.assertGreater(queue_ns, 250e6)
        self.assertLess(a.compute_infer.ns - b.compute_infer.ns, 50e6)
        self.assertGreaterEqual(a.success.ns - b.success.ns, queue_ns)
        self.assertEqual(after.execution_count - before.execution_count, 1)

    def test_dynamic_batching(self):
        before = self.client.get_inference_statistics("batched").model_stats[0]
        n = 16
        results = queue.Queue()
        for k in range(n):
            self.client.async_infer("batched", [tensor("INPUT0", np.full((1, 4), k, np.float32))],
                                    partial(collect, results))
        for _ in range(n):
            result, error = results.get(timeout=30)
            self.assertIsNone(error)
        after = self.client.get_inference_statistics("batched").model_stats[0]
        inferences = after.inference_count - before.inference_count
        executions = after.execution_count - before.execution_count
        self.assertEqual(inferences, n)
        self.assertLess(executions, inferences)
        self.assertTrue(any(s.batch_size > 1 for s in after.batch_stats))
        self.assertEqual(self.server.metric("nv_inference_exec_count", model="batched"),
                         after.execution_count)

    def test_queue_full_and_timeout(self):
        results = queue.Queue()
        n = 6
        for _ in range(n):
            self.client.async_infer("queue1", [tensor("INPUT0", np.zeros((1, 4), np.float32))],
                                    partial(collect, results))
        outcomes = [results.get(timeout=30) for _ in range(n)]
        errors = [e for _, e in outcomes if e is not None]
        self.assertGreaterEqual(len(errors), 1)
        self.assertGreaterEqual(n - len(errors), 1)
        for e in errors:
            self.assertEqual(e.status(), UNAVAILABLE, e.message())
        t0 = time.monotonic()
        msg = self.assert_error(UNAVAILABLE, self.client.infer, "timeout_reject",
                                [tensor("INPUT0", np.zeros((1, 4), np.float32))])
        self.assertLess(time.monotonic() - t0, 1.5)
        self.assertIn("timeout", msg)
        msg = self.assert_error(UNAVAILABLE, self.client.infer, "timeout_override",
                                [tensor("INPUT0", np.zeros((1, 4), np.float32))], timeout=20000)
        self.assert_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
