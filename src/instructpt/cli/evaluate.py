"""Commands that judge and show a run: evaluate, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from instructpt.assets.fetch import resolve_asset
from instructpt.cli.options import (
    CONFIG_OPTION,
    RUN_DIR_OPTION,
    config_options,
    load_with_run_defaults,
    plain_name,
)
from instructpt.core.layout import RunLayout
from instructpt.evaluate import evaluate as run_evaluate
from instructpt.evaluate import result_lines, write_probe_tasks
from instructpt.evaluate.closed_book import build_wiki_probe
from instructpt.evaluate.config import PRESETS, EvaluateConfig
from instructpt.evaluate.probe import world_seed
from instructpt.report import write_report


@click.command(
    epilog="""\b
Examples:
  # the world knowledge probe on the demo's instruct model -> runs/demo/eval/instruct.json
  instructpt evaluate --run-dir runs/demo --variant instruct
  # the paper's protocol: 0-shot piqa, hellaswag, winogrande; 5-shot the others (local
  # files when `instructpt assets get paper-eval` was run, else lm-eval's hub datasets)
  instructpt evaluate --preset paper --model runs/web/models/instruct/model --device cuda
  instructpt assets get smollm2-135m-instruct && instructpt assets get paper-eval
  instructpt evaluate --preset paper --model $(instructpt assets path smollm2-135m-instruct)
  # any lm-eval task names or local task YAML folders
  instructpt evaluate --model my/model --tasks arc_easy --tasks mytask --include-path tasks/""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@click.option(
    "--variant",
    callback=plain_name,
    default="vanilla",
    show_default=True,
    help="runs/<run>/models/<variant>.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=None,
    help="A named task list with its own shots (same as --tasks NAME).",
)
@config_options(EvaluateConfig)
def evaluate(
    config_path: Path | None, run_dir: Path, variant: str, preset: str | None, **flags: Any
) -> None:
    """Evaluate a model with lm-evaluation-harness (BOS added, as in the paper).

    Default: <run-dir>/models/<variant>/model on the world knowledge probe (tasks
    written from <run-dir>/world). Results with stderr and the lm-eval version go
    to <run-dir>/eval/<variant>.json.
    """
    run = RunLayout(run_dir)
    defaults: dict[str, Any] = {"model": str(run.model(variant))}
    if run.world.is_dir():
        # the world's own seed, as `run` uses: the same distractors whichever wrote last
        write_probe_tasks(run.world, run.eval_tasks, seed=world_seed(run.world))
        defaults.update(tasks=["world_probe"], include_path=[str(run.eval_tasks)])
    if preset is not None:
        flags["tasks"] = [preset]
    cfg = load_with_run_defaults(EvaluateConfig, config_path, defaults, flags)
    out = run.eval(variant)
    result = run_evaluate(cfg, out)
    for line in result_lines(result):
        click.echo(line)
    for line in result.get("split_substitutions", []):
        click.echo(f"  split substitution: {line}")
    click.echo(f"written: {out}")


@click.command(
    epilog="""\b
Example:
  instructpt report --run-dir runs/demo     # -> runs/demo/report/report.html"""
)
@RUN_DIR_OPTION
@click.option(
    "--compare",
    multiple=True,
    help="Another run directory whose summary is shown beside this one (repeatable); "
    "default: the run's own config.yaml `compare` list.",
)
def report(run_dir: Path, compare: tuple[str, ...]) -> None:
    """Write report.html + summary.json for a run (offline page; stages not run say so)."""
    if not compare:
        compare = tuple(_config_compare(run_dir / "config.yaml"))
    click.echo(f"report: {write_report(run_dir, compare=compare).resolve()}")


def _config_compare(path: Path) -> list[str]:
    """The `compare` list of a run's resolved config.yaml; none when absent or unreadable."""
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    value = data.get("compare") if isinstance(data, dict) else None
    return [str(v) for v in value] if isinstance(value, list) else []


def _count_option(flag: str, default: int, help_text: str) -> Any:
    return click.option(
        flag, type=click.IntRange(min=0), default=default, show_default=True, help=help_text
    )


@click.command(
    "wiki-probe",
    epilog="""\b
Examples:
  # the closed-book probe of configs/wiki-cpt.yaml (fetches both assets on first use)
  instructpt wiki-probe --out runs/wiki-probe --distractors 200
  # your own question file and lead corpus (the assets' record shapes)
  instructpt wiki-probe --questions my_qa.jsonl --leads my_leads.jsonl --out probe/""",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for corpus.jsonl, the two task YAMLs and probe.json.",
)
@click.option(
    "--questions",
    default="closed-book-qa",
    show_default=True,
    help="Questions jsonl (id, source, question, answers), or the asset's name.",
)
@click.option(
    "--leads",
    default="wiki-leads",
    show_default=True,
    help="Lead Documents jsonl with meta.title, or the asset's name.",
)
@_count_option("--distractors", 1000, "Unrelated leads added to the corpus.")
@click.option(
    "--heldout-fraction",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Share of the questions no tuning step ever sees.",
)
@_count_option("--shots", 3, "The tasks' default few-shot count (from the tune slice).")
@click.option(
    "--max-subject-share",
    type=click.FloatRange(0.0, 1.0),
    default=0.005,
    show_default=True,
    help="A common-noun title in more than this share of all leads is no subject "
    "(raise it for a small lead file).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Distractors and split.")
def wiki_probe(
    out_dir: Path,
    questions: str,
    leads: str,
    distractors: int,
    heldout_fraction: float,
    shots: int,
    max_subject_share: float,
    seed: int,
) -> None:
    """Build a closed-book probe: real trivia questions a small Wikipedia corpus answers.

    Keeps the TriviaQA / NQ-open questions whose answer is stated in the lead about
    the question's subject, writes those leads plus distractors as a corpus, and the
    questions as two lm-eval generative tasks (wiki_probe_tune, wiki_probe_heldout).
    The selection rule is in `instructpt.evaluate.closed_book`; probe.json counts it.
    """
    probe = build_wiki_probe(
        Path(resolve_asset(questions, ("closed-book-qa",), fetch=True)),
        Path(resolve_asset(leads, ("wiki-leads",), fetch=True)),
        out_dir,
        seed=seed,
        num_distractors=distractors,
        heldout_fraction=heldout_fraction,
        num_fewshot=shots,
        max_subject_share=max_subject_share,
    )
    counts = probe.counts
    click.echo(
        f"wiki-probe: {sum(counts['questions']['selected'].values())} questions kept of "
        f"{sum(counts['questions']['read'].values())} "
        f"({', '.join(f'{k} {v}' for k, v in counts['splits'].items())}); corpus "
        f"{counts['corpus']['documents']} leads ({counts['corpus']['support']} support, "
        f"{counts['corpus']['distractors']} distractors) -> {probe.corpus}"
    )
    click.echo(f"  tasks: --tasks {' --tasks '.join(probe.tasks)} --include-path {probe.out_dir}")
