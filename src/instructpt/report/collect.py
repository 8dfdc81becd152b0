"""Read what the stages of a run already wrote; never compute a number they did not.

The report is a renderer over the stats files (nanochat's lesson, DESIGN.md):
each stage's `_manifest.json` (stats), the synthesizer's metrics, pretrain's
`metrics.jsonl` and evaluate's `eval/<variant>.json` (and `eval/base.json`, a
continued `base_model` before training, kept apart from the trained variants:
it has no mix and no pretrain, and is not one of them); a compared run is read
from the `report/summary.json` its own run wrote. A stage whose proof of
completion is absent is `None` here and "not run" on the page. A file that is
present but unreadable is also `None`, and the reason goes to `problems`, so
a half-written run still gets a report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from instructpt.core.layout import BASE_EVAL, RunLayout
from instructpt.core.layout import PAPER_VARIANTS as VARIANTS
from instructpt.core.manifest import MANIFEST_NAME, read_manifest
from instructpt.core.shards import read_shard
from instructpt.errors import InputError
from instructpt.train.pretrain import read_metrics

#: Ingest folders of a run: the pre-training corpus and the texts to augment
#: (a run on a user's corpus without `corpus.augment` augments corpus/ itself).
CORPORA = ("corpus", "corpus-augment")
#: (task, metric) whose score is the headline, first one evaluated wins: the
#: world's held-out knowledge probe (instructpt.evaluate.probe), generative recall
#: (saying the answer) then multiple choice (recognising it).
PROBE_METRICS = (("world_probe_gen", "exact_match"), ("world_probe_mc", "acc"))
#: The probe's columns side by side (summary's `probe`, the headline table): generative
#: recall zero- and few-shot, then multiple choice. (key, task, metric).
PROBE_COLUMNS = (
    ("exact_match", "world_probe_gen", "exact_match"),
    ("exact_match_3shot", "world_probe_gen_3shot", "exact_match"),
    ("mc_acc", "world_probe_mc", "acc"),
)
#: The metric plotted first for a task when it has several.
METRIC_ORDER = ("acc", "exact_match", "acc_norm", "f1")
NUM_EXAMPLES = 3
NUM_MAGPIE_RECORDS = 6

SYNTHESIZER_METRICS = "synthesizer_metrics.json"
#: Where a run's report writes its summary (stage.py writes it; a compared run's is read).
REPORT_DIR = "report"
SUMMARY_NAME = "summary.json"
#: summary.json's `format`. Bump when a key of summary.json changes meaning.
SUMMARY_FORMAT = "instructpt-report/1"


@dataclass(frozen=True)
class ComparedRun:
    """Another run shown beside this one: its `report/summary.json`, as its own run wrote it."""

    #: The run directory as given (`compare` in the run config), e.g. runs/demo.
    path: str
    #: Its summary; None when missing or unreadable (`reason` says which).
    summary: dict[str, Any] | None
    reason: str | None = None

    @property
    def name(self) -> str:
        """The run's name from its summary; the directory's name before it has one."""
        run = (self.summary or {}).get("run")
        return str(run) if run is not None else Path(self.path).name

    def run_it_first(self) -> str:
        """The command that writes the missing summary."""
        config = Path(self.path) / "config.yaml"
        return f"instructpt run --config {config if config.is_file() else '<its config file>'}"


@dataclass
class RunFacts:
    """Everything the report shows; `None` means the stage has not (completely) run."""

    run_dir: Path
    name: str
    config_text: str | None = None
    world: dict[str, Any] | None = None
    ingest: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    synthesizer: dict[str, Any] | None = None
    synthesize: dict[str, Any] | None = None
    cook: dict[str, Any] | None = None
    tokenizer: bool = False
    mix: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    tokenize: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    pretrain: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    evaluate: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    chance: dict[str, float] = field(default_factory=dict)
    #: chance per task and item attribute (the world probe's multiple choice)
    chance_by_attribute: dict[str, dict[str, float]] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    #: The tune stage: each variant's sft stats and its tuned model's evaluation.
    tuned: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    tuned_evaluate: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: Further pre-training seeds (`seeds`): {seed: {variant: evaluation}}, from seeds/<seed>/.
    seed_evaluate: dict[int, dict[str, dict[str, Any] | None]] = field(default_factory=dict)
    magpie: dict[str, Any] | None = None
    magpie_records: list[dict[str, str]] = field(default_factory=list)
    #: Stages the run's config leaves out (`tune: null`, the world when it names a
    #: corpus), shown as "skipped: not configured", not "not run".
    left_out: set[str] = field(default_factory=set)
    #: The variants the run's config trains (`variants`); the paper's three by default.
    run_variants: tuple[str, ...] = VARIANTS
    #: The ingest folders the run writes.
    corpora: tuple[str, ...] = CORPORA
    #: The run's `base_model` as its config names it (None: models pre-trained from scratch).
    base_model: str | None = None
    #: That base model's evaluation before continued pre-training (eval/base.json).
    base_evaluate: dict[str, Any] | None = None
    #: Other runs whose summaries the report shows beside this run's (`compare`).
    compared: list[ComparedRun] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def variants(self) -> list[str]:
        """The run's variants (the paper's three), then any other a stage produced (sorted)."""
        found = {v for d in (self.mix, self.pretrain, self.evaluate) for v in d}
        return [*self.run_variants, *sorted(found - set(self.run_variants))]

    @property
    def pairs_source(self) -> str | None:
        """The engine that made the pairs (synthesize's stats: miner, hf, openai, ...)."""
        engine = (self.synthesize or {}).get("engine") or {}
        name = engine.get("name") if isinstance(engine, dict) else None
        return str(name) if name is not None else None

    @property
    def mined(self) -> bool:
        """Whether the pairs came from the model-free miner (no synthesizer is trained)."""
        return self.pairs_source == "miner"

    def stage_states(self) -> dict[str, str]:
        """Each stage of `instructpt run`: done, not run, or which variants are done."""

        def per_variant(found: dict[str, Any]) -> str:
            done = [v for v in self.variants if found.get(v) is not None]
            if not done:
                return "not run"
            if all(found.get(v) is not None for v in self.run_variants):
                return "done"
            return "partial: " + ", ".join(done)

        def one(value: Any) -> str:
            return "not run" if not value else "done"

        def unless_left_out(stage: str, state: str) -> str:
            return "skipped: not configured" if stage in self.left_out else state

        ingest = [c for c in self.corpora if self.ingest.get(c) is not None]
        if len(ingest) == len(self.corpora):
            ingest_state = "done"
        else:
            ingest_state = "partial: " + ", ".join(ingest) if ingest else "not run"
        return {
            "world": unless_left_out("world", one(self.world)),
            "ingest": ingest_state,
            "train-synthesizer": (
                "skipped: engine miner"
                if self.synthesizer is None and self.mined
                else unless_left_out("train-synthesizer", one(self.synthesizer))
            ),
            "synthesize": one(self.synthesize),
            "cook": one(self.cook),
            "tokenizer": (
                "skipped: the base model's tokenizer"
                if self.base_model is not None
                else one(self.tokenizer)
            ),
            "mix": per_variant(self.mix),
            "tokenize": per_variant(self.tokenize),
            "pretrain": per_variant(self.pretrain),
            "evaluate": unless_left_out("evaluate", per_variant(self.evaluate)),
            "tune": unless_left_out("tune", per_variant(self.tuned)),
            "magpie": unless_left_out("magpie", one(self.magpie)),
        }


def collect(run_dir: Path, compare: Sequence[str | Path] = ()) -> RunFacts:
    """Read a run directory (see DESIGN.md's layout), and the summaries of the runs
    in `compare`, into `RunFacts`."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError(f"run directory not found: {run_dir} (give runs/<name>)")
    facts = RunFacts(run_dir=run_dir, name=run_dir.name)
    run = RunLayout(run_dir)
    if run.config.is_file():
        facts.config_text = run.config.read_text("utf-8", errors="replace")
        config = _config(facts.config_text)
        facts.name = str(config.get("name") or "") or facts.name
        facts.left_out = _left_out(config)
        facts.run_variants = _run_variants(config)
        base_model = config.get("base_model")
        facts.base_model = str(base_model) if base_model is not None else None
        corpus = config.get("corpus")
        if isinstance(corpus, dict) and corpus.get("augment") is None:
            facts.corpora = ("corpus",)
        run = RunLayout(run_dir, facts.run_variants)

    facts.world = _stage_stats(facts, run.world)
    for corpus in facts.corpora:
        facts.ingest[corpus] = _stage_stats(facts, run.root / corpus)
    facts.synthesizer = _synthesizer(facts, run.synthesizer / SYNTHESIZER_METRICS)
    facts.synthesize = _stage_stats(facts, run.synth)
    facts.cook = _stage_stats(facts, run.cooked)
    facts.tokenizer = (run.tokenizer / "tokenizer.json").is_file()

    variants = set(run.variants)
    for folder in run.variant_parents:
        if folder.is_dir():
            variants |= {
                p.name
                for p in folder.iterdir()
                if p.is_dir()
                and not p.name.startswith("_")
                and ((p / MANIFEST_NAME).is_file() or (p / "metrics.jsonl").is_file())
            }
    if run.eval_dir.is_dir():
        variants |= {p.stem for p in run.eval_dir.glob("*.json") if p.stem != BASE_EVAL}
    variants.discard(run.synthesizer.name)
    for variant in sorted(variants):
        facts.mix[variant] = _stage_stats(facts, run.mix(variant))
        facts.tokenize[variant] = _stage_stats(facts, run.tokens(variant))
        facts.pretrain[variant] = _stage_stats(facts, run.models(variant))
        rows = _curve(facts, run.models(variant))
        if rows:
            facts.curves[variant] = rows
        facts.evaluate[variant] = _evaluation(facts, run.eval(variant))
    facts.base_evaluate = _evaluation(facts, run.base_eval)
    evaluations = [*facts.evaluate.values(), facts.base_evaluate]
    for task in sorted({t for ev in evaluations if ev for t in ev["tasks"]}):
        chance = _chance(run.eval_tasks / f"{task}.test.jsonl")
        if chance is not None:
            facts.chance[task] = chance
            by_attribute = _chance(run.eval_tasks / f"{task}.test.jsonl", by="attribute")
            facts.chance_by_attribute[task] = by_attribute or {}
    if facts.cook is not None:
        facts.examples = _examples(facts, run)
    for seed in _run_seeds(run.root):
        seed_run = run.seed_run(seed)
        facts.seed_evaluate[seed] = {v: _evaluation(facts, seed_run.eval(v)) for v in run.variants}
    for variant in run.variants:
        facts.tuned[variant] = _stage_stats(facts, run.tuned(variant))
        facts.tuned_evaluate[variant] = _evaluation(facts, run.tuned_eval(variant))
    facts.magpie = _stage_stats(facts, run.magpie)
    if facts.magpie is not None:
        facts.magpie_records = _magpie_records(facts, run.magpie)
    facts.compared = _compared(facts, compare)
    return facts


# --------------------------------------------------------------------------- readers


def _config(text: str) -> dict[str, Any]:
    """The run's resolved config.yaml as a mapping ({} when unreadable)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _run_seeds(root: Path) -> list[int]:
    """The further seeds trained into seeds/<seed>/ (the folders present, in number order)."""
    folder = root / "seeds"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())


