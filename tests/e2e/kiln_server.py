"""Shared helpers of the server e2e tests: run the real `kiln serve` binary on loopback, build
model repositories in a temp dir, read the golden fixtures.

The binary is the first command-line argument of each test script (ctest passes
$<TARGET_FILE:kiln_cli>), else $KILN_BIN, else build/release/tools/kiln/kiln.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "tests/golden/models/tiny"
MINILM_DIR = ROOT / "var/models/all-MiniLM-L6-v2"
MINILM_GOLDEN = ROOT / "tests/golden/models/minilm_l6"
IDENTITY_DIR = ROOT / "model_repository/identity"
SST2_CANDIDATES = [
    Path(os.environ.get("KILN_SHARED_DATA", "/nonexistent")) / "sst2/dev.tsv",
    Path(__file__).resolve().parents[2].parent / "shared/data/sst2/dev.tsv",
    Path("/work/shared/data/sst2/dev.tsv"),
]
SST2 = next((p for p in SST2_CANDIDATES if p.exists()), None)
# Used where ../shared/data is not mounted: sentences of varied length written for kiln's tests.
FALLBACK_SENTENCES = [
    "a quietly moving film about two brothers and the farm they cannot keep .",
    "the plot goes nowhere , slowly .",
    "funny , warm and far smarter than it has any right to be .",
    "an overlong mess .",
    "the performances are uniformly strong , especially in the final act where the story "
    "finally finds the courage of its convictions and lets its characters speak .",
    "i laughed , then i winced .",
]

KILN = os.environ.get("KILN_BIN", str(ROOT / "build/release/tools/kiln/kiln"))

_RUNNING = set()  # servers started and not yet stopped, killed at exit if a test crashed


@atexit.register
def _kill_leftovers():
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def take_binary_arg():
    """Pops the kiln binary from argv (before unittest parses it)."""
    global KILN
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-") and os.path.isfile(sys.argv[1]):
        KILN = os.path.abspath(sys.argv.pop(1))
    return KILN


def minilm_present():
    return (MINILM_DIR / "model.safetensors").is_file()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=5.0):
    """(status, body bytes); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class KilnServer:
    """One `kiln serve` process on free loopback ports.

        with KilnServer(repo, "--model-control-mode", "explicit") as server:
            server.http_url   # "127.0.0.1:PORT" (tritonclient's url form)
    """

    def __init__(self, repository, *args, ready_timeout=60.0, wait_for="ready"):
        """`wait_for`: start() returns once /v2/health/{wait_for} answers 200 ("live" for a
        server that is meant not to be ready)."""
        self.repository = str(repository)
        self.args = list(args)
        self.ready_timeout = ready_timeout
        self.wait_for = wait_for
        self.proc = None
        self.log_path = None
        self.exit_code = None

    # ---------------------------------------------------------------- lifecycle

    def start(self):
        for attempt in range(3):  # a free port can be taken between the probe and the bind
            self.http_port, self.grpc_port, self.metrics_port = self._three_ports()
            fd, self.log_path = tempfile.mkstemp(prefix="kiln_serve_", suffix=".log")
            cmd = [KILN, "serve", "--model-repository", self.repository,
                   "--http-address", "127.0.0.1", "--grpc-address", "127.0.0.1",
                   "--http-port", str(self.http_port), "--grpc-port", str(self.grpc_port),
                   "--metrics-port", str(self.metrics_port), *self.args]
            self.proc = subprocess.Popen(cmd, stdout=fd, stderr=subprocess.STDOUT)
            _RUNNING.add(self.proc)
            os.close(fd)
            try:
                up = self._wait_ready()
            except BaseException:
                self.proc.kill()
                self.proc.wait()
                raise
            if up:
                return self
            code = self.proc.poll()
            log = self.log()
            if code is None:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"kiln serve not ready after {self.ready_timeout}s:\n{log}")
            if "in use" not in log.lower() or attempt == 2:
                raise RuntimeError(f"kiln serve exited with {code}:\n{log}")
            self.cleanup()
        return self

    @staticmethod
    def _three_ports():
        ports = set()
        while len(ports) < 3:
            ports.add(free_port())
        return list(ports)

    def _wait_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                status, _ = http_get(f"http://{self.http_url}/v2/health/{self.wait_for}",
                                     timeout=1.0)
                if status == 200 and self._grpc_up():
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _grpc_up(self):
        try:
            with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1.0):
                return True
        except OSError:
            return False

    def terminate(self):
        """Sends SIGTERM (graceful shutdown) without waiting."""
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout=60.0):
        self.exit_code = self.proc.wait(timeout=timeout)
        _RUNNING.discard(self.proc)
        return self.exit_code

    def stop(self, timeout=60.0):
        """SIGTERM and wait; returns the exit code (kill and -9 after `timeout`)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self.exit_code = -9
        else:
            self.exit_code = self.proc.returncode
        _RUNNING.discard(self.proc)
        return self.exit_code

    def cleanup(self):
        if self.log_path and os.path.exists(self.log_path):
            os.unlink(self.log_path)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except (OSError, TypeError):
            return ""

    # ---------------------------------------------------------------- addresses

    @property
    def http_url(self):
        return f"127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self):
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def base(self):
        return f"http://127.0.0.1:{self.http_port}"

    def metrics(self):
        status, body = http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")
        assert status == 200, status
        return body.decode()

    def metric(self, name, **labels):
        """Value of one sample of the /metrics text (None when absent)."""
        for line in self.metrics().splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] != name:
                continue
            got = parse_labels(series)
            if all(got.get(k) == v for k, v in labels.items()):
                return float(value)
        return None


def parse_labels(series):
    if "{" not in series:
        return {}
    body = series[series.index("{") + 1:series.rindex("}")]
    out = {}
    for part in body.split('",'):
        if not part:
            continue
        k, _, v = part.partition("=")
        out[k.strip()] = v.strip().strip('"')
    return out


class ServerTestCase:
    """Mixin for unittest.TestCase classes that share one server per class.

    Subclasses set `server_args` and implement `build_repository(cls, repo)`."""

    server_args = ()
    server_wait_for = "ready"  # or "live", for a server meant not to be ready

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kiln_e2e_")
        cls.repo = Path(cls.tmp) / "models"
        cls.repo.mkdir()
        cls.build_repository(cls.repo)
        cls.server = KilnServer(cls.repo, *cls.server_args, wait_for=cls.server_wait_for)
        try:
            cls.server.start()
        except Exception:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        code = cls.server.stop()
        log = cls.server.log()
        cls.server.cleanup()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if code != 0:
            raise AssertionError(f"kiln serve exited with {code} after SIGTERM:\n{log[-4000:]}")


# ---------------------------------------------------------------- repositories

def write_config(model_dir, text):
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    (Path(model_dir) / "config.pbtxt").write_text(text)


def add_identity(repo, name="identity"):
    """model_repository/identity, copied (INPUT0 FP32 [16], max_batch_size 0)."""
    shutil.copytree(IDENTITY_DIR, Path(repo) / name, symlinks=False)
    if name != "identity":
        cfg = Path(repo) / name / "config.pbtxt"
        cfg.write_text(cfg.read_text().replace('name: "identity"', f'name: "{name}"'))


def add_model(repo, name, checkpoint_dir, config, versions=(1,)):
    """A Hugging Face checkpoint as <repo>/<name>/<v>/ (a link) with `config` as config.pbtxt."""
    write_config(Path(repo) / name, config)
    for v in versions:
        os.symlink(Path(checkpoint_dir).resolve(), Path(repo) / name / str(v),
                   target_is_directory=True)


def add_tiny(repo, name, checkpoint, config='backend: "kiln"\n', versions=(1,)):
    add_model(repo, name, TINY / checkpoint, config, versions)


# ---------------------------------------------------------------- goldens

_NP = {"F32": np.float32, "I32": np.int32, "I64": np.int64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] not in _NP:
            continue
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype=_NP[t["dtype"]]).reshape(t["shape"])
    return out


def tiny_golden(checkpoint):
    return read_safetensors(TINY / checkpoint / "golden.safetensors")


def minilm_golden():
    meta = json.loads(MINILM_GOLDEN.with_suffix(".json").read_text())
    return meta["texts"], read_safetensors(MINILM_GOLDEN.with_suffix(".safetensors"))


def padded_ids(golden, items, with_types=True):
    """input_ids, attention_mask, token_type_ids [len(items), longest] INT64 from goldens."""
    seqs = [golden[f"input_ids.{i}"] for i in items]
    longest = max(len(s) for s in seqs)
    ids = np.zeros((len(items), longest), np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, i in enumerate(items):
        n = len(seqs[row])
        ids[row, :n] = seqs[row]
        mask[row, :n] = 1
        if with_types and f"token_type_ids.{i}" in golden:
            types[row, :n] = golden[f"token_type_ids.{i}"]
    return ids, mask, types


def rel_error(got, want):
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    return float(np.abs(got - want).max() / max(1e-12, np.abs(want).max()))


def sst2_sentences(n):
    if SST2 is None:
        return [FALLBACK_SENTENCES[i % len(FALLBACK_SENTENCES)] for i in range(n)]
    rows = SST2.read_text(encoding="utf-8").splitlines()[1:]
    return [r.split("\t")[0].strip() for r in rows[:n]]


# ---------------------------------------------------------------- the shared test repository

MULTI_CONFIG = """
name: "multi"
backend: "identity"
max_batch_size: 8
input [
  { name: "INPUT0", data_type: TYPE_FP32, dims: [ -1 ] },
  { name: "INPUT1", data_type: TYPE_INT64, dims: [ 3 ] },
  { name: "INPUT2", data_type: TYPE_STRING, dims: [ 1 ] }
]
instance_group [ { count: 1, kind: KIND_CPU } ]
"""

# No name (the folder names it); outputs auto-completed by the identity backend.
BATCHED_CONFIG = """
backend: "identity"
max_batch_size: 32
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
dynamic_batching { max_queue_delay_microseconds: 20000 }
"""

# One queued request at most; the long delay keeps the first one queued.
QUEUE1_CONFIG = """
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
dynamic_batching {
  max_queue_delay_microseconds: 400000
  default_queue_policy { max_queue_size: 1 }
}
"""

# Requests time out in the queue (50 ms) long before the batch delay (2 s) would send them.
TIMEOUT_REJECT_CONFIG = """
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
dynamic_batching {
  max_queue_delay_microseconds: 2000000
  default_queue_policy { timeout_action: REJECT, default_timeout_microseconds: 50000 }
}
"""

# No default timeout, but a request's own "timeout" parameter applies.
TIMEOUT_OVERRIDE_CONFIG = """
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
dynamic_batching {
  max_queue_delay_microseconds: 300000
  default_queue_policy { timeout_action: REJECT, allow_timeout_override: true }
}
"""

# DELAY: a request past its queue timeout is not rejected, only yields to the others.
TIMEOUT_DELAY_CONFIG = """
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0", data_type: TYPE_FP32, dims: [ 4 ] } ]
dynamic_batching {
  max_queue_delay_microseconds: 200000
  default_queue_policy { timeout_action: DELAY, default_timeout_microseconds: 20000 }
}
"""

# Inputs and outputs auto-completed from the checkpoint.
SEQ_CLS_CONFIG = 'backend: "kiln"\nmax_batch_size: 8\n'
# Only the backend: max_batch_size, inputs and outputs are all auto-completed.
DEEP_ST_CONFIG = 'backend: "kiln"\n'
TOKEN_CLS_CONFIG = 'backend: "kiln"\nmax_batch_size: 4\n'
# Dynamic batching of ragged sequences: every request's rows must come back as if run alone.
SEQ_CLS_DYN_CONFIG = """
backend: "kiln"
max_batch_size: 16
dynamic_batching { max_queue_delay_microseconds: 20000 }
"""
# No batching; inputs declared, outputs auto-completed.
QA_CONFIG = """
backend: "kiln"
max_batch_size: 0
input [
  { name: "input_ids", data_type: TYPE_INT64, dims: [ -1 ] },
  { name: "token_type_ids", data_type: TYPE_INT64, dims: [ -1 ], optional: true }
]
"""
MINILM_CONFIG = """
backend: "kiln"
max_batch_size: 16
dynamic_batching { max_queue_delay_microseconds: 2000 }
parameters { key: "max_batch_tokens" value: { string_value: "8192" } }
"""


def build_standard_repository(repo):
    """The models both frontend tests serve. seq_cls has versions 1 and 2 (2 is served)."""
    add_identity(repo)
    write_config(Path(repo) / "multi", MULTI_CONFIG)
    (Path(repo) / "multi/1").mkdir()
    for name, config in (("batched", BATCHED_CONFIG), ("queue1", QUEUE1_CONFIG),
                         ("timeout_reject", TIMEOUT_REJECT_CONFIG),
                         ("timeout_delay", TIMEOUT_DELAY_CONFIG),
                         ("timeout_override", TIMEOUT_OVERRIDE_CONFIG)):
        write_config(Path(repo) / name, config)
        (Path(repo) / name / "1").mkdir()
    add_tiny(repo, "seq_cls", "bert_seq_cls", SEQ_CLS_CONFIG, versions=(1, 2))
    add_tiny(repo, "seq_cls_dyn", "bert_seq_cls", SEQ_CLS_DYN_CONFIG)
    add_tiny(repo, "deep_st", "bert_deep_st", DEEP_ST_CONFIG)
    add_tiny(repo, "token_cls", "bert_token_cls", TOKEN_CLS_CONFIG)
    add_tiny(repo, "qa", "bert_qa", QA_CONFIG)
    if minilm_present():
        add_model(repo, "minilm", MINILM_DIR, MINILM_CONFIG)


STANDARD_MODELS = ["batched", "deep_st", "identity", "multi", "qa", "queue1", "seq_cls",
                   "seq_cls_dyn", "timeout_delay", "timeout_override", "timeout_reject",
                   "token_cls"]


# ---------------------------------------------------------------- the applications

APPS_GOLDEN = ROOT / "tests/golden/apps"
APP_ADAPTERS = {"qa": "minilm-squad-lora", "ner": "minilm-wnut17-lora",
                "classify": "minilm-sst2-lora"}
APPS_MISSING = "needs var/models/all-MiniLM-L6-v2 (scripts/setup.sh), models/ and tests/golden/apps"


def apps_golden(name):
    return json.loads((APPS_GOLDEN / f"{name}.json").read_text())


def apps_present():
    return minilm_present() and (APPS_GOLDEN / "qa.json").exists() and all(
        (ROOT / "models" / a / "adapter_config.json").exists() for a in APP_ADAPTERS.values())


def build_apps_repository(repo):
    """qa, ner, classify (LoRA adapters of models/ on MiniLM, merged at load; max_batch_size 8)
    and search, search_exact (kiln_search over the QA golden's SQuAD paragraphs)."""
    repo = Path(repo)
    for name, adapter in APP_ADAPTERS.items():
        # The base is named relative to the model's folder in the repository.
        base = os.path.relpath(MINILM_DIR, repo / name)
        add_model(repo, name, ROOT / "models" / adapter,
                  'backend: "kiln"\nmax_batch_size: 8\n'
                  f'parameters {{ key: "base_model" value {{ string_value: "{base}" }} }}\n')
    contexts = list(dict.fromkeys(i["context"] for i in apps_golden("qa")["items"]))
    for name, index in (("search", "hnsw"), ("search_exact", "exact")):
        write_config(repo / name, 'backend: "kiln_search"\n'
                     f'parameters {{ key: "embedding_model" value {{ string_value: '
                     f'"{os.path.relpath(MINILM_DIR, repo / name)}" }} }}\n'
                     f'parameters {{ key: "index" value {{ string_value: "{index}" }} }}\n')
        (repo / name / "1").mkdir()
        (repo / name / "1" / "documents.txt").write_text(
            "".join(c.replace("\n", " ") + "\n" for c in contexts))
