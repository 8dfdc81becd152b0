"""The main job, top to bottom: every stage of the pipeline in order.

Read this file to see the whole loop. Each stage is called with its own
config and its own folder of the run directory (`RunLayout`); each resumes on
rerun (a finished stage is skipped). Stages after `until` are listed as not
run; stages the config leaves out (`tune: null`, no world with a `corpus`) as
skipped, never pretended.

The run's inputs come from one of two sources (`RunInputs`):
- the demo world (no `corpus` key), whose three groups of entities decide what
  each stage sees:
  - the pre-training corpus (`corpus/`) holds the `augment` and `probe` texts;
  - only the `augment` texts are synthesized and cooked (`corpus-augment/`),
    so no question about a `probe` entity is ever shown to a model;
  - the `synth_train` texts and their true QA train the demo synthesizer, and,
    cooked into plain text, are the Mix PT control's instruction data;
  - `tune` instruction-tunes every pre-trained variant the same way, on the open
    QA of the `augment` entities as chat records, and evaluates the tuned models
    on the same probe: the paper's second claim (instruction pre-trained models
    gain more from later tuning) measured on entities the tuning never names;
- or the user's own files (`corpus: {input: [...], augment, general, tune}`):
  no world, so no demo synthesizer and no world probe; the miner (or a given
  synthesizer) augments them, and `mix`/`tune` run when their data is given.

With `base_model` (and a corpus), the variants continue that model instead of
pre-training a preset from scratch: its tokenizer packs every mix (no tokenizer
stage), its weights start every pretrain, and evaluate scores it once untouched
(eval/base.json), the "before" row beside each variant's "after".

`magpie` then asks the tuned instruct model for instructions of its own, with
only the start of its chat template as the prompt (Magpie, Xu et al. 2024).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from instructpt.assets.fetch import resolve_model
from instructpt.cook.config import CookConfig
from instructpt.cook.render import cook_record
from instructpt.cook.stage import cook
from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.config import dump_config
from instructpt.core.executor import Executor
from instructpt.core.layout import RUN_MAGPIE_CACHE, SYNTH_CACHE, RunLayout
from instructpt.core.manifest import read_manifest
from instructpt.corpus.ingest import ingest
from instructpt.errors import InputError
from instructpt.evaluate import EvaluateConfig, evaluate, result_lines, write_probe_tasks
from instructpt.filter import FilterConfig, filter_pairs
from instructpt.magpie import MagpieConfig, magpie
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.pack.tokenize import tokenize
from instructpt.pack.tokenizer import train_tokenizer_stage
from instructpt.report import write_report
from instructpt.run_config import RUN_STAGES, CorpusSource, RunConfig
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.stage import synthesize
from instructpt.train.config import PretrainConfig, SftConfig, TrainSynthesizerConfig
from instructpt.train.pretrain import pretrain
from instructpt.train.sft import sft
from instructpt.train.stage import TOKENIZER_FILES
from instructpt.train.synthesizer import train_synthesizer
from instructpt.world import generate_world
from instructpt.world.write import DOCUMENTS_FILE, QA_FILE

#: The tuned model Magpie asks for instructions: the one instruction pre-training made.
MAGPIE_VARIANT = "instruct"


@dataclass(frozen=True)
class RunInputs:
    """The files each role of the run reads: from the world's split, or from `corpus`.

    `augment` None means the whole corpus is augmented (synthesize reads corpus/).
    """

    corpus: list[str]
    augment: list[str] | None
    general: list[str]  # general instruction data: the mix variant's, and the tokenizer's
    tune: list[str]  # chat records tuning every variant


def split_world_inputs(world_dir: Path, inputs: Path, seed: int) -> dict[str, Path]:
    """Corpus files per role (see the module docstring), written once, atomically."""
    docs = [orjson.loads(line) for line in (world_dir / DOCUMENTS_FILE).read_bytes().splitlines()]
    qa_by_entity: dict[str, list[dict[str, Any]]] = {}
    for line in (world_dir / QA_FILE).read_bytes().splitlines():
        qa = orjson.loads(line)
        qa_by_entity.setdefault(qa["entity_id"], []).append(qa)
    corpus = [d for d in docs if d["meta"]["group"] in ("augment", "probe")]
    augment = [d for d in docs if d["meta"]["group"] == "augment"]
    # Mix PT data: each synth_train text with a few of its true pairs, cooked to plain text.
    cook_cfg = CookConfig(seed=seed)
    mixpt = []
    for d in docs:
        if d["meta"]["group"] != "synth_train":
            continue
        pairs = [
            {"question": q["question"], "answer": q["answer"]}
            for q in qa_by_entity.get(d["id"], [])
            if q["kind"] in ("open", "mc")
        ][:6]
        cooked = cook_record({"id": d["id"], "text": d["text"], "pairs": pairs}, cook_cfg)
        mixpt.append({"id": f"mixpt-{d['id']}", "text": cooked["text"]})
    # Tuning data: each augment entity's open questions as one-turn chats. Probe entities
    # never appear, so the tuned models' probe scores still measure recall, not tuning.
    tune = [
        {
            "id": f"tune-{q['id']}",
            "messages": [
                {"role": "user", "content": q["question"]},
                {"role": "assistant", "content": q["answer"]},
            ],
        }
        for entity, pairs in qa_by_entity.items()
        for q in pairs
        if q["group"] == "augment" and q["kind"] == "open"
    ]
    out = {"corpus": corpus, "augment": augment, "mixpt": mixpt, "tune": tune}
    paths = {}
    for name, records in out.items():
        path = inputs / f"{name}.jsonl"
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        if not path.is_file() or path.read_bytes() != data:  # unchanged files keep their
            atomic_write_bytes(path, data)  # mtime, so the ingest resume check passes
        paths[name] = path
    return paths


def world_inputs(paths: dict[str, Path]) -> RunInputs:
    """The world's split as run inputs: Mix PT data is the general instruction data."""
    return RunInputs(
        corpus=[str(paths["corpus"])],
        augment=[str(paths["augment"])],
        general=[str(paths["mixpt"])],
        tune=[str(paths["tune"])],
    )


