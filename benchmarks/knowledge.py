"""Knowledge extraction on one world: the Physics-of-LMs regimes, a knob table, and the
pair-accuracy curve (issue 22).

Every experiment is an `instructpt run` of `configs/science.yaml` (or --config) with a
few keys changed, whose synthesized pairs are replaced by the world's own ground truth
(`oracle_pairs.py`: every open question of each augment text's entity, in the fixed
"Question: ...\\nAnswer: ..." format the config cooks), so that what is measured is the
regime, not a synthesizer. Probe people's questions are never in any training text.

- **regimes** (each seed): vanilla; vanilla then QA fine-tune (the run's `tune` stage on
  the augment people's QA); Mix PT (the world's synth_train texts with QA, as general
  instruction data); instruct PT with each text's QA *after* it; instruct PT with QA
  *before* it (pre-instruction order). All at equal tokens (the instruct-before mix's
  `epochs`, fixed for every run as `pretrain.num_tokens`).
- **curve**: instruct PT (QA before) with 0 / 10 / 30 / 50 / 100% of the answers made
  wrong (another value of the same attribute, `instructpt.world.noise`), beside vanilla;
  with `--lm-run DIR` also a run whose pairs are that run's own synthesizer's, placed by
  their measured accuracy against the world.
- **knobs** (`--grid full`): one knob at a time around the config, vanilla vs instruct.

    python benchmarks/knowledge.py                    # the default grid: regimes, seeds 1 2 3
    python benchmarks/knowledge.py --parts curve --seeds 1
    python benchmarks/knowledge.py --grid full --lm-run runs/demo-lm
    python benchmarks/knowledge.py --parts curve --seeds 1 --wrong-shares 0 --lm-run runs/demo-lm
    python benchmarks/knowledge.py --parts knobs --seeds 1 --knobs renderings=4 epochs=44

Runs go to <out>/<experiment>/ (a finished one is reused), the table to <out>/knowledge.json
and knowledge.md (markdown for RESULTS.md), and the curve to <out>/pair_accuracy.svg.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from oracle_pairs import write_oracle_pairs, write_pairs
from synth_accuracy import score_run

from instructpt.core.manifest import read_manifest
from instructpt.core.shards import read_shard
from instructpt.run import run_pipeline
from instructpt.run_config import RunConfig

GEN, MC = "world_probe_gen", "world_probe_mc"
#: QA after the text, in the same fixed format as the config's QA-before layout.
QA_AFTER_COOK = {"layouts": ["reading"], "templates": ["rc.007", "qa.001"]}
#: 99%, not 100%: 2 of the 631 augment pairs have an attribute no other augment person has
#: a value of, so they cannot be made wrong with a value from the same pool.
WRONG_SHARES = (0.0, 0.1, 0.3, 0.5, 0.99)
#: One knob at a time, away from the config's own values (full names, 100 people, 8
#: renderings, demo-llama ~1M, 22 epochs).
KNOBS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "names": [("pronouns", {"world": {"full_names": False}})],
    "people": [("50", {"world": {"num_people": 50}}), ("200", {"world": {"num_people": 200}})],
    "renderings": [
        ("1", {"world": {"texts_per_entity": 1}}),
        ("2", {"world": {"texts_per_entity": 2}}),
        ("4", {"world": {"texts_per_entity": 4}}),
        ("8", {"world": {"texts_per_entity": 8}}),
    ],
    "model": [
        ("0.2M tiny-llama", {"pretrain": {"model": {"preset": "tiny-llama"}}}),
        ("2.4M demo-mistral", {"pretrain": {"model": {"preset": "demo-mistral"}}}),
    ],
    "epochs": [
        ("11", {"pretrain": {"epochs": 11}}),
        ("44", {"pretrain": {"epochs": 44}}),
        ("88", {"pretrain": {"epochs": 88}}),
    ],
}


@dataclass
class Experiment:
    name: str
    overrides: dict[str, Any]
    wrong_share: float | None = 0.0  # None: keep the run's own pairs (an LM run's)
    pairs_from: Path | None = None  # copy synth/ from this run instead of the oracle
    scores: dict[str, Any] = field(default_factory=dict)


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def probe_scores(path: Path) -> dict[str, float | None]:
    if not path.is_file():
        return {"gen": None, "mc": None}
    results = json.loads(path.read_text())["results"]
    gen = results.get(GEN, {}).get("metrics", {}).get("exact_match")
    mc = results.get(MC, {}).get("metrics", {}).get("acc")
    return {"gen": gen, "mc": mc}


def run_experiment(base: dict[str, Any], exp: Experiment, out: Path, echo: Callable) -> None:
    """world -> synthesize, the pairs swapped in, then -> report; reused when finished."""
    run_dir = out / exp.name
    cfg = merge(base, {**exp.overrides, "name": exp.name, "runs_root": str(out)})
    if (run_dir / "report" / "summary.json").is_file():
        echo(f"{exp.name}: reused")
    else:
        t0 = time.perf_counter()
        quiet = {"echo": lambda line: None}
        if (
            not (run_dir / "synth" / "_manifest.json").is_file()
            or not (run_dir / "synth" / "pairs_swapped").is_file()
        ):
            run_pipeline(RunConfig.model_validate({**cfg, "until": "synthesize"}), **quiet)
            if exp.pairs_from is not None:
                _copy_pairs(exp.pairs_from, run_dir)
            else:
                write_oracle_pairs(run_dir, wrong_share=exp.wrong_share or 0.0)
            (run_dir / "synth" / "pairs_swapped").write_text("done\n")
        run_pipeline(RunConfig.model_validate(cfg), **quiet)
        echo(f"{exp.name}: {time.perf_counter() - t0:.0f} s")
    config = RunConfig.model_validate(cfg)
    for variant in config.run_variants:
        exp.scores[variant] = probe_scores(run_dir / "eval" / f"{variant}.json")
        tuned = run_dir / "eval" / "tuned" / f"{variant}.json"
        if tuned.is_file():
            exp.scores[f"{variant}+tune"] = probe_scores(tuned)
    manifest = read_manifest(run_dir / "models" / config.run_variants[-1])
    exp.scores["tokens"] = manifest.stats.get("tokens") if manifest else None


def _copy_pairs(source_run: Path, run_dir: Path) -> None:
    """Another run's pairs (same world, so the same augment texts) as this run's synth/."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for shard in sorted((source_run / "synth").glob("shard-*.jsonl.zst")):
        for record in read_shard(shard):
            pairs[record["id"]] = record["pairs"]
    write_pairs(run_dir, lambda doc: pairs.get(doc["id"], []), "lm-copy")


