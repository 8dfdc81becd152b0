"""What instruction tuning adds to each pre-trained variant, over several tuning seeds.

The run's `tune` stage tunes each variant once (one seed); a single tuning run moves
the probe by a few points on its own, so this repeats the stage's exact recipe
(`tune:` keys of the run's config) with other seeds and prints each variant's probe
accuracy before tuning, after each seed, and the mean gain.

    python benchmarks/tune_seeds.py runs/demo --seeds 1 2 3

Needs a run that finished `evaluate` (models/<variant>/model, eval/<variant>.json,
eval/tasks, inputs/tune.jsonl). Tuned models go to <run>/bench-tune/<seed>/.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml

from instructpt.core.layout import PAPER_VARIANTS as MIX_VARIANTS
from instructpt.evaluate import EvaluateConfig, evaluate
from instructpt.train.config import SftConfig
from instructpt.train.sft import sft

TASK, METRIC = "world_probe_mc", "acc"


def probe(path: Path) -> float:
    return 100 * json.loads(path.read_text())["results"][TASK]["metrics"][METRIC]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = ap.parse_args()
    run: Path = args.run_dir
    config = yaml.safe_load((run / "config.yaml").read_text())
    tune = {k: v for k, v in (config.get("tune") or {}).items() if k != "seed"}
    before = {v: probe(run / "eval" / f"{v}.json") for v in MIX_VARIANTS}
    after: dict[str, list[float]] = {v: [] for v in MIX_VARIANTS}
    for v in MIX_VARIANTS:  # the stage's own seed first, when it ran
        stage_eval = run / "eval" / "tuned" / f"{v}.json"
        if stage_eval.is_file():
            after[v].append(probe(stage_eval))
    for seed in args.seeds:
        for v in MIX_VARIANTS:
            out = run / "bench-tune" / str(seed)
            cfg = SftConfig.model_validate(
                {
                    "model": str(run / "models" / v / "model"),
                    "data": [str(run / "inputs" / "tune.jsonl")],
                    **tune,
                    "seed": seed,
                    "progress": False,
                }
            )
            tuned = sft(cfg, out / v)
            ecfg = EvaluateConfig.model_validate(
                {
                    "model": str(tuned.model_dir),
                    "include_path": [str(run / "eval" / "tasks")],
                    **(config.get("evaluate") or {}),
                }
            )
            evaluate(ecfg, out / f"{v}.json")
            after[v].append(probe(out / f"{v}.json"))
            print(f"seed {seed} {v}: {after[v][-1]:.1f}", flush=True)
    print("\n| variant | before | after, per seed | mean after | mean gain |")
    print("|---|---|---|---|---|")
    for v in MIX_VARIANTS:
        mean = statistics.mean(after[v])
        seeds = ", ".join(f"{a:.1f}" for a in after[v])
        print(f"| {v} | {before[v]:.1f} | {seeds} | {mean:.1f} | {mean - before[v]:+.1f} |")


if __name__ == "__main__":
    main()
