"""How many of a demo run's synthesized pairs are right, judged against the world.

Why: the pairs that reach instruct PT are the synthesize stage's, not the
held-out evaluation's; the world knows every true answer, so they are scored
exactly, with `train/synth_eval`'s judge (every phrasing the world has for an
attribute, SQuAD-normalised answers), per augment text. `knowledge.py` places a
run on the pair-accuracy curve with the same scorer (`score_run`).

    .venv/bin/python benchmarks/synth_accuracy.py runs/demo-lm
"""

from __future__ import annotations

import argparse
from pathlib import Path

from instructpt.core.shards import read_shard
from instructpt.train.synth_data import load_world
from instructpt.train.synth_eval import match_gold, score_hits, world_eval_items


def is_open(question: str) -> bool:
    """Not multiple choice (options on new lines) and not chain of thought."""
    return "\n" not in question and not question.endswith("step by step.")


def score_run(run_dir: Path, threshold: float = 0.5, open_only: bool = False) -> dict[str, int]:
    """Texts, pairs, right pairs and right attributes summed over a run's augment texts."""
    entities = load_world(run_dir / "world", ["augment"])
    items = {item.id: item for item in world_eval_items(entities, len(entities), 0)}
    texts = pairs = right = attributes = 0
    for shard in sorted((run_dir / "synth").glob("shard-*.jsonl.zst")):
        for record in read_shard(shard):
            item = items.get(record["id"])
            if item is None:
                continue
            texts += 1
            right_here: set[str] = set()
            for pair in record.get("pairs", []):
                if open_only and not is_open(pair["question"]):
                    continue
                hits = match_gold(pair["question"], item.gold, threshold)
                ok = score_hits(pair["answer"], item.gold, hits)[0]
                pairs += 1
                right += ok
                if ok:
                    right_here.add(item.labels[hits[0]][0])
            attributes += len(right_here)
    return {"texts": texts, "pairs": pairs, "right": right, "attributes": attributes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path, help="a demo run with world/ and synth/")
    ap.add_argument("--threshold", type=float, default=0.5, help="question match (synth_eval)")
    args = ap.parse_args()
    s = score_run(args.run_dir, args.threshold)
    texts, pairs, right = max(1, s["texts"]), s["pairs"], s["right"]
    print(
        f"{s['texts']} texts, {pairs} pairs, {right} right ({right / max(1, pairs):.1%}), "
        f"{pairs / texts:.2f} pairs/text, {s['attributes'] / texts:.2f} right attributes/text"
    )


if __name__ == "__main__":
    main()