def lm_pair_accuracy(lm_run: Path) -> dict[str, float]:
    """Share of an LM run's open pairs whose answer is the entity's true value (world gold).

    Only open pairs: multiple choice and chain of thought are cooked out as no_template.
    """
    scored = score_run(lm_run, open_only=True)
    total = scored["pairs"]
    return {"open_pairs": total, "accuracy": scored["right"] / total if total else 0.0}


def mean_sd(values: list[float]) -> str:
    if not values:
        return "—"
    sd = f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""
    return f"{100 * statistics.fmean(values):.1f}{sd}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--config", type=Path, default=Path("configs/science.yaml"))
    ap.add_argument("--out", type=Path, default=Path("runs/science"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument(
        "--parts",
        nargs="+",
        default=["regimes"],
        choices=["regimes", "curve", "knobs"],
        help="regimes (default; ~53 min for 3 seeds on 2 cores), curve (+18 min), knobs",
    )
    ap.add_argument(
        "--grid", choices=["default", "full"], default="default", help="full: also the knob table"
    )
    ap.add_argument("--lm-run", type=Path, help="a finished run (same world) whose pairs to place")
    ap.add_argument(
        "--wrong-shares",
        type=float,
        nargs="+",
        default=list(WRONG_SHARES),
        help="curve points: shares of answers made wrong (0: the regimes run's instruct model); "
        "`--wrong-shares 0 --lm-run DIR` places an LM run's pairs without redrawing the curve",
    )
    ap.add_argument(
        "--knobs",
        nargs="+",
        default=None,
        metavar="KNOB[=SETTING]",
        help=f"only these knobs, or one setting of a knob (renderings=4); of {', '.join(KNOBS)}",
    )
    args = ap.parse_args()
    for choice in args.knobs or []:
        knob, _, label = choice.partition("=")
        if knob not in KNOBS or (label and label not in [k.split()[0] for k, _ in KNOBS[knob]]):
            ap.error(f"--knobs {choice}: no such knob or setting (see KNOBS in this file)")
    parts = set(args.parts) | ({"knobs"} if args.grid == "full" else set())
    base = yaml.safe_load(args.config.read_text())
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def echo(line: str) -> None:
        print(f"[{time.perf_counter() - t_start:6.0f} s] {line}", flush=True)

    # The token budget every run trains: `epochs` of the first seed's QA-before instruct mix.
    first = Experiment(f"regimes-s{args.seeds[0]}", _seeded(args.seeds[0]))
    run_experiment(base, first, out, echo)
    budget = first.scores["tokens"]
    fixed = merge(base, {"pretrain": {"num_tokens": budget}})
    fixed["pretrain"].pop("epochs", None)
    report: dict[str, Any] = {"tokens_per_model": budget, "config": str(args.config)}

    if "curve" in parts:
        seed = args.seeds[0]
        points = []
        for share in args.wrong_shares:
            if share == 0.0:
                exp = first
            else:
                exp = Experiment(
                    f"wrong-{round(100 * share)}-s{seed}",
                    merge(_seeded(seed), {"variants": ["instruct"], "tune": None}),
                    wrong_share=share,
                )
                run_experiment(fixed, exp, out, echo)
            points.append({"pair_accuracy": 1 - share, **exp.scores["instruct"]})
        curve = {"vanilla": first.scores["vanilla"], "points": points}
        if args.lm_run is not None:
            lm = lm_pair_accuracy(args.lm_run)
            exp = Experiment(
                f"lm-pairs-s{seed}",
                merge(_seeded(seed), {"variants": ["instruct"], "tune": None}),
                wrong_share=None,
                pairs_from=args.lm_run,
            )
            run_experiment(fixed, exp, out, echo)
            curve["lm"] = {"run": str(args.lm_run), **lm, **exp.scores["instruct"]}
        report["curve"] = curve
        _plot_curve(curve, out / "pair_accuracy.svg")

    if "regimes" in parts:
        rows: dict[str, list[Experiment]] = {"before": [first], "after": []}
        for seed in args.seeds:
            if seed != args.seeds[0]:
                exp = Experiment(f"regimes-s{seed}", _seeded(seed))
                run_experiment(fixed, exp, out, echo)
                rows["before"].append(exp)
            after = Experiment(
                f"qa-after-s{seed}",
                merge(
                    _seeded(seed), {"variants": ["instruct"], "cook": QA_AFTER_COOK, "tune": None}
                ),
            )
            run_experiment(fixed, after, out, echo)
            rows["after"].append(after)
        report["regimes"] = _regime_table(rows)

    if "knobs" in parts:
        seed = args.seeds[0]
        knobs = {}
        for knob, settings in KNOBS.items():
            picked = [
                (label, over)
                for label, over in settings
                if _picked(args.knobs, knob, label) and merge(base, over) != base
            ]  # a setting equal to the config's own is the regimes run already
            if not picked:
                continue
            knobs[knob] = []
            for label, over in picked:
                name = f"knob-{knob}-{label.split()[0]}-s{seed}"
                exp = Experiment(
                    name,
                    merge(
                        _seeded(seed), {**over, "tune": None, "variants": ["vanilla", "instruct"]}
                    ),
                )
                # a knob that changes the data trains its own epochs (equal tokens within it)
                run_experiment(
                    base if "world" in over or "pretrain" in over else fixed, exp, out, echo
                )
                knobs[knob].append({"setting": label, **exp.scores})
        report["knobs"] = knobs

    report["seconds"] = round(time.perf_counter() - t_start)
    (out / "knowledge.json").write_text(json.dumps(report, indent=2))
    (out / "knowledge.md").write_text(_markdown(report))
    print(_markdown(report))


def _picked(choices: list[str] | None, knob: str, label: str) -> bool:
    """Whether `--knobs` selects this knob setting (no `--knobs`: every one)."""
    if choices is None:
        return True
    return any(c == knob or c == f"{knob}={label.split()[0]}" for c in choices)


def _seeded(seed: int) -> dict[str, Any]:
    return {"pretrain": {"seed": seed}, "tune": {"seed": seed}}


def _regime_table(rows: dict[str, list[Experiment]]) -> dict[str, Any]:
    def cells(exps: list[Experiment], key: str) -> dict[str, Any]:
        found = [e.scores[key] for e in exps if key in e.scores]
        gen = [s["gen"] for s in found if s["gen"] is not None]
        mc = [s["mc"] for s in found if s["mc"] is not None]
        return {"gen": gen, "mc": mc, "gen_mean_sd": mean_sd(gen), "mc_mean_sd": mean_sd(mc)}

    return {
        "vanilla": cells(rows["before"], "vanilla"),
        "vanilla then QA tune": cells(rows["before"], "vanilla+tune"),
        "Mix PT": cells(rows["before"], "mix"),
        "instruct PT, QA after the text": cells(rows["after"], "instruct"),
        "instruct PT, QA before the text": cells(rows["before"], "instruct"),
    }


def _plot_curve(curve: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    xs = [100 * p["pair_accuracy"] for p in curve["points"]]
    for ax, key, title in ((axes[0], "gen", "recall (exact match)"), (axes[1], "mc", "MC acc")):
        ys = [100 * (p[key] or 0) for p in curve["points"]]
        ax.plot(xs, ys, "o-", label="instruct PT (oracle pairs, share made wrong)")
        van = curve["vanilla"][key]
        if van is not None:
            ax.axhline(100 * van, color="gray", ls="--", label="vanilla")
        lm = curve.get("lm")
        if lm and lm.get(key) is not None:
            ax.plot([100 * lm["accuracy"]], [100 * lm[key]], "s", color="C3", label="LM pairs")
        ax.set_xlabel("pairs right (%)")
        ax.set_ylabel(f"probe {title} (%)")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}"


def _markdown(report: dict[str, Any]) -> str:
    lines = [f"Tokens per model: {report['tokens_per_model']:,}; {report.get('seconds', 0)} s.", ""]
    if "regimes" in report:
        lines += ["| regime | recall (exact match) | MC acc | seeds |", "|---|---|---|---|"]
        for name, c in report["regimes"].items():
            lines.append(f"| {name} | {c['gen_mean_sd']} | {c['mc_mean_sd']} | {len(c['gen'])} |")
        lines.append("")
    if "curve" in report:
        c = report["curve"]
        lines += ["| pairs right | recall | MC acc |", "|---|---|---|"]
        lines.append(
            f"| vanilla (no pairs) | {_pct(c['vanilla']['gen'])} | {_pct(c['vanilla']['mc'])} |"
        )
        for p in c["points"]:
            lines.append(
                f"| {100 * p['pair_accuracy']:.0f}% | {_pct(p['gen'])} | {_pct(p['mc'])} |"
            )
        if "lm" in c:
            lm = c["lm"]
            lines.append(
                f"| LM synthesizer's pairs ({100 * lm['accuracy']:.1f}% of "
                f"{lm['open_pairs']:,} open pairs right) | {_pct(lm['gen'])} | "
                f"{_pct(lm['mc'])} |"
            )
        lines.append("")
    if "knobs" in report:
        lines += [
            "| knob | setting | vanilla recall | instruct recall | vanilla MC | "
            "instruct MC | tokens |",
            "|---|---|---|---|---|---|---|",
        ]
        for knob, rows in report["knobs"].items():
            for r in rows:
                v, i = r.get("vanilla", {}), r.get("instruct", {})
                lines.append(
                    f"| {knob} | {r['setting']} | {_pct(v.get('gen'))} | "
                    f"{_pct(i.get('gen'))} | {_pct(v.get('mc'))} | {_pct(i.get('mc'))} "
                    f"| {r.get('tokens') or 0:,} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