def corpus_inputs(corpus: CorpusSource) -> RunInputs:
    """The user's files as run inputs, as given (relative to where `run` starts)."""
    return RunInputs(
        corpus=list(corpus.input),
        augment=None if corpus.augment is None else list(corpus.augment),
        general=list(corpus.general),
        tune=list(corpus.tune),
    )


@dataclass(frozen=True)
class BaseModelSource:
    """The run's `base_model` as the stages load it."""

    model: str  # init_from and evaluate's model: a local folder, or a hub name as given
    tokenizer: Path  # the folder whose tokenizer.json packs every variant


def resolve_base_model(name: str) -> BaseModelSource:
    """A model folder as is, a model asset fetched on first use, a hub name passed through.

    `mix` and `tokenize` read tokenizer.json from a folder, so a hub model's tokenizer
    files are downloaded on their own here; transformers loads its weights in pretrain.
    """
    model = resolve_model(name, fetch=True)
    local = Path(model).expanduser()
    if local.is_dir():
        if not (local / "tokenizer.json").is_file():
            raise InputError(
                f"base_model {name}: {local} holds no tokenizer.json; save the model's "
                "tokenizer into it (AutoTokenizer.from_pretrained(...).save_pretrained(dir))"
            )
        return BaseModelSource(model, local)
    if "/" not in model or model.startswith((".", "/", "~")):
        raise InputError(
            f"base_model {name}: no such model folder, model asset (instructpt assets list) "
            "or hub name (owner/name)"
        )
    from huggingface_hub import snapshot_download

    return BaseModelSource(
        model, Path(snapshot_download(model, allow_patterns=list(TOKENIZER_FILES)))
    )


@dataclass
class RunReport:
    run_dir: Path
    lines: list[str] = field(default_factory=list)


