"""`summary.json`: the report's headline numbers, machine-readable.

Every number is copied from a stage's own output (see collect.py); a stage
that has not run is `null`, never zero. The headline is the paper's claim on
the world's held-out knowledge probe: instruct minus vanilla and instruct
minus mix, in points (percentage points of the probe metric).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from instructpt.report.collect import (
    CORPORA,
    PROBE_COLUMNS,
    PROBE_METRICS,
    SUMMARY_FORMAT,
    VARIANTS,
    ComparedRun,
    RunFacts,
    chance_adjusted,
    is_finite,
)

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
MAGPIE_KEYS = (
    "queries_sampled",
    "queries_ended",
    "queries_kept",
    "records",
    "well_formed_share",
    "question_mark_records",
    "dropped",
    "template",
    "prefix",
)
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


MC_TASK = next(task for key, task, _ in PROBE_COLUMNS if key == "mc_acc")


def _probe_row(ev: dict[str, Any] | None, chance: float | None) -> dict[str, Any] | None:
    """One model's probe columns, then its chance-adjusted multiple-choice score."""
    if ev is None:
        return None
    row: dict[str, Any] = {
        key: _probe_score(ev, task, metric) for key, task, metric in PROBE_COLUMNS
    }
    mc = row["mc_acc"]
    adjusted = chance_adjusted(mc["value"], chance) if mc else None
    row["mc_chance_adjusted"] = None
    if mc and adjusted is not None and chance is not None:
        err = mc["stderr"]
        row["mc_chance_adjusted"] = {
            "value": adjusted,
            "stderr": None if err is None else err / (1 - chance),
        }
    return row


def probe(facts: RunFacts) -> dict[str, Any] | None:
    """The world probe side by side: generative recall (zero- and few-shot), multiple choice.

    Per variant (pre-trained, and `tuned` after the tune stage): `exact_match`
    (world_probe_gen), `exact_match_3shot`, `mc_acc` and `mc_chance_adjusted`
    ((acc - chance) / (1 - chance), chance from the options count), each
    {value, stderr} or None; `by_attribute`: {attribute: {variant: {exact_match,
    mc_acc, mc_chance_adjusted}}} over the pre-trained variants. None when no
    variant was evaluated on any probe task.
    """
    tasks = {task for _, task, _ in PROBE_COLUMNS}
    evaluated = {
        v: e for v, e in facts.evaluate.items() if e is not None and tasks & set(e["tasks"])
    }
    if not evaluated:
        return None
    chance = facts.chance.get(MC_TASK)
    shots: dict[str, Any] = {}
    for key, task, _ in PROBE_COLUMNS:
        found = [
            e["tasks"][task].get("num_fewshot") for e in evaluated.values() if task in e["tasks"]
        ]
        shots[key] = found[0] if found else None
    tuned = {
        v: _probe_row(e, chance)
        for v, e in facts.tuned_evaluate.items()
        if e is not None and tasks & set(e["tasks"])
    }
    by_attribute: dict[str, dict[str, dict[str, float | None]]] = {}
    attribute_chance = facts.chance_by_attribute.get(MC_TASK, {})
    for variant in facts.variants:
        ev = evaluated.get(variant)
        if ev is None:
            continue
        for key, task, metric in PROBE_COLUMNS:
            for attribute, metrics in ev["tasks"].get(task, {}).get("by_attribute", {}).items():
                if metric in metrics:
                    cell = by_attribute.setdefault(attribute, {}).setdefault(variant, {})
                    cell[key] = metrics[metric]
                    if key == "mc_acc":
                        cell["mc_chance_adjusted"] = chance_adjusted(
                            metrics[metric], attribute_chance.get(attribute)
                        )
    return {
        "num_fewshot": shots,
        "mc_chance": chance,
        "variants": {v: _probe_row(evaluated.get(v), chance) for v in facts.variants},
        "tuned": tuned or None,
        "by_attribute": dict(sorted(by_attribute.items())),
    }


def _probe_score(ev: dict[str, Any] | None, task: str, metric: str) -> dict[str, Any] | None:
    res = ev["tasks"].get(task) if ev else None
    if not res or metric not in res["metrics"]:
        return None
    return {"value": res["metrics"][metric], "stderr": res["stderr"].get(metric)}


