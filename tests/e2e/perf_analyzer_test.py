"""Triton's perf_analyzer (the real 2.50 binary, .venv/bin/perf_analyzer) against `kiln serve`:
it must run to the end over HTTP and gRPC, print its throughput, and print the server-side
("Server:") section that it computes from kiln's statistics extension.

    .venv/bin/python tests/e2e/perf_analyzer_test.py BUILD_DIR/tools/kiln/kiln
"""
import json
import os
import re
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kiln_server as ks  # noqa: E402

ks.take_binary_arg()

PERF = os.environ.get("PERF_ANALYZER", str(ks.ROOT / ".venv/bin/perf_analyzer"))

# Short windows and a loose stability threshold: these tests check the protocol, not speed. On
# a 2-core CI machine running ctest in parallel, latency between windows can differ by more
# than 2x, so max/min of the last 3 windows may be up to 10x, with up to 10 trials.
COMMON = ["--measurement-interval", "500", "--stability-percentage", "900", "--max-trials", "10"]


def parse(output):
    """Per concurrency level: client request count and throughput, and the Server: section."""
    levels = []
    for block in re.split(r"\n(?=Request concurrency: )", output)[1:]:
        level = {"concurrency": int(re.match(r"Request concurrency: (\d+)", block).group(1))}
        client, _, server = block.partition("  Server:")
        level["client_count"] = int(re.search(r"Request count: (\d+)", client).group(1))
        level["throughput"] = float(re.search(r"Throughput: ([\d.]+) infer/sec", client).group(1))
        if server:
            for key, pattern in (("inference_count", r"Inference count: (\d+)"),
                                 ("execution_count", r"Execution count: (\d+)"),
                                 ("success_count", r"Successful request count: (\d+)")):
                m = re.search(pattern, server)
                level[key] = int(m.group(1)) if m else None
            m = re.search(r"Avg request latency: (\d+) usec \(overhead (\d+) usec \+ queue (\d+) "
                          r"usec \+ compute input (\d+) usec \+ compute infer (\d+) usec \+ "
                          r"compute output (\d+) usec\)", server)
            level["server_latency"] = [int(g) for g in m.groups()] if m else None
        levels.append(level)
    return levels


@unittest.skipUnless(os.access(PERF, os.X_OK), f"{PERF} is missing")
class PerfAnalyzerTest(ks.ServerTestCase, unittest.TestCase):
    @classmethod
    def build_repository(cls, repo):
        ks.add_identity(repo)
        ks.write_config(repo / "batched", ks.BATCHED_CONFIG)
        (repo / "batched/1").mkdir()
        if ks.minilm_present():
            ks.add_model(repo, "minilm", ks.MINILM_DIR, ks.MINILM_CONFIG)
        data = [{"TEXT": {"content": [s], "shape": [1]}} for s in ks.sst2_sentences(40)]
        (Path(cls.tmp) / "sst2.json").write_text(json.dumps({"data": data}))

    def perf(self, model, protocol, *args, levels=(1, 2)):
        url = self.server.http_url if protocol == "http" else self.server.grpc_url
        cmd = [PERF, "-m", model, "-u", url, "-i", protocol,
               "--concurrency-range", f"{levels[0]}:{levels[-1]}", *COMMON, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        output = r.stdout + r.stderr
        self.assertEqual(r.returncode, 0, f"{' '.join(cmd)}\n{output}")
        parsed = parse(output)
        self.assertEqual([p["concurrency"] for p in parsed], list(levels), output)
        self.assertIn("Inferences/Second vs. Client Average Batch Latency", output)
        for p in parsed:
            self.assertGreater(p["throughput"], 0, output)
            self.assertGreater(p["client_count"], 0, output)
            # The server section comes from the statistics extension.
            self.assertIsNotNone(p.get("success_count"), f"no Server: section\n{output}")
            self.assertIsNotNone(p["server_latency"], output)
            # Statistics deltas over the same window as the client's count (up to `concurrency`
            # requests in flight may fall on either side of each window edge).
            self.assertLessEqual(abs(p["success_count"] - p["client_count"]),
                                 2 * p["concurrency"] + p["client_count"] // 20, output)
            avg, overhead, queue, c_in, c_infer, c_out = p["server_latency"]
            self.assertGreater(avg, 0, output)
            self.assertGreaterEqual(avg + 1, queue + c_in + c_infer + c_out, output)
        return parsed, output

    def test_identity_http(self):
        parsed, output = self.perf("identity", "http")
        for p in parsed:
            self.assertEqual(p["inference_count"], p["execution_count"], output)  # no batching

    def test_identity_grpc(self):
        parsed, output = self.perf("identity", "grpc")
        for p in parsed:
            self.assertEqual(p["inference_count"], p["execution_count"], output)  # no batching
            # Executions are counted before their requests' successes: a window edge may
            # fall between the two for the requests in flight.
            self.assertLessEqual(abs(p["inference_count"] - p["success_count"]),
                                 p["concurrency"], output)

    def test_batch_size_4_grpc(self):
        # -b 4: each request carries 4 rows; inference_count counts rows.
        parsed, output = self.perf("batched", "grpc", "-b", "4", levels=(2,))
        for p in parsed:
            self.assertEqual(p["inference_count"] % 4, 0, output)
            self.assertLessEqual(abs(p["inference_count"] - 4 * p["success_count"]),
                                 4 * p["concurrency"], output)

    def test_encoder_text_http_and_grpc(self):
        if not ks.minilm_present():
            self.skipTest("var/models/all-MiniLM-L6-v2 is absent (scripts/setup.sh)")
        data = str(Path(self.tmp) / "sst2.json")
        for protocol in ("http", "grpc"):
            with self.subTest(protocol=protocol):
                parsed, output = self.perf("minilm", protocol, "--input-data", data)
                for p in parsed:
                    _, _, _, _, c_infer, _ = p["server_latency"]
                    self.assertGreater(c_infer, 0, output)  # real model compute
        stats = self.server.metric("nv_inference_request_failure", model="minilm",
                                   reason="BACKEND")
        self.assertEqual(stats, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
