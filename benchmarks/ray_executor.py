"""Overhead of `--executor ray` against the local executor, for mine and cook, side by side.

Builds (untimed) a corpus of `--mb` megabytes with the mine benchmark's
generator (fixture paragraphs and demo-world texts, names varied per
document) and ingests it into `--shards` shards. Then, in one process and on
the same input, times:

- `mine`: local with `--workers` processes (the spawn pool) vs Ray tasks;
- `cook` of the mined records: local (one process: cook has no pool) vs Ray tasks;

each `--repeat` times (best time kept), checks that the Ray output is byte
for byte the local one, and prints a Markdown table. Ray is started once,
before the timed runs, on this machine with `--workers` CPUs; its start-up
(what a CLI call with `--executor ray` pays on top, when it starts its own
Ray) is reported on its own line.

    .venv/bin/python benchmarks/ray_executor.py --mb 20 --shards 8 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import ray

# benchmarks/mine.py (this script's folder is first on sys.path): the same corpus
from mine import write_corpus

from instructpt.cook.config import CookConfig
from instructpt.cook.stage import cook
from instructpt.core.ray_executor import RayExecutor
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.mine import MineConfig, mine


def stage_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def best_of(repeat: int, out: Path, run: Callable[[Path], object]) -> float:
    best = float("inf")
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        run(out)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="Megabytes of text.")
    parser.add_argument("--shards", type=int, default=8, help="Ingest shards (Ray tasks).")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=2, help="Runs per row; the best is kept.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        docs, chars = write_corpus(tmp / "docs.jsonl", args.mb)
        corpus = tmp / "corpus"
        ingest(IngestConfig(input=[str(tmp / "docs.jsonl")], num_shards=args.shards,
                            progress=False), corpus)  # fmt: skip
        mine_cfg = MineConfig(num_workers=args.workers, progress=False)
        cook_cfg = CookConfig(progress=False)

        start = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - start
        executor = RayExecutor()
        # One untimed task per CPU first: worker processes start on first use, once.
        list(executor.map_ordered(abs, list(range(args.workers)), args.workers))

        rows = []
        local_mine = best_of(
            args.repeat, tmp / "mine-local", lambda out: mine(mine_cfg, corpus, out)
        )
        ray_mine = best_of(
            args.repeat,
            tmp / "mine-ray",
            lambda out: mine(mine_cfg, corpus, out, executor=executor),
        )
        same = stage_files(tmp / "mine-local") == stage_files(tmp / "mine-ray")
        rows.append(("mine", f"local, {args.workers} processes", local_mine, chars, None))
        rows.append(("mine", f"ray, {args.workers} CPUs", ray_mine, chars, same))

        synth = tmp / "mine-local"
        local_cook = best_of(
            args.repeat, tmp / "cook-local", lambda out: cook(cook_cfg, synth, out)
        )
        ray_cook = best_of(
            args.repeat, tmp / "cook-ray", lambda out: cook(cook_cfg, synth, out, executor=executor)
        )
        same = stage_files(tmp / "cook-local") == stage_files(tmp / "cook-ray")
        rows.append(("cook", "local, 1 process", local_cook, chars, None))
        rows.append(("cook", f"ray, {args.workers} CPUs", ray_cook, chars, same))
        ray.shutdown()

        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        print(f"\n{platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}, Ray {ray.__version__}, {now}; {docs:,} documents, "
              f"{chars / 1e6:.1f} M characters in {args.shards} shards; best of "
              f"{args.repeat}\n")  # fmt: skip
        print("| stage | executor | seconds | M chars/s | Ray / local | output identical |")
        print("|---|---|---:|---:|---:|---|")
        base = {}
        for stage, how, secs, n, same in rows:
            base.setdefault(stage, secs)
            ratio = f"{secs / base[stage]:.2f}x" if same is not None else ""
            ident = "" if same is None else ("yes (byte for byte)" if same else "NO")
            print(f"| {stage} | {how} | {secs:.2f} | {n / 1e6 / secs:.2f} | {ratio} | {ident} |")
        print(f"\nRay start-up (ray.init, local, {args.workers} CPUs): {ray_start:.1f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
