"""The synthesize stage: `Document` shards in, `Synthesis` shards out.

Order of work: round 0 of every shard, then round 1 of every shard, ... (a
round-r prompt needs the finished round r-1 texts of its slot, and slots
never cross shards). Each (round, shard) is one unit: its results are
published atomically to `_work/r{r}/<shard>`; a rerun skips finished units.
Inside a unit, every request goes through the replay cache, so a unit cut
short by a kill re-sends nothing that had finished. At the end each shard
is assembled in input order and the manifest and `stats.json` are written.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from instructpt.core.manifest import Manifest, ShardInfo, require_manifest
from instructpt.core.resume import open_stage_dir
from instructpt.core.runner import manifest_fingerprint
from instructpt.core.shards import read_shard, write_shard
from instructpt.mine import MineConfig, mine
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import (
    Engine,
)

if TYPE_CHECKING:
    from instructpt.core.ray_executor import RayExecutor
from instructpt.synth.runner import SynthRunner, build_engine, make_runner, synthesize_unit  # moved

STAGE = "synthesize"


@dataclass
class SynthResult:
    manifest: Manifest
    out_dir: Path
    seconds: float = 0.0
    already_done: bool = False
    requests_sent: int = 0
    cache_hits: int = 0

    def summary_lines(self) -> list[str]:
        st = self.manifest.stats
        head = (
            f"synthesize: {st['pairs']:,} pairs for {st['texts']:,} texts "
            f"({st['pairs_per_text']:.2f} per text, parse yield {st['parse_yield']:.1%}) "
            f"in {self.out_dir}"
        )
        if self.already_done:
            return [head + " (already complete; nothing to do)"]
        lines = [head]
        lines.append(
            f"  {self.seconds:.1f} s; requests sent {self.requests_sent:,}, replayed from cache "
            f"{self.cache_hits:,}; tokens in {st['prompt_tokens']:,}, "
            f"out {st['completion_tokens']:,}"
        )
        lines.append(
            f"  linked (M-shot) {st['linked_fraction']:.1%}, chunked texts {st['chunked_texts']}, "
            f"skipped requests {st['skipped_requests']}"
        )
        if st["dropped"]:
            drops = ", ".join(f"{k} {v}" for k, v in st["dropped"].items())
            lines.append(f"  dropped pieces: {drops}")
        return lines


def synthesize(
    cfg: SynthesizeConfig,
    corpus_dir: Path,
    out_dir: Path,
    cache_path: Path | None = None,
    overwrite: bool = False,
    engine_factory: Callable[[SynthesizeConfig], Engine] = build_engine,
    executor: RayExecutor | None = None,
) -> SynthResult | Any:
    """Run (or resume) synthesis of `corpus_dir` into `out_dir`.

    With engine "miner" the model-free miner writes the same records (a `MineResult`).
    `executor`: None runs the engine in this process; a `RayExecutor` runs engine
    replicas as Ray actors, one shard (all its rounds) at a time each; same units.
    """
    if cfg.engine == "miner":
        mcfg = MineConfig.model_validate({"seed": cfg.seed, "progress": cfg.progress, **cfg.miner})
        return mine(mcfg, corpus_dir, out_dir, overwrite, executor=executor)
    start = time.perf_counter()
    source = require_manifest(corpus_dir, "ingest")
    opened = open_stage_dir(out_dir, STAGE, cfg, manifest_fingerprint(source), overwrite)
    if opened.done is not None:
        return SynthResult(opened.done, out_dir, already_done=True)

    runner = make_runner(cfg, engine_factory, cache_path)
    remote = {"sent": 0, "cache_hits": 0}
    try:
        with tqdm(
            total=source.num_records,
            unit="doc",
            desc="synthesize",
            disable=None if cfg.progress else True,
            file=sys.stderr,
        ) as bar:
            runner.bar = bar
            if executor is not None:
                from instructpt.synth.ray_synth import synthesize_shards  # ray is heavy

                remote = synthesize_shards(
                    executor, cfg, source, corpus_dir, opened.work, runner.cache_path,
                    engine_factory, bar.update,
                )  # fmt: skip
            else:
                _run_rounds(runner, source, corpus_dir, opened.work, bar)
        manifest = _assemble(cfg, source, corpus_dir, out_dir, opened.work, runner.identity())
    finally:
        runner.close()
    opened.finish(manifest)
    return SynthResult(
        manifest,
        out_dir,
        time.perf_counter() - start,
        requests_sent=runner.sent + remote["sent"],
        cache_hits=(runner.cache.hits if runner.cache else 0) + remote["cache_hits"],
    )


def _run_rounds(
    runner: SynthRunner, source: Manifest, corpus_dir: Path, work: Path, bar: Any
) -> None:
    """In this process: round 0 of every shard, then round 1, ...; finished units skipped."""
    for r in range(runner.cfg.num_rounds):
        for index, shard in enumerate(source.shards):
            if (work / f"r{r}" / shard.file).is_file():
                bar.update(_count_round(work, r, shard.file))
                continue
            synthesize_unit(runner, r, index, shard.file, corpus_dir, work)


def _count_round(work: Path, r: int, shard_file: str) -> int:
    return sum(1 for _ in read_shard(work / f"r{r}" / shard_file))


# --------------------------------------------------------------------------- assembly


def _assemble(
    cfg: SynthesizeConfig,
    source: Manifest,
    corpus_dir: Path,
    out_dir: Path,
    work: Path,
    identity: dict[str, Any],
) -> Manifest:
    totals: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    histogram: Counter[int] = Counter()
    infos: list[ShardInfo] = []
    for shard in source.shards:
        results: dict[str, dict[str, Any]] = {}
        for r in range(cfg.num_rounds):
            for res in read_shard(work / f"r{r}" / shard.file):
                results[res["id"]] = res

        def records(shard_file: str = shard.file, results: dict = results) -> Any:
            for doc in read_shard(corpus_dir / shard_file):
                res = results[doc["id"]]
                stats = res["stats"]
                totals["texts"] += 1
                totals["pairs"] += len(res["pairs"])
                totals["texts_with_pairs"] += bool(res["pairs"])
                totals["linked"] += res["linked"]
                totals["chunked_texts"] += res["chunked"]
                for key in ("pieces", "prompt_tokens", "completion_tokens", "skipped_requests"):
                    totals[key] += stats[key]
                dropped.update(stats["dropped"])
                histogram[min(len(res["pairs"]), 10)] += 1
                record = {
                    "id": doc["id"],
                    "text": doc["text"],
                    "pairs": res["pairs"],
                    "slot": res["slot"],
                    "round": res["round"],
                    "linked": res["linked"],
                    "chain": res["chain"],
                    "engine": identity,
                    "stats": stats,
                    "meta": doc.get("meta", {}),
                }
                if "raw" in res:
                    record["raw"] = res["raw"]
                yield record

        target = out_dir / shard.file
        count, sha = write_shard(target, records())
        infos.append(ShardInfo(shard.file, count, sha, target.stat().st_size))
    texts = max(totals["texts"], 1)
    stats: dict[str, Any] = {
        "texts": totals["texts"],
        "pairs": totals["pairs"],
        "pairs_per_text": round(totals["pairs"] / texts, 4),
        "parse_yield": round(totals["texts_with_pairs"] / texts, 4),
        "pairs_per_text_histogram": {
            (f"{k}+" if k == 10 else str(k)): v for k, v in sorted(histogram.items())
        },
        "pieces": totals["pieces"],
        "dropped": dict(sorted(dropped.items())),
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "linked": totals["linked"],
        "linked_fraction": round(totals["linked"] / texts, 4),
        "chunked_texts": totals["chunked_texts"],
        "skipped_requests": totals["skipped_requests"],
        "engine": identity,
    }
    return Manifest(
        stage=STAGE,
        config_hash=cfg.config_hash(),
        input_fingerprint=manifest_fingerprint(source),
        format="jsonl.zst",
        shards=infos,
        stats=stats,
    )