def tuning(facts: RunFacts) -> dict[str, Any] | None:
    """Probe score of each variant before and after the same tuning, and what tuning added.

    The paper's second claim is `instruct_gain_minus_vanilla_gain_points` > 0: instruction
    pre-trained models gain more from later instruction tuning. None before any tuned
    model is evaluated.
    """
    for task, metric in PROBE_METRICS:
        rows: dict[str, dict[str, Any]] = {}
        for variant in VARIANTS:
            before = _probe_score(facts.evaluate.get(variant), task, metric)
            after = _probe_score(facts.tuned_evaluate.get(variant), task, metric)
            if after is None:
                continue
            gain, err = _gap(after, before)
            rows[variant] = {"before": before, "after": after, "gain_points": gain,
                             "gain_stderr_points": err}  # fmt: skip
        if not rows:
            continue
        out: dict[str, Any] = {"task": task, "metric": metric, "variants": rows}
        for other in ("vanilla", "mix"):
            a, b = rows.get("instruct"), rows.get(other)
            diff = err = None
            if a and b and a["gain_points"] is not None and b["gain_points"] is not None:
                diff = round(a["gain_points"] - b["gain_points"], 2)
                errs = [a["gain_stderr_points"], b["gain_stderr_points"]]
                err = None if None in errs else round(math.hypot(*errs), 2)  # type: ignore[arg-type]
            out[f"instruct_gain_minus_{other}_gain_points"] = diff
            out[f"instruct_gain_minus_{other}_gain_stderr_points"] = err
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


def _synthesize_summary(facts: RunFacts) -> dict[str, Any] | None:
    out = _pick(facts.synthesize, SYNTHESIZE_KEYS)
    if out is not None:
        out["engine"] = facts.pairs_source  # what made the pairs: miner, hf, openai, ...
    return out


def pairs_source(summary: dict[str, Any]) -> str | None:
    """The engine that made a run's pairs, as its summary.json says."""
    pipeline = summary.get("pipeline")
    synthesize = pipeline.get("synthesize") if isinstance(pipeline, dict) else None
    engine = synthesize.get("engine") if isinstance(synthesize, dict) else None
    if engine is not None:
        return str(engine)
    # a summary written before pipeline.synthesize named its engine still says so of the miner
    stages = summary.get("stages")
    if isinstance(stages, dict) and stages.get("train-synthesizer") == "skipped: engine miner":
        return "miner"
    return None


def compared_entry(run: ComparedRun) -> dict[str, Any]:
    """One entry of summary.json's `compared`, copied from that run's own summary.json;
    pairs_source, probe and headline are None when it is missing or unreadable."""
    summary = run.summary or {}
    return {
        "run": run.name,
        "path": run.path,
        "pairs_source": pairs_source(summary),
        "probe": summary.get("probe"),
        "headline": summary.get("headline"),
    }


#: The compared-runs table's probe scores: (`probe` key, what it measures).
COMPARE_COLUMNS = (
    ("exact_match", "generative recall (exact match)"),
    ("mc_acc", "multiple choice accuracy"),
)


def compare_scores(probe_section: Any, head: Any) -> dict[str, dict[str, Any]]:
    """Per COMPARE_COLUMNS key: each paper variant's {value, stderr} (None when absent)
    under `scores`, and `instruct_minus_vanilla_points` with its stderr.

    Read from a summary's `probe`, or from its headline where it has none (written
    before summaries had a probe section). A compared run's summary.json is another
    run's file, so anything there that is not a finite number is taken as absent.
    """
    rows = probe_section.get("variants") if isinstance(probe_section, dict) else None
    if not isinstance(rows, dict):
        rows = _rows_from_headline(head)
    out: dict[str, dict[str, Any]] = {}
    for key, _ in COMPARE_COLUMNS:
        scores = {v: _score(rows.get(v), key) for v in VARIANTS}
        gap, err = _gap(scores["instruct"], scores["vanilla"])
        out[key] = {
            "scores": scores,
            "instruct_minus_vanilla_points": gap,
            "instruct_minus_vanilla_stderr_points": err,
        }
    return out


