"""A real Prometheus (/usr/bin/prometheus) scrapes `kiln serve`'s metrics port; its query API
must then see kiln's series with the right labels and values.

    .venv/bin/python tests/e2e/prometheus_test.py BUILD_DIR/tools/kiln/kiln
"""
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.parse
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

import numpy as np  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402

PROMETHEUS = os.environ.get("PROMETHEUS", "/usr/bin/prometheus")


@unittest.skipUnless(os.access(PROMETHEUS, os.X_OK), f"{PROMETHEUS} is missing")
class PrometheusTest(ks.ServerTestCase, unittest.TestCase):
    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)
        ks.add_tiny(repo, "deep_st", "bert_deep_st", 'backend: "kiln"\nmax_batch_size: 8\n')

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        try:
            cls.start_prometheus()
        except Exception:
            super().tearDownClass()
            raise

    @classmethod
    def start_prometheus(cls):
        tmp = Path(cls.tmp)
        (tmp / "prometheus.yml").write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: kiln\n"
            "    scrape_interval: 1s\n"
            "    scrape_timeout: 1s\n"
            "    static_configs:\n"
            f"      - targets: ['127.0.0.1:{cls.server.metrics_port}']\n")
        cls.prom_log = open(tmp / "prometheus.log", "wb")
        for attempt in range(3):
            cls.prom_port = ks.free_port()
            cls.prom = subprocess.Popen(
                [PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{cls.prom_port}"],
                stdout=cls.prom_log, stderr=subprocess.STDOUT, cwd=tmp)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and cls.prom.poll() is None:
                try:
                    status, _ = ks.http_get(f"http://127.0.0.1:{cls.prom_port}/-/ready", 1.0)
                    if status == 200:
                        return
                except OSError:
                    pass
                time.sleep(0.1)
            if cls.prom.poll() is None:
                cls.prom.kill()
                cls.prom.wait()
        raise RuntimeError("prometheus did not start:\n" +
                           (tmp / "prometheus.log").read_text(errors="replace")[-3000:])

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "prom", None) is not None:
            cls.prom.terminate()
            try:
                cls.prom.wait(20)
            except subprocess.TimeoutExpired:
                cls.prom.kill()
                cls.prom.wait()
            cls.prom_log.close()
        super().tearDownClass()

    def query(self, expr):
        url = (f"http://127.0.0.1:{self.prom_port}/api/v1/query?" +
               urllib.parse.urlencode({"query": expr}))
        status, body = ks.http_get(url)
        self.assertEqual(status, 200, body)
        doc = json.loads(body)
        self.assertEqual(doc["status"], "success", doc)
        return doc["data"]

    def wait_for(self, expr, predicate, timeout=20.0):
        """Polls the query until predicate(result list) holds; returns the result list."""
        deadline = time.monotonic() + timeout
        result = None
        while time.monotonic() < deadline:
            result = self.query(expr)["result"]
            if predicate(result):
                return result
            time.sleep(0.25)
        self.fail(f"{expr}: no matching result within {timeout}s; last: {result}\n"
                  f"targets: {ks.http_get(f'http://127.0.0.1:{self.prom_port}/api/v1/targets')}")

    def test_scraped_series(self):
        # A first scrape before any request, so that rate() sees the counters grow.
        self.wait_for('nv_inference_request_success{model="deep_st"}',
                      lambda r: r and r[0]["value"][1] == "0")
        client = httpclient.InferenceServerClient(self.server.http_url, concurrency=4)
        x = np.arange(16, dtype=np.float32)
        n_identity = 7
        for _ in range(n_identity):
            t = httpclient.InferInput("INPUT0", [16], "FP32")
            t.set_data_from_numpy(x)
            client.infer("identity", [t])
        golden = ks.tiny_golden("bert_deep_st")
        ids, mask, _ = ks.padded_ids(golden, [0, 1, 2], with_types=False)
        inputs = []
        for name, a in (("input_ids", ids), ("attention_mask", mask)):
            t = httpclient.InferInput(name, list(a.shape), "INT64")
            t.set_data_from_numpy(a)
            inputs.append(t)
        for _ in range(3):
            client.infer("deep_st", inputs)
        bad = httpclient.InferInput("INPUT0", [8], "FP32")
        bad.set_data_from_numpy(np.zeros(8, np.float32))
        with self.assertRaises(Exception):
            client.infer("identity", [bad])
        client.close()

        # The target is up and kiln's counters arrive with model/version labels.
        self.assertEqual(self.query('up{job="kiln"}')["result"][0]["value"][1], "1")
        result = self.wait_for(
            "nv_inference_request_success",
            lambda r: {s["metric"].get("model"): s["value"][1] for s in r}.get("identity") ==
            str(n_identity))
        by_model = {s["metric"]["model"]: s for s in result}
        self.assertEqual(set(by_model), {"identity", "deep_st"})
        self.assertEqual(by_model["identity"]["metric"]["version"], "1")
        self.assertEqual(by_model["identity"]["metric"]["job"], "kiln")
        self.wait_for('nv_inference_request_success{model="deep_st",version="1"}',
                      lambda r: r and r[0]["value"][1] == "3")
        self.wait_for('nv_inference_count{model="deep_st"}',
                      lambda r: r and r[0]["value"][1] == "9")
        self.wait_for('nv_inference_exec_count{model="deep_st"}',
                      lambda r: r and r[0]["value"][1] == "3")
        self.wait_for('sum(nv_inference_request_failure{model="identity"})',
                      lambda r: r and r[0]["value"][1] == "1")
        # The latency histogram is usable by histogram_quantile over a rate.
        result = self.wait_for(
            'histogram_quantile(0.95, rate(kiln_request_duration_seconds_bucket'
            '{model="deep_st"}[30s]))',
            lambda r: r and r[0]["value"][1] not in ("NaN", "+Inf", "-Inf"))
        p95 = float(result[0]["value"][1])
        self.assertGreater(p95, 0.0)
        self.assertLess(p95, 10.0)
        result = self.query("histogram_quantile(0.95, "
                            "rate(kiln_request_duration_seconds_bucket[30s]))")["result"]
        self.assertTrue(any(s["value"][1] not in ("NaN", "+Inf") for s in result), result)
        # Prometheus parsed every family (no scrape errors: a bad exposition fails the scrape).
        status, body = ks.http_get(f"http://127.0.0.1:{self.prom_port}/api/v1/targets")
        target = json.loads(body)["data"]["activeTargets"][0]
        self.assertEqual(target["health"], "up", target)
        self.assertEqual(target["lastError"], "", target)


if __name__ == "__main__":
    unittest.main(verbosity=2)
