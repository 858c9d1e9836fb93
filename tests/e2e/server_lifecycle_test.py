"""Black-box tests of `kiln serve`'s lifecycle over HTTP and gRPC with the official Triton
client library: explicit model control (load, unload, config override), repository polling,
readiness when a model fails to load, and graceful shutdown on SIGTERM.

    .venv/bin/python tests/e2e/server_lifecycle_test.py BUILD_DIR/tools/kiln/kiln
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
from functools import partial
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

UNAVAILABLE = "StatusCode.UNAVAILABLE"
BROKEN_CONFIG = ('backend: "kiln"\nmax_batch_size: 4\n'
                 "sequence_batching { max_sequence_idle_microseconds: 1000 }\n")


def datatype(array):
    return "BYTES" if array.dtype == object else {
        np.float32: "FP32", np.int64: "INT64", np.int32: "INT32"}[array.dtype.type]


def http_tensor(name, array):
    t = httpclient.InferInput(name, list(array.shape), datatype(array))
    t.set_data_from_numpy(array)
    return t


def grpc_tensor(name, array):
    t = grpcclient.InferInput(name, list(array.shape), datatype(array))
    t.set_data_from_numpy(array)
    return t


def http_ids(golden, items):
    ids, mask, types = ks.padded_ids(golden, items)
    return [http_tensor("input_ids", ids), http_tensor("attention_mask", mask),
            http_tensor("token_type_ids", types)]


def grpc_ids(golden, items):
    ids, mask, types = ks.padded_ids(golden, items)
    return [grpc_tensor("input_ids", ids), grpc_tensor("attention_mask", mask),
            grpc_tensor("token_type_ids", types)]


def collect(results, result, error):
    results.put((result, error))


# ---------------------------------------------------------------- HTTP

class ExplicitModeHttpTest(ks.ServerTestCase, unittest.TestCase):
    """--model-control-mode explicit: the repository API loads and unloads models."""
    server_args = ("--model-control-mode", "explicit", "--load-model", "identity")

    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)
        ks.add_tiny(repo, "seq_cls", "bert_seq_cls", ks.SEQ_CLS_CONFIG)
        ks.add_tiny(repo, "deep_st", "bert_deep_st", ks.DEEP_ST_CONFIG)
        ks.write_config(repo / "slow", ks.TIMEOUT_OVERRIDE_CONFIG)  # 300 ms batch delay
        (repo / "slow/1").mkdir()
        # A field kiln rejects: the load fails with a message that names it.
        ks.add_tiny(repo, "broken", "bert", BROKEN_CONFIG)

    def setUp(self):
        self.client = httpclient.InferenceServerClient(self.server.http_url)

    def tearDown(self):
        self.client.close()

    def index(self):
        return {e["name"]: e for e in self.client.get_model_repository_index()}

    def test_index_lists_unloaded_models(self):
        index = self.index()
        self.assertEqual(set(index), {"identity", "seq_cls", "deep_st", "broken", "slow"})
        self.assertEqual(index["identity"]["state"], "READY")
        self.assertEqual(index["identity"]["version"], "1")
        self.assertTrue(self.client.is_model_ready("identity"))

    def test_load_infer_unload(self):
        golden = ks.tiny_golden("bert_seq_cls")
        self.client.load_model("seq_cls")
        self.assertTrue(self.client.is_model_ready("seq_cls"))
        self.assertEqual(self.index()["seq_cls"]["state"], "READY")
        r = self.client.infer("seq_cls", http_ids(golden, [2]))
        self.assertLess(ks.rel_error(r.as_numpy("logits")[0], golden["logits.2"]), 1e-4)
        self.client.unload_model("seq_cls")
        deadline = time.monotonic() + 10
        while self.client.is_model_ready("seq_cls") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(self.client.is_model_ready("seq_cls"))
        self.assertEqual(self.index()["seq_cls"]["state"], "UNAVAILABLE")
        with self.assertRaises(InferenceServerException):
            self.client.infer("seq_cls", http_ids(golden, [2]))
        self.client.load_model("seq_cls")  # and back
        self.assertTrue(self.client.is_model_ready("seq_cls"))
        self.client.unload_model("seq_cls")

    def test_unload_and_reload_let_queued_requests_finish(self):
        self.client.load_model("slow")
        client = httpclient.InferenceServerClient(self.server.http_url, concurrency=8)
        try:
            for action in (self.client.unload_model, self.client.load_model):
                xs = [np.full((1, 4), k, np.float32) for k in range(4)]
                pending = [client.async_infer("slow", [http_tensor("INPUT0", x)]) for x in xs]
                deadline = time.monotonic() + 5
                while self.server.metric("nv_inference_pending_request_count",
                                         model="slow") != len(xs):
                    self.assertLess(time.monotonic(), deadline, "requests never arrived")
                    time.sleep(0.01)
                action("slow")  # while the requests wait out the 300 ms batch delay
                for x, p in zip(xs, pending):
                    np.testing.assert_array_equal(p.get_result(timeout=10).as_numpy("OUTPUT0"), x)
                if action == self.client.unload_model:
                    self.assertFalse(self.client.is_model_ready("slow"))
                    self.client.load_model("slow")
        finally:
            client.close()
            self.client.unload_model("slow")

    def test_load_with_config_override(self):
        config = {"name": "identity", "backend": "identity", "max_batch_size": 4,
                  "input": [{"name": "INPUT0", "data_type": "TYPE_INT32", "dims": [3]}]}
        self.client.load_model("identity", config=json.dumps(config))
        try:
            md = self.client.get_model_metadata("identity")
            self.assertEqual(md["inputs"], [{"name": "INPUT0", "datatype": "INT32",
                                             "shape": [-1, 3]}])
            self.assertEqual(self.client.get_model_config("identity")["max_batch_size"], 4)
            x = np.array([[1, 2, 3], [-4, 5, 2**31 - 1]], np.int32)
            r = self.client.infer("identity", [http_tensor("INPUT0", x)])
            np.testing.assert_array_equal(r.as_numpy("OUTPUT0"), x)
        finally:
            self.client.load_model("identity")  # back to config.pbtxt
        md = self.client.get_model_metadata("identity")
        self.assertEqual(md["inputs"], [{"name": "INPUT0", "datatype": "FP32", "shape": [16]}])
        # An encoder with only a smaller max_batch_size: the rest is auto-completed.
        self.client.load_model("deep_st", config=json.dumps({"backend": "kiln",
                                                             "max_batch_size": 2}))
        golden = ks.tiny_golden("bert_deep_st")
        self.assertEqual(self.client.get_model_config("deep_st")["max_batch_size"], 2)
        r = self.client.infer("deep_st", http_ids(golden, [0, 1]))
        self.assertLess(ks.rel_error(r.as_numpy("embedding")[1], golden["embedding.1"]), 1e-4)
        with self.assertRaises(InferenceServerException) as cm:
            self.client.infer("deep_st", http_ids(golden, [0, 1, 2]))
        self.assertIn("max_batch_size", cm.exception.message())
        self.client.unload_model("deep_st")

    def test_load_errors(self):
        with self.assertRaises(InferenceServerException) as cm:
            self.client.load_model("broken")
        self.assertIn("sequence_batching", cm.exception.message())
        entry = self.index()["broken"]
        self.assertEqual(entry["state"], "UNAVAILABLE")
        self.assertIn("sequence_batching", entry.get("reason", ""))
        with self.assertRaises(InferenceServerException) as cm:
            self.client.load_model("no_such_model")
        self.assertIn("no_such_model", cm.exception.message())
        with self.assertRaises(InferenceServerException):
            self.client.load_model("identity", config="{not json")
        self.assertTrue(self.client.is_model_ready("identity"))  # the old one still serves
        with self.assertRaises(InferenceServerException):
            self.client.unload_model("no_such_model")


class ReadinessHttpTest(unittest.TestCase):
    """A model that fails to load: exit by default; otherwise live, and ready only when not
    strict."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln_e2e_")
        cls.repo = Path(cls.tmp) / "models"
        ks.add_identity(cls.repo)
        ks.add_tiny(cls.repo, "broken", "bert", BROKEN_CONFIG)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_exit_on_error(self):
        r = subprocess.run([ks.KILN, "serve", "--model-repository", str(self.repo),
                            "--http-port", "0", "--grpc-port", "0", "--metrics-port", "0",
                            "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("sequence_batching", r.stdout + r.stderr)

    def test_strict_and_relaxed_readiness(self):
        for strict in ("true", "false"):
            with self.subTest(strict=strict), ks.KilnServer(
                    self.repo, "--exit-on-error", "false", "--strict-readiness", strict,
                    wait_for="live") as s:
                client = httpclient.InferenceServerClient(s.http_url)
                self.assertTrue(client.is_server_live())
                self.assertEqual(client.is_server_ready(), strict == "false")
                self.assertEqual(ks.http_get(s.base + "/v2/health/ready")[0],
                                 400 if strict == "true" else 200)
                self.assertTrue(client.is_model_ready("identity"))
                self.assertFalse(client.is_model_ready("broken"))
                entry = {e["name"]: e for e in client.get_model_repository_index()}["broken"]
                self.assertEqual(entry["state"], "UNAVAILABLE")
                self.assertIn("sequence_batching", entry["reason"])
                with self.assertRaises(InferenceServerException) as cm:
                    client.infer("broken", [http_tensor("input_ids", np.array([[2, 5]], np.int64))])
                self.assertEqual(cm.exception.status(), "503", cm.exception.message())
                client.close()
            self.assertEqual(s.exit_code, 0, s.log())
            s.cleanup()


class PollModeHttpTest(ks.ServerTestCase, unittest.TestCase):
    """--model-control-mode poll: models added, changed and removed on disk follow."""
    server_args = ("--model-control-mode", "poll", "--repository-poll-secs", "1")

    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)

    def wait(self, what, predicate, timeout=8.0):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, what)
            time.sleep(0.1)

    def test_add_change_remove(self):
        client = httpclient.InferenceServerClient(self.server.http_url)
        golden = ks.tiny_golden("bert_seq_cls")
        self.assertFalse(client.is_model_ready("seq_cls"))
        ks.add_tiny(self.repo, "seq_cls", "bert_seq_cls", ks.SEQ_CLS_CONFIG)
        self.wait("added model never became ready", lambda: client.is_model_ready("seq_cls"))
        r = client.infer("seq_cls", http_ids(golden, [1]))
        self.assertLess(ks.rel_error(r.as_numpy("logits")[0], golden["logits.1"]), 1e-4)
        (self.repo / "seq_cls/config.pbtxt").write_text('backend: "kiln"\nmax_batch_size: 3\n')
        self.wait("changed config never reloaded",
                  lambda: client.get_model_config("seq_cls")["max_batch_size"] == 3)
        shutil.rmtree(self.repo / "seq_cls")
        self.wait("removed model still ready", lambda: not client.is_model_ready("seq_cls"))
        self.assertEqual([e["name"] for e in client.get_model_repository_index()], ["identity"])
        self.assertTrue(client.is_model_ready("identity"))
        client.close()


