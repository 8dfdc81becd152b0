"""Commands that judge and show a run: evaluate, report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

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
