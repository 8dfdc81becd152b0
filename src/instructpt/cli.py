"""The `instructpt` command: one sub-command per stage, plus `run` for the whole job.

Each stage command takes `--config FILE` (YAML) and one flag per config
field; flags override the file. Errors a user can fix are printed as one
clear message (no traceback) with exit status 2.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import click

from instructpt import __version__
from instructpt.cli_options import config_options, executor_options, given
from instructpt.config import (
    PLAIN_NAME,
    IngestConfig,
    RunConfig,
    SynthesizeConfig,
    WorldConfig,
    build_config,
    load_config,
    read_yaml_mapping,
)
from instructpt.cook.config import CookConfig
from instructpt.errors import InstructptError
from instructpt.evaluate.harness import EvaluateConfig
from instructpt.filter import FilterConfig
from instructpt.mine import MineConfig
from instructpt.mix.stage import MixConfig
from instructpt.pack.tokenize import TokenizeConfig
from instructpt.pack.tokenizer import TokenizerTrainConfig
from instructpt.train.pretrain import ModelSpec, PretrainConfig
from instructpt.train.synthesizer import TrainSynthesizerConfig

#: `continue` keeps the model's own architecture: no --model-* flags there.
PRETRAIN_MODEL_FLAGS = tuple(f"model_{name}" for name in ModelSpec.model_fields)

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML file with this stage's keys; flags override it.",
)
RUN_DIR_OPTION = click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/default"),
    show_default=True,
    help="Run directory; the stage writes into its own folder inside it.",
)
OVERWRITE_OPTION = click.option(
    "--overwrite",
    is_flag=True,
    help="Clear the stage folder first (needed when the config or input changed).",
)


def _plain_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A --name or --variant becomes one folder under the run directory: no path in it."""
    if value is not None and not re.fullmatch(PLAIN_NAME, value):
        raise click.BadParameter(
            f"{value!r} is not a plain folder name: use letters, digits, '.', '_' and '-', "
            "not starting with '.' (no '/' or '..': the output must stay in the run directory)"
        )
    return value


def _load_with_run_defaults(
    model: Any, config_path: Path | None, defaults: dict[str, Any], flags: dict[str, Any]
) -> Any:
    """Config from file + flags, where keys given nowhere default to the run-dir layout."""
    values = read_yaml_mapping(config_path) if config_path is not None else {}
    where = (
        f"{config_path} (or its command-line overrides)" if config_path else "command-line flags"
    )
    return build_config(model, {**defaults, **values}, given(flags, model), where)


class _Group(click.Group):
    """Turns user-facing errors into one line and exit 2, Ctrl-C into a resume hint."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except InstructptError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("\ninterrupted: rerun the same command to resume where it stopped", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="instructpt")
def main() -> None:
    """Instruction Pre-Training end to end: synthesize, cook, mix, pre-train, evaluate, report.

    \b
    Quick start (the demo world, no download needed):
      instructpt run
    """
    if not sys.stderr.isatty():
        # transformers' and the hub's own bars (loading/saving weights) flood logs; ours
        # obey --progress. Read by huggingface_hub when transformers is first imported.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        # lm-eval's and datasets' tqdm bars too (tqdm reads TQDM_* defaults from the env)
        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")


@main.command(
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
    from instructpt.run import generate_world

    cfg = load_config(WorldConfig, config_path, given(flags, WorldConfig))
    manifest, reused = generate_world(cfg, run_dir / "world", overwrite)
    state = "already complete; nothing to do" if reused else "written"
    click.echo(f"world: {state} in {run_dir / 'world'}")
    for key, value in manifest.stats.items():
        click.echo(f"  {key}: {value}")


@main.command(
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
    from instructpt.corpus.ingest import ingest as run_ingest

    overrides = given(flags, IngestConfig)
    if inputs:
        overrides["input"] = list(inputs)
    cfg = load_config(IngestConfig, config_path, overrides)
    result = run_ingest(cfg, run_dir / "corpus", overwrite)
    for line in result.summary_lines():
        click.echo(line)


@main.command(
    "train-synthesizer",
    epilog="""\b
