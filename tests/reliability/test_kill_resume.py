"""SIGKILL the pipeline at seeded random points, resume each time: the outputs are exact.

The pipeline is the real CLI, one subprocess per stage, as a user runs it:
ingest -> synthesize (openai engine) -> cook -> mix (instruct) -> tokenize.
Synthesis talks to a real localhost HTTP server process that serves a tiny,
locally built model through our own HFEngine (tests/reliability/model_server.py;
not `transformers serve`, because the server must log every request it
receives and a random tiny model behind `transformers serve` writes no
parseable pairs, which would leave cook and mix with nothing to do).

Kill points are drawn from a seeded generator: a stage, chosen with weight
proportional to its work in the uninterrupted reference run, and a delay
into that work (timed from the stage's first write in its folder, so slow
imports on a loaded machine do not turn every kill into a kill during
start-up), drawn uniformly within an even share of the stage's work so that
resumes do not finish a stage before its last kill point. The process group
is SIGKILLed (nothing can be flushed or cleaned up), then the next attempt
resumes from the first stage without a manifest.

What must hold (and is asserted):
- every file under the run directory (except the replay cache itself) is
  byte-identical to the uninterrupted run's, and no temp file is left;
- no request whose completion was in the replay cache when an attempt began
  is received by the server during that attempt (no finished request twice);
- a request is received twice only when it was sent but not yet stored when a
  kill came (at most `concurrency` per kill), and the repeats at the server
  equal exactly the number of such requests;
- the server saw exactly the reference run's set of prompts.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from instructpt.synth.cache import request_key
from instructpt.synth.engines.base import DecodingParams
from instructpt.synth.format import FORMAT_VERSION
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import REPO, sample_records, write_jsonl

CONCURRENCY = 2
MAX_NEW_TOKENS = 8
NUM_DOCS = 100
STAGES = ("ingest", "synthesize", "cook", "mix", "tokenize")
STAGE_DIRS = {
    "ingest": "corpus",
    "synthesize": "synth",
    "cook": "cooked",
    "mix": "mix/instruct",
    "tokenize": "tokens/instruct",
}


def stage_args(stage: str, url: str, model: Path) -> list[str]:
    common = ["--run-dir", "r", "--no-progress"]
    return {
        "ingest": ["ingest", "../docs.jsonl", "--num-shards", "4", *common],
        "synthesize": [
            "synthesize", "--engine", "openai", "--model", "tiny", "--tokenizer", str(model),
            "--openai-base-urls", url, "--openai-concurrency", str(CONCURRENCY),
            "--openai-request-timeout-s", "60", "--num-rounds", "2",
            "--max-new-tokens", str(MAX_NEW_TOKENS), *common,
        ],
        "cook": ["cook", *common],
        "mix": ["mix", "--recipe", "instruct", "--tokenizer", str(model), *common],
        "tokenize": [
            "tokenize", "--variant", "instruct", "--tokenizer", str(model), "--seq-len", "64",
            *common,
        ],
    }[stage]  # fmt: skip


@dataclass
class Served:
    url: str
    log: Path
    model: Path

    def log_lines(self) -> list[dict]:
        return [json.loads(x) for x in self.log.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The tiny model behind tests/reliability/model_server.py, in its own process."""
    root = tmp_path_factory.mktemp("served")
    model = build_tiny_model(root / "model", [r["text"] for r in sample_records(300)])
    log = root / "requests.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.model_server", "--model", str(model),
         "--port", "0", "--log", str(log)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"}, start_new_session=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # "serving on URL" once the model is loaded
        assert line.startswith("serving on "), line
        yield Served(line.split()[-1], log, model)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@dataclass
class Attempt:
    """What one kill point did."""

    stage: str
    delay_s: float
    landed: bool  # False: the stage finished before the kill time came
    in_flight: int = 0  # requests sent but not stored when the kill came


