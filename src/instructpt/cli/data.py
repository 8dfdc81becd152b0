"""Commands of the data stages: world, ingest, mine, filter, cook, mix, tokenizer, tokenize."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from instructpt.cli.options import (
    CONFIG_OPTION,
    OVERWRITE_OPTION,
    RUN_DIR_OPTION,
    config_options,
    executor_options,
    given,
    load_with_run_defaults,
    plain_name,
)
from instructpt.cook.config import CookConfig
from instructpt.cook.stage import cook as run_cook
from instructpt.core.config import load_config
from instructpt.core.layout import RunLayout
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest as run_ingest
from instructpt.filter import FilterConfig, filter_pairs
from instructpt.mine import MineConfig
from instructpt.mine import mine as run_mine
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix as run_mix
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.pack.tokenize import tokenize as run_tokenize
from instructpt.pack.tokenizer import train_tokenizer_stage
from instructpt.world.config import WorldConfig
from instructpt.world.stage import generate_world


@click.command(
    epilog="""\b
Example:
  instructpt world --run-dir runs/mine --num-people 200 --seed 7
  head -c 600 runs/mine/world/documents.jsonl"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(WorldConfig)
def world(config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any) -> None:
    """Generate the seeded demo world: entity texts, ground-truth QA, splits."""
    cfg = load_config(WorldConfig, config_path, given(flags, WorldConfig))
    world_dir = RunLayout(run_dir).world
    manifest, reused = generate_world(cfg, world_dir, overwrite)
    state = "already complete; nothing to do" if reused else "written"
    click.echo(f"world: {state} in {world_dir}")
    for key, value in manifest.stats.items():
        click.echo(f"  {key}: {value}")


@click.command(
    epilog="""\b
Examples:
  instructpt ingest data/*.jsonl.zst --run-dir runs/web
  instructpt ingest books/ --format txt --run-dir runs/books --num-shards 64
  instructpt ingest dump.parquet --text-field content --id-field doc_id
  instructpt ingest --config configs/ingest.yaml --on-error fail"""
)
@click.argument("inputs", nargs=-1)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(IngestConfig, skip=("input",))
def ingest(
    inputs: tuple[str, ...], config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any
) -> None:
    """Read raw corpus files into Document shards (split by id, resumable).

    INPUTS are files, folders or globs: jsonl, jsonl.gz, jsonl.zst, parquet, a
    folder of .txt files, or a datasets save_to_disk folder. Bad records are
    skipped and written to corpus/quarantine.jsonl with file and line.
    """
    overrides = given(flags, IngestConfig)
    if inputs:
        overrides["input"] = list(inputs)
    cfg = load_config(IngestConfig, config_path, overrides)
    result = run_ingest(cfg, RunLayout(run_dir).corpus, overwrite)
    for line in result.summary_lines():
        click.echo(line)


