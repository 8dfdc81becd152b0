"""How many of a demo run's synthesized pairs are right, judged against the world.

Why: the pairs that reach instruct PT are the synthesize stage's, not the
held-out evaluation's; the world knows every true answer, so they are scored
exactly, with `train/synth_eval`'s judge (every phrasing the world has for an
attribute, SQuAD-normalised answers), per augment text.

    .venv/bin/python benchmarks/synth_accuracy.py runs/demo-lm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from instructpt.core.shards import read_shard
from instructpt.train.synth_data import load_world
from instructpt.train.synth_eval import match_gold, score_hits, world_eval_items


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a demo run with world/ and synth/")
    ap.add_argument("--threshold", type=float, default=0.5, help="question match (synth_eval)")
    args = ap.parse_args()
    entities = load_world(args.run_dir / "world", ["augment"])
    items = {item.id: item for item in world_eval_items(entities, len(entities), 0)}
    texts = pairs = right = attributes = 0
    for shard in sorted((args.run_dir / "synth").glob("shard-*.jsonl.zst")):
        for record in read_shard(shard):
            item = items.get(record["id"])
            if item is None:
                continue
            texts += 1
            right_here: set[str] = set()
            for pair in record.get("pairs", []):
                hits = match_gold(pair["question"], item.gold, args.threshold)
                ok = score_hits(pair["answer"], item.gold, hits)[0]
                pairs += 1
                right += ok
                if ok:
                    right_here.add(item.labels[hits[0]][0])
            attributes += len(right_here)
    print(
        f"{texts} texts, {pairs} pairs, {right} right ({right / max(1, pairs):.1%}), "
        f"{pairs / max(1, texts):.2f} pairs/text, {attributes / max(1, texts):.2f} right "
        "attributes/text"
    )


if __name__ == "__main__":
    main()
