"""`instructpt run`: the whole loop, top to bottom (the work is in `instructpt.run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from instructpt.cli.options import (
    CONFIG_OPTION,
    OVERWRITE_OPTION,
    executor_options,
    plain_name,
)
from instructpt.core.config import (
    build_config,
    merge_values,
    read_yaml_mapping,
)
from instructpt.run import run_pipeline
from instructpt.run_config import QUICK_RUN, RunConfig


@click.command(
    epilog="""\b
Examples:
  instructpt run                         # the demo, into runs/demo/
  instructpt run --config configs/demo.yaml --name demo2
  instructpt run --quick                 # toy sizes into runs/quick/ (a few minutes)
  instructpt run --overwrite             # start over
  instructpt run --executor ray          # synthesize, cook, tokenize on a Ray cluster"""
)
@CONFIG_OPTION
@click.option(
    "--name",
    callback=plain_name,
    default=None,
    help="Run name (runs/<name>/); overrides the config.",
)
@click.option("--runs-root", default=None, help="Folder holding run directories.")
@OVERWRITE_OPTION
@click.option(
    "--quick", is_flag=True, help="Toy sizes (runs/quick/): the whole loop in a few minutes."
)
@executor_options(replicas=True)
def run(
    config_path: Path | None,
    name: str | None,
    runs_root: str | None,
    overwrite: bool,
    quick: bool,
    executor: Any,
) -> None:
    """Run the whole pipeline; with no arguments, the demo into runs/demo/."""
    values = read_yaml_mapping(config_path) if config_path is not None else {}
    if quick:
        values = merge_values(QUICK_RUN, values)
    where = f"{config_path} (or its command-line overrides)" if config_path else "--quick"
    cfg = build_config(RunConfig, values, {"name": name, "runs_root": runs_root}, where)
    report = run_pipeline(cfg, overwrite, echo=click.echo, executor=executor)
    click.echo(f"done: {report.run_dir}")
