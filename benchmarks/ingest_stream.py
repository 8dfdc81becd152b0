"""Ingest throughput and peak memory as the corpus grows, side by side with `datasets`.

For each corpus size (in multiples of one output shard) this generates a
jsonl.zst corpus of web-like documents, then runs in fresh processes:
  - `instructpt ingest` (1 worker, and 2 workers), and
  - the baseline a user would otherwise reach for: `datasets.load_dataset("json")`
    followed by `save_to_disk` (Arrow), on the same file.
It reports documents/s and the peak RSS of each process (from wait4), so
"memory stays flat as the corpus grows" is a measured line, not a promise.

    .venv/bin/python benchmarks/ingest_stream.py --base-docs 50000 --multiples 1 4 16
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import orjson
import zstandard

HERE = Path(__file__).resolve().parent
WORDS = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "they",
    "you",
    "were",
    "her",
    "she",
    "there",
    "been",
    "one",
    "all",
    "we",
    "their",
    "has",
    "would",
    "when",
    "if",
    "so",
    "no",
    "will",
    "corpus",
    "model",
    "token",
    "shard",
    "river",
    "city",
    "market",
    "science",
    "history",
    "music",
    "garden",
    "engine",
    "harbor",
]


def make_corpus(path: Path, num_docs: int, seed: int = 0) -> int:
    """Web-like documents of 200-2000 words' worth of characters (~1.6 kB average)."""
    rng = random.Random(seed)
    cctx = zstandard.ZstdCompressor(level=3)
    with open(path, "wb") as raw, cctx.stream_writer(raw) as out:
        for i in range(num_docs):
            n = rng.randint(40, 400)
            text = " ".join(rng.choice(WORDS) for _ in range(n))
            out.write(
                orjson.dumps({"id": f"doc-{i}", "text": text, "url": f"https://x/{i}"}) + b"\n"
            )
    return path.stat().st_size


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MiB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return wall, usage.ru_maxrss // 1024


BASELINE = (
    "import sys, datasets\n"
    "datasets.disable_progress_bars()\n"
    "ds = datasets.load_dataset('json', data_files=sys.argv[1], split='train',\n"
    "                           cache_dir=sys.argv[3])\n"
    "ds.save_to_disk(sys.argv[2])\n"
)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--base-docs", type=int, default=50_000, help="documents in the 1x corpus")
    ap.add_argument("--multiples", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--num-shards", type=int, default=8)
    ap.add_argument("--work", type=Path, default=HERE / "_data" / "ingest")
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "instructpt.cli"]

    rows = []
    for mult in args.multiples:
        docs = args.base_docs * mult
        corpus = args.work / f"corpus-{docs}.jsonl.zst"
        size = make_corpus(corpus, docs) if not corpus.exists() else corpus.stat().st_size
        variants = [("instructpt ingest, 1 worker", 1), ("instructpt ingest, 2 workers", 2)]
        for label, workers in variants:
            run = args.work / f"run-{mult}x-{workers}"
            shutil.rmtree(run, ignore_errors=True)
            # two input files so that 2 workers have 2 sources to read in parallel
            inputs = [str(corpus)]
            if workers > 1:
                half = args.work / f"corpus-{docs}-copy.jsonl.zst"
                if not half.exists():
                    shutil.copy(corpus, half)
                inputs = [str(corpus), str(half)]
            n = docs * len(inputs)
            flags = ["--num-shards", str(args.num_shards), "--num-workers", str(workers)]
            flags += ["--id-field", ""]  # hashed ids: the 2-file copy must not be duplicates
            wall, rss = timed(
                [*exe, "ingest", *inputs, "--run-dir", str(run), *flags, "--no-progress"]
            )
            rows.append((mult, n, size * len(inputs), label, wall, n / wall, rss))
            print(rows[-1], flush=True)
            shutil.rmtree(run, ignore_errors=True)
        if not args.no_baseline:
            out = args.work / f"baseline-{mult}x"
            cache = args.work / "hf-cache"
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)
            wall, rss = timed([sys.executable, "-c", BASELINE, str(corpus), str(out), str(cache)])
            rows.append(
                (
                    mult,
                    docs,
                    size,
                    "datasets load_dataset('json') + save_to_disk",
                    wall,
                    docs / wall,
                    rss,
                )
            )
            print(rows[-1], flush=True)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(cache, ignore_errors=True)

    print()
    print(
        f"## Ingest streaming ({date.today()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"1x = {args.base_docs:,} docs, {args.num_shards} shards, 20,000-record blocks)"
    )
    print()
    print("| corpus | docs | input (zst) | what | wall s | docs/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for mult, n, size, label, wall, rate, rss in rows:
        print(
            f"| {mult}x | {n:,} | {size / 2**20:.0f} MiB | {label} "
            f"| {wall:.1f} | {rate:,.0f} | {rss} |"
        )


if __name__ == "__main__":
    main()
