"""Run a shard-to-shard stage with exact resume.

Every stage after ingest is a plain function over an iterator of records
(STYLE.md, principle 2); this module wraps it with everything else: one output
shard per input shard (so shard assignment stays a function of document id),
a progress bar with records/s and ETA, atomic shard writes, done markers,
stats merged across shards, and the manifest last. A rerun skips shards
marked done and redoes the others from scratch, so a kill anywhere gives the
same bytes as an uninterrupted run provided the stage function is
deterministic, which every stage promises.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from instructpt.config import StageConfig
from instructpt.corpus.atomic import atomic_write_bytes
from instructpt.corpus.manifest import Manifest, ShardInfo, require_manifest
from instructpt.corpus.resume import open_stage_dir
from instructpt.corpus.shards import read_shard, write_shard

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
) -> tuple[Manifest, bool]:
    """Apply `fn` to every shard of `in_dir`; returns (manifest, already_done)."""
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
        for shard in source.shards:
            marker = done_dir / f"{shard.file}.json"
            target = out_dir / shard.file
            if marker.is_file() and target.is_file():
                info = orjson.loads(marker.read_bytes())
            else:
                stats: Counter[str] = Counter()

                def counted(records: Iterator[dict[str, Any]], stats: Counter[str] = stats) -> Any:
                    for record in records:
                        stats["read"] += 1
                        if stats["read"] & 255 == 0:
                            bar.update(256)
                        yield record

                count, sha = write_shard(
                    target, fn(counted(read_shard(in_dir / shard.file)), stats), compression_level
                )
                bar.update(stats["read"] & 255)
                stats["written"] = count
                info = {
                    "shard": {
                        "file": shard.file,
                        "records": count,
                        "sha256": sha,
                        "bytes": target.stat().st_size,
                    },
                    "stats": dict(stats),
                }
                atomic_write_bytes(marker, orjson.dumps(info))
                infos.append(ShardInfo(**info["shard"]))
                totals.update(info["stats"])
                continue
            bar.update(shard.records)
            infos.append(ShardInfo(**info["shard"]))
            totals.update(info["stats"])
    manifest = Manifest(
        stage=stage,
        config_hash=cfg.config_hash(),
        input_fingerprint=manifest_fingerprint(source),
        format="jsonl.zst",
        shards=infos,
        stats=dict(sorted(totals.items())),
    )
    opened.finish(manifest)
    return manifest, False
