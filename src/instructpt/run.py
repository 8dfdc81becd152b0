"""The main job, top to bottom: every stage of the pipeline in order.

Read this file to see the whole loop. Each stage is called with its own
config and its own folder under the run directory; each resumes on rerun.
Stages the demo does not run yet are listed as such in the summary, never
pretended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from instructpt.config import RunConfig, WorldConfig, dump_config
from instructpt.corpus.atomic import atomic_write_bytes
from instructpt.corpus.ingest import ingest
from instructpt.corpus.manifest import Manifest, ShardInfo
from instructpt.corpus.resume import open_stage_dir
from instructpt.corpus.shards import file_sha256
from instructpt.world import build_world, write_world
from instructpt.world.write import DOCUMENTS_FILE, ENTITIES_FILE, QA_FILE

#: Stages of DESIGN.md the demo does not run yet; `run` says so instead of faking them.
#: (`instructpt synthesize` exists, but the demo has no synthesizer model until
#: `train-synthesizer` lands.)
PENDING_STAGES = ("synthesize", "cook", "mix", "tokenize", "pretrain", "evaluate", "report")


def generate_world(
    cfg: WorldConfig, out_dir: Path, overwrite: bool = False
) -> tuple[Manifest, bool]:
    """The `world` stage: build the seeded world and write it with a manifest."""

    opened = open_stage_dir(out_dir, "world", cfg, input_fingerprint="none", overwrite=overwrite)
    if opened.done is not None:
        return opened.done, True
    summary = write_world(build_world(cfg), out_dir)
    shards = []
    for name in (DOCUMENTS_FILE, QA_FILE, ENTITIES_FILE):
        path = out_dir / name
        with open(path, "rb") as fh:
            records = sum(1 for _ in fh)
        shards.append(ShardInfo(name, records, file_sha256(path), path.stat().st_size))
    manifest = Manifest(
        stage="world",
        config_hash=cfg.config_hash(),
        input_fingerprint="none",
        format="jsonl",
        shards=shards,
        stats=summary,
    )
    opened.finish(manifest)
    return manifest, False


@dataclass
class RunReport:
    run_dir: Path
    lines: list[str] = field(default_factory=list)


def run_pipeline(
    cfg: RunConfig, overwrite: bool = False, echo: Callable[[str], None] = print
) -> RunReport:
    """Run every implemented stage of the pipeline into runs/<name>/."""
    run_dir = Path(cfg.runs_root) / cfg.name
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    report = RunReport(run_dir)

    def say(line: str) -> None:
        report.lines.append(line)
        echo(line)

    t0 = time.perf_counter()
    world, reused = generate_world(cfg.world, run_dir / "world", overwrite)
    people = world.stats.get("entities.person", 0)
    say(
        f"world: {world.shards[0].records:,} entity texts ({people:,} people), "
        f"{world.shards[1].records:,} ground-truth QA pairs in {run_dir / 'world'}"
        + (" (reused)" if reused else f" [{time.perf_counter() - t0:.1f} s]")
    )

    ingest_cfg = cfg.ingest_config([str(run_dir / "world" / DOCUMENTS_FILE)])
    result = ingest(ingest_cfg, run_dir / "corpus", overwrite)
    for line in result.summary_lines():
        say(line)

    say("not run by the demo yet (no output is claimed for them): " + ", ".join(PENDING_STAGES))
    summary = {
        "run_dir": str(run_dir),
        "stages_run": ["world", "ingest"],
        "pending": list(PENDING_STAGES),
    }
    atomic_write_bytes(run_dir / "summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return report
