"""Peak memory of ingest does not grow with the corpus (measured on real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest


def _corpus(path: Path, num_docs: int) -> None:
    with open(path, "wb") as fh:
        for i in range(num_docs):
            fh.write(
                orjson.dumps({"id": f"d{i}", "text": f"document {i} " + "lorem ipsum " * 25})
                + b"\n"
            )


def _peak_rss_mib(args: list[str]) -> float:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert status == 0, proc.stderr.read() if proc.stderr else status
    return usage.ru_maxrss / 1024


@pytest.mark.slow
@pytest.mark.ci
def test_peak_rss_stays_flat_when_the_corpus_grows_16x(tmp_path):
    rss = {}
    for num_docs in (10_000, 160_000):
        path = tmp_path / f"c{num_docs}.jsonl"
        _corpus(path, num_docs)
        rss[num_docs] = _peak_rss_mib(
            [sys.executable, "-m", "instructpt.cli", "ingest", str(path), "--run-dir",
             str(tmp_path / f"r{num_docs}"), "--block-records", "5000", "--num-shards", "4",
             "--no-progress"]
        )  # fmt: skip
    small, big = rss[10_000], rss[160_000]
    # 16x the documents (and 4x the documents per shard) may cost a little more, never 16x
    assert big <= small * 1.3 + 16, rss
