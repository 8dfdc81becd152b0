"""The synthesize stage against a failing endpoint in a real server process.

The server is tests/synth/fault_server.py run as its own process
(tests/reliability/fault_process.py), so it can be scripted, killed and
restarted under a running `instructpt synthesize` (the real CLI, also a
process). Every fault kind of the issue is injected: 429 with and without
Retry-After (seconds and HTTP date), 500, 503, slow answers, hangs, dropped
connections, truncated and non-JSON bodies, an endpoint that is down for good
and one that dies mid-run. What must hold: bounded retries, every wait bounded
by a timeout (a run never hangs), a clear one-line failure when the endpoint
is gone, and nothing lost: after the endpoint is back, a rerun completes with
the bytes of a clean run, and no completion that was received is asked for
again.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.tiny import train_tokenizer
from tests.conftest import REPO, sample_records, tree_bytes, write_jsonl

pytestmark = pytest.mark.timeout(240)

NUM_DOCS = 24
FAULTS = ["429", "429:0.2", "429date:1", "500", "503", "503:0.1", "slow:0.3", "hang", "drop",
          "truncated", "nonjson"]  # fmt: skip


class Endpoint:
    """A fault server process; `counts()` reads what it has seen so far."""

    def __init__(self, root: Path, script: list[str], default: str = "ok", port: int = 0):
        self.stats = root / f"stats-{time.monotonic_ns()}.json"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fault_process", "--stats", str(self.stats),
             "--script", ",".join(script), "--default", default, "--port", str(port)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        assert line.startswith("serving on "), line
        self.url = line.split()[-1]
        self.port = int(self.url.split(":")[2].split("/")[0])

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        for _ in range(50):
            try:
                data = json.loads(self.stats.read_text())
                return data["requests"], data["answered"]
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.02)
        raise AssertionError("no stats from the fault server")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok")
    train_tokenizer([r["text"] for r in sample_records(300)]).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("docs") / "docs.jsonl", sample_records(NUM_DOCS))


def prepared_run(root: Path, docs: Path) -> Path:
    run = root / "r"
    ingest(IngestConfig(input=[str(docs)], num_shards=2, progress=False), run / "corpus")
    return run


def synthesize(run: Path, tok: Path, url: str, *extra: str, timeout: float = 120):
    """The real CLI; short test-sized timeouts and backoffs, as a user may set them."""
    args = [
        "synthesize", "--run-dir", str(run), "--engine", "openai", "--model", "tiny",
        "--tokenizer", str(tok), "--openai-base-urls", url, "--openai-concurrency", "2",
        "--openai-request-timeout-s", "1", "--openai-connect-timeout-s", "1",
        "--openai-backoff-base-s", "0.05", "--openai-backoff-max-s", "0.5",
        "--openai-max-retries", "3", "--num-rounds", "2", "--no-progress", *extra,
    ]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "instructpt.cli", *args],
        cwd=run.parent, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return proc, time.monotonic() - start


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tokenizer_dir, docs) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("ref")
    run = prepared_run(root, docs)
    server = Endpoint(root, [])
    try:
        proc, _ = synthesize(run, tokenizer_dir, server.url)
        assert proc.returncode == 0, proc.stderr
        requests, _ = server.counts()
    finally:
        server.stop()
    assert len(requests) == NUM_DOCS and set(requests.values()) == {1}
    return outputs(run)


def outputs(run: Path) -> dict[str, bytes]:
    """The synth stage's files; config.yaml names the endpoint, which differs between runs."""
    return {k: v for k, v in tree_bytes(run / "synth", "*").items() if k != "config.yaml"}


def test_every_fault_kind_is_retried_and_the_output_equals_a_clean_run(
    tmp_path, tokenizer_dir, docs, reference
):
    # Each fault twice in a row (two attempts of one request, or of two requests).
    script = [f for fault in FAULTS for f in (fault, fault)]
    run = prepared_run(tmp_path, docs)
    server = Endpoint(tmp_path, script)
    try:
        # two workers share the script, so one request may meet several faults in a row
        proc, took = synthesize(run, tokenizer_dir, server.url, "--openai-max-retries", "30")
        requests, answered = server.counts()
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr
    assert outputs(run) == reference
    assert len(answered) == NUM_DOCS and set(answered.values()) == {1}  # none answered twice
    retried = [f for f in script if not f.startswith("slow")]  # a slow answer is an answer
    assert sum(requests.values()) == NUM_DOCS + len(retried)  # each fault cost one retry
    # two hangs of 1 s (the request timeout), Retry-After at most 1 s, backoffs at most 0.5 s
    assert took < 60, took


