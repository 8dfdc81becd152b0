"""`instructpt sft`: instruction tuning (the work is in `instructpt.train.sft`).

Built by a factory that takes cli.py's shared `--config`, `--run-dir` and
`--overwrite` options, so this module never imports cli.py (which registers
it): no import cycle, also under `python -m instructpt.cli`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from instructpt.cli_options import config_options, given
from instructpt.config import load_config
from instructpt.train.sft import SftConfig

EPILOG = """\b
Examples:
  # full fine-tuning on Alpaca-style or chat records, with the model's chat template
  instructpt sft data/alpaca.jsonl --model runs/mine/models/instruct/model \\
      --run-dir runs/mine --name instruct-sft --epochs 3 --lr 1e-4
  # LoRA adapters (peft), plus the merged model
  instructpt sft data/chat.parquet --model my/model --lora-r 16 --lora-alpha 32 \\
      --lora-target-modules q_proj --lora-target-modules v_proj --lora-merge --lr 2e-4
  # distillation from a larger model with the same tokenizer
  instructpt sft data/chat.jsonl --model small/ --distill-teacher big/ \\
      --distill-temperature 2 --distill-alpha 0.5
Rerun the same command after a crash or kill -9: it resumes from the newest checkpoint."""

Option = Callable[[Any], Any]


def sft_command(config_option: Option, run_dir_option: Option, overwrite_option: Option) -> Any:
    """The `sft` click command, decorated with cli.py's shared options."""
    decorators = [
        click.command("sft", epilog=EPILOG),
        click.argument("data", nargs=-1),
        config_option,
        run_dir_option,
        overwrite_option,
        click.option(
            "--name", default="sft", show_default=True, help="Output runs/<run>/models/<name>."
        ),
        config_options(SftConfig, skip=("data",)),
    ]
    command: Any = sft
    for decorate in reversed(decorators):  # in the order a decorator stack applies them
        command = decorate(command)
    return command


def sft(
    data: tuple[str, ...],
    config_path: Path | None,
    run_dir: Path,
    overwrite: bool,
    name: str,
    **flags: Any,
) -> None:
    """Instruction-tune a model on instruction records, loss on the answers only.

    DATA are jsonl (gz, zst) or parquet files or globs of Alpaca records
    (instruction, optional input, output) or chat records (messages: role,
    content). Rendered with the model's chat template (else a plain
    "### User / ### Assistant" one), packed, optionally LoRA or distilled.
    Writes <run-dir>/models/<name>: model/ (and adapter/ with LoRA),
    metrics.jsonl, rejected.jsonl (bad records with file and line), a manifest.
    """
    from instructpt.train.sft import sft as run_sft

    overrides = given(flags, SftConfig)
    if data:
        overrides["data"] = list(data)
    cfg = load_config(SftConfig, config_path, overrides)
    result = run_sft(cfg, run_dir / "models" / name, overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank runs the command
        for line in result.summary_lines():
            click.echo(line)
