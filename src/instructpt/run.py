"""The main job, top to bottom: every stage of the pipeline in order.

Read this file to see the whole loop. Each stage is called with its own
config and its own folder under the run directory; each resumes on rerun
(a finished stage is skipped). Stages after `until`, and stages not built
yet, are listed as such in the summary, never pretended.

The demo world's three groups of entities decide what each stage sees:
- the pre-training corpus (`corpus/`) holds the `augment` and `probe` texts;
- only the `augment` texts are synthesized and cooked (`corpus-augment/`),
  so no question about a `probe` entity is ever shown to a model;
- the `synth_train` texts and their true QA train the demo synthesizer, and,
  cooked into plain text, are the Mix PT control's instruction data;
- `tune` instruction-tunes every pre-trained variant the same way, on the open
  QA of the `augment` entities as chat records, and evaluates the tuned models
  on the same probe: the paper's second claim (instruction pre-trained models
  gain more from later tuning) measured on entities the tuning never names;
- `magpie` asks the tuned instruct model for instructions of its own, with only
  the start of its chat template as the prompt (Magpie, Xu et al. 2024).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.config import dump_config
from instructpt.core.manifest import Manifest, ShardInfo
from instructpt.core.resume import open_stage_dir
from instructpt.core.shards import file_sha256
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.run_config import RUN_STAGES, RunConfig
from instructpt.synth.config import SynthesizeConfig
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig
from instructpt.world.write import DOCUMENTS_FILE, ENTITIES_FILE, QA_FILE

if TYPE_CHECKING:
    from instructpt.core.executor import Executor

#: Stages of DESIGN.md not built yet; `run` says so instead of faking them.
PENDING_STAGES: tuple[str, ...] = ()
MIX_VARIANTS = ("vanilla", "mix", "instruct")
#: The tuned model Magpie asks for instructions: the one instruction pre-training made.
MAGPIE_VARIANT = "instruct"


def generate_world(
    cfg: WorldConfig, out_dir: Path, overwrite: bool = False
) -> tuple[Manifest, bool]:
    """The `world` stage: build the seeded world and write it with a manifest."""
    opened = open_stage_dir(out_dir, "world", cfg, input_fingerprint="none", overwrite=overwrite)
    if opened.done is not None:
        return opened.done, True
    summary = write_world(build_world(cfg), out_dir)
    shards = []
    for name in (DOCUMENTS_FILE, QA_FILE, ENTITIES_FILE):
        path = out_dir / name
        with open(path, "rb") as fh:
            records = sum(1 for _ in fh)
        shards.append(ShardInfo(name, records, file_sha256(path), path.stat().st_size))
    manifest = Manifest(
        stage="world",
        config_hash=cfg.config_hash(),
        input_fingerprint="none",
        format="jsonl",
        shards=shards,
        stats=summary,
    )
    opened.finish(manifest)
    return manifest, False


def split_world_inputs(world_dir: Path, inputs: Path, seed: int) -> dict[str, Path]:
    """Corpus files per role (see the module docstring), written once, atomically."""
    from instructpt.cook.config import CookConfig
    from instructpt.cook.render import cook_record

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
    run_dir = Path(cfg.runs_root) / cfg.name
    # where Ray workers find the stage folders; the same folders as run_dir
    shared = run_dir.absolute() if executor is not None else run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / "config.yaml")
    report = RunReport(run_dir)
    last = RUN_STAGES.index(cfg.until)
    ran: list[str] = []

    def say(line: str) -> None:
        report.lines.append(line)
        echo(line)

    def wanted(stage: str) -> bool:
        if RUN_STAGES.index(stage) > last:
            return False
        ran.append(stage)
        return True

    t0 = time.perf_counter()
    world, reused = generate_world(cfg.world, run_dir / "world", overwrite)
    ran.append("world")
    people = world.stats.get("entities.person", 0)
    say(
        f"world: {world.shards[0].records:,} entity texts ({people:,} people), "
        f"{world.shards[1].records:,} ground-truth QA pairs in {run_dir / 'world'}"
        + (" (reused)" if reused else f" [{time.perf_counter() - t0:.1f} s]")
    )
    inputs = split_world_inputs(run_dir / "world", run_dir / "inputs", cfg.world.seed)

    if wanted("ingest"):
        for name, folder in (("corpus", "corpus"), ("augment", "corpus-augment")):
            icfg: IngestConfig = cfg.ingest_config([str(inputs[name])])
            for line in ingest(icfg, run_dir / folder, overwrite).summary_lines():
                say(line)

    mining = cfg.synthesize.get("engine") == "miner"
    skipped = ["train-synthesizer"] if mining else []  # left out by the config, not pending
    if cfg.filter is None:
        skipped.append("filter")
    if mining and RUN_STAGES.index("train-synthesizer") <= last:
        say("train-synthesizer: skipped (synthesize engine miner needs no model)")
    elif wanted("train-synthesizer"):
        from instructpt.train.config import TrainSynthesizerConfig
        from instructpt.train.synthesizer import train_synthesizer

        tcfg = TrainSynthesizerConfig.model_validate(
            {"world_dir": str(run_dir / "world"), **cfg.synthesizer}
        )
        trained = train_synthesizer(tcfg, run_dir / "models" / "synthesizer", overwrite)
        ev = trained.metrics.get("eval", {})
        say(
            f"train-synthesizer: {'reused' if trained.reused else 'trained'} "
            f"{trained.out_dir}; held-out parse yield {ev.get('parse_yield', 0):.1%}, "
            f"correct pairs {ev.get('correct_fraction', 0):.1%}"
        )

    if wanted("synthesize"):
        from instructpt.synth.stage import synthesize

        model = {} if mining else {"model": str(shared / "models" / "synthesizer")}
        scfg = SynthesizeConfig.model_validate({**model, **cfg.synthesize})
        result = synthesize(
            scfg,
            shared / "corpus-augment",
            shared / "synth",
            shared / "cache" / "synth-replay.sqlite",
            overwrite,
            executor=executor,
        )
        for line in result.summary_lines():
            say(line)

    pairs_dir = run_dir / "synth"
    if cfg.filter is not None and wanted("filter"):
        from instructpt.filter import FilterConfig, filter_pairs

        pairs_dir = run_dir / "filtered"
        fcfg = FilterConfig.model_validate(cfg.filter)
        for line in filter_pairs(fcfg, run_dir / "synth", pairs_dir, overwrite).summary_lines():
            say(line)

    if wanted("cook"):
        from instructpt.cook.config import CookConfig
        from instructpt.cook.stage import cook

        for line in cook(
            CookConfig.model_validate(cfg.cook),
            shared / pairs_dir.relative_to(run_dir),
            shared / "cooked",
            overwrite,
            executor=executor,
        ).summary_lines():
            say(line)

    if wanted("tokenizer"):
        from instructpt.pack.config import TokenizerTrainConfig
        from instructpt.pack.tokenizer import train_tokenizer_stage

        tok_dir = run_dir / "tokenizer"
        if not (tok_dir / "tokenizer.json").is_file() or overwrite:
            kcfg = TokenizerTrainConfig.model_validate(
                {"input": [str(run_dir / "corpus"), str(inputs["mixpt"])], **cfg.tokenizer}
            )
            train_tokenizer_stage(kcfg, tok_dir)
        say(f"tokenizer: {tok_dir}")

    if wanted("mix"):
        _mix_variants(cfg, run_dir, inputs, overwrite, say)

    if wanted("tokenize"):
        from instructpt.pack.config import TokenizeConfig
        from instructpt.pack.tokenize import tokenize

        for variant in MIX_VARIANTS:
            kcfg = TokenizeConfig.model_validate(
                {"tokenizer": str(shared / "tokenizer"), **cfg.tokenize}
            )
            manifest = tokenize(
                kcfg,
                shared / "mix" / variant,
                shared / "tokens" / variant,
                overwrite,
                executor=executor,
            )
            say(
                f"tokenize ({variant}): {manifest.stats.get('sequences', 0):,} sequences of "
                f"{kcfg.seq_len} tokens in {run_dir / 'tokens' / variant}"
            )

    if wanted("pretrain"):
        from instructpt.train.config import PretrainConfig
        from instructpt.train.pretrain import pretrain

        shared = equal_token_budget(cfg.pretrain, run_dir)
        for variant in MIX_VARIANTS:
            pcfg = PretrainConfig.model_validate(
                {
                    "tokens": str(run_dir / "tokens" / variant),
                    "tokenizer": str(run_dir / "tokenizer"),
                    **shared,
                }
            )
            trained = pretrain(pcfg, run_dir / "models" / variant, overwrite)
            for line in trained.summary_lines():
                say(line.replace("pretrain:", f"pretrain ({variant}):", 1))

    if wanted("evaluate"):
        _evaluate_variants(cfg, run_dir, overwrite, say)

    if cfg.tune is None:
        skipped.append("tune")
    elif wanted("tune"):
        _tune_variants(cfg, run_dir, inputs, overwrite, say)

    if cfg.magpie is None or cfg.tune is None:
        skipped.append("magpie")
    elif wanted("magpie"):
        from instructpt.magpie import MagpieConfig, magpie

        model_dir = run_dir / "tuned" / MAGPIE_VARIANT / "model"
        mcfg = MagpieConfig.model_validate({"model": str(model_dir), **cfg.magpie})
        result = magpie(mcfg, run_dir / "magpie", overwrite, run_dir / "cache" / "magpie.sqlite")
        for line in result.summary_lines():
            say(line)

    do_report = wanted("report")  # last: it reads summary.json and every stage's outputs
    not_run = [s for s in RUN_STAGES if s not in ran and s not in skipped]
    not_run += list(PENDING_STAGES)
    if not_run:
        say("not run (no output is claimed for them): " + ", ".join(not_run))
    summary = {"run_dir": str(run_dir), "stages_run": ran, "not_run": not_run, "skipped": skipped}
    atomic_write_bytes(run_dir / "summary.json", orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    if do_report:
        from instructpt.report import write_report

        say(f"report: {write_report(run_dir).resolve()}")
    return report


def _mix_variants(
    cfg: RunConfig,
    run_dir: Path,
    inputs: dict[str, Path],
    overwrite: bool,
    say: Callable[[str], None],
) -> None:
    """vanilla, mix and instruct, each holding every corpus document once.

    Equal tokens (the paper's comparison) are enforced by pre-training, which
    trains every variant on the same number of tokens; cutting the mixes to one
    budget instead would drop documents, and a probe entity whose only text was
    dropped from one variant could not be answered by that model.
    """
    from instructpt.mix.config import MixConfig
    from instructpt.mix.stage import mix

    base = {"tokenizer": str(run_dir / "tokenizer"), "corpus": str(run_dir / "corpus"), **cfg.mix}
    augment_docs = inputs["augment"].read_bytes().count(b"\n")
    corpus_docs = inputs["corpus"].read_bytes().count(b"\n")
    variants = {
        "vanilla": {"recipe": "vanilla"},
        "mix": {"recipe": "mix", "general": [str(inputs["mixpt"])], "keep_all_primary": True},
        "instruct": {
            "recipe": "instruct",
            "cooked": str(run_dir / "cooked"),
            "augment_doc_fraction": augment_docs / corpus_docs,
        },
    }
    for name, extra in variants.items():
        mcfg = MixConfig.model_validate({**base, **extra})
        manifest = mix(mcfg, run_dir / "mix" / name, overwrite)
        st = manifest.stats
        say(
            f"mix ({name}): {st['tokens']:,} tokens, "
            f"{manifest.num_records:,} records in {run_dir / 'mix' / name}"
        )


def equal_token_budget(section: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Pretrain keys giving every variant the same tokens: `epochs` of the largest mix.

    Smaller mixes are repeated a little more; explicit num_steps/num_tokens win.
    """
    if section.get("num_steps") or section.get("num_tokens"):
        return dict(section)
    largest = max(
        orjson.loads((run_dir / "tokens" / v / "index.json").read_bytes())["num_tokens"]
        for v in MIX_VARIANTS
    )
    out = {k: v for k, v in section.items() if k != "epochs"}
    out["num_tokens"] = round(float(section.get("epochs", 1.0)) * largest)
    return out


def _evaluate_variants(
    cfg: RunConfig, run_dir: Path, overwrite: bool, say: Callable[[str], None]
) -> None:
    """Each variant's model on the world probe (tasks written from the world, offline)."""
    from instructpt.evaluate import EvaluateConfig, evaluate, result_lines, write_probe_tasks

    tasks_dir = run_dir / "eval" / "tasks"
    write_probe_tasks(run_dir / "world", tasks_dir, seed=cfg.world.seed)
    for variant in MIX_VARIANTS:
        model_dir = run_dir / "models" / variant / "model"
        ecfg = EvaluateConfig.model_validate(
            {"model": str(model_dir), "include_path": [str(tasks_dir)], **cfg.evaluate}
        )
        out = run_dir / "eval" / f"{variant}.json"
        result = _reusable_eval(out, ecfg, model_dir) if not overwrite else None
        if result is None:
            result = evaluate(ecfg, out)
        for line in result_lines(result):
            say(f"evaluate ({variant}): {line}")


def _tune_variants(
    cfg: RunConfig,
    run_dir: Path,
    inputs: dict[str, Path],
    overwrite: bool,
    say: Callable[[str], None],
) -> None:
    """Each pre-trained variant tuned with one sft config, then evaluated like before tuning.

    Same data, steps and seed for every variant, so a difference in what tuning adds
    comes from pre-training alone. Tuned models go to tuned/<variant>/, their probe
    results to eval/tuned/<variant>.json.
    """
    from instructpt.evaluate import EvaluateConfig, evaluate, result_lines
    from instructpt.train.config import SftConfig
    from instructpt.train.sft import sft

    assert cfg.tune is not None
    tasks_dir = run_dir / "eval" / "tasks"
    for variant in MIX_VARIANTS:
        tcfg = SftConfig.model_validate(
            {
                "model": str(run_dir / "models" / variant / "model"),
                "data": [str(inputs["tune"])],
                **cfg.tune,
            }
        )
        tuned = sft(tcfg, run_dir / "tuned" / variant, overwrite)
        for line in tuned.summary_lines():
            say(line.replace("sft:", f"tune ({variant}):", 1))
        model_dir = run_dir / "tuned" / variant / "model"
        ecfg = EvaluateConfig.model_validate(
            {"model": str(model_dir), "include_path": [str(tasks_dir)], **cfg.evaluate}
        )
        out = run_dir / "eval" / "tuned" / f"{variant}.json"
        result = _reusable_eval(out, ecfg, model_dir) if not overwrite else None
        if result is None:
            result = evaluate(ecfg, out)
        for line in result_lines(result):
            say(f"evaluate (tuned {variant}): {line}")


def _reusable_eval(out: Path, cfg: Any, model_dir: Path) -> dict[str, Any] | None:
    """A finished evaluation of this config, newer than its model; else None (rerun it)."""
    if not out.is_file() or out.stat().st_mtime < (model_dir / "model.safetensors").stat().st_mtime:
        return None
    done = orjson.loads(out.read_bytes())
    return done if done.get("config") == cfg.model_dump(mode="json") else None