class GracefulShutdownHttpTest(unittest.TestCase):
    def test_sigterm_answers_in_flight_requests(self):
        tmp = tempfile.mkdtemp(prefix="kiln_e2e_")
        try:
            repo = Path(tmp) / "models"
            # A long batch delay keeps the requests queued when SIGTERM arrives.
            ks.add_tiny(repo, "deep_st", "bert_deep_st",
                        'backend: "kiln"\nmax_batch_size: 16\n'
                        "dynamic_batching { max_queue_delay_microseconds: 1500000 }\n")
            server = ks.KilnServer(repo).start()
            try:
                self.run_shutdown(server)
            finally:
                code = server.stop()
                log = server.log()
                server.cleanup()
            self.assertEqual(code, 0, log)
            self.assertIn("every request answered", log)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run_shutdown(self, server):
        golden = ks.tiny_golden("bert_deep_st")
        client = httpclient.InferenceServerClient(server.http_url, concurrency=8)
        n = 8
        pending = [client.async_infer("deep_st", http_ids(golden, [k % 4]), request_id=str(k))
                   for k in range(n)]
        deadline = time.monotonic() + 5
        while server.metric("nv_inference_pending_request_count", model="deep_st") != n:
            self.assertLess(time.monotonic(), deadline, "requests never arrived")
            time.sleep(0.01)
        server.terminate()
        # Draining: not ready, new requests refused with 503; the queued ones still answered.
        deadline = time.monotonic() + 0.5
        while ks.http_get(server.base + "/v2/health/ready")[0] == 200:
            self.assertLess(time.monotonic(), deadline, "still ready after SIGTERM")
            time.sleep(0.01)
        self.assertFalse(client.is_server_ready())
        with self.assertRaises(InferenceServerException) as cm:
            client.infer("deep_st", http_ids(golden, [0]))
        self.assertEqual(cm.exception.status(), "503", cm.exception.message())
        for k, p in enumerate(pending):
            r = p.get_result(timeout=30)
            self.assertEqual(r.get_response()["id"], str(k))
            self.assertLess(ks.rel_error(r.as_numpy("embedding")[0],
                                         golden[f"embedding.{k % 4}"]), 1e-4)
        self.assertEqual(server.wait(30), 0)
        client.close()


