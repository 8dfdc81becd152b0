"""The mine stage: `Document` shards in, `Synthesis` shards out, no model.

A drop-in replacement of the synthesize stage's output: each record has the
fields `synthesize` writes (`id`, `text`, `pairs` of `{question, answer}`,
`slot`, `round` 0, `linked` false, `chain` [], `engine`, `stats`, `meta`),
the manifest's stage is "synthesize" and its stats have the synthesize
stage's keys (`texts`, `pairs`, `pairs_per_text`, `parse_yield`,
`pairs_per_text_histogram`, `dropped`, ...) plus `by_family`, so `cook` and
`report` read a mined directory exactly like a synthesized one. Mined texts
are never linked: the miner has no M-shot context, every text stands alone.

Runs through `run_map_stage` (one output shard per input shard, exact
resume, shards mined in a spawn pool with `num_workers`); the output bytes
depend only on the documents and the config, never on the worker count.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructpt.core.executor import Executor
from instructpt.core.runner import StageResult, counts_line, run_map_stage
from instructpt.mine.config import MineConfig
from instructpt.mine.miner import MINER_VERSION, mine_text
from instructpt.synth.format import FORMAT_VERSION

#: The manifest names the stage it replaces, so downstream stages accept it.
STAGE = "synthesize"
HISTOGRAM_TOP = 10


def engine_identity(cfg: MineConfig) -> dict[str, Any]:
    """The `engine` field of every mined record (the synthesize stage's shape)."""
    return {
        "name": "miner",
        "model": None,
        "revision": MINER_VERSION,
        "families": list(cfg.families),
        "format_version": FORMAT_VERSION,
        "decoding": None,
    }


def mine_shard(
    records: Iterator[dict[str, Any]], stats: Counter[str], cfg: MineConfig
) -> Iterator[dict[str, Any]]:
    """Mine one shard of documents (a `run_map_stage` stage function; picklable via partial).

    `stats` gets flat counters (the runner sums them across shards);
    `summarize_stats` turns the totals into the synthesize stage's shape.
    """
    identity = engine_identity(cfg)
    for doc in records:
        doc_id, text = doc["id"], doc["text"]
        pairs, st = mine_text(doc_id, text, cfg)
        dropped = {k[len("dropped_") :]: v for k, v in sorted(st.items()) if k[:8] == "dropped_"}
        by_family = {k[len("family_") :]: v for k, v in st.items() if k[:7] == "family_"}
        stats["texts"] += 1
        stats["chars"] += len(text)
        stats["pairs"] += len(pairs)
        stats["texts_with_pairs"] += bool(pairs)
        stats["pieces"] += st["pieces"]
        stats["truncated_texts"] += st["truncated"]
        stats["empty_texts"] += st["empty"]
        stats[f"histogram_{min(len(pairs), HISTOGRAM_TOP)}"] += 1
        for key, value in st.items():
            if key[:8] == "dropped_" or key[:7] == "family_":
                stats[key] += value
        yield {
            "id": doc_id,
            "text": text,
            "pairs": [p.to_dict() for p in pairs],
            "slot": f"{doc_id}",
            "round": 0,
            "linked": False,
            "chain": [],
            "engine": identity,
            "stats": {
                "pieces": st["pieces"],
                "kept": len(pairs),
                "dropped": dropped,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "finish": {},
                "chunks": 1,
                "skipped_requests": 0,
                "by_family": by_family,
            },
            "meta": doc.get("meta", {}),
        }


def summarize_stats(flat: dict[str, Any], cfg: MineConfig) -> dict[str, Any]:
    """The runner's summed counters in the synthesize stage's manifest shape."""
    if "engine" in flat:
        return flat  # already summarized
    texts = flat.get("texts", 0)
    denom = max(texts, 1)
    histogram = {
        (f"{k}+" if k == HISTOGRAM_TOP else str(k)): flat[f"histogram_{k}"]
        for k in range(HISTOGRAM_TOP + 1)
        if flat.get(f"histogram_{k}")
    }
    dropped = {k[len("dropped_") :]: v for k, v in flat.items() if k.startswith("dropped_")}
    by_family = {
        name: flat.get(f"family_{name}", 0)
        for name in cfg.families  # every enabled family, zeros included
    }
    return {
        "texts": texts,
        "pairs": flat.get("pairs", 0),
        "pairs_per_text": round(flat.get("pairs", 0) / denom, 4),
        "parse_yield": round(flat.get("texts_with_pairs", 0) / denom, 4),
        "pairs_per_text_histogram": histogram,
        "pieces": flat.get("pieces", 0),
        "dropped": dict(sorted(dropped.items())),
        "by_family": by_family,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "linked": 0,
        "linked_fraction": 0.0,
        "chunked_texts": 0,
        "skipped_requests": 0,
        "chars": flat.get("chars", 0),
        "truncated_texts": flat.get("truncated_texts", 0),
        "empty_texts": flat.get("empty_texts", 0),
        "read": flat.get("read", 0),
        "written": flat.get("written", 0),
        "engine": engine_identity(cfg),
    }


class MineResult(StageResult):
    def head(self) -> str:
        st = self.manifest.stats
        return (
            f"mine: {st['pairs']:,} pairs for {st['texts']:,} texts "
            f"({st['pairs_per_text']:.2f} per text, {st['parse_yield']:.1%} of texts with a "
            f"pair) in {self.out_dir}"
        )

    def details(self) -> list[str]:
        st = self.manifest.stats
        rate = st["chars"] / 1e6 / self.seconds if self.seconds > 0 else 0.0
        lines = [f"  {self.seconds:.1f} s, {rate:,.2f} M chars/s"]
        lines.append("  by family: " + ", ".join(f"{k} {v:,}" for k, v in st["by_family"].items()))
        lines += counts_line("dropped candidates", st["dropped"])
        if st["truncated_texts"] or st["empty_texts"]:
            lines.append(
                f"  texts truncated to max_chars: {st['truncated_texts']:,}; "
                f"empty: {st['empty_texts']:,}"
            )
        return lines


def mine(
    cfg: MineConfig,
    corpus_dir: Path,
    out_dir: Path,
    overwrite: bool = False,
    executor: Executor | None = None,
) -> MineResult:
    """Run (or resume) mining of the ingest stage in `corpus_dir` into `out_dir`.

    `executor`: None maps shards here (`num_workers` processes); `--executor ray`
    maps them as Ray tasks, with byte-identical shards.
    """
    start = time.perf_counter()
    manifest, done = run_map_stage(
        STAGE,
        corpus_dir,
        out_dir,
        functools.partial(mine_shard, cfg=cfg),
        cfg,
        input_stage="ingest",
        overwrite=overwrite,
        progress=cfg.progress,
        compression_level=cfg.compression_level,
        num_workers=cfg.num_workers,
        executor=executor,
        # The runner sums flat counters; publish them in the synthesize stage's shape.
        summarize=functools.partial(summarize_stats, cfg=cfg),
    )
    return MineResult(manifest, out_dir, time.perf_counter() - start, already_done=done)