def _left_out(config: dict[str, Any]) -> set[str]:
    """Stages the config leaves out on purpose: optional ones set to null, and with a
    user's `corpus`, the world and the demo synthesizer trained on it."""
    out = {k for k in ("evaluate", "tune", "magpie") if k in config and config[k] is None}
    if "tune" in out:
        out.add("magpie")  # magpie asks a tuned model
    if config.get("corpus") is not None:
        out |= {"world", "train-synthesizer"}
    return out


def _run_variants(config: dict[str, Any]) -> tuple[str, ...]:
    variants = config.get("variants")
    if isinstance(variants, list) and variants and all(isinstance(v, str) for v in variants):
        return tuple(variants)
    return VARIANTS


def _compared(facts: RunFacts, paths: Sequence[str | Path]) -> list[ComparedRun]:
    """Each compared run's summary.json; a missing or unreadable one is listed as a problem."""
    out = []
    for given in paths:
        path = str(given)
        if Path(path).resolve() == facts.run_dir.resolve():
            facts.problems.append(f"compare: {path} is this run itself; left out")
            continue
        compared = _read_summary(path)
        if compared.summary is None:
            facts.problems.append(
                f"compared run {path}: {compared.reason}; shown as not run "
                f"(run it first: {compared.run_it_first()})"
            )
        out.append(compared)
    return out


