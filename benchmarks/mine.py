"""Throughput of the model-free miner (the mine stage), 1 worker vs N, plus a profile.

Builds (untimed) a corpus of `--mb` megabytes of text: documents of 3-8
paragraphs drawn by a seeded generator from the fixture paragraphs
(tests/fixtures/paragraphs.jsonl) and the demo world's texts, with every
proper name re-spelled per document so that the text varies; ingests it into
shards. Then times the mine stage with 1 and `--workers` processes (same
output bytes, checked), and prints a Markdown table: MB/s in total and per
worker, pairs/s, and peak RSS (this process and its children, from
`resource.getrusage`). Last, it profiles `mine_text` in this process on
`--profile-mb` megabytes and prints the top functions by own time.

    .venv/bin/python benchmarks/mine.py --mb 100 --workers 2
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.mine import MineConfig, mine, mine_text
from instructpt.world import build_world
from instructpt.world.config import WorldConfig

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "paragraphs.jsonl"
_CAPITALISED = re.compile(r"\b([A-Z][a-z]{3,})\b")


def paragraph_pool() -> list[str]:
    pool = [json.loads(line)["text"] for line in FIXTURES.read_text("utf-8").splitlines()]
    pool += [t.text for t in build_world(WorldConfig()).texts]
    return pool


def write_corpus(path: Path, megabytes: float, seed: int = 0) -> tuple[int, int]:
    """Documents of 3-8 pooled paragraphs, names varied per document; (docs, chars)."""
    rng = random.Random(seed)
    pool = paragraph_pool()
    target = int(megabytes * 1e6)
    docs = chars = 0
    with path.open("w", encoding="utf-8") as fh:
        while chars < target:
            suffix = "".join(rng.choice("aeioulnrst") for _ in range(3))
            paragraphs = rng.sample(pool, rng.randint(3, 8))
            text = "\n\n".join(paragraphs)
            text = _CAPITALISED.sub(lambda m, s=suffix: m.group(1) + s, text)
            fh.write(json.dumps({"id": f"doc-{docs:08d}", "text": text}) + "\n")
            docs += 1
            chars += len(text)
    return docs, chars


def peak_rss_mb() -> tuple[float, float]:
    """Peak resident set size of this process and of its largest child, in MB."""
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, child_kb / 1024


def profile(corpus: Path, megabytes: float, top: int = 10) -> str:
    docs: list[dict] = []
    size = 0
    with corpus.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            docs.append(doc)
            size += len(doc["text"])
            if size >= megabytes * 1e6:
                break
    cfg = MineConfig(num_workers=1, progress=False)
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for doc in docs:
        mine_text(doc["id"], doc["text"], cfg)
    prof.disable()
    seconds = time.perf_counter() - start
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    head = f"profile: {size / 1e6:.1f} MB in {seconds:.1f} s under cProfile\n"
    return head + out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="corpus size in MB of text")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--profile-mb", type=float, default=3.0)
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep the files")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="mine-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        raw = work / "corpus.jsonl"
        start = time.perf_counter()
        docs, chars = write_corpus(raw, args.mb)
        ingest(
            IngestConfig(input=[str(raw)], num_shards=args.shards, progress=False),
            work / "corpus",
            overwrite=True,
        )
        print(
            f"corpus: {docs:,} documents, {chars / 1e6:.1f} M chars, {args.shards} shards "
            f"(built in {time.perf_counter() - start:.0f} s, untimed)"
        )

        rows = []
        outputs = []
        for workers in sorted({1, args.workers}):
            out = work / f"synth-{workers}"
            cfg = MineConfig(num_workers=workers, progress=False)
            start = time.perf_counter()
            result = mine(cfg, work / "corpus", out, overwrite=True)
            seconds = time.perf_counter() - start
            pairs = result.manifest.stats["pairs"]
            rss_self, rss_child = peak_rss_mb()
            rows.append(
                f"| {workers} | {seconds:.1f} | {chars / 1e6 / seconds:.2f} | "
                f"{chars / 1e6 / seconds / workers:.2f} | {pairs / seconds:,.0f} | "
                f"{pairs / docs:.2f} | {result.manifest.stats['parse_yield']:.1%} | "
                f"{rss_self:.0f} / {rss_child:.0f} |"
            )
            outputs.append([s.sha256 for s in result.manifest.shards])
        same = all(o == outputs[0] for o in outputs)

        print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}; {chars / 1e6:.1f} MB of text\n")  # fmt: skip
        print(
            "| workers | seconds | MB/s | MB/s per worker | pairs/s | pairs/text | "
            "texts with pairs | peak RSS MB (self / largest child) |"
        )
        print("|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        print(f"\nidentical shards across worker counts: {same}\n")
        print(profile(raw, args.profile_mb))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