def test_endpoint_down_for_good_fails_clearly_and_in_bounded_time_then_resume_is_exact(
    tmp_path, tokenizer_dir, docs, reference
):
    run = prepared_run(tmp_path, docs)
    server = Endpoint(tmp_path, ["ok"] * 7, default="500")
    try:
        proc, took = synthesize(run, tokenizer_dir, server.url)
        _, answered_before = server.counts()
    finally:
        server.stop()
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) <= 3, err
    assert server.url in err and "HTTP 500" in err and "gave up after 4 attempts" in err
    assert took < 60, took  # 4 attempts, backoffs of at most 0.5 s, never a hang
    assert not (run / "synth" / "_manifest.json").exists()

    healthy = Endpoint(tmp_path, [])
    try:
        proc, _ = synthesize(run, tokenizer_dir, healthy.url)
        requests_after, _ = healthy.counts()
    finally:
        healthy.stop()
    assert proc.returncode == 0, proc.stderr
    assert outputs(run) == reference
    # what the dying endpoint answered was kept: none of it is asked for again
    assert not set(answered_before) & set(requests_after)
    assert len(answered_before) + len(requests_after) == NUM_DOCS


def test_endpoint_that_hangs_on_everything_fails_within_the_timeouts(tmp_path, tokenizer_dir, docs):
    run = prepared_run(tmp_path, docs)
    server = Endpoint(tmp_path, [], default="hang")
    try:
        proc, took = synthesize(run, tokenizer_dir, server.url)
    finally:
        server.stop(signal.SIGKILL)
    assert proc.returncode == 2, proc.stderr
    assert "no answer within 1 s" in proc.stderr and "gave up after 4 attempts" in proc.stderr
    assert took < 40, took  # 4 attempts x 1 s + backoffs, plus start-up


def test_endpoint_killed_mid_run_fails_clearly_and_a_restart_resumes_exactly(
    tmp_path, tokenizer_dir, docs, reference
):
    run = prepared_run(tmp_path, docs)
    server = Endpoint(tmp_path, [], default="slow:0.2")
    client = subprocess.Popen(
        [sys.executable, "-m", "instructpt.cli", "synthesize", "--run-dir", str(run),
         "--engine", "openai", "--model", "tiny", "--tokenizer", str(tokenizer_dir),
         "--openai-base-urls", server.url, "--openai-concurrency", "2",
         "--openai-request-timeout-s", "1", "--openai-connect-timeout-s", "1",
         "--openai-backoff-base-s", "0.05", "--openai-backoff-max-s", "0.5",
         "--openai-max-retries", "3", "--num-rounds", "2", "--no-progress"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while sum(server.counts()[1].values()) < 6:
        assert time.monotonic() < deadline and client.poll() is None
        time.sleep(0.02)
    server.stop(signal.SIGKILL)  # the endpoint dies; its connections reset
    _, err = client.communicate(timeout=60)
    assert client.returncode == 2, err
    assert "Traceback" not in err and "gave up after 4 attempts" in err, err
    assert "connection error" in err or "no answer" in err, err

    restarted = Endpoint(tmp_path, [])
    try:
        proc, _ = synthesize(run, tokenizer_dir, restarted.url)
    finally:
        restarted.stop()
    assert proc.returncode == 0, proc.stderr
    assert outputs(run) == reference


def test_unreachable_endpoint_is_refused_at_the_edge_before_any_work(tmp_path, tokenizer_dir, docs):
    run = prepared_run(tmp_path, docs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    proc, took = synthesize(run, tokenizer_dir, url)
    assert proc.returncode == 2 and "cannot reach" in proc.stderr and url in proc.stderr
    assert "Traceback" not in proc.stderr
    assert took < 30, took
    assert not (run / "synth").exists() or not any((run / "synth").glob("shard-*"))