# ---------------------------------------------------------------- gRPC

class ExplicitModeGrpcTest(ks.ServerTestCase, unittest.TestCase):
    server_args = ("--model-control-mode", "explicit")

    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)
        ks.add_tiny(repo, "deep_st", "bert_deep_st", ks.DEEP_ST_CONFIG)

    def setUp(self):
        self.client = grpcclient.InferenceServerClient(self.server.grpc_url)

    def tearDown(self):
        self.client.close()

    def test_load_unload_and_override(self):
        index = {m.name: m for m in self.client.get_model_repository_index().models}
        self.assertEqual(set(index), {"identity", "deep_st"})
        self.assertEqual(index["identity"].state, "")  # never loaded: no --load-model
        self.assertFalse(self.client.is_model_ready("identity"))
        self.client.load_model("identity")
        self.assertTrue(self.client.is_model_ready("identity"))
        x = np.arange(16, dtype=np.float32)
        np.testing.assert_array_equal(
            self.client.infer("identity", [grpc_tensor("INPUT0", x)]).as_numpy("OUTPUT0"), x)
        config = {"backend": "identity", "max_batch_size": 2,
                  "input": [{"name": "INPUT0", "data_type": "TYPE_INT64", "dims": [2]}]}
        self.client.load_model("identity", config=json.dumps(config))
        md = self.client.get_model_metadata("identity")
        self.assertEqual([(t.datatype, list(t.shape)) for t in md.inputs], [("INT64", [-1, 2])])
        y = np.array([[1, -1], [2**50, 3]], np.int64)
        np.testing.assert_array_equal(
            self.client.infer("identity", [grpc_tensor("INPUT0", y)]).as_numpy("OUTPUT0"), y)
        self.client.unload_model("identity")
        deadline = time.monotonic() + 10
        while self.client.is_model_ready("identity") and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse(self.client.is_model_ready("identity"))
        index = {m.name: m for m in self.client.get_model_repository_index().models}
        self.assertEqual(index["identity"].state, "UNAVAILABLE")
        with self.assertRaises(InferenceServerException):
            self.client.infer("identity", [grpc_tensor("INPUT0", y)])
        with self.assertRaises(InferenceServerException) as cm:
            self.client.load_model("no_such_model")
        self.assertIn("no_such_model", cm.exception.message())


