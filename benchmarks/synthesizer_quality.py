"""Held-out quality of synthesizers side by side: a trained one against its baselines.

Every model is scored on the same held-out items, built from one
train-synthesizer config exactly as training builds them (`prepare_data`):
the world's held-out texts (`world_eval_groups`, `world_eval_types`) and the
held-out real passages (`num_eval_passages` per source). A model given as
`name=path@k` is prompted k-shot (`evaluate_all`): k training records of the same kind
(world texts for world items, rows of the passage's own source for
passages), rendered in the exact format, go before each text. That is the
baseline the issue asks for: the untrained base model in 2-shot prompting.

    .venv/bin/python benchmarks/synthesizer_quality.py \\
        --config configs/synthesizer-context.yaml --world runs/demo-lm/world \\
        --model world=runs/demo-lm/models/synthesizer \\
        --model context=runs/ctx/models/synthesizer \\
        --model base-2shot=smollm2-135m-instruct@2 \\
        --model tiny=runs/tiny/models/synthesizer --out /tmp/quality.json

Prints Markdown tables (overall, by kind, by attribute) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import yaml

from instructpt.assets.fetch import resolve_model
from instructpt.train.config import TrainSynthesizerConfig
from instructpt.train.synthesizer import evaluate_all, prepare_data


def _evaluate(
    name: str, path: str, k: int, data: Any, cfg: TrainSynthesizerConfig, args: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    model = resolve_model(path)
    scored = evaluate_all(cfg, data, model, k, args.device, args.samples / f"{name}.jsonl")
    out = {"name": name, "model": path, "shots": k, "world": scored["eval"]}
    out["passages"] = scored["eval_passages"]
    out["seconds"] = time.perf_counter() - started
    print(f"{name}: done in {out['seconds']:.0f} s", flush=True)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def print_tables(results: list[dict[str, Any]]) -> None:
    print(
        "\n| synthesizer | texts | parse yield % | pairs/text | correct % | correct attrs/text "
        "| grounded % | answer F1 | new tok/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        w = r["world"]
        print(
            f"| {r['name']} (world) | {w['texts']} | {_pct(w['parse_yield'])} | "
            f"{w['pairs_per_text']:.2f} | {_pct(w['correct_fraction'])} | "
            f"{w['correct_attributes_per_text']:.2f} | {_pct(w['grounded_fraction'])} | "
            f"{w['answer_f1']:.3f} | {w['new_tokens_per_s']:.1f} |"
        )
        for source, p in r["passages"].items():
            print(
                f"| {r['name']} ({source}) | {p['texts']} | {_pct(p['parse_yield'])} | "
                f"{p['pairs_per_text']:.2f} | {_pct(p['correct_fraction'])} | - | "
                f"{_pct(p['grounded_fraction'])} | {p['answer_f1']:.3f} | "
                f"{p['new_tokens_per_s']:.1f} |"
            )
    keys = sorted({k for r in results for k in r["world"]["by_label"]})
    print("\n| world label | " + " | ".join(r["name"] for r in results) + " |")
    print("|---|" + "---|" * len(results))
    for key in keys:
        cells = []
        for r in results:
            c = r["world"]["by_label"].get(key)
            cells.append(f"{_pct(c['correct_fraction'])} ({c['pairs']})" if c else "-")
        print(f"| {key} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="train-synthesizer YAML")
    parser.add_argument("--world", default=None, help="world dir (overrides the config's)")
    parser.add_argument("--rows", default=None, help="context-QA rows (overrides rows_paths)")
    parser.add_argument(
        "--model", action="append", required=True, help="name=path-or-asset[@shots]"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--samples", type=Path, default=Path("/tmp/synth-quality-samples"))
    parser.add_argument("--out", type=Path, default=None, help="write all figures as JSON")
    args = parser.parse_args()
    raw = yaml.safe_load(args.config.read_text()) or {}
    if args.world:
        raw["world_dir"] = args.world
    if args.rows:
        raw["rows_paths"] = [args.rows]
    cfg = TrainSynthesizerConfig(**{**raw, "progress": False})
    data = prepare_data(cfg)
    args.samples.mkdir(parents=True, exist_ok=True)
    print(
        f"{len(data.eval_items)} world texts, {len(data.passage_items)} passages; "
        f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}",
        flush=True,
    )
    results = []
    for spec in args.model:
        name, _, rest = spec.partition("=")
        path, _, shots = rest.partition("@")
        results.append(_evaluate(name, path, int(shots or 0), data, cfg, args))
    print_tables(results)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
