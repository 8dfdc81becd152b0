"""The shard-to-shard runner resumes exactly after kill -9 and refuses a missing input stage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import orjson
import pytest

from instructpt.core.runner import run_map_stage
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import InputError
from tests.conftest import REPO, sample_records, tree_bytes, write_jsonl
from tests.corpus.stage_script import UpperConfig, upper


@pytest.fixture
def corpus_dir(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(2000))
    ingest(IngestConfig(input=[str(path)], num_shards=6, progress=False), tmp_path / "corpus")
    return tmp_path / "corpus"


def _script(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "tests/corpus/stage_script.py"), *args]


def test_map_stage_writes_one_shard_per_input_shard_with_stats(corpus_dir, tmp_path):
    manifest, done = run_map_stage(
        "upper", corpus_dir, tmp_path / "up", upper, UpperConfig(), progress=False
    )
    assert not done
    assert [s.file for s in manifest.shards] == [f"shard-{i:05d}.jsonl.zst" for i in range(6)]
    dropped = sum(1 for i in range(2000) if i % 7 == 0)
    assert manifest.stats == {
        "dropped_every_seventh": dropped,
        "read": 2000,
        "written": 2000 - dropped,
    }
    assert manifest.num_records == 2000 - dropped


def test_map_stage_killed_mid_shard_resumes_to_identical_bytes(corpus_dir, tmp_path):
    ref, out = tmp_path / "ref", tmp_path / "out"
    subprocess.run(_script(str(corpus_dir), str(ref), "0"), check=True, cwd=REPO)
    for _ in range(2):
        proc = subprocess.Popen(_script(str(corpus_dir), str(out), "0.001"), cwd=REPO)
        deadline = time.monotonic() + 60
        before = (
            len(list((out / "_work/done").glob("*.json"))) if (out / "_work/done").is_dir() else 0
        )
        while time.monotonic() < deadline and proc.poll() is None:
            done = (
                list((out / "_work/done").glob("*.json")) if (out / "_work/done").is_dir() else []
            )
            if len(done) > before:
                time.sleep(0.05)  # into the next shard
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    finished = subprocess.run(
        _script(str(corpus_dir), str(out), "0"), check=True, cwd=REPO, capture_output=True
    )
    assert b"wrote" in finished.stdout
    assert tree_bytes(out) == tree_bytes(ref)
    assert orjson.loads((out / "_manifest.json").read_bytes()) == orjson.loads(
        (ref / "_manifest.json").read_bytes()
    )


def test_map_stage_needs_a_finished_input_stage(tmp_path):
    (tmp_path / "corpus").mkdir()
    with pytest.raises(InputError, match="has not finished"):
        run_map_stage(
            "upper",
            tmp_path / "corpus",
            tmp_path / "up",
            upper,
            UpperConfig(),
            input_stage="ingest",
        )


def test_map_stage_refuses_a_changed_input_stage(corpus_dir, tmp_path):
    run_map_stage("upper", corpus_dir, tmp_path / "up", upper, UpperConfig(), progress=False)
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(10))
    ingest(
        IngestConfig(input=[str(path)], num_shards=6, progress=False), corpus_dir, overwrite=True
    )
    from instructpt.errors import ResumeError

    with pytest.raises(ResumeError, match="input of stage 'upper' changed"):
        run_map_stage("upper", corpus_dir, tmp_path / "up", upper, UpperConfig(), progress=False)
    stats: Counter[str] = Counter()
    assert list(upper(iter([{"id": "x-1", "text": "a"}]), stats)) == [{"id": "x-1", "text": "A"}]