def _rows_from_headline(head: Any) -> dict[str, Any]:
    """The headline's scores in the shape of probe's `variants`: {variant: {key: score}}."""
    if not isinstance(head, dict) or not isinstance(head.get("scores"), dict):
        return {}
    measured = (head.get("task"), head.get("metric"))
    for key, task, metric in PROBE_COLUMNS:
        if (task, metric) == measured:
            return {variant: {key: score} for variant, score in head["scores"].items()}
    return {}


def _score(row: Any, key: str) -> dict[str, float | None] | None:
    cell = row.get(key) if isinstance(row, dict) else None
    if not isinstance(cell, dict) or not is_finite(cell.get("value")):
        return None
    err = cell.get("stderr")
    return {"value": float(cell["value"]), "stderr": float(err) if is_finite(err) else None}


def seed_spread(facts: RunFacts) -> dict[str, Any] | None:
    """Probe scores over the pre-training seeds: mean, sample sd and each seed's value.

    {"seeds": [pretrain.seed's run first as "run", then each further seed],
    "variants": {variant: {probe key: {"mean", "sd", "n", "values"}}}}; None without
    further seeds. A seed whose model was not evaluated is left out of that variant's
    cells (n says how many counted), never counted as zero.
    """
    if not facts.seed_evaluate:
        return None
    chance = facts.chance.get(MC_TASK)
    evaluations = [facts.evaluate, *facts.seed_evaluate.values()]
    variants: dict[str, dict[str, Any]] = {}
    for variant in facts.variants:
        rows = [_probe_row(ev.get(variant), chance) for ev in evaluations]
        cells = {}
        for key in ("exact_match", "exact_match_3shot", "mc_acc", "mc_chance_adjusted"):
            values = [r[key]["value"] for r in rows if r and r.get(key)]
            if values:
                cells[key] = {
                    "mean": statistics.fmean(values),
                    "sd": statistics.stdev(values) if len(values) > 1 else None,
                    "n": len(values),
                    "values": values,
                }
        if cells:
            variants[variant] = cells
    return {"seeds": ["run", *facts.seed_evaluate], "variants": variants}


def _evaluation_summary(ev: dict[str, Any] | None) -> dict[str, Any] | None:
    """One model's evaluation: {task: {metric: {value, stderr}, num_fewshot, num_samples}}."""
    if ev is None:
        return None
    return {
        task: {
            metric: {"value": value, "stderr": res["stderr"].get(metric)}
            for metric, value in res["metrics"].items()
        }
        | {"num_fewshot": res["num_fewshot"], "num_samples": res["num_samples"]}
        for task, res in ev["tasks"].items()
    }


def _base_model_summary(facts: RunFacts) -> dict[str, Any] | None:
    """The continued base model and its evaluation before training; None for a run from scratch."""
    if facts.base_model is None:
        return None
    return {"model": facts.base_model, "evaluation": _evaluation_summary(facts.base_evaluate)}


def build_summary(facts: RunFacts) -> dict[str, Any]:
    evaluation = {v: _evaluation_summary(facts.evaluate.get(v)) for v in facts.variants}
    world = facts.world or {}
    return {
        "format": SUMMARY_FORMAT,
        "run": facts.name,
        "stages": facts.stage_states(),
        "headline": headline(facts),
        "probe": probe(facts),
        "seeds": seed_spread(facts),
        "pipeline": {
            "world_documents": world.get("documents"),
            "documents": {c: (facts.ingest.get(c) or {}).get("kept") for c in CORPORA},
            "synthesizer_heldout": _pick(
                facts.synthesizer["eval"] if facts.synthesizer else None, SYNTHESIZER_KEYS
            ),
            "synthesize": _synthesize_summary(facts),
            "cook": _pick(facts.cook, COOK_KEYS),
            "mix": {v: _mix_summary(facts.mix.get(v)) for v in facts.variants},
        },
        "training": {v: _pick(facts.pretrain.get(v), TRAIN_KEYS) for v in facts.variants},
        "evaluation": evaluation,
        "base_model": _base_model_summary(facts),
        "tuning": tuning(facts),
        "magpie": _pick(facts.magpie, MAGPIE_KEYS),
        "compared": [compared_entry(run) for run in facts.compared],
        "problems": list(facts.problems),
    }
