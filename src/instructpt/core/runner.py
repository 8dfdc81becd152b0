"""Run a shard-to-shard stage with exact resume.

Every stage after ingest is a plain function over an iterator of records
(STYLE.md, principle 2); this module wraps it with everything else: one output
shard per input shard (so shard assignment stays a function of document id),
a progress bar with records/s and ETA, atomic shard writes, done markers,
stats merged across shards, then `stats.json` and the manifest last. A rerun
skips shards marked done and redoes the others from scratch, so a kill
anywhere gives the same bytes as an uninterrupted run provided the stage function is
deterministic, which every stage promises.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.config import StageConfig
from instructpt.core.executor import Executor
from instructpt.core.manifest import Manifest, ShardInfo, require_manifest
from instructpt.core.parallel import map_ordered
from instructpt.core.resume import open_stage_dir
from instructpt.core.shards import read_shard, write_shard

#: A stage function: records in, records out; it counts what it does in `stats`.
StageFn = Callable[[Iterator[dict[str, Any]], Counter[str]], Iterator[dict[str, Any]]]


def manifest_fingerprint(manifest: Manifest) -> str:
    """Identity of a finished input stage: its config and the checksums of its shards."""
    blob = orjson.dumps([manifest.config_hash, [s.sha256 for s in manifest.shards]])
    return hashlib.sha256(blob).hexdigest()[:16]


def run_map_stage(
    stage: str,
    in_dir: Path,
    out_dir: Path,
    fn: StageFn,
    cfg: StageConfig,
    *,
    input_stage: str = "input",
    overwrite: bool = False,
    progress: bool = True,
    compression_level: int = 3,
    num_workers: int = 1,
    executor: Executor | None = None,
    summarize: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[Manifest, bool]:
    """Apply `fn` to every shard of `in_dir`; returns (manifest, already_done).

    With `num_workers > 1` the shards not yet done are mapped in a spawn pool,
    one shard per task (`fn` must then be picklable: a module-level function
    or a `functools.partial` of one). Results come back in shard order and the
    done markers are written in that order, so the output bytes, markers and
    manifest never depend on the worker count. An `executor` (`--executor ray`)
    maps the same shards elsewhere, one task per shard, with the same guarantees.
    `summarize` turns the summed flat counters into the stats the manifest and
    `stats.json` publish (default: the counters, sorted by name).
    """
    source = require_manifest(in_dir, input_stage)
    opened = open_stage_dir(out_dir, stage, cfg, manifest_fingerprint(source), overwrite)
    if opened.done is not None:
        return opened.done, True
    done_dir = opened.work / "done"
    done_dir.mkdir(exist_ok=True)

    infos: list[ShardInfo] = []
    totals: Counter[str] = Counter()
    with tqdm(
        total=source.num_records,
        unit="rec",
        desc=stage,
        disable=None if progress else True,
        file=sys.stderr,
    ) as bar:
        pending: list[ShardInfo] = []
        finished: dict[str, dict[str, Any]] = {}
        for shard in source.shards:
            marker = done_dir / f"{shard.file}.json"
            if marker.is_file() and (out_dir / shard.file).is_file():
                finished[shard.file] = orjson.loads(marker.read_bytes())
                bar.update(shard.records)
            else:
                pending.append(shard)
        # In-process (one worker), the bar moves inside each shard; a pool reports whole shards.
        tick = bar.update if num_workers <= 1 and executor is None else None
        work = functools.partial(_map_shard, fn, compression_level=compression_level, tick=tick)
        items = [(in_dir / s.file, out_dir / s.file) for s in pending]
        mapper = map_ordered if executor is None else executor.map_ordered
        for shard, info in zip(pending, mapper(work, items, num_workers), strict=True):
            atomic_write_bytes(done_dir / f"{shard.file}.json", orjson.dumps(info))
            finished[shard.file] = info
            if tick is None:
                bar.update(shard.records)
        for shard in source.shards:
            info = finished[shard.file]
            infos.append(ShardInfo(**info["shard"]))
            totals.update(info["stats"])
    stats: dict[str, Any] = dict(sorted(totals.items()))
    if summarize is not None:
        stats = summarize(stats)
    return opened.finish(opened.manifest(infos, stats)), False


def _map_shard(
    fn: StageFn,
    paths: tuple[Path, Path],
    *,
    compression_level: int,
    tick: Callable[[int], Any] | None,
) -> dict[str, Any]:
    """Map one shard file to its output shard; returns the done-marker content."""
    source, target = paths
    stats: Counter[str] = Counter()

    def counted(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            stats["read"] += 1
            if tick is not None and stats["read"] & 255 == 0:
                tick(256)
            yield record

    count, sha = write_shard(target, fn(counted(read_shard(source)), stats), compression_level)
    if tick is not None:
        tick(stats["read"] & 255)
    stats["written"] = count
    return {"shard": asdict(ShardInfo.of(target, count, sha)), "stats": dict(stats)}


@dataclass
class StageResult:
    """What a shard-to-shard stage returns: its manifest, where it wrote, how long it took.

    Stages give the first summary line (`head`) and the detail lines of a fresh run
    (`details`); the already-complete case reads the same for every stage.
    """

    manifest: Manifest
    out_dir: Path
    seconds: float = 0.0
    already_done: bool = False

    def head(self) -> str:
        raise NotImplementedError

    def details(self) -> list[str]:
        return []

    def summary_lines(self) -> list[str]:
        if self.already_done:
            return [self.head() + " (already complete; nothing to do)"]
        return [self.head(), *self.details()]


def counts_line(label: str, counts: Mapping[str, int]) -> list[str]:
    """`  label: a 3, b 1,234` for non-empty counts, else nothing."""
    if not counts:
        return []
    return [f"  {label}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items())]


def dropped_counts(stats: Mapping[str, int]) -> dict[str, int]:
    """The `dropped_<reason>` keys of flat stage stats, by reason."""
    return {k.removeprefix("dropped_"): v for k, v in stats.items() if k.startswith("dropped_")}
