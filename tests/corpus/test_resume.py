"""Exact resume: a kill -9 anywhere, then a rerun, gives the bytes of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import ResumeError
from tests.conftest import run_cli, sample_records, tree_bytes, write_jsonl

ARGS = ["--block-records", "1500", "--num-shards", "12", "--no-progress"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    records = sample_records(90_000)
    records[500]["text"] = ""  # one bad record, so the quarantine file is compared too
    write_jsonl(folder / "part-a.jsonl", records[:60_000])
    write_jsonl(folder / "part-b.jsonl", records[60_000:] + records[:10])  # 10 duplicate ids
    return folder


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> dict[str, bytes]:
    run = tmp_path_factory.mktemp("ref")
    run_cli("ingest", str(corpus), "--run-dir", str(run), *ARGS, cwd=run)
    out = tree_bytes(run / "corpus", "*")
    assert "quarantine.jsonl" in out and "_manifest.json" in out
    return out


def _start(corpus: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "instructpt.cli",
            "ingest",
            str(corpus),
            "--run-dir",
            str(run),
            *ARGS,
        ],
        cwd=run,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> bool:
    """SIGKILL `proc` as soon as `ready()` holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    raise AssertionError("kill point never reached")


def _count(folder: Path, pattern: str) -> int:
    return len(list(folder.glob(pattern))) if folder.is_dir() else 0


def test_kill_during_reading_and_during_assembly_then_resume_is_byte_identical(
    corpus, reference, tmp_path
):
    work = tmp_path / "corpus" / "_work"
    kill_points = [
        lambda: _count(work / "units", "u*") >= 5,
        lambda: _count(work / "units", "u*") >= 40,
        lambda: _count(work / "merged", "*.json") >= 3,
    ]
    killed = 0
    for ready in kill_points:
        killed += _kill_when(_start(corpus, tmp_path), ready)
    assert killed >= 2, "the run finished before the kill points; make the corpus bigger"
    assert not (tmp_path / "corpus" / "_manifest.json").exists()
    run_cli("ingest", str(corpus), "--run-dir", str(tmp_path), *ARGS, cwd=tmp_path)
    assert tree_bytes(tmp_path / "corpus", "*") == reference


def test_rerun_of_a_finished_stage_does_nothing_and_says_so(corpus, reference, tmp_path):
    run_cli("ingest", str(corpus), "--run-dir", str(tmp_path), *ARGS, cwd=tmp_path)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "corpus").iterdir()}
    proc = run_cli("ingest", str(corpus), "--run-dir", str(tmp_path), *ARGS, cwd=tmp_path)
    assert "already complete" in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "corpus").iterdir()} == before


def test_worker_count_does_not_change_the_output(corpus, reference, tmp_path):
    run_cli(
        "ingest", str(corpus), "--run-dir", str(tmp_path), *ARGS, "--num-workers", "2", cwd=tmp_path
    )
    got = tree_bytes(tmp_path / "corpus", "*")
    assert b"num_workers: 2" in got.pop("config.yaml")  # the resolved config says what ran
    assert got == {k: v for k, v in reference.items() if k != "config.yaml"}


def test_config_change_on_rerun_is_refused_naming_the_key_unless_overwrite(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(50))
    ingest(IngestConfig(input=[str(path)], num_shards=4, progress=False), tmp_path / "corpus")
    changed = IngestConfig(input=[str(path)], num_shards=5, progress=False)
    with pytest.raises(ResumeError, match=r"num_shards: 4 -> 5.*--overwrite"):
        ingest(changed, tmp_path / "corpus")
    # runtime-only fields (workers, progress bar) never block a resume
    ingest(IngestConfig(input=[str(path)], num_shards=4, num_workers=2), tmp_path / "corpus")
    result = ingest(changed, tmp_path / "corpus", overwrite=True)
    assert len(result.manifest.shards) == 5
    assert len(list((tmp_path / "corpus").glob("shard-*"))) == 5


def test_config_change_after_a_kill_is_refused_too(corpus, tmp_path):
    proc = _start(corpus, tmp_path)
    assert _kill_when(proc, lambda: _count(tmp_path / "corpus/_work/units", "u*") >= 2)
    res = run_cli(
        "ingest", str(corpus), "--run-dir", str(tmp_path), "--block-records", "1500",
        "--num-shards", "7", check=False, cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 2
    assert "num_shards: 12 -> 7" in res.stderr and "Traceback" not in res.stderr


def test_changed_input_is_refused(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(20))
    ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "corpus")
    write_jsonl(path, sample_records(21))
    with pytest.raises(ResumeError, match="input of stage 'ingest' changed"):
        ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "corpus")


def test_refuses_to_write_into_a_foreign_non_empty_folder(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", sample_records(3))
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "precious.txt").write_text("mine")
    with pytest.raises(ResumeError, match="not written by instructpt"):
        ingest(IngestConfig(input=[str(path)], progress=False), tmp_path / "corpus", overwrite=True)
    assert (tmp_path / "corpus" / "precious.txt").read_text() == "mine"
