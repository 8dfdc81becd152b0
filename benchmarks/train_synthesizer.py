"""Demo synthesizer training: tokens/s and the time needed to reach the quality targets.

Trains the demo synthesizer (TrainSynthesizerConfig defaults) on the default
world once per epoch budget, each with a full warmup + cosine schedule, and
evaluates each on the same 100 held-out entity texts (greedy, HFEngine). The
smallest budget that reaches parse yield >= 90% and >= 70% correct pairs gives
the time to the targets. Prints a Markdown table for benchmarks/RESULTS.md.

    .venv/bin/python benchmarks/train_synthesizer.py --epochs 4,8,12
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from instructpt.train.config import TrainSynthesizerConfig
from instructpt.train.synthesizer import train_synthesizer

YIELD_TARGET, CORRECT_TARGET = 0.90, 0.70


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", default="12", help="comma-separated epoch budgets")
    parser.add_argument("--work", type=Path, default=None, help="keep outputs here")
    parser.add_argument("--overrides", default="{}", help="JSON of extra config fields")
    parser.add_argument(
        "--world", type=Path, default=None, help="an existing world dir (default: generate one)"
    )
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-train-synth-"))
    world = args.world
    if world is None:
        from instructpt.run import generate_world
        from instructpt.world.config import WorldConfig

        world = work / "world"
        generate_world(WorldConfig(), world)
    extra = json.loads(args.overrides)
    rows = []
    for epochs in [int(e) for e in args.epochs.split(",")]:
        cfg = TrainSynthesizerConfig(
            world_dir=str(world), num_epochs=epochs, progress=False, **extra
        )
        start = time.perf_counter()
        result = train_synthesizer(cfg, work / f"synth-e{epochs}", overwrite=True)
        wall = time.perf_counter() - start
        m = result.metrics
        t, ev = m["train"], m["eval"]
        row = {
            "epochs": epochs,
            "params": m["num_parameters"],
            "steps": t["steps"],
            "tokens": t["tokens"],
            "tokens_per_s": t["tokens_per_s"],
            "train_s": t["seconds"],
            "eval_s": ev["seconds"],
            "wall_s": wall,
            "loss": t["last_loss"],
            **{
                k: ev[k] for k in ("parse_yield", "correct_fraction", "answer_f1", "pairs_per_text")
            },
        }
        row["targets_met"] = (
            row["parse_yield"] >= YIELD_TARGET and row["correct_fraction"] >= CORRECT_TARGET
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nmachine: {platform.machine()}, python {platform.python_version()}, outputs in {work}")
    print(
        "| epochs | params | steps | train tokens | tokens/s | train s | eval s | final loss "
        "| parse yield | correct | answer F1 | pairs/text | targets |"
    )
    print("|" + "---|" * 13)
    for r in rows:
        print(
            f"| {r['epochs']} | {r['params'] / 1e6:.2f}M | {r['steps']} | {r['tokens']:,} "
            f"| {r['tokens_per_s']:,.0f} | {r['train_s']:.0f} | {r['eval_s']:.0f} "
            f"| {r['loss']:.3f} | {r['parse_yield']:.0%} | {r['correct_fraction']:.1%} "
            f"| {r['answer_f1']:.3f} | {r['pairs_per_text']:.2f} "
            f"| {'met' if r['targets_met'] else 'missed'} |"
        )
    met = [r for r in rows if r["targets_met"]]
    if met:
        first = min(met, key=lambda r: r["train_s"])
        print(f"\ntime to targets: {first['train_s']:.0f} s of training ({first['epochs']} epochs)")
    else:
        print("\ntargets not reached by any budget")


if __name__ == "__main__":
    main()