Examples:
  # the tiny demo synthesizer from the world's synth_train entities (CPU, minutes)
  instructpt train-synthesizer --run-dir runs/mine
  # your own context-QA rows (context + list of question/answer pairs + source name)
  instructpt train-synthesizer --run-dir runs/mine --rows-paths data/qa_rows.jsonl \\
      --squad-paths data/squad.json --base-model path/to/base-lm --lr 1e-5""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@config_options(TrainSynthesizerConfig)
def train_synthesizer(
    config_path: Path | None, run_dir: Path, overwrite: bool, **flags: Any
) -> None:
    """Fine-tune a causal LM into an instruction synthesizer (loss on pairs only).

    Writes <run-dir>/models/synthesizer (save_pretrained + tokenizer + metrics),
    loadable unchanged by the hf, openai and vllm engines. With no data flags it
    trains on <run-dir>/world (run `instructpt world` first).
    """
    from instructpt.train.synthesizer import train_synthesizer as run_train

    defaults: dict[str, Any] = {}
    if (run_dir / "world").is_dir():
        defaults["world_dir"] = str(run_dir / "world")
    cfg = _load_with_run_defaults(TrainSynthesizerConfig, config_path, defaults, flags)
    result = run_train(cfg, run_dir / "models" / "synthesizer", overwrite)
    m = result.metrics
    state = "reused (same config and data)" if result.reused else "trained"
    click.echo(f"synthesizer {state}: {result.out_dir}")
    ev = m.get("eval", m)
    for key in ("parse_yield", "correct_fraction", "answer_f1", "pairs_per_text"):
        if key in ev:
            click.echo(f"  {key}: {ev[key]:.3f}")