def run_pipeline(
    cfg: RunConfig,
    overwrite: bool = False,
    echo: Callable[[str], None] = print,
    executor: Executor | None = None,
) -> RunReport:
    """Run the pipeline into runs/<name>/, up to and including `cfg.until`.

    `executor` (a connected `RayExecutor`, `--executor ray`) runs synthesize (or
    mine), cook and tokenize on a Ray cluster; the other stages run here. Their
    folders are given to Ray as absolute paths (workers need not share this
    process's directory), while the configs keep the run's own paths, so a run
    started on one executor finishes on the other.
    """
    run = cfg.layout()
    # where Ray workers find the stage folders; the same folders as `run`
    shared = run.absolute() if executor is not None else run
    run.root.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run.config)
    report = RunReport(run.root)
    last = RUN_STAGES.index(cfg.until)
    ran: list[str] = []
    skipped: list[str] = []  # left out by the config, not pending

    def say(line: str) -> None:
        report.lines.append(line)
        echo(line)

    def wanted(stage: str) -> bool:
        if RUN_STAGES.index(stage) > last:
            return False
        ran.append(stage)
        return True

    def skip(stage: str, why: str | None = None) -> None:
        skipped.append(stage)
        if why is not None and RUN_STAGES.index(stage) <= last:
            say(f"{stage}: skipped ({why})")

    # ---- world (or the user's corpus): the files every later stage reads
    if cfg.corpus is None:
        t0 = time.perf_counter()
        world, reused = generate_world(cfg.world, run.world, overwrite)
        ran.append("world")
        people = world.stats.get("entities.person", 0)
        say(
            f"world: {world.shards[0].records:,} entity texts ({people:,} people), "
            f"{world.shards[1].records:,} ground-truth QA pairs in {run.world}"
            + (" (reused)" if reused else f" [{time.perf_counter() - t0:.1f} s]")
        )
        inputs = world_inputs(split_world_inputs(run.world, run.inputs, cfg.world.seed))
    else:
        skip("world", "the run reads corpus.input")
        inputs = corpus_inputs(cfg.corpus)

    # ---- ingest: raw files -> Document shards
    if wanted("ingest"):
        sources = [(inputs.corpus, run.corpus)]
        if inputs.augment is not None:
            sources.append((inputs.augment, run.augment))
        for files, folder in sources:
            for line in ingest(cfg.ingest_config(files), folder, overwrite).summary_lines():
                say(line)

    # ---- train-synthesizer: the demo synthesizer, on the world's synth_train texts
    if cfg.mining:
        skip("train-synthesizer", "synthesize engine miner needs no model")
    elif cfg.corpus is not None:
        skip("train-synthesizer", f"synthesize.model is {cfg.synthesize['model']}")
    elif wanted("train-synthesizer"):
        tcfg = TrainSynthesizerConfig.model_validate(
            {"world_dir": str(run.world), **cfg.synthesizer}
        )
        trained = train_synthesizer(tcfg, run.synthesizer, overwrite)
        ev = trained.metrics.get("eval", {})
        say(
            f"train-synthesizer: {'reused' if trained.reused else 'trained'} "
            f"{trained.out_dir}; held-out parse yield {ev.get('parse_yield', 0):.1%}, "
            f"correct pairs {ev.get('correct_fraction', 0):.1%}"
        )

    # ---- synthesize (or mine): instruction-response pairs for every text to augment
    if cfg.filter is None:
        skip("filter")
    if wanted("synthesize"):
        model = {} if cfg.mining else {"model": str(shared.synthesizer)}
        scfg = SynthesizeConfig.model_validate({**model, **cfg.synthesize})
        result = synthesize(
            scfg,
            shared.augment if inputs.augment is not None else shared.corpus,
            shared.synth,
            shared.cache / SYNTH_CACHE,
            overwrite,
            executor=executor,
        )
        for line in result.summary_lines():
            say(line)

    # ---- filter (optional): drop ungrounded, malformed, duplicate, contaminated pairs
    pairs, shared_pairs = run.synth, shared.synth
    if cfg.filter is not None and wanted("filter"):
        pairs, shared_pairs = run.filtered, shared.filtered
        fcfg = FilterConfig.model_validate(cfg.filter)
        for line in filter_pairs(fcfg, run.synth, pairs, overwrite).summary_lines():
            say(line)

    # ---- cook: texts + pairs -> plain pre-training text
    if wanted("cook"):
        for line in cook(
            CookConfig.model_validate(cfg.cook),
            shared_pairs,
            shared.cooked,
            overwrite,
            executor=executor,
        ).summary_lines():
            say(line)

    # ---- tokenizer: a BPE on the corpus and the general instruction data, or the base model's
    base = None  # the base_model, resolved (an asset fetched) only once a stage needs it
    if cfg.base_model is not None and last >= RUN_STAGES.index("mix"):
        base = resolve_base_model(cfg.base_model)
    tokenizer = run.tokenizer if base is None else base.tokenizer
    if cfg.base_model is not None:
        skip("tokenizer", "the base model's tokenizer")
    elif wanted("tokenizer"):
        kcfg = TokenizerTrainConfig.model_validate(
            {"input": [str(run.corpus), *inputs.general], **cfg.tokenizer}
        )
        train_tokenizer_stage(kcfg, run.tokenizer, overwrite)  # a changed config is refused
        say(f"tokenizer: {run.tokenizer}")

    # ---- mix, tokenize, pretrain: one model per variant, equal tokens each
    if wanted("mix"):
        _mix_variants(cfg, run, inputs, tokenizer, overwrite, say)

    if wanted("tokenize"):
        shared_tokenizer = tokenizer.absolute() if executor is not None else tokenizer
        for variant in run.variants:
            kcfg = TokenizeConfig.model_validate(
                {"tokenizer": str(shared_tokenizer), **cfg.tokenize}
            )
            manifest = tokenize(
                kcfg,
                shared.mix(variant),
                shared.tokens(variant),
                overwrite,
                executor=executor,
            )
            say(
                f"tokenize ({variant}): {manifest.stats.get('sequences', 0):,} sequences of "
                f"{kcfg.seq_len} tokens in {run.tokens(variant)}"
            )

    if wanted("pretrain"):
        budget = equal_token_budget(cfg.pretrain, run)
        for seed in (None, *cfg.seeds):  # None: pretrain.seed, into models/
            where = run if seed is None else run.seed_run(seed)
            for variant in run.variants:
                pcfg = PretrainConfig.model_validate(
                    {
                        "tokens": str(run.tokens(variant)),
                        "tokenizer": str(tokenizer),
                        **({} if base is None else {"init_from": base.model}),
                        **budget,
                        **({} if seed is None else {"seed": seed}),
                    }
                )
                trained = pretrain(pcfg, where.models(variant), overwrite)
                label = variant if seed is None else f"{variant}, seed {seed}"
                for line in trained.summary_lines():
                    say(line.replace("pretrain:", f"pretrain ({label}):", 1))

    # ---- evaluate, tune (+ evaluate again), magpie
    if cfg.evaluate is None:
        skip("evaluate", "not configured")
    elif wanted("evaluate"):
        if cfg.corpus is None:  # the world knowledge probe, written offline from the world
            write_probe_tasks(run.world, run.eval_tasks, seed=cfg.world.seed)
        if base is not None:  # the "before" row: the base model as given, evaluated once
            result = evaluate(_evaluate_config(cfg, run, base.model), run.base_eval, overwrite)
            for line in result_lines(result):
                say(f"evaluate (base model): {line}")
        _evaluate_variants(cfg, run, overwrite, say)

    if cfg.tune is None:
        skip("tune")
    elif wanted("tune"):
        _tune_variants(cfg, run, inputs, overwrite, say)

    if cfg.magpie is None or cfg.tune is None:
        skip("magpie")
    elif wanted("magpie"):
        mcfg = MagpieConfig.model_validate(
            {"model": str(run.tuned_model(MAGPIE_VARIANT)), **cfg.magpie}
        )
        result = magpie(mcfg, run.magpie, overwrite, run.cache / RUN_MAGPIE_CACHE)
        for line in result.summary_lines():
            say(line)

    # ---- report: last, as it reads summary.json and every stage's outputs
    do_report = wanted("report")
    not_run = [s for s in RUN_STAGES if s not in ran and s not in skipped]
    if not_run:
        say("not run (no output is claimed for them): " + ", ".join(not_run))
    summary = {"run_dir": str(run.root), "stages_run": ran, "not_run": not_run, "skipped": skipped}
    atomic_write_bytes(run.summary, orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if do_report:
        say(f"report: {write_report(run.root, compare=cfg.compare).resolve()}")
    return report


def _mix_variants(
    cfg: RunConfig,
    run: RunLayout,
    inputs: RunInputs,
    tokenizer: Path,
    overwrite: bool,
    say: Callable[[str], None],
) -> None:
    """vanilla, mix and instruct (those the run trains), each holding every corpus document once.

    Equal tokens (the paper's comparison) are enforced by pre-training, which
    trains every variant on the same number of tokens; cutting the mixes to one
    budget instead would drop documents, and a probe entity whose only text was
    dropped from one variant could not be answered by that model.
    """
    base = {"tokenizer": str(tokenizer), "corpus": str(run.corpus), **cfg.mix}
    recipes = {
        "vanilla": {"recipe": "vanilla"},
        "mix": {"recipe": "mix", "general": inputs.general, "keep_all_primary": True},
        "instruct": {
            "recipe": "instruct",
            "cooked": str(run.cooked),
            "augment_doc_fraction": _augment_doc_fraction(run, inputs),
        },
    }
    for name in run.variants:
        mcfg = MixConfig.model_validate({**base, **recipes[name]})
        manifest = mix(mcfg, run.mix(name), overwrite)
        st = manifest.stats
        say(
            f"mix ({name}): {st['tokens']:,} tokens, "
            f"{manifest.num_records:,} records in {run.mix(name)}"
        )


def _augment_doc_fraction(run: RunLayout, inputs: RunInputs) -> float:
    """Share of corpus documents the instruct mix shows cooked: those synthesize augmented."""
    if inputs.augment is None:
        return 1.0
    augmented, everything = (read_manifest(d) for d in (run.augment, run.corpus))
    assert augmented is not None and everything is not None  # ingest ran before mix
    return augmented.num_records / everything.num_records


def equal_token_budget(section: dict[str, Any], run: RunLayout) -> dict[str, Any]:
    """Pretrain keys giving every variant the same tokens: `epochs` of the largest mix.

    Smaller mixes are repeated a little more; explicit num_steps/num_tokens win.
    """
    if section.get("num_steps") or section.get("num_tokens"):
        return dict(section)
    largest = max(
        orjson.loads((run.tokens(v) / "index.json").read_bytes())["num_tokens"]
        for v in run.variants
    )
    out = {k: v for k, v in section.items() if k != "epochs"}
    out["num_tokens"] = round(float(section.get("epochs", 1.0)) * largest)
    return out


def _evaluate_variants(
    cfg: RunConfig, run: RunLayout, overwrite: bool, say: Callable[[str], None]
) -> None:
    """Each variant's model on the evaluate tasks: by default the world probe (written offline).

    Models of further `seeds` are evaluated the same way into seeds/<seed>/eval/.
    """
    for seed in (None, *cfg.seeds):
        where = run if seed is None else run.seed_run(seed)
        for variant in run.variants:
            ecfg = _evaluate_config(cfg, run, where.model(variant))
            result = evaluate(ecfg, where.eval(variant), overwrite)
            label = variant if seed is None else f"{variant}, seed {seed}"
            for line in result_lines(result):
                say(f"evaluate ({label}): {line}")


def _evaluate_config(cfg: RunConfig, run: RunLayout, model_dir: Path | str) -> EvaluateConfig:
    """The run's evaluate section for one model (a folder, or the base model's hub name);
    with the world, its probe tasks beside it."""
    assert cfg.evaluate is not None
    if cfg.corpus is not None:
        return EvaluateConfig.model_validate({"model": str(model_dir), **cfg.evaluate})
    return EvaluateConfig.model_validate(
        {"model": str(model_dir), "include_path": [str(run.eval_tasks)], **cfg.evaluate}
    )


def _tune_variants(
    cfg: RunConfig,
    run: RunLayout,
    inputs: RunInputs,
    overwrite: bool,
    say: Callable[[str], None],
) -> None:
    """Each pre-trained variant tuned with one sft config, then evaluated like before tuning.

    Same data, steps and seed for every variant, so a difference in what tuning adds
    comes from pre-training alone. Tuned models go to tuned/<variant>/, their
    results (when the run evaluates) to eval/tuned/<variant>.json.
    """
    assert cfg.tune is not None
    for variant in run.variants:
        tcfg = SftConfig.model_validate(
            {"model": str(run.model(variant)), "data": inputs.tune, **cfg.tune}
        )
        tuned = sft(tcfg, run.tuned(variant), overwrite)
        for line in tuned.summary_lines():
            say(line.replace("sft:", f"tune ({variant}):", 1))
        if cfg.evaluate is None:
            continue
        model_dir = run.tuned_model(variant)
        ecfg = _evaluate_config(cfg, run, model_dir)
        result = evaluate(ecfg, run.tuned_eval(variant), overwrite)
        for line in result_lines(result):
            say(f"evaluate (tuned {variant}): {line}")