@click.command(
    epilog="""\b
Examples:
  instructpt mine --run-dir runs/web
  instructpt mine --run-dir runs/web --families fact --families nli --max-pairs 4
  zstdcat runs/web/synth/shard-00000.jsonl.zst | head -c 1500"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@executor_options()
@config_options(MineConfig)
def mine(
    config_path: Path | None, run_dir: Path, overwrite: bool, executor: Any, **flags: Any
) -> None:
    """Mine reading-comprehension pairs from every document with patterns, no model.

    Reads <run-dir>/corpus (from `ingest`), writes Synthesis records to <run-dir>/synth,
    exactly like `synthesize`, on all cores (--num-workers). Task families: title,
    summarize, word_to_text, nli, cause_effect, paraphrase, completion, fact (AdaptLLM),
    and biography (person attributes).
    """
    cfg = load_config(MineConfig, config_path, given(flags, MineConfig))
    run = RunLayout(run_dir)
    result = run_mine(cfg, run.corpus, run.synth, overwrite, executor=executor)
    for line in result.summary_lines():
        click.echo(line)


@click.command(
    name="filter",
    epilog="""\b
Examples:
  instructpt filter --run-dir runs/web
  # decontaminate against local files and lm-eval tasks (hub needed for hub tasks)
  instructpt filter --run-dir runs/web --eval-files data/test.jsonl --eval-tasks piqa
  instructpt cook --run-dir runs/web --input filtered""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(FilterConfig)
def filter_(config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any) -> None:
    """Drop ungrounded, malformed, duplicate and contaminated pairs (counted by reason).

    Reads <run-dir>/synth (from `synthesize` or `mine`), writes <run-dir>/filtered with
    the same records, fewer pairs; cook it with `instructpt cook --input filtered`.
    """
    cfg = load_config(FilterConfig, config_path, given(flags, FilterConfig))
    run = RunLayout(run_dir)
    result = filter_pairs(cfg, run.synth, run.filtered, overwrite)
    for line in result.summary_lines():
        click.echo(line)


@click.command(
    epilog="""\b
Examples:
  instructpt cook --run-dir runs/mine
  instructpt cook --run-dir runs/mine --layouts dialog --layouts reading --seed 3
  zstdcat runs/mine/cooked/shard-00000.jsonl.zst | head -c 1500"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--input",
    "input_name",
    type=click.Choice(["synth", "filtered"]),
    default="synth",
    show_default=True,
    help="Folder of <run-dir> to cook: synthesize/mine output, or `filter` output.",
)
@executor_options()
@config_options(CookConfig)
def cook(
    config_path: Path | None,
    run_dir: Path,
    overwrite: bool,
    input_name: str,
    executor: Any,
    **flags: Any,
) -> None:
    """Render texts and their pairs into plain pre-training text with templates.

    Reads <run-dir>/synth (from `synthesize`), writes <run-dir>/cooked: one record
    per text or per linked M-shot chain, with its lineage and template ids.
    """
    cfg = load_config(CookConfig, config_path, given(flags, CookConfig))
    run = RunLayout(run_dir)
    pairs = run.filtered if input_name == "filtered" else run.synth
    result = run_cook(cfg, pairs, run.cooked, overwrite, executor=executor)
    for line in result.summary_lines():
        click.echo(line)


@click.command(
    epilog="""\b
Examples:
  instructpt mix --run-dir runs/mine --recipe vanilla --tokenizer runs/mine/tokenizer
  instructpt mix --run-dir runs/mine --recipe instruct --augment-doc-fraction 0.2 \\
      --num-tokens 2000000 --tokenizer runs/mine/tokenizer
  instructpt mix --run-dir runs/mine --recipe domain --general data/general.jsonl \\
      --tokenizer meta-llama/Meta-Llama-3-8B"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--name",
    callback=plain_name,
    default=None,
    help="Output variant name (runs/<run>/mix/<name>); default: the recipe.",
)
@config_options(MixConfig)
def mix(
    config_path: Path | None, run_dir: Path, overwrite: bool, name: str | None, **flags: Any
) -> None:
    """Mix raw, cooked and general text by a recipe, with exact token ratios.

    Recipes: vanilla (raw only), instruct (a share of documents augmented),
    mix (raw + the synthesizer's training data), domain (all augmented, 1:1 by
    tokens with general instructions). Writes <run-dir>/mix/<name>.
    """
    run = RunLayout(run_dir)
    defaults = {"corpus": str(run.corpus)}
    if run.cooked.is_dir():
        defaults["cooked"] = str(run.cooked)
    cfg = load_with_run_defaults(MixConfig, config_path, defaults, flags)
    out = run.mix(name or cfg.recipe)
    manifest = run_mix(cfg, out, overwrite)
    st = manifest.stats
    click.echo(f"mix ({cfg.recipe}): {manifest.num_records:,} records in {out}")
    for key in ("tokens", "tokens_by_source", "general_token_share", "augmented_doc_fraction"):
        if key in st:
            click.echo(f"  {key}: {st[key]}")


@click.group()
def tokenizer() -> None:
    """Tokenizers: train a byte-level BPE that transformers loads."""


@tokenizer.command(
    "train",
    epilog="""\b
Example:
  instructpt tokenizer train --run-dir runs/mine --vocab-size 8192
  instructpt tokenizer train --input data/docs.jsonl --run-dir runs/mine""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(TokenizerTrainConfig)
def tokenizer_train(config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any) -> None:
    """Train a byte-level BPE on a corpus into <run-dir>/tokenizer (input: corpus by default)."""
    run = RunLayout(run_dir)
    cfg = load_with_run_defaults(
        TokenizerTrainConfig, config_path, {"input": [str(run.corpus)]}, flags
    )
    out = train_tokenizer_stage(cfg, run.tokenizer, overwrite)
    click.echo(f"tokenizer: vocab {cfg.vocab_size:,} saved to {out}")


@click.command(
    epilog="""\b
Examples:
  instructpt tokenize --run-dir runs/mine --variant vanilla
  instructpt tokenize --run-dir runs/mine --variant instruct --seq-len 1024 --num-workers 8"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--variant",
    callback=plain_name,
    required=True,
    help="Which mix to pack: runs/<run>/mix/<variant>.",
)
@executor_options()
@config_options(TokenizeConfig)
def tokenize(
    config_path: Path | None,
    run_dir: Path,
    overwrite: bool,
    variant: str,
    executor: Any,
    **flags: Any,
) -> None:
    """Tokenize a mix with BOS/EOS per document and pack it into flat token shards.

    Writes <run-dir>/tokens/<variant>: tokens-*.npy (uint16 when the vocabulary
    allows), an index from token ranges back to record ids, stats and a manifest.
    """
    run = RunLayout(run_dir)
    defaults = {"tokenizer": str(run.tokenizer)}
    cfg = load_with_run_defaults(TokenizeConfig, config_path, defaults, flags)
    out = run.tokens(variant)
    manifest = run_tokenize(cfg, run.mix(variant), out, overwrite, executor=executor)
    st = manifest.stats
    click.echo(f"tokenize: {st.get('sequences', '?')} sequences of {cfg.seq_len} tokens in {out}")
