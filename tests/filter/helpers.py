"""Tiny synthesis stage directories for the filter tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from instructpt.core.manifest import Manifest, ShardInfo, write_manifest
from instructpt.core.shards import read_shard, shard_name, write_shard
from instructpt.synth.format import COT_MARK, chain_of_thought_answer, multiple_choice_question

TEXT = (
    "Mara Quill was born in Dunmore in 1962. She studied chemistry at Harlow University "
    "and later founded the Quill Glass Works, a company in Dunmore that makes lenses for "
    "cameras and telescopes."
)


def pair(question: str, answer: Any) -> dict[str, Any]:
    return {"question": question, "answer": answer}


def mc(stem: str, options: list[str], answer: str) -> dict[str, Any]:
    return pair(multiple_choice_question(stem, options), answer)


def cot(question: str, reasoning: str, final: str) -> dict[str, Any]:
    return pair(question + COT_MARK, chain_of_thought_answer(reasoning, final))


def record(rid: str, pairs: list[dict[str, Any]], text: str = TEXT) -> dict[str, Any]:
    """A `Synthesis` record with the fields synth.stage._assemble writes."""
    return {
        "id": rid,
        "text": text,
        "pairs": pairs,
        "slot": 0,
        "round": 0,
        "linked": False,
        "chain": [],
        "engine": {"name": "scripted"},
        "stats": {"pieces": len(pairs), "dropped": {}},
        "meta": {"source": "test"},
    }


def write_synth_dir(folder: Path, shards: list[list[dict[str, Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    infos = []
    for i, records in enumerate(shards):
        target = folder / shard_name(i)
        count, sha = write_shard(target, records)
        infos.append(ShardInfo(shard_name(i), count, sha, target.stat().st_size))
    write_manifest(
        folder,
        Manifest(
            stage="synthesize",
            config_hash="test",
            input_fingerprint="test",
            format="jsonl.zst",
            shards=infos,
        ),
    )
    return folder


def read_dir(folder: Path) -> list[dict[str, Any]]:
    return [r for p in sorted(folder.glob("shard-*")) for r in read_shard(p)]


def kept_questions(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {r["id"]: [p["question"] for p in r["pairs"]] for r in records}