def _read_summary(path: str) -> ComparedRun:
    file = Path(path) / REPORT_DIR / SUMMARY_NAME
    if not file.is_file():
        return ComparedRun(path, None, f"no {REPORT_DIR}/{SUMMARY_NAME}")
    try:
        data = orjson.loads(file.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        return ComparedRun(path, None, f"{REPORT_DIR}/{SUMMARY_NAME} unreadable ({exc})")
    # A summary of another format (or not a summary) would be misread, so it is not read.
    if not isinstance(data, dict) or data.get("format") != SUMMARY_FORMAT:
        got = data.get("format") if isinstance(data, dict) else None
        return ComparedRun(
            path, None, f"{REPORT_DIR}/{SUMMARY_NAME} has format {got!r}, not {SUMMARY_FORMAT}"
        )
    return ComparedRun(path, data)


def _magpie_records(facts: RunFacts, folder: Path, n: int = NUM_MAGPIE_RECORDS) -> list[dict]:
    """The first kept Magpie records, in shard order."""
    out: list[dict[str, str]] = []
    try:
        for shard in _shards(folder):
            for rec in read_shard(shard):
                out.append({"instruction": str(rec.get("instruction", "")),
                            "output": str(rec.get("output", ""))})  # fmt: skip
                if len(out) >= n:
                    return out
    except (InputError, OSError, ValueError) as exc:
        facts.problems.append(f"magpie records unreadable: {exc}")
    return out


def _stage_stats(facts: RunFacts, folder: Path) -> dict[str, Any] | None:
    """The stats of a finished stage folder (its manifest), else None."""
    try:
        manifest = read_manifest(folder)
    except (InputError, OSError) as exc:
        facts.problems.append(str(exc))
        return None
    if manifest is None:
        return None
    return dict(manifest.stats)


def _load_json(facts: RunFacts, path: Path) -> Any:
    if not path.is_file():
        return None
    try:
        return orjson.loads(path.read_bytes())
    except (orjson.JSONDecodeError, OSError) as exc:
        facts.problems.append(f"{path}: unreadable ({exc}); that section is shown as not run")
        return None


#: Right and wrong pairs shown in the Synthesizer section, of each.
SYNTH_EXAMPLES = 3


def _synthesizer(facts: RunFacts, path: Path) -> dict[str, Any] | None:
    data = _load_json(facts, path)
    if not isinstance(data, dict):
        return None
    return {
        "eval": data.get("eval") or {},
        "eval_passages": data.get("eval_passages") or {},
        "baseline": data.get("baseline") or {},
        "base_model": (data.get("config") or {}).get("base_model"),
        "train": data.get("train") or {},
        "num_parameters": data.get("num_parameters"),
        "examples": _synth_examples(facts, path.parent / "eval_samples.jsonl"),
    }


def _synth_examples(facts: RunFacts, path: Path) -> dict[str, list[dict[str, Any]]]:
    """The first few right and wrong held-out pairs, with the start of their text's id."""
    out: dict[str, list[dict[str, Any]]] = {"right": [], "wrong": []}
    if not path.is_file():
        return out
    try:
        for line in path.read_text("utf-8").splitlines():
            sample = orjson.loads(line)
            for pair in sample.get("pairs", []):
                kind = "right" if pair.get("correct") else "wrong"
                if len(out[kind]) < SYNTH_EXAMPLES:
                    out[kind].append({"id": sample.get("id"), **pair})
    except (orjson.JSONDecodeError, OSError, AttributeError) as exc:
        facts.problems.append(f"{path}: unreadable ({exc}); no example pairs shown")
    return out


def _curve(facts: RunFacts, model_dir: Path) -> list[dict[str, Any]]:
    try:
        rows = read_metrics(model_dir)
    except (orjson.JSONDecodeError, OSError) as exc:
        facts.problems.append(f"{model_dir}/metrics.jsonl: unreadable ({exc})")
        return []
    return [r for r in rows if is_finite(r.get("loss")) and is_finite(r.get("tokens"))]


def _evaluation(facts: RunFacts, path: Path) -> dict[str, Any] | None:
    """The parts of an `eval/<variant>.json` (harness.evaluate) the report uses."""
    data = _load_json(facts, path)
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        facts.problems.append(f"{path}: no `results` (not written by `instructpt evaluate`?)")
        return None
    tasks: dict[str, Any] = {}
    for task, res in sorted(data["results"].items()):
        if not isinstance(res, dict):
            continue
        metrics = {k: _number(v) for k, v in (res.get("metrics") or {}).items()}
        stderr = {k: _number(v) for k, v in (res.get("stderr") or {}).items()}
        tasks[task] = {
            "metrics": {k: v for k, v in metrics.items() if v is not None},
            "stderr": {k: stderr.get(k) for k, v in metrics.items() if v is not None},
            "num_fewshot": res.get("num_fewshot"),
            "num_samples": res.get("num_samples"),
            "num_items": res.get("num_items"),
            # {attribute: {metric: value}, ...} (the world probe; {} for other tasks)
            "by_attribute": _by_attribute(res.get("by_attribute")),
            # per-question replies of a generative task (evaluate.answers; [] for others)
            "answers": [r for r in res.get("answers") or [] if isinstance(r, dict)],
        }
    config = data.get("config") or {}
    return {
        "tasks": tasks,
        "lm_eval_version": data.get("lm_eval_version"),
        "limit": config.get("limit") if isinstance(config, dict) else None,
        "bos_added": data.get("bos_added"),
        "split_substitutions": list(data.get("split_substitutions") or []),
        "seconds": data.get("seconds"),
    }


def _by_attribute(value: Any) -> dict[str, dict[str, float]]:
    """`by_attribute` of an evaluated task (harness.evaluate) as {attribute: {metric: value}}."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for attribute, entry in sorted(value.items()):
        metrics = entry.get("metrics") if isinstance(entry, dict) else None
        if isinstance(metrics, dict):
            out[str(attribute)] = {k: float(v) for k, v in metrics.items() if is_finite(v)}
            if is_finite(entry.get("num_samples")):
                out[str(attribute)]["num_samples"] = entry["num_samples"]
    return out


def _chance(test_file: Path, by: str | None = None) -> Any:
    """Accuracy of guessing, for a multiple-choice task written by `write_probe_tasks`.

    The mean of 1/len(choices) over the task's test items; None when the file
    is absent or an item has no `choices` list (not multiple choice). With `by`
    (an item field, e.g. `attribute`): {value of that field: chance} instead.
    """
    if not test_file.is_file():
        return None
    totals: dict[Any, list[float]] = {}
    try:
        for line in test_file.read_bytes().splitlines():
            if not line.strip():
                continue
            item = orjson.loads(line)
            choices = item.get("choices")
            if not isinstance(choices, list) or not choices:
                return None
            key = str(item.get(by)) if by else None
            total = totals.setdefault(key, [0.0, 0])
            total[0] += 1 / len(choices)
            total[1] += 1
    except (orjson.JSONDecodeError, OSError, AttributeError):
        return None
    chances = {k: t / n for k, (t, n) in sorted(totals.items(), key=lambda kv: str(kv[0]))}
    if by:
        return chances
    return chances.get(None)


def chance_adjusted(acc: float | None, chance: float | None) -> float | None:
    """(acc - chance) / (1 - chance): 0 at guessing, 1 when always right, < 0 below chance."""
    if acc is None or chance is None or chance >= 1:
        return None
    return (acc - chance) / (1 - chance)


def _number(value: Any) -> float | None:
    # lm-eval writes "N/A" (and sometimes NaN) where a standard error cannot be computed.
    return float(value) if is_finite(value) else None


def is_finite(value: Any) -> bool:
    """A real number that is not NaN or infinite (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --------------------------------------------------------------------------- examples


def _shards(folder: Path) -> list[Path]:
    manifest = read_manifest(folder)
    return [] if manifest is None else [folder / s.file for s in manifest.shards]


def _examples(facts: RunFacts, run: RunLayout, n: int = NUM_EXAMPLES) -> list[dict[str, Any]]:
    """A few cooked records with the raw texts they came from, chosen deterministically.

    The first instruct records in shard order, one per leading template (so the
    examples show different layouts), then the next ones in order to fill `n`.
    """
    try:
        picked = _pick_cooked(_shards(run.cooked), n)
        wanted = {i for rec in picked for i in rec.get("lineage") or [rec["id"]]}
        raw = _raw_texts(run, wanted)
    except (InputError, OSError, ValueError, KeyError) as exc:
        facts.problems.append(f"cooked examples unreadable: {exc}")
        return []
    examples = []
    for rec in picked:
        lineage = [str(i) for i in rec.get("lineage") or [rec["id"]]]
        examples.append(
            {
                "id": str(rec["id"]),
                "text": str(rec.get("text", "")),
                "source": str(rec.get("source", "")),
                "templates": [str(t) for t in rec.get("template") or []],
                "raw": [(i, raw.get(i)) for i in lineage],
            }
        )
    return examples


def _pick_cooked(shards: Iterable[Path], n: int) -> list[dict[str, Any]]:
    first: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    layouts: set[str] = set()
    for shard in shards:
        for rec in read_shard(shard):
            if rec.get("source") != "instruct":
                continue
            layout = str((rec.get("template") or ["?"])[0]).split(".")[0]
            if layout not in layouts:
                layouts.add(layout)
                first.append(rec)
            elif len(rest) < n:
                rest.append(rec)
            if len(first) >= n:
                return first
    return (first + rest)[:n]


def _raw_texts(run: RunLayout, wanted: set[str]) -> dict[str, str]:
    """The raw text of each lineage id: looked up in corpus-augment, synth, then corpus."""
    found: dict[str, str] = {}
    for folder in (run.augment, run.synth, run.corpus):
        for shard in _shards(folder):
            for rec in read_shard(shard):
                if rec.get("id") in wanted and rec["id"] not in found:
                    found[rec["id"]] = str(rec.get("text", ""))
            if len(found) == len(wanted):
                return found
    return found
