"""Continual pre-training on real text (issue 23): the before/after table of the wiki runs.

Reads finished `instructpt run`s of configs/wiki-cpt.yaml (raw vs miner-augmented) and
configs/wiki-cpt-lm.yaml (augmented by a trained synthesizer), and writes one markdown
table for RESULTS.md: per model, the closed-book probe (TriviaQA / NQ-open questions the
corpus answers, 3-shot exact match, tune and held-out slices), the questions it gained
and lost against the untouched base model, tokens and training time; with `--forgetting
N`, also the paper's benchmarks before and after on the first N items of each (lm-eval
through `instructpt evaluate`, the paper-eval asset's local files; MMLU is left out: 57
subtasks are hours on 2 cores). Evaluations are cached beside each run
(`eval/forgetting-<N>/<model>.json`) and reused.

    python benchmarks/wiki_cpt.py --runs runs/wiki-cpt runs/wiki-cpt-lm --forgetting 200
    python benchmarks/wiki_cpt.py --runs runs/wiki-cpt --forgetting 100 --zero-shot
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from instructpt.assets import asset_path
from instructpt.evaluate import evaluate
from instructpt.evaluate.answers import flips
from instructpt.evaluate.config import EvaluateConfig

PROBE = ("wiki_probe_heldout", "wiki_probe_tune")
#: The paper preset's tasks and shots, without MMLU.
FORGETTING = ((0, ("piqa", "hellaswag", "winogrande")),
              (5, ("social_iqa", "arc_easy", "arc_challenge", "openbookqa", "boolq")))  # fmt: skip


def load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def models_of(run: Path) -> dict[str, dict[str, Any]]:
    """{label: {eval, model dir, pretrain manifest stats, key}} of one run, base first, then
    the models of pretrain.seed (eval/, models/), then those of further `seeds`
    (seeds/<seed>/eval/, seeds/<seed>/models/)."""
    out: dict[str, dict[str, Any]] = {}
    base = load(run / "eval" / "base.json")
    if base is not None:
        model = base.get("model_path") or base["model"]
        out["base"] = {"eval": base, "model": model, "key": "base", "variant": None}
    seeds = sorted(int(d.name) for d in (run / "seeds").glob("*") if d.name.isdigit())
    places = [(run, None)] + [(run / "seeds" / str(seed), str(seed)) for seed in seeds]
    for root, seed in places:
        for ev in sorted((root / "eval").glob("*.json")):
            if ev.stem == "base":
                continue
            model_dir = root / "models" / ev.stem
            stats = load(model_dir / "stats.json") or {}
            tag = "" if seed is None else f" seed {seed}"
            out[f"{ev.stem}{tag} ({run.name})"] = {
                "eval": load(ev),
                "model": str(model_dir / "model"),
                "tokens": stats.get("tokens"),
                "seconds": stats.get("seconds"),
                "key": ev.stem if seed is None else f"{ev.stem}-seed{seed}",
                "variant": ev.stem,
                "seed": seed,
            }
    return out


def exact_match(entry: dict[str, Any], task: str) -> float | None:
    value = (entry["eval"]["results"].get(task) or {}).get("metrics", {}).get("exact_match")
    return None if value is None else float(value)


def seed_means(models: dict[str, dict[str, Any]]) -> list[str]:
    """A 'mean of N seeds' row per run and variant trained with more than one seed."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in models.values():
        if entry.get("variant"):
            groups.setdefault((entry["run"].name, entry["variant"]), []).append(entry)
    rows = []
    for (run, variant), entries in groups.items():
        if len(entries) < 2:
            continue
        cells = []
        for task in PROBE:
            values = [v for e in entries if (v := exact_match(e, task)) is not None]
            cells.append(pct(sum(values) / len(values)) if len(values) == len(entries) else "-")
        label = f"**{variant} ({run}), mean of {len(entries)} seeds**"
        rows.append(f"| {label} | {' | '.join(cells)} | | | |")
    return rows


