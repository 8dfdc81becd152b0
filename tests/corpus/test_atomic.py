"""Writers are atomic: readers see the old file or the complete new one, never a torn one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from instructpt.core.atomic import atomic_open, atomic_write_text
from instructpt.core.shards import read_shard, write_shard


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_open(target) as fh:
        fh.write(b"half of the new")
        raise RuntimeError("writer died")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_published_files_get_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_shard_roundtrip_and_checksum_matches_file(tmp_path):
    import hashlib

    recs = [{"id": str(i), "text": "é" * i} for i in range(100)]
    count, sha = write_shard(tmp_path / "s.jsonl.zst", recs)
    assert count == 100
    assert sha == hashlib.sha256((tmp_path / "s.jsonl.zst").read_bytes()).hexdigest()
    assert list(read_shard(tmp_path / "s.jsonl.zst")) == recs


def test_kill_during_a_shard_write_never_publishes_a_partial_shard(tmp_path):
    target = tmp_path / "big.jsonl.zst"
    code = (
        "import sys, os\n"
        "from instructpt.core.shards import write_shard\n"
        "def recs():\n"
        "    for i in range(10**8):\n"
        "        if i == 2000: open(sys.argv[2], 'w').close()\n"
        "        yield {'id': str(i), 'text': os.urandom(64).hex()}\n"
        "write_shard(__import__('pathlib').Path(sys.argv[1]), recs())\n"
    )
    flag = tmp_path / "started"
    proc = subprocess.Popen([sys.executable, "-c", code, str(target), str(flag)])
    deadline = time.monotonic() + 60
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not target.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1  # the torn temp file, which resume removes
