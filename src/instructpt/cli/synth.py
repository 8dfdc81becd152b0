"""Commands of the synthesis stage: train-synthesizer, synthesize, plan."""

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
)
from instructpt.core.config import (
    load_config,
)
from instructpt.core.layout import SYNTH_CACHE, RunLayout
from instructpt.synth.config import PlanConfig, SynthesizeConfig
from instructpt.synth.plan import PLAN_NAME
from instructpt.synth.plan import plan as run_plan
from instructpt.synth.stage import synthesize as run_synthesize
from instructpt.train.config import TrainSynthesizerConfig
from instructpt.train.synthesizer import train_synthesizer as run_train


@click.command(
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
    run = RunLayout(run_dir)
    defaults: dict[str, Any] = {}
    if run.world.is_dir():
        defaults["world_dir"] = str(run.world)
    cfg = load_with_run_defaults(TrainSynthesizerConfig, config_path, defaults, flags)
    result = run_train(cfg, run.synthesizer, overwrite)
    m = result.metrics
    state = "reused (same config and data)" if result.reused else "trained"
    click.echo(f"synthesizer {state}: {result.out_dir}")
    ev = m.get("eval", m)
    for key in ("parse_yield", "correct_fraction", "answer_f1", "pairs_per_text"):
        if key in ev:
            click.echo(f"  {key}: {ev[key]:.3f}")


@click.command(
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
@config_options(SynthesizeConfig, skip=("miner", "engine_options"))
def synthesize(
    config_path: Path | None, run_dir: Path, overwrite: bool, executor: Any, **flags: Any
) -> None:
    """Write instruction-response pairs for every document (resumable, replay-cached).

    Reads <run-dir>/corpus (from `ingest`), writes Synthesis records to
    <run-dir>/synth, and keeps every finished request in
    <run-dir>/cache/synth-replay.sqlite so a rerun never pays twice.
    """
    cfg = load_config(SynthesizeConfig, config_path, given(flags, SynthesizeConfig))
    run = RunLayout(run_dir)
    result = run_synthesize(
        cfg, run.corpus, run.synth, run.cache / SYNTH_CACHE, overwrite, executor=executor
    )
    for line in result.summary_lines():
        click.echo(line)


#: Flags the planner sets itself (the sample run is quiet, uncached, one miner worker)
#: or takes otherwise (INPUTS is the argument; miner options go under `synthesize.miner`,
#: a registered engine's under `synthesize.engine_options`, in --config).
SKIPPED_FLAGS = (
    "input",
    "synthesize_miner",
    "synthesize_engine_options",
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


@click.command("plan", epilog=EPILOG)
@click.argument("inputs", nargs=-1)
@CONFIG_OPTION
@RUN_DIR_OPTION
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
    overrides = given(flags, PlanConfig)
    if inputs:
        overrides["input"] = list(inputs)
    cfg = load_config(PlanConfig, config_path, overrides)
    run = RunLayout(run_dir)
    result = run_plan(cfg, run.corpus, out or run.plan / PLAN_NAME)
    for line in result.table():
        click.echo(line)
