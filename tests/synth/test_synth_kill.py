"""kill -9 in the middle of synthesis against an HTTP server, then rerun.

The server is the fault-injecting stand-in (tests/synth/fault_server.py) in
plain "ok" mode with some latency, because the test must count, at the
server, every request it receives; the synthesize process is the real CLI.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.cache import request_key
from instructpt.synth.engines.base import DecodingParams
from instructpt.synth.format import FORMAT_VERSION
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import REPO, run_cli, sample_records, tree_bytes, write_jsonl
from tests.synth.fault_server import FaultServer

CONCURRENCY = 4


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [r["text"] for r in sample_records(300)]
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts)


def _prepare(run: Path, docs: Path) -> None:
    ingest(IngestConfig(input=[str(docs)], num_shards=3, progress=False), run / "corpus")


def _args(run: Path, model: Path, url: str) -> list[str]:
    return [
        "synthesize", "--run-dir", str(run), "--engine", "openai", "--model", "tiny",
        "--tokenizer", str(model), "--openai-base-urls", url,
        "--openai-concurrency", str(CONCURRENCY), "--num-rounds", "2", "--no-progress",
    ]  # fmt: skip


def _cached_keys(run: Path) -> set[str]:
    db = sqlite3.connect(run / "cache" / "synth-replay.sqlite")
    try:
        return {row[0] for row in db.execute("SELECT key FROM completions")}
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.ci
def test_kill9_mid_synthesis_then_rerun_is_identical_and_resends_no_finished_request(
    tmp_path, tiny_model
):
    ref, run = tmp_path / "ref", tmp_path / "run"
    docs = write_jsonl(tmp_path / "docs.jsonl", sample_records(80))
    for d in (ref, run):
        d.mkdir()
        _prepare(d, docs)
    with FaultServer(latency_s=0.02, models=["tiny"]) as server:
        run_cli(*_args(ref, tiny_model, server.url), cwd=REPO)
        reference_requests = server.total_requests
    assert reference_requests == 80

    identity = {
        "name": "openai",
        "model": "tiny",
        "revision": None,
        "decoding": DecodingParams().as_dict(),
        "format_version": FORMAT_VERSION,
    }

    def keys_sent_since(snapshot: dict[str, int], server: FaultServer) -> set[str]:
        return {
            request_key(identity, tuple(int(x) for x in prompt.split(",")))
            for prompt, n in server.requests.items()
            if n > snapshot.get(prompt, 0)
        }

    with FaultServer(latency_s=0.02, models=["tiny"]) as server:
        kills = 0
        for threshold in (10, 45, None):  # two runs killed at these answer counts, one finishes
            finished = _cached_keys(run) if (run / "cache").exists() else set()
            snapshot = dict(server.requests)
            proc = subprocess.Popen(
                [sys.executable, "-m", "instructpt.cli", *_args(run, tiny_model, server.url)],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 120
            while threshold is not None and time.monotonic() < deadline and proc.poll() is None:
                if sum(server.answered.values()) >= threshold:
                    os.kill(proc.pid, signal.SIGKILL)
                    kills += 1
                    break
                time.sleep(0.002)
            _, err = proc.communicate(timeout=120)
            if threshold is None:
                assert proc.returncode == 0, err
            # No request whose completion was stored before this run is sent again.
            assert not (keys_sent_since(snapshot, server) & finished)
        assert kills == 2
        # At the server, only requests in flight at a kill can appear twice.
        repeated = sum(1 for n in server.requests.values() if n > 1)
        assert repeated <= kills * CONCURRENCY
        total = server.total_requests
    assert tree_bytes(run / "synth") == tree_bytes(ref / "synth")
    assert total <= reference_requests + kills * CONCURRENCY
