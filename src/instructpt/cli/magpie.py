"""`instructpt magpie`: instruction records from an aligned chat model (Magpie)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from instructpt.cli.options import (
    CONFIG_OPTION,
    OVERWRITE_OPTION,
    RUN_DIR_OPTION,
    config_options,
    given,
)
from instructpt.core.config import (
    load_config,
)
from instructpt.core.layout import MAGPIE_CACHE, RunLayout
from instructpt.magpie import magpie as run_magpie
from instructpt.magpie.config import MagpieConfig

EPILOG = """\b
Examples:
  # a local chat model on CPU, its own chat template (template auto)
  instructpt magpie --run-dir runs/mine --model runs/mine/models/instruct-sft/model \\
      --num-queries 200 --max-response-tokens 128
  # a Llama-3 Instruct model on a GPU, in-process vLLM
  instructpt magpie --run-dir runs/gen --engine vllm \\
      --model meta-llama/Meta-Llama-3-8B-Instruct --template llama3 --num-queries 10000
  # any OpenAI-compatible server that takes raw completions
  instructpt magpie --run-dir runs/gen --engine openai --model Qwen/Qwen2-7B-Instruct \\
      --template qwen2 --openai-base-urls http://127.0.0.1:8000/v1
  # a model with its own format
  instructpt magpie --run-dir runs/gen --model my/chat --template custom \\
      --prefix $'<s>### User:\\n' --stop '### Assistant:'
  # use the output as general instruction data, or to instruction-tune
  instructpt mix --run-dir runs/bio --recipe domain --general runs/gen/magpie --tokenizer t/
  instructpt sft 'runs/gen/magpie/shard-*.jsonl.zst' --model base/ --run-dir runs/gen"""


@click.command("magpie", epilog=EPILOG)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(MagpieConfig, skip=("engine_options",))
def magpie(config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any) -> None:
    """Write instruction records with no seed data: Magpie (Xu et al. 2024).

    The model is prompted with its chat template up to the start of a user turn
    and writes a query (temperature 1), cut at the end of the turn; the query is
    answered greedily. Drops (length, repetition, refusals, near-duplicates,
    template leaks) are counted by reason. Writes <run-dir>/magpie (records with
    instruction/input/output and chat messages, a manifest; drops with their
    reason in <run-dir>/magpie-dropped.jsonl.zst)
    and keeps every finished request in <run-dir>/cache/magpie-replay.sqlite.
    """
    cfg = load_config(MagpieConfig, config_path, given(flags, MagpieConfig))
    run = RunLayout(run_dir)
    result = run_magpie(cfg, run.magpie, overwrite, run.cache / MAGPIE_CACHE)
    for line in result.summary_lines():
        click.echo(line)
