"""Commands of the training stages: pretrain, continue, sft."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from instructpt.cli.options import (
    CONFIG_OPTION,
    OVERWRITE_OPTION,
    RUN_DIR_OPTION,
    config_options,
    echo_main_rank,
    given,
    load_with_run_defaults,
    plain_name,
)
from instructpt.core.config import (
    load_config,
)
from instructpt.core.layout import RunLayout
from instructpt.train.config import ModelSpec, PretrainConfig, SftConfig
from instructpt.train.pretrain import pretrain as run_pretrain
from instructpt.train.sft import sft as run_sft

#: `continue` keeps the model's own architecture: no --model-* flags there.
PRETRAIN_MODEL_FLAGS = tuple(f"model_{name}" for name in ModelSpec.model_fields)


PRETRAIN_EPILOG = """\b
Examples:
  # the demo's vanilla variant on CPU (runs/mine/tokens/vanilla -> runs/mine/models/vanilla)
  instructpt pretrain --run-dir runs/mine --variant vanilla --model-preset demo-mistral
  # paper scale on one GPU node, 8 GPUs (FSDP2 from 1B parameters, DDP below)
  torchrun --nproc_per_node 8 -m instructpt pretrain --run-dir runs/web --variant instruct \\
      --model-preset mistral-500m --seq-len 2048 --micro-batch-size 16 --grad-accum 4 \\
      --lr 3e-4 --num-tokens 100000000000 --checkpoint-every 1000
  # Gemma-2 style options
  instructpt pretrain --run-dir runs/mine --variant vanilla --model-preset tiny-gemma2 \\
      --model-sliding-window 32 --model-final-logit-softcapping 30
Rerun the same command after a crash or kill -9: it resumes from the newest checkpoint."""


@click.command(epilog=PRETRAIN_EPILOG)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--variant",
    callback=plain_name,
    default="vanilla",
    show_default=True,
    help="runs/<run>/tokens/<variant>.",
)
@click.option(
    "--name",
    callback=plain_name,
    default=None,
    help="Output runs/<run>/models/<name> (default: variant).",
)
@config_options(PretrainConfig, skip=("init_from",))
def pretrain(
    config_path: Path | None,
    run_dir: Path,
    overwrite: bool,
    variant: str,
    name: str | None,
    **flags: Any,
) -> None:
    """Pre-train a decoder LM from scratch on packed token shards (resumable).

    Writes <run-dir>/models/<name>: model/ (save_pretrained, safetensors, with the
    tokenizer), metrics.jsonl, checkpoints/ and a manifest.
    """
    run = RunLayout(run_dir)
    defaults = {"tokens": str(run.tokens(variant)), "tokenizer": str(run.tokenizer)}
    cfg = load_with_run_defaults(PretrainConfig, config_path, defaults, flags)
    result = run_pretrain(cfg, run.models(name or variant), overwrite)
    echo_main_rank(result.summary_lines())


@click.command(
    "continue",
    epilog="""\b
Examples:
  # continual pre-training of a local model on a domain mix tokenized with its tokenizer
  instructpt tokenize --run-dir runs/bio --variant domain --tokenizer models/base
  instructpt continue --run-dir runs/bio --variant domain --init-from models/base --lr 2e-5
  # a hub model (where a hub is reachable), 8 GPUs
  torchrun --nproc_per_node 8 -m instructpt continue --run-dir runs/bio --variant domain \\
      --init-from meta-llama/Meta-Llama-3-8B --lr 1e-5 --seq-len 4096 --strategy fsdp""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--variant",
    callback=plain_name,
    default="domain",
    show_default=True,
    help="runs/<run>/tokens/<variant>.",
)
@click.option("--name", callback=plain_name, default=None, help="Output runs/<run>/models/<name>.")
@config_options(PretrainConfig, skip=PRETRAIN_MODEL_FLAGS)
def continue_(
    config_path: Path | None,
    run_dir: Path,
    overwrite: bool,
    variant: str,
    name: str | None,
    **flags: Any,
) -> None:
    """Continue pre-training an existing model (its tokenizer and BOS/EOS conventions kept).

    The token shards must have been made with the model's tokenizer (checked).
    Writes <run-dir>/models/<name> (default: <variant>-continued).
    """
    run = RunLayout(run_dir)
    defaults = {"tokens": str(run.tokens(variant))}
    cfg = load_with_run_defaults(PretrainConfig, config_path, defaults, flags)
    if cfg.init_from is None:
        raise click.UsageError("continue needs --init-from (a model directory or hub name)")
    result = run_pretrain(cfg, run.models(name or f"{variant}-continued"), overwrite)
    echo_main_rank(result.summary_lines())


SFT_EPILOG = """\b
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


@click.command("sft", epilog=SFT_EPILOG)
@click.argument("data", nargs=-1)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option("--name", default="sft", show_default=True, help="Output runs/<run>/models/<name>.")
@config_options(SftConfig, skip=("data",))
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
    overrides = given(flags, SftConfig)
    if data:
        overrides["data"] = list(data)
    cfg = load_config(SftConfig, config_path, overrides)
    result = run_sft(cfg, RunLayout(run_dir).models(name), overwrite)
    if os.environ.get("RANK", "0") == "0":  # under torchrun every rank runs the command
        for line in result.summary_lines():
            click.echo(line)