class StrictReadinessGrpcTest(ks.ServerTestCase, unittest.TestCase):
    """A model that failed to load keeps a strict server live but not ready."""
    server_args = ("--exit-on-error", "false")
    server_wait_for = "live"

    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)
        ks.add_tiny(repo, "broken", "bert", BROKEN_CONFIG)

    def test_not_ready(self):
        client = grpcclient.InferenceServerClient(self.server.grpc_url)
        self.assertTrue(client.is_server_live())
        self.assertFalse(client.is_server_ready())
        self.assertTrue(client.is_model_ready("identity"))
        self.assertFalse(client.is_model_ready("broken"))
        broken = {m.name: m for m in client.get_model_repository_index().models}["broken"]
        self.assertEqual(broken.state, "UNAVAILABLE")
        self.assertIn("sequence_batching", broken.reason)
        with self.assertRaises(InferenceServerException) as cm:
            client.infer("broken", [grpc_tensor("input_ids", np.array([[2, 5]], np.int64))])
        self.assertEqual(cm.exception.status(), UNAVAILABLE, cm.exception.message())
        client.close()


class GracefulShutdownGrpcTest(unittest.TestCase):
    def test_sigterm_answers_in_flight_requests(self):
        tmp = tempfile.mkdtemp(prefix="kiln_e2e_")
        try:
            repo = Path(tmp) / "models"
            ks.add_tiny(repo, "seq_cls", "bert_seq_cls",
                        'backend: "kiln"\nmax_batch_size: 16\n'
                        "dynamic_batching { max_queue_delay_microseconds: 1500000 }\n")
            server = ks.KilnServer(repo).start()
            try:
                self.run_shutdown(server)
            finally:
                code = server.stop()
                log = server.log()
                server.cleanup()
            self.assertEqual(code, 0, log)
            self.assertIn("every request answered", log)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def run_shutdown(self, server):
        golden = ks.tiny_golden("bert_seq_cls")
        client = grpcclient.InferenceServerClient(server.grpc_url)
        results = queue.Queue()
        n = 6
        for k in range(n - 2):
            client.async_infer("seq_cls", grpc_ids(golden, [k % 4]), partial(collect, results),
                               request_id=str(k))
        client.start_stream(callback=partial(collect, results))
        for k in range(n - 2, n):
            client.async_stream_infer("seq_cls", grpc_ids(golden, [k % 4]), request_id=str(k))
        deadline = time.monotonic() + 5
        while server.metric("nv_inference_pending_request_count", model="seq_cls") != n:
            self.assertLess(time.monotonic(), deadline, "requests never arrived")
            time.sleep(0.01)
        server.terminate()
        # Draining: not ready, new requests refused with UNAVAILABLE; queued ones answered.
        deadline = time.monotonic() + 0.5
        while client.is_server_ready():
            self.assertLess(time.monotonic(), deadline, "still ready after SIGTERM")
            time.sleep(0.01)
        with self.assertRaises(InferenceServerException) as cm:
            client.infer("seq_cls", grpc_ids(golden, [0]))
        self.assertEqual(cm.exception.status(), UNAVAILABLE, cm.exception.message())
        for _ in range(n):
            result, error = results.get(timeout=30)
            self.assertIsNone(error)
            k = int(result.get_response().id)
            self.assertLess(ks.rel_error(result.as_numpy("logits")[0], golden[f"logits.{k % 4}"]),
                            1e-4)
        client.stop_stream()
        self.assertEqual(server.wait(30), 0)
        client.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
