"""`instructpt plan`: the throughput planner's command (the work is in `instructpt.plan`).

Built by a factory that takes cli.py's shared `--config` and `--run-dir` options,
so this module never imports cli.py (which registers it): no import cycle, also
under `python -m instructpt.cli`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from instructpt.cli_options import config_options, given
from instructpt.config import load_config
from instructpt.plan import PLAN_NAME, PlanConfig

#: Flags the planner sets itself (the sample run is quiet, uncached, one miner worker)
#: or takes otherwise (INPUTS is the argument; miner options go under `synthesize.miner`).
SKIPPED_FLAGS = (
    "input",
    "synthesize_miner",
    "synthesize_progress",
    "synthesize_replay_cache",
    "synthesize_keep_raw",
)

EPILOG = """\b
Examples:
  # the miner on an ingested corpus: CPU core-hours for all of it on 32 cores
  instructpt plan --run-dir runs/web --num-replicas 32
  # the hf engine on a sample of raw files, for 40M documents on 64 GPUs
  instructpt plan data/*.jsonl.zst --synthesize-engine hf --synthesize-model models/synth \\
      --synthesize-num-rounds 2 --num-documents 40000000 --num-replicas 64
  # speed measured on a GPU box (its plan.json), shape measured here on the corpus
  instructpt plan --run-dir runs/web --synthesize-engine hf --synthesize-model models/synth \\
      --from-benchmark gpu/plan.json --num-replicas 8 --price-per-device-hour 2.5"""


def plan_command(
    config_option: Callable[[Any], Any], run_dir_option: Callable[[Any], Any]
) -> click.Command:
    """The `plan` command, decorated with cli.py's shared options."""

    @click.command("plan", epilog=EPILOG)
    @click.argument("inputs", nargs=-1)
    @config_option
    @run_dir_option
    @click.option(
        "--out",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"Where to write the plan; default: <run-dir>/plan/{PLAN_NAME}.",
    )
    @config_options(PlanConfig, skip=SKIPPED_FLAGS)
    def plan(
        inputs: tuple[str, ...],
        config_path: Path | None,
        run_dir: Path,
        out: Path | None,
        **flags: Any,
    ) -> None:
        """Estimate wall time, GPU-hours, pairs and output size of a whole synthesis job.

        Runs the named engine (--synthesize-engine: hf, openai, vllm or miner) on the
        first --num-sample-documents documents of INPUTS (raw files, as for ingest) or
        of <run-dir>/corpus, measures documents/s and tokens/s per replica, pairs and
        bytes per document, and scales them to --num-documents (default: the whole
        ingested corpus) on --num-replicas replicas. Writes plan.json.
        """
        from instructpt.plan import plan as run_plan

        overrides = given(flags, PlanConfig)
        if inputs:
            overrides["input"] = list(inputs)
        cfg = load_config(PlanConfig, config_path, overrides)
        result = run_plan(cfg, run_dir / "corpus", out or run_dir / "plan" / PLAN_NAME)
        for line in result.table():
            click.echo(line)

    return plan