def forgetting(model: str, out_dir: Path, limit: int, zero_shot: bool) -> dict[str, float]:
    """acc (acc_norm where lm-eval reports it, as the paper) per task, cached in out_dir."""
    scores: dict[str, float] = {}
    groups = [(0, tuple(t for _, ts in FORGETTING for t in ts))] if zero_shot else FORGETTING
    for shots, tasks in groups:
        cfg = EvaluateConfig(
            model=model,
            tasks=list(tasks),
            include_path=[str(asset_path("paper-eval"))],
            num_fewshot=shots,
            limit=limit,
            batch_size=16,
            offline=True,
        )
        result = evaluate(cfg, out_dir / f"{shots}shot.json")
        for task, res in result["results"].items():
            metrics = res["metrics"]
            value = metrics.get("acc_norm", metrics.get("acc"))
            if value is not None:
                scores[task] = value
    return scores


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", type=Path, required=True)
    parser.add_argument("--forgetting", type=int, default=0, help="items per paper task")
    parser.add_argument(
        "--zero-shot", action="store_true", help="every paper task 0-shot (5x cheaper on CPU)"
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = parser.parse_args(argv)

    models: dict[str, dict[str, Any]] = {}
    for run in args.runs:
        for label, entry in models_of(run).items():
            models.setdefault(label, {**entry, "run": run})
    if "base" not in models:
        print("no eval/base.json in any run: nothing to compare against", file=sys.stderr)
        return 2
    base_eval = models["base"]["eval"]["results"]

    lines = [
        "| model | " + " | ".join(f"{t} EM" for t in PROBE)
        + " | held-out gained / lost vs base | tokens | train time |",
        "|---|" + "---|" * (len(PROBE) + 3),
    ]  # fmt: skip
    for label, entry in models.items():
        res = entry["eval"]["results"]
        cells = [pct(exact_match(entry, t)) for t in PROBE]
        if label == "base":
            change = "-"
        else:
            before = (base_eval.get(PROBE[0]) or {}).get("answers") or []
            after = (res.get(PROBE[0]) or {}).get("answers") or []
            f = flips(before, after)
            change = f"+{f['gained']} / -{f['lost']}" if before and after else "-"
        tokens = f"{entry['tokens']:,}" if entry.get("tokens") else "-"
        secs = f"{entry['seconds'] / 60:.1f} min" if entry.get("seconds") else "-"
        lines.append(f"| {label} | {' | '.join(cells)} | {change} | {tokens} | {secs} |")
    lines += seed_means(models)

    if args.forgetting:
        table: dict[str, dict[str, float]] = {}
        # Forgetting is measured on the base model and pretrain.seed's models only: the
        # paper tasks cost 5-10 min per model on 2 cores, and a seed moves them little.
        for label, entry in models.items():
            if entry.get("seed") is not None:
                continue
            kind = f"forgetting-{args.forgetting}" + ("-0shot" if args.zero_shot else "")
            out_dir = entry["run"] / "eval" / kind / entry["key"]
            print(f"forgetting: {label} ...", file=sys.stderr, flush=True)
            table[label] = forgetting(entry["model"], out_dir, args.forgetting, args.zero_shot)
        tasks = sorted({t for scores in table.values() for t in scores})
        lines += [
            "",
            f"Paper benchmarks, first {args.forgetting} items each, "
            + ("all 0-shot" if args.zero_shot else "the paper's shots")
            + " (acc_norm where reported):",
            "",
            "| model | " + " | ".join(tasks) + " | mean |",
            "|---|" + "---|" * (len(tasks) + 1),
        ]
        for label, scores in table.items():
            mean = sum(scores.values()) / len(scores) if scores else None
            lines.append(
                f"| {label} | "
                + " | ".join(pct(scores.get(t)) for t in tasks)
                + f" | {pct(mean)} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
