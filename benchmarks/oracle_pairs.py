"""Replace a demo run's synthesized pairs with the world's ground truth (an oracle engine).

Why: to tell a weak synthesizer apart from a setting where even perfect pairs
cannot show instruction pre-training's gain, the science experiments of issue 9
rerun cook -> evaluate with every augment text's pairs taken from the world's
own QA (`world/qa.jsonl`, open questions of the text's entity). The output has
the shape `instructpt mine` writes (engine name `oracle`), so a following
`instructpt run --config SAME.yaml` resumes from cook with these pairs.

    instructpt run --config exp.yaml --until synthesize
    python benchmarks/oracle_pairs.py runs/exp --pairs-per-text 0   # 0: every open QA
    python benchmarks/oracle_pairs.py runs/exp --wrong-share 0.3     # 30% answers wrong
    instructpt run --config exp.yaml

Not for users' data: a real corpus has no ground truth.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from instructpt.core.manifest import write_manifest
from instructpt.core.runner import run_map_stage
from instructpt.mine.config import MineConfig
from instructpt.mine.stage import STAGE, summarize_stats
from instructpt.world.noise import attribute_values, corrupt_answers


def load_open_qa(world_dir: Path) -> dict[str, list[dict[str, str]]]:
    by_entity: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (world_dir / "qa.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            qa = json.loads(line)
            if qa["kind"] == "open":
                by_entity[qa["entity_id"]].append(
                    {
                        "question": qa["question"],
                        "answer": qa["answer"],
                        "attribute": qa["attribute"],
                    }
                )
    return by_entity


def pairs_shard(
    records: Iterator[dict[str, Any]],
    stats: Counter[str],
    pairs_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
    engine: str,
) -> Iterator[dict[str, Any]]:
    """Synthesis records (the shape `instructpt mine` writes) with `pairs_of(doc)` as pairs."""
    for doc in records:
        pairs = pairs_of(doc)
        stats["texts"] += 1
        stats["chars"] += len(doc["text"])
        stats["pairs"] += len(pairs)
        stats["texts_with_pairs"] += bool(pairs)
        stats[f"histogram_{min(len(pairs), 10)}"] += 1
        yield {
            "id": doc["id"],
            "text": doc["text"],
            "pairs": pairs,
            "slot": doc["id"],
            "round": 0,
            "linked": False,
            "chain": [],
            "engine": {"name": engine, "model": None, "revision": "world-qa"},
            "stats": {"kept": len(pairs), "dropped": {}},
            "meta": doc.get("meta", {}),
        }


def oracle_pairs_of(
    qa: dict[str, list[dict[str, str]]], per_text: int, seed: int, doc: dict[str, Any]
) -> list[dict[str, Any]]:
    """The open QA of the text's entity (a seeded sample of `per_text` when > 0)."""
    entity = doc.get("meta", {}).get("entity_id") or doc["id"].split("~")[0]
    pairs = list(qa.get(entity, []))
    if per_text and len(pairs) > per_text:
        pairs = random.Random(f"{seed}/{doc['id']}").sample(pairs, per_text)
    return pairs


def corrupted(
    qa: dict[str, list[dict[str, str]]], wrong_share: float, seed: int
) -> tuple[dict[str, list[dict[str, str]]], int]:
    """The oracle's pairs with exactly `wrong_share` of all answers made wrong (world/noise.py).

    Corrupts the whole pool once, so every rendering of an entity's text shows the
    same (right or wrong) answer to a question, as a synthesizer that misreads a
    fact would write it each time.
    """
    flat = [(entity, pair) for entity, pairs in sorted(qa.items()) for pair in pairs]
    values = attribute_values(pair for _, pair in flat)
    bad, wrong = corrupt_answers([pair for _, pair in flat], wrong_share, values, seed)
    out: dict[str, list[dict[str, str]]] = defaultdict(list)
    for (entity, _), pair in zip(flat, bad, strict=True):
        out[entity].append(pair)
    return dict(out), wrong


def write_oracle_pairs(
    run_dir: Path, pairs_per_text: int = 0, seed: int = 0, wrong_share: float = 0.0
) -> dict[str, Any]:
    """Replace run_dir/synth with the world's own pairs (a share made wrong); its stats."""
    qa = load_open_qa(run_dir / "world")
    augment_entities = _augment_entities(run_dir)
    if wrong_share:  # only the augment entities' pairs are ever cooked: corrupt those
        kept = {e: p for e, p in qa.items() if e in augment_entities}
        bad, _ = corrupted(kept, wrong_share, seed)
        qa = {**qa, **bad}
    pairs_of = functools.partial(oracle_pairs_of, qa, pairs_per_text, seed)
    return write_pairs(run_dir, pairs_of, "oracle", {"wrong_share": wrong_share})


def write_pairs(
    run_dir: Path,
    pairs_of: Callable[[dict[str, Any]], list[dict[str, Any]]],
    engine: str,
    extra_stats: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replace run_dir/synth with `pairs_of(doc)` for every augment text, as the run's miner
    config would have written it (so `instructpt run` resumes from cook); its stats."""
    out = run_dir / "synth"
    if out.exists():
        shutil.rmtree(out)
    cfg = _run_miner_config(run_dir)
    manifest, _ = run_map_stage(
        STAGE,
        run_dir / "corpus-augment",
        out,
        functools.partial(pairs_shard, pairs_of=pairs_of, engine=engine),
        cfg,
        input_stage="ingest",
        overwrite=True,
        progress=False,
    )
    manifest.stats = summarize_stats(manifest.stats, cfg)
    manifest.stats["engine"] = {"name": engine, "revision": "world-qa"}
    manifest.stats.update(extra_stats or {})
    write_manifest(out, manifest)
    (out / "stats.json").write_text(json.dumps(manifest.stats, indent=2))
    return manifest.stats


def _run_miner_config(run_dir: Path) -> MineConfig:
    """The miner config the run's synthesize stage would use, so the run resumes past it."""
    synth = yaml.safe_load((run_dir / "config.yaml").read_text())["synthesize"]
    if synth.get("engine") != "miner":
        raise SystemExit(f"{run_dir}: set synthesize.engine: miner for the oracle to stand in")
    return MineConfig.model_validate(
        {"seed": synth.get("seed", 0), "progress": False, **synth.get("miner", {})}
    )


def _augment_entities(run_dir: Path) -> set[str]:
    entities = set()
    with (run_dir / "inputs" / "augment.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            entities.add(doc.get("meta", {}).get("entity_id") or doc["id"].split("~")[0])
    return entities


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--pairs-per-text", type=int, default=0, help="0 = every open question")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--wrong-share", type=float, default=0.0, help="share of answers made wrong (0-1)"
    )
    args = ap.parse_args()
    stats = write_oracle_pairs(args.run_dir, args.pairs_per_text, args.seed, args.wrong_share)
    print(f"oracle: {stats['pairs']:,} pairs for {stats['texts']:,} texts")


if __name__ == "__main__":
    main()