@dataclass
class Harness:
    served: Served
    root: Path
    durations: dict[str, float] = field(default_factory=dict)

    @property
    def run(self) -> Path:
        return self.root / "r"

    def start(self, stage: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "instructpt.cli", *stage_args(stage, self.served.url,
                                                                 self.served.model)],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1"},
            start_new_session=True,
        )  # fmt: skip

    def finished(self, stage: str) -> bool:
        return (self.run / STAGE_DIRS[stage] / "_manifest.json").is_file()

    def run_stage(self, stage: str, timeout: float = 240) -> float:
        start = time.monotonic()
        proc = self.start(stage)
        _, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, f"{stage} failed:\n{err.decode()[-3000:]}"
        return time.monotonic() - start

    def run_all(self) -> None:
        for stage in STAGES:
            self.durations[stage] = self.run_stage(stage)

    def kill_at(self, stage: str, delay_s: float) -> bool:
        """Resume up to `stage`, start it, SIGKILL its process group `delay_s` into its work.

        Its work has started when anything in its folder was written by this
        attempt (the resolved config is written first); timing from there, not
        from the process start, keeps a loaded machine's slow imports from
        turning every kill into a kill during start-up.
        """
        for earlier in STAGES[: STAGES.index(stage)]:
            if not self.finished(earlier):
                self.run_stage(earlier)
        if self.finished(stage):
            return False
        started = time.time()
        proc = self.start(stage)
        folder = self.run / STAGE_DIRS[stage]
        deadline = time.monotonic() + 240
        while proc.poll() is None and not _written_since(folder, started):
            assert time.monotonic() < deadline, f"{stage} wrote nothing in 240 s"
            time.sleep(0.01)
        try:
            proc.wait(timeout=delay_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        err = proc.stderr.read().decode() if proc.stderr else ""
        assert proc.returncode == 0, f"{stage} failed:\n{err[-3000:]}"
        return False


def _written_since(folder: Path, since: float) -> bool:
    try:
        return any(p.stat().st_mtime >= since for p in folder.rglob("*"))
    except FileNotFoundError:  # a temp file renamed away while we looked
        return False


def outputs(run: Path) -> dict[str, bytes]:
    """Every file of the run except the replay cache (sqlite pages differ by history)."""
    return {
        str(p.relative_to(run)): p.read_bytes()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.relative_to(run).parts[0] != "cache"
    }


def cached_keys(run: Path) -> set[str]:
    path = run / "cache" / "synth-replay.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(path)
    try:
        return {row[0] for row in db.execute("SELECT key FROM completions")}
    finally:
        db.close()


def identity() -> dict:
    return {
        "name": "openai",
        "model": "tiny",
        "revision": None,
        "decoding": DecodingParams(max_new_tokens=MAX_NEW_TOKENS).as_dict(),
        "format_version": FORMAT_VERSION,
    }


def draw_kill_points(seed: int, num_kills: int, durations: dict[str, float], startup: float):
    """(stage, delay into its work) pairs in pipeline order, from a seeded generator.

    A stage is chosen with weight proportional to its work in the reference
    run; each of its n points falls uniformly within an n-th of that work, so
    resumes cannot finish the stage before its last point.
    """
    rng = random.Random(seed)
    work = {s: max(durations[s] - startup, 0.3) for s in STAGES}
    chosen = Counter(rng.choices(STAGES, weights=[work[s] for s in STAGES], k=num_kills))
    points = []
    for stage in STAGES:
        n = chosen[stage]
        points += [(stage, rng.uniform(0.0, work[stage] / n)) for _ in range(n)]
    return points


def kill_and_resume(
    served: Served, tmp_path: Path, num_kills: int, seed: int, num_docs: int = NUM_DOCS
) -> dict:
    docs = write_jsonl(tmp_path / "docs.jsonl", sample_records(num_docs))
    ref = Harness(served, tmp_path / "ref")
    ref.root.mkdir()
    (ref.root / "docs.jsonl").symlink_to(docs)
    mark = len(served.log_lines())
    ref.run_all()
    ref_received = Counter(
        tuple(e["prompt"]) for e in served.log_lines()[mark:] if e["event"] == "received"
    )
    assert len(ref_received) == sum(ref_received.values()), "the reference repeated a request"
    reference = outputs(ref.run)

    # Start-up: the time a stage takes when there is nothing to do.
    startup = ref.run_stage("cook")
    assert outputs(ref.run) == reference  # a finished stage rerun changes nothing

    work = Harness(served, tmp_path / "work")
    work.root.mkdir()
    (work.root / "docs.jsonl").symlink_to(docs)
    attempts: list[Attempt] = []
    received: Counter[tuple[int, ...]] = Counter()
    key = identity()
    for stage, delay in draw_kill_points(seed, num_kills, ref.durations, startup):
        before = cached_keys(work.run)
        mark = len(served.log_lines())
        landed = work.kill_at(stage, delay)
        sent = [tuple(e["prompt"]) for e in served.log_lines()[mark:] if e["event"] == "received"]
        received.update(sent)
        keys = {request_key(key, ids) for ids in sent}
        assert not keys & before, "a finished request was sent again after a kill"
        # Sent but not stored when the kill came: these, and only these, go out again.
        lost = len(keys - cached_keys(work.run))
        assert lost <= CONCURRENCY, (lost, stage)
        attempts.append(Attempt(stage, delay, landed, lost))
    mark = len(served.log_lines())
    before = cached_keys(work.run)
    for stage in STAGES:  # the final, uninterrupted resume: finished stages do nothing
        work.run_stage(stage)
    sent = [tuple(e["prompt"]) for e in served.log_lines()[mark:] if e["event"] == "received"]
    assert not ({request_key(key, ids) for ids in sent} & before)
    received.update(sent)

    landed = [a for a in attempts if a.landed]
    got = outputs(work.run)
    assert sorted(got) == sorted(reference), "files differ: " + str(set(got) ^ set(reference))
    for name in reference:
        assert got[name] == reference[name], f"{name} differs from the uninterrupted run"
    assert set(received) == set(ref_received)
    repeats = sum(n - 1 for n in received.values())
    assert repeats == sum(a.in_flight for a in attempts), (repeats, attempts)
    return {
        "kills": len(landed),
        "points": len(attempts),
        "by_stage": dict(Counter(a.stage for a in landed)),
        "repeats": repeats,
        "kills_with_requests_in_flight": sum(a.in_flight > 0 for a in attempts),
        "requests": sum(received.values()),
        "reference_requests": sum(ref_received.values()),
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_twenty_random_kills_then_resume_give_the_uninterrupted_bytes(served, tmp_path):
    figures = kill_and_resume(served, tmp_path, num_kills=20, seed=12)
    print("kill-resume:", figures)
    # Points whose stage finished before the kill time are not kills; nearly all land.
    assert figures["kills"] >= 16, figures


@pytest.mark.slow
@pytest.mark.ci
@pytest.mark.timeout(300)
def test_four_random_kills_then_resume_give_the_uninterrupted_bytes(served, tmp_path):
    figures = kill_and_resume(served, tmp_path, num_kills=4, seed=3, num_docs=40)
    print("kill-resume:", figures)
    assert figures["kills"] >= 3, figures