@main.command(
    epilog="""\b
Examples:
  # CPU, a local model directory (transformers generate)
  instructpt synthesize --run-dir runs/mine --engine hf --model models/synth
  # the released synthesizer in-process on a GPU (pip install 'instructpt[vllm]')
  instructpt synthesize --run-dir runs/mine --engine vllm \\
      --model instruction-pretrain/instruction-synthesizer
  # any OpenAI-compatible server (vLLM, SGLang, llama.cpp, TGI, transformers serve)
  vllm serve instruction-pretrain/instruction-synthesizer --port 8000 &
  instructpt synthesize --run-dir runs/mine --engine openai \\
      --model instruction-pretrain/instruction-synthesizer \\
      --openai-base-urls http://127.0.0.1:8000/v1 --openai-concurrency 64
  # no model: the pattern miner (options: `instructpt mine`, or `miner:` in --config)
  instructpt synthesize --run-dir runs/mine --engine miner"""
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@executor_options(replicas=True)
@config_options(SynthesizeConfig, skip=("miner",))
def synthesize(
    config_path: Path | None, run_dir: Path, overwrite: bool, executor: Any, **flags: Any
) -> None:
    """Write instruction-response pairs for every document (resumable, replay-cached).

    Reads <run-dir>/corpus (from `ingest`), writes Synthesis records to
    <run-dir>/synth, and keeps every finished request in
    <run-dir>/cache/synth-replay.sqlite so a rerun never pays twice.
    """
    from instructpt.synth.stage import synthesize as run_synthesize

    cfg = load_config(SynthesizeConfig, config_path, given(flags, SynthesizeConfig))
    result = run_synthesize(
        cfg,
        run_dir / "corpus",
        run_dir / "synth",
        run_dir / "cache" / "synth-replay.sqlite",
        overwrite,
        executor=executor,
    )
    for line in result.summary_lines():
        click.echo(line)


@main.command(
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
    exactly like `synthesize`, on all cores (--num-workers). Task families (AdaptLLM):
    title, summarize, word_to_text, nli, cause_effect, paraphrase, completion, fact.
    """
    from instructpt.mine import mine as run_mine

    cfg = load_config(MineConfig, config_path, given(flags, MineConfig))
    result = run_mine(cfg, run_dir / "corpus", run_dir / "synth", overwrite, executor=executor)
    for line in result.summary_lines():
        click.echo(line)


@main.command(
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
    from instructpt.filter import filter_pairs

    cfg = load_config(FilterConfig, config_path, given(flags, FilterConfig))
    result = filter_pairs(cfg, run_dir / "synth", run_dir / "filtered", overwrite)
    for line in result.summary_lines():
        click.echo(line)


@main.command(
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
    from instructpt.cook.stage import cook as run_cook

    cfg = load_config(CookConfig, config_path, given(flags, CookConfig))
    result = run_cook(cfg, run_dir / input_name, run_dir / "cooked", overwrite, executor=executor)
    for line in result.summary_lines():
        click.echo(line)


@main.command(
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
    callback=_plain_name,
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
    from instructpt.mix.stage import mix as run_mix

    defaults = {"corpus": str(run_dir / "corpus")}
    if (run_dir / "cooked").is_dir():
        defaults["cooked"] = str(run_dir / "cooked")
    cfg = _load_with_run_defaults(MixConfig, config_path, defaults, flags)
    out = run_dir / "mix" / (name or cfg.recipe)
    manifest = run_mix(cfg, out, overwrite)
    st = manifest.stats
    click.echo(f"mix ({cfg.recipe}): {manifest.num_records:,} records in {out}")
    for key in ("tokens", "tokens_by_source", "general_token_share", "augmented_doc_fraction"):
        if key in st:
            click.echo(f"  {key}: {st[key]}")


@main.group()
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
@config_options(TokenizerTrainConfig)
def tokenizer_train(config_path: Path | None, run_dir: Path, **flags: Any) -> None:
    """Train a byte-level BPE on a corpus into <run-dir>/tokenizer (input: corpus by default)."""
    from instructpt.pack.tokenizer import train_tokenizer_stage

    cfg = _load_with_run_defaults(
        TokenizerTrainConfig, config_path, {"input": [str(run_dir / "corpus")]}, flags
    )
    out = train_tokenizer_stage(cfg, run_dir / "tokenizer")
    click.echo(f"tokenizer: vocab {cfg.vocab_size:,} saved to {out}")


@main.command(
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
    callback=_plain_name,
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
    from instructpt.pack.tokenize import tokenize as run_tokenize

    defaults = {"tokenizer": str(run_dir / "tokenizer")}
    cfg = _load_with_run_defaults(TokenizeConfig, config_path, defaults, flags)
    out = run_dir / "tokens" / variant
    manifest = run_tokenize(cfg, run_dir / "mix" / variant, out, overwrite, executor=executor)
    st = manifest.stats
    click.echo(f"tokenize: {st.get('sequences', '?')} sequences of {cfg.seq_len} tokens in {out}")


def _echo_main_rank(lines: list[str]) -> None:
    """Under torchrun every rank runs the command; one report is enough."""
    if os.environ.get("RANK", "0") == "0":
        for line in lines:
            click.echo(line)


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


@main.command(epilog=PRETRAIN_EPILOG)
@CONFIG_OPTION
@RUN_DIR_OPTION
@OVERWRITE_OPTION
@click.option(
    "--variant",
    callback=_plain_name,
    default="vanilla",
    show_default=True,
    help="runs/<run>/tokens/<variant>.",
)
@click.option(
    "--name",
    callback=_plain_name,
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
    from instructpt.train.pretrain import pretrain as run_pretrain

    defaults = {
        "tokens": str(run_dir / "tokens" / variant),
        "tokenizer": str(run_dir / "tokenizer"),
    }
    cfg = _load_with_run_defaults(PretrainConfig, config_path, defaults, flags)
    result = run_pretrain(cfg, run_dir / "models" / (name or variant), overwrite)
    _echo_main_rank(result.summary_lines())


@main.command(
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
    callback=_plain_name,
    default="domain",
    show_default=True,
    help="runs/<run>/tokens/<variant>.",
)
@click.option("--name", callback=_plain_name, default=None, help="Output runs/<run>/models/<name>.")
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
    from instructpt.train.pretrain import pretrain as run_pretrain

    defaults = {"tokens": str(run_dir / "tokens" / variant)}
    cfg = _load_with_run_defaults(PretrainConfig, config_path, defaults, flags)
    if cfg.init_from is None:
        raise click.UsageError("continue needs --init-from (a model directory or hub name)")
    result = run_pretrain(cfg, run_dir / "models" / (name or f"{variant}-continued"), overwrite)
    _echo_main_rank(result.summary_lines())


@main.command(
    epilog="""\b
Examples:
  # the world knowledge probe on the demo's instruct model -> runs/demo/eval/instruct.json
  instructpt evaluate --run-dir runs/demo --variant instruct
  # the paper's protocol (needs the hub): 0-shot piqa, hellaswag, winogrande; 5-shot others
  instructpt evaluate --model runs/web/models/instruct/model --tasks paper --device cuda
  # any lm-eval task names or local task YAML folders
  instructpt evaluate --model my/model --tasks arc_easy --tasks mytask --include-path tasks/""",
)
@CONFIG_OPTION
@RUN_DIR_OPTION
@click.option(
    "--variant",
    callback=_plain_name,
    default="vanilla",
    show_default=True,
    help="runs/<run>/models/<variant>.",
)
@config_options(EvaluateConfig)
def evaluate(config_path: Path | None, run_dir: Path, variant: str, **flags: Any) -> None:
    """Evaluate a model with lm-evaluation-harness (BOS added, as in the paper).

    Default: <run-dir>/models/<variant>/model on the world knowledge probe (tasks
    written from <run-dir>/world). Results with stderr and the lm-eval version go
    to <run-dir>/eval/<variant>.json.
    """
    from instructpt.evaluate import evaluate as run_evaluate
    from instructpt.evaluate import result_lines, write_probe_tasks

    defaults: dict[str, Any] = {"model": str(run_dir / "models" / variant / "model")}
    if (run_dir / "world").is_dir():
        tasks_dir = run_dir / "eval" / "tasks"
        write_probe_tasks(run_dir / "world", tasks_dir)
        defaults.update(tasks=["world_probe"], include_path=[str(tasks_dir)])
    cfg = _load_with_run_defaults(EvaluateConfig, config_path, defaults, flags)
    out = run_dir / "eval" / f"{variant}.json"
    for line in result_lines(run_evaluate(cfg, out)):
        click.echo(line)
    click.echo(f"written: {out}")


@main.command(
    epilog="""\b
Example:
  instructpt report --run-dir runs/demo     # -> runs/demo/report/report.html"""
)
@RUN_DIR_OPTION
def report(run_dir: Path) -> None:
    """Write report.html + summary.json for a run (offline page; stages not run say so)."""
    from instructpt.report import write_report

    click.echo(f"report: {write_report(run_dir).resolve()}")


@main.command(
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
    callback=_plain_name,
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
    from instructpt.config import QUICK_RUN, merge_values
    from instructpt.run import run_pipeline

    values = read_yaml_mapping(config_path) if config_path is not None else {}
    if quick:
        values = merge_values(QUICK_RUN, values)
    where = f"{config_path} (or its command-line overrides)" if config_path else "--quick"
    cfg = build_config(RunConfig, values, {"name": name, "runs_root": runs_root}, where)
    report = run_pipeline(cfg, overwrite, echo=click.echo, executor=executor)
    click.echo(f"done: {report.run_dir}")


from instructpt.cli_plan import plan_command  # noqa: E402  (needs the options above)

main.add_command(plan_command(CONFIG_OPTION, RUN_DIR_OPTION))

from instructpt.cli_sft import sft_command  # noqa: E402  (needs the options above)

main.add_command(sft_command(CONFIG_OPTION, RUN_DIR_OPTION, OVERWRITE_OPTION))

from instructpt.cli_magpie import magpie_command  # noqa: E402  (needs the options above)

main.add_command(magpie_command(CONFIG_OPTION, RUN_DIR_OPTION, OVERWRITE_OPTION))


if __name__ == "__main__":
    main()
