"""The `world` stage: the seeded world written to a stage folder with its manifest.

    manifest, reused = generate_world(WorldConfig(seed=1), run_dir / "world")

The world has no input (fingerprint "none"): its config alone decides it, so a
rerun with the same config is skipped and a changed one is refused like any stage.
"""

from __future__ import annotations

from pathlib import Path

from instructpt.core.manifest import Manifest, ShardInfo
from instructpt.core.resume import open_stage_dir
from instructpt.core.shards import file_sha256
from instructpt.world.build import build_world
from instructpt.world.config import WorldConfig
from instructpt.world.write import DOCUMENTS_FILE, ENTITIES_FILE, QA_FILE, write_world

STAGE = "world"


def generate_world(
    cfg: WorldConfig, out_dir: Path, overwrite: bool = False
) -> tuple[Manifest, bool]:
    """Build the seeded world and write it with a manifest; returns (manifest, already_done)."""
    opened = open_stage_dir(out_dir, STAGE, cfg, input_fingerprint="none", overwrite=overwrite)
    if opened.done is not None:
        return opened.done, True
    summary = write_world(build_world(cfg), out_dir)
    shards = []
    for name in (DOCUMENTS_FILE, QA_FILE, ENTITIES_FILE):
        path = out_dir / name
        with open(path, "rb") as fh:
            records = sum(1 for _ in fh)
        shards.append(ShardInfo.of(path, records, file_sha256(path)))
    return opened.finish(opened.manifest(shards, summary, format="jsonl")), False
