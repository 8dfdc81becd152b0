"""`summary.json`: the report's headline numbers, machine-readable.

Every number is copied from a stage's own output (see collect.py); a stage
that has not run is `null`, never zero. The headline is the paper's claim on
the world's held-out knowledge probe: instruct minus vanilla and instruct
minus mix, in points (percentage points of the probe metric).
"""

from __future__ import annotations

import math
from typing import Any

from instructpt.report.collect import CORPORA, PROBE_METRICS, VARIANTS, RunFacts

#: Bump when a key of summary.json changes meaning.
SUMMARY_FORMAT = "instructpt-report/1"

SYNTHESIZER_KEYS = ("parse_yield", "correct_fraction", "answer_f1", "pairs_per_text", "texts")
SYNTHESIZE_KEYS = (
    "texts",
    "pairs",
    "pairs_per_text",
    "parse_yield",
    "pieces",
    "dropped",
    "linked_fraction",
    "pairs_per_text_histogram",
)
COOK_KEYS = ("read", "written", "outputs_instruct", "outputs_raw", "pairs_in", "pairs_rendered")
TRAIN_KEYS = (
    "parameters",
    "steps",
    "tokens",
    "first_loss",
    "last_loss",
    "tokens_per_s",
    "seconds",
    "device",
)


def _pick(stats: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any] | None:
    if stats is None:
        return None
    return {k: stats[k] for k in keys if k in stats}


def tokens_by_source(stats: dict[str, Any]) -> dict[str, int]:
    """`tokens_<source>` of a mix stats dict (sources: raw, instruct, general)."""
    return {
        k.removeprefix("tokens_"): v
        for k, v in sorted(stats.items())
        if k.startswith("tokens_") and isinstance(v, int)
    }


def headline(facts: RunFacts) -> dict[str, Any] | None:
    """The probe score of each variant and the gaps in points; None when no variant has one."""
    for task, metric in PROBE_METRICS:
        scores: dict[str, dict[str, float | None]] = {}
        shots = None
        for variant in VARIANTS:
            ev = facts.evaluate.get(variant)
            res = ev["tasks"].get(task) if ev else None
            if res and metric in res["metrics"]:
                scores[variant] = {
                    "value": res["metrics"][metric],
                    "stderr": res["stderr"].get(metric),
                }
                shots = res.get("num_fewshot") if shots is None else shots
        if not scores:
            continue
        out: dict[str, Any] = {
            "task": task,
            "metric": metric,
            "num_fewshot": shots,
            "scores": scores,
            # guessing's accuracy on a multiple-choice task (None when unknown)
            "chance": facts.chance.get(task) if metric in ("acc", "acc_norm") else None,
        }
        for other in ("vanilla", "mix"):
            gap, err = _gap(scores.get("instruct"), scores.get(other))
            out[f"instruct_minus_{other}_points"] = gap
            out[f"instruct_minus_{other}_stderr_points"] = err
        return out
    return None


def _gap(
    a: dict[str, float | None] | None, b: dict[str, float | None] | None
) -> tuple[float | None, float | None]:
    """a - b in points, and the standard error of that difference (runs taken as independent)."""
    if a is None or b is None or a["value"] is None or b["value"] is None:
        return None, None
    gap = round(100 * (a["value"] - b["value"]), 2)
    if a["stderr"] is None or b["stderr"] is None:
        return gap, None
    return gap, round(100 * math.hypot(a["stderr"], b["stderr"]), 2)


def _mix_summary(stats: dict[str, Any] | None) -> dict[str, Any] | None:
    out = _pick(stats, ("recipe", "tokens", "records", "augmented_doc_fraction"))
    if stats is not None and out is not None:
        out["tokens_by_source"] = tokens_by_source(stats)
    return out


def build_summary(facts: RunFacts) -> dict[str, Any]:
    evaluation: dict[str, Any] = {}
    for variant in facts.variants:
        ev = facts.evaluate.get(variant)
        if ev is None:
            evaluation[variant] = None
            continue
        evaluation[variant] = {
            task: {
                metric: {"value": value, "stderr": res["stderr"].get(metric)}
                for metric, value in res["metrics"].items()
            }
            | {"num_fewshot": res["num_fewshot"], "num_samples": res["num_samples"]}
            for task, res in ev["tasks"].items()
        }
    world = facts.world or {}
    return {
        "format": SUMMARY_FORMAT,
        "run": facts.name,
        "stages": facts.stage_states(),
        "headline": headline(facts),
        "pipeline": {
            "world_documents": world.get("documents"),
            "documents": {c: (facts.ingest.get(c) or {}).get("kept") for c in CORPORA},
            "synthesizer_heldout": _pick(
                facts.synthesizer["eval"] if facts.synthesizer else None, SYNTHESIZER_KEYS
            ),
            "synthesize": _pick(facts.synthesize, SYNTHESIZE_KEYS),
            "cook": _pick(facts.cook, COOK_KEYS),
            "mix": {v: _mix_summary(facts.mix.get(v)) for v in facts.variants},
        },
        "training": {v: _pick(facts.pretrain.get(v), TRAIN_KEYS) for v in facts.variants},
        "evaluation": evaluation,
        "problems": list(facts.problems),
    }
