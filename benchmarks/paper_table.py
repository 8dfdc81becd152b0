"""The paper's nine benchmarks on real models, offline (issue 20 item 3): one table per run.

Runs `instructpt evaluate`'s lm-eval path over the `paper-eval` asset's local task YAMLs,
with the paper's shots (0-shot piqa, hellaswag, winogrande; 5-shot social_iqa,
arc_easy, arc_challenge, openbookqa, boolq, mmlu), one task per call so that each gets
its own wall time and its own item count: `--limit N` scores the first N items of each
task, `--mmlu-limit M` the first M of each of MMLU's 57 subjects (lm-eval applies a
limit per subtask). Leave both out for the full sets. Every result is cached as
`<out>/<label>/<task>.json` (evaluate's own file, keyed by config and inputs) and reused,
so an interrupted table resumes where it stopped.

    instructpt assets get paper-eval && instructpt assets get smollm2-135m-instruct
    python benchmarks/paper_table.py --out runs/paper-table --limit 250 --mmlu-limit 5 \\
        --model smollm2=$(instructpt assets path smollm2-135m-instruct)

The table prints acc and acc_norm with lm-eval's standard errors, the items scored and
the seconds per task; `--json` writes the same rows for RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from instructpt.assets import asset_path
from instructpt.evaluate import evaluate
from instructpt.evaluate.config import PRESETS, EvaluateConfig


def paper_tasks() -> list[tuple[str, int]]:
    """(task, shots) of the paper preset, in its order."""
    return [(task, shots) for shots, tasks in PRESETS["paper"] for task in tasks]


def score_row(label: str, task: str, shots: int, result: dict[str, Any]) -> dict[str, Any]:
    res = result["results"][task]
    metrics, stderr = res["metrics"], res.get("stderr", {})
    return {
        "model": label,
        "task": task,
        "shots": shots,
        "acc": metrics.get("acc"),
        "acc_stderr": stderr.get("acc"),
        "acc_norm": metrics.get("acc_norm"),
        "acc_norm_stderr": stderr.get("acc_norm"),
        "items": res.get("num_samples"),  # MMLU: summed over its subjects by lm-eval
        "seconds": result["seconds"],
    }


def run_model(label: str, model: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every paper task (or those of `--tasks`) on one model, one evaluate call each."""
    rows = []
    for task, shots in paper_tasks():
        if args.tasks and task not in args.tasks:
            continue
        cfg = EvaluateConfig(
            model=model,
            tasks=[task],
            include_path=[str(asset_path("paper-eval"))],
            num_fewshot=shots,
            limit=args.mmlu_limit if task == "mmlu" else args.limit,
            batch_size=args.batch_size,
            dtype=args.dtype,
            offline=True,
        )
        row = score_row(label, task, shots, evaluate(cfg, args.out / label / f"{task}.json"))
        print(f"{label} {task} {shots}-shot: acc {row['acc']} acc_norm {row['acc_norm']} "
              f"on {row['items']} items, {row['seconds']:.0f} s", flush=True)  # fmt: skip
        rows.append(row)
    return rows


def pct(value: float | None, err: float | None = None) -> str:
    if value is None:
        return ""
    return f"{100 * value:.1f}" + (f" ± {100 * err:.1f}" if err else "")


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | task | shots | items | acc | acc_norm | wall |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['task']} | {r['shots']} | {r['items']} | "
            f"{pct(r['acc'], r['acc_stderr'])} | {pct(r['acc_norm'], r['acc_norm_stderr'])} | "
            f"{r['seconds']:.0f} s |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", action="append", required=True, metavar="LABEL=DIR",
                        help="a model folder (or hub name) with its label; repeat")  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/paper-table"))
    parser.add_argument("--limit", type=int, default=None, help="first N items of each task")
    parser.add_argument("--mmlu-limit", type=int, default=None, help="first N of each subject")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16"],
        help="weights dtype (bfloat16: ~1.5x faster on CPUs with AVX512-BF16)",
    )
    parser.add_argument(
        "--tasks", nargs="*", default=[], help="only these (e.g. boolq, mmlu at a smaller batch)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    for spec in args.model:
        label, sep, model = spec.partition("=")
        if not sep or not label or not model:
            parser.error(f"--model {spec!r}: expected LABEL=DIR, e.g. smollm2=/path/to/model")
        rows += run_model(label, model, args)
    print(markdown(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
