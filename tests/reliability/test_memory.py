"""Streaming stages keep RSS flat over a corpus 20 times the shard size.

ingest -> mine -> cook (the model-free path, every stage streaming shard by
shard), run as real CLI subprocesses whose resident memory (process and
children) is sampled with psutil every 50 ms. The same pipeline over one
shard's worth of documents gives the baseline; over 20 shards' worth, each
stage's peak may exceed it by a little (more shards open in the manifest,
allocator noise), never in proportion to the corpus, and the second half of
each run must not climb above the first half (no per-shard leak).

`python -m tests.reliability.test_memory` prints the curves for
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest

from tests.conftest import REPO

DOCS_PER_SHARD = 1000
STAGES = {
    "ingest": lambda shards: ["ingest", "c.jsonl", "--num-shards", str(shards),
                              "--block-records", str(DOCS_PER_SHARD)],
    "mine": lambda shards: ["mine", "--num-workers", "1"],  # a pool's processes are not growth
    "cook": lambda shards: ["cook"],
}  # fmt: skip


def world_corpus(path: Path, num_docs: int, world: Path) -> None:
    """World documents, repeated with fresh ids and a distinguishing sentence."""
    docs = [orjson.loads(x) for x in (world / "documents.jsonl").read_bytes().splitlines()]
    with open(path, "wb") as fh:
        for k in range(num_docs):
            d = docs[k % len(docs)]
            fh.write(orjson.dumps({"id": f"{d['id']}-{k}", "text": f"{d['text']} Record {k}."}))
            fh.write(b"\n")


def measure(args: list[str], cwd: Path) -> list[tuple[float, float]]:
    """(seconds, RSS MiB of the process and its children) every 50 ms until it exits."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "instructpt.cli", *args],
        cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    ps = psutil.Process(proc.pid)
    start = time.monotonic()
    samples: list[tuple[float, float]] = []
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(
                c.memory_info().rss for c in ps.children(recursive=True)
            )
        except psutil.Error:  # exited between poll and sample
            break
        samples.append((time.monotonic() - start, rss / 2**20))
        time.sleep(0.05)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    return samples


def curve(samples: list[tuple[float, float]], points: int = 5) -> list[float]:
    """Peak RSS in each of `points` equal slices of the run's time."""
    end = samples[-1][0] or 1.0
    out = []
    for i in range(points):
        window = [m for t, m in samples if i * end / points <= t <= (i + 1) * end / points]
        out.append(round(max(window, default=out[-1] if out else 0.0), 1))
    return out


def pipeline_rss(tmp: Path, world: Path, num_shards: int) -> dict[str, list[tuple[float, float]]]:
    run_root = tmp / f"x{num_shards}"
    run_root.mkdir()
    world_corpus(run_root / "c.jsonl", num_shards * DOCS_PER_SHARD, world)
    return {
        stage: measure([*make(num_shards), "--run-dir", "r", "--no-progress"], run_root)
        for stage, make in STAGES.items()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    subprocess.run(
        [sys.executable, "-m", "instructpt.cli", "world", "--run-dir", str(root),
         "--num-people", "100", "--num-cities", "10", "--num-companies", "10",
         "--num-universities", "4", "--num-countries", "3"],
        check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    return root / "world"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_rss_of_ingest_mine_and_cook_stays_flat_over_twenty_shards(tmp_path, world):
    small = pipeline_rss(tmp_path, world, 1)
    big = pipeline_rss(tmp_path, world, 20)
    for stage in STAGES:
        peak_small = max(m for _, m in small[stage])
        peak_big = max(m for _, m in big[stage])
        shape = curve(big[stage])
        print(f"{stage}: peak 1 shard {peak_small:.0f} MiB, 20 shards {peak_big:.0f} MiB, "
              f"curve {shape}")  # fmt: skip
        assert peak_big <= peak_small * 1.25 + 32, (stage, peak_small, peak_big)
        # Flat after warm-up: the first fifths include imports ramping up, so compare
        # the second half of the run with its own start, not with the warm-up.
        half = len(shape) // 2
        assert max(shape[half:]) - shape[half] <= 16, (stage, shape)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp) / "w"
        subprocess.run(
            [sys.executable, "-m", "instructpt.cli", "world", "--run-dir", str(w),
             "--num-people", "100", "--num-cities", "10", "--num-companies", "10",
             "--num-universities", "4", "--num-countries", "3"],
            check=True, capture_output=True,
        )  # fmt: skip
        for shards in (1, 20):
            for stage, samples in pipeline_rss(Path(tmp), w / "world", shards).items():
                print(f"{shards} shard(s) {stage}: {samples[-1][0]:.1f} s, "
                      f"RSS MiB per fifth of the run {curve(samples)}")  # fmt: skip
