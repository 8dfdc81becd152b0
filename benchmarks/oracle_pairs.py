"""Replace a demo run's synthesized pairs with the world's ground truth (an oracle engine).

Why: to tell a weak synthesizer apart from a setting where even perfect pairs
cannot show instruction pre-training's gain, the science experiments of issue 9
rerun cook -> evaluate with every augment text's pairs taken from the world's
own QA (`world/qa.jsonl`, open questions of the text's entity). The output has
the shape `instructpt mine` writes (engine name `oracle`), so a following
`instructpt run --config SAME.yaml` resumes from cook with these pairs.

    instructpt run --config exp.yaml --until synthesize
    python benchmarks/oracle_pairs.py runs/exp --pairs-per-text 0   # 0: every open QA
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from instructpt.core.manifest import write_manifest
from instructpt.core.runner import run_map_stage
from instructpt.mine.config import MineConfig
from instructpt.mine.stage import STAGE, summarize_stats


def load_open_qa(world_dir: Path) -> dict[str, list[dict[str, str]]]:
    by_entity: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (world_dir / "qa.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            qa = json.loads(line)
            if qa["kind"] == "open":
                by_entity[qa["entity_id"]].append(
                    {"question": qa["question"], "answer": qa["answer"]}
                )
    return by_entity


def oracle_shard(
    records: Iterator[dict[str, Any]],
    stats: Counter[str],
    qa: dict[str, list[dict[str, str]]],
    per_text: int,
    seed: int,
) -> Iterator[dict[str, Any]]:
    for doc in records:
        entity = doc.get("meta", {}).get("entity_id") or doc["id"].split("~")[0]
        pairs = list(qa.get(entity, []))
        if per_text and len(pairs) > per_text:
            pairs = random.Random(f"{seed}/{doc['id']}").sample(pairs, per_text)
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
            "engine": {"name": "oracle", "model": None, "revision": "world-qa"},
            "stats": {"kept": len(pairs), "dropped": {}},
            "meta": doc.get("meta", {}),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--pairs-per-text", type=int, default=0, help="0 = every open question")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    run_dir: Path = args.run_dir
    qa = load_open_qa(run_dir / "world")
    out = run_dir / "synth"
    if out.exists():
        shutil.rmtree(out)
    cfg = MineConfig(families=["fact"], num_workers=1, progress=False)
    manifest, _ = run_map_stage(
        STAGE,
        run_dir / "corpus-augment",
        out,
        functools.partial(oracle_shard, qa=qa, per_text=args.pairs_per_text, seed=args.seed),
        cfg,
        input_stage="ingest",
        overwrite=True,
        progress=False,
    )
    manifest.stats = summarize_stats(manifest.stats, cfg)
    manifest.stats["engine"] = {"name": "oracle", "revision": "world-qa"}
    write_manifest(out, manifest)
    (out / "stats.json").write_text(json.dumps(manifest.stats, indent=2))
    print(f"oracle: {manifest.stats['pairs']:,} pairs for {manifest.stats['texts']:,} texts")


if __name__ == "__main__":
    main()
