"""Typed stage configs: YAML in, validated before any work, resolved YAML out.

Each stage owns one config model and receives only that (never the whole run
config), so a stage can run alone from the CLI with the same semantics as
inside `instructpt run`. Unknown or ill-typed keys fail at load time with a
message naming the key and the file, and a did-you-mean where one is close.
CLI flags override file values; a flag that was not given is `None` and never
overrides, so `--no-flag` beats a file's `true` (unlike truthiness merges).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from instructpt.errors import ConfigError

C = TypeVar("C", bound=BaseModel)

#: A name that becomes one folder (run, variant, model): no '/', no leading '.', so no '..'.
PLAIN_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"


class StageConfig(BaseModel):
    """Base of every stage config: strict keys, frozen, validated defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    #: Field names that do not change a stage's output (parallelism, UI); they
    #: are left out of the config hash so changing them never blocks a resume.
    runtime_fields: ClassVar[frozenset[str]] = frozenset()

    def config_hash(self) -> str:
        """Hash of the output-relevant fields; guards resume against config drift."""
        data = self.model_dump(mode="json", exclude=set(self.runtime_fields))
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


class WorldConfig(StageConfig):
    """The seeded demo world: fictional people, places and organisations.

    Sizes are knobs; the defaults keep the full demo inside its CPU budget
    (a few hundred people, see shared/MACHINE.md for the sizing argument).
    """

    seed: int = Field(1234, description="Seed of the world; same seed, same bytes.")
    num_people: int = Field(600, ge=3, description="People (the main entities).")
    num_countries: int = Field(8, ge=2, description="Countries cities belong to.")
    num_cities: int = Field(40, ge=2, description="Cities (birth places, headquarters).")
    num_universities: int = Field(16, ge=2, description="Universities people attend.")
    num_companies: int = Field(48, ge=2, description="Companies people work for.")
    texts_per_entity: int = Field(
        1,
        ge=1,
        le=16,
        description="Independently rendered texts per entity (ids <id>, <id>~1, ...): "
        "paraphrase diversity, which makes stored facts extractable (Allen-Zhu & Li 2023).",
    )
    synth_train_fraction: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="Share of entities (by count) whose texts and QA train the synthesizer.",
    )
    probe_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of entities (by count) held out as the knowledge probe.",
    )

    @model_validator(mode="after")
    def _fractions_leave_room(self) -> WorldConfig:
        if self.synth_train_fraction + self.probe_fraction >= 1:
            raise ValueError(
                "synth_train_fraction + probe_fraction must be < 1 so that some "
                "entities remain to be augmented"
            )
        return self


InputFormat = Literal["auto", "jsonl", "parquet", "txt", "hf-disk", "hf-json", "hf-parquet"]


class IngestConfig(StageConfig):
    """Raw corpus files -> `Document` shards, split by document id."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"num_workers", "progress"})

    input: list[str] = Field(
        ...,
        min_length=1,
        description="Input files, folders or globs (jsonl, jsonl.gz, jsonl.zst, parquet, "
        "a folder of .txt files, a datasets save_to_disk folder).",
    )
    format: InputFormat = Field(
        "auto",
        description="Input format; auto picks by extension (hf-json/hf-parquet read "
        "through the datasets library).",
    )
    text_field: str = Field("text", description="Field holding the document text.")
    id_field: str | None = Field(
        "id",
        description="Field holding a stable id; when absent, the id is a hash of "
        "source file and position.",
    )
    num_shards: int = Field(
        8, ge=1, le=100_000, description="Output shards; a document's shard depends on its id only."
    )
    block_records: int = Field(
        20_000,
        ge=1,
        description="Records per resume unit: a kill loses at most this much work per worker.",
    )
    min_chars: int = Field(1, ge=1, description="Shorter texts (after strip) are quarantined.")
    max_chars: int = Field(
        5_000_000, ge=1, description="Longer texts are quarantined (not truncated)."
    )
    on_error: Literal["skip", "fail"] = Field(
        "skip",
        description="skip: quarantine bad records and go on; fail: stop at the first one.",
    )
    compression_level: int = Field(3, ge=1, le=19, description="zstd level of output shards.")
    num_workers: int = Field(1, ge=1, description="Processes reading input blocks in parallel.")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")

    @field_validator("id_field", mode="before")
    @classmethod
    def _empty_id_field_means_none(cls, value: object) -> object:
        return None if value in ("", "none", "None") else value

    @model_validator(mode="after")
    def _min_below_max(self) -> IngestConfig:
        if self.min_chars > self.max_chars:
            raise ValueError("min_chars must be <= max_chars")
        return self


# --------------------------------------------------------------------------- loading


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _format_errors(model: type[BaseModel], err: ValidationError, where: str) -> str:
    known = list(model.model_fields)
    lines = [f"invalid config in {where}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown key{_did_you_mean(str(e['loc'][-1]), known)}"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of keys, got {type(data).__name__}"
        )
    return data


def merge_values(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win key by key; nested sections merge instead of replacing each other."""
    merged = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(
    model: type[C],
    values: dict[str, Any] | None = None,
    overrides: dict[str, Any] | None = None,
    where: str = "command-line flags",
) -> C:
    """Validate `values` (from a file) updated by non-None `overrides` (from flags)."""
    merged = merge_values(values or {}, overrides or {})
    try:
        return model.model_validate(merged)
    except ValidationError as err:
        raise ConfigError(_format_errors(model, err, where)) from None


def load_config(model: type[C], path: Path | None, overrides: dict[str, Any] | None = None) -> C:
    """Load a stage config from an optional YAML file plus CLI overrides."""
    values = read_yaml_mapping(path) if path is not None else {}
    where = f"{path} (or its command-line overrides)" if path is not None else "command-line flags"
    return build_config(model, values, overrides, where)


def dump_config(config: BaseModel, path: Path) -> None:
    """Write the resolved config as YAML next to the outputs (atomically)."""
    from instructpt.corpus.atomic import atomic_write_text

    data = config.model_dump(mode="json")
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


RUN_STAGES = (
    "world",
    "ingest",
    "train-synthesizer",
    "synthesize",
    "filter",
    "cook",
    "tokenizer",
    "mix",
    "tokenize",
    "pretrain",
    "evaluate",
    "tune",
    "magpie",
    "report",
)


#: The demo's world: few people, each written up 4 times in other words (paraphrase
#: diversity lets a small model store facts in an extractable form; Allen-Zhu & Li 2023).
DEMO_WORLD: dict[str, Any] = {
    "num_people": 100, "num_countries": 3, "num_cities": 10,
    "num_universities": 5, "num_companies": 10, "texts_per_entity": 4,
}  # fmt: skip
#: The demo's pairs: the model-free miner (its `biography` pairs are all correct on the
#: world; the small demo synthesizer's are ~1% correct, see README "Train a synthesizer").
DEMO_SYNTHESIZE: dict[str, Any] = {
    "engine": "miner",
    "miner": {"families": ["biography", "fact"], "max_per_family": 12, "max_pairs": 16},
}
#: The demo's cooking: questions before the text, so they are answered from memory
#: (after the text they can be answered by copying from it, which teaches no recall).
DEMO_COOK: dict[str, Any] = {"layouts": ["pairs_first"]}
#: The demo's pre-training: three ~1M-parameter models, same steps and tokens each.
DEMO_PRETRAIN: dict[str, Any] = {
    "model": {"preset": "demo-llama"},
    "micro_batch_size": 16,
    "epochs": 22,
    "lr": 0.004,
    "checkpoint_every": 100,
}
#: The demo's evaluation: the world knowledge probe, multiple choice by log-likelihood.
DEMO_EVALUATE: dict[str, Any] = {"tasks": ["world_probe_mc"], "batch_size": 32}
#: The demo's instruction tuning, the same for every variant: full fine-tuning on the
#: augment entities' questions in the probe's own `Question:`/`Answer:` chat template,
#: so the tuned models are scored with exactly the prompt they were tuned on.
DEMO_TUNE: dict[str, Any] = {
    "template": "qa",
    "seq_len": 256,
    "micro_batch_size": 4,
    "epochs": 10,
    "lr": 3e-4,
}
#: The demo's Magpie: the tuned instruct model writes questions from its template's
#: opening alone; tiny budgets, as a world question and its answer are a few words.
DEMO_MAGPIE: dict[str, Any] = {
    "template": "auto",
    "num_queries": 200,
    "max_query_tokens": 32,
    "max_response_tokens": 16,
}


#: `instructpt run --quick`: the whole loop at toy size (a few minutes on 2 CPU cores);
#: a config file and flags still override these.
QUICK_RUN: dict[str, Any] = {
    "name": "quick",
    "world": {**DEMO_WORLD, "num_people": 40, "num_cities": 6, "num_companies": 6,
              "num_universities": 3, "texts_per_entity": 2},
    "pretrain": {**DEMO_PRETRAIN, "epochs": 8},
    "evaluate": dict(DEMO_EVALUATE),
    "magpie": {**DEMO_MAGPIE, "num_queries": 50},
}  # fmt: skip


class RunConfig(BaseModel):
    """The main job: every stage's config under its own key, plus where to write.

    Stage sections hold that stage's keys; paths between stages are filled in
    by `run` from the run-directory layout, so they are left out here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("demo", pattern=PLAIN_NAME, description="Run name: runs/<name>/.")
    runs_root: str = Field("runs", description="Folder holding run directories.")
    until: Literal[RUN_STAGES] = Field(  # type: ignore[valid-type]
        "report", description="Last stage to run (the rest are listed as not run)."
    )
    world: WorldConfig = Field(default_factory=lambda: WorldConfig(**DEMO_WORLD))
    ingest: dict[str, Any] = Field(default_factory=dict, description="IngestConfig keys.")
    synthesizer: dict[str, Any] = Field(
        default_factory=dict, description="TrainSynthesizerConfig keys (the demo synthesizer)."
    )
    synthesize: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_SYNTHESIZE),
        description="SynthesizeConfig keys (engine miner by default; with another engine, "
        "model defaults to the trained demo synthesizer).",
    )
    filter: dict[str, Any] | None = Field(
        None,
        description="FilterConfig keys; set (even to {}) to filter pairs between synthesize "
        "and cook (runs/<name>/filtered/); None: no filter stage.",
    )
    cook: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_COOK), description="CookConfig keys."
    )
    tokenizer: dict[str, Any] = Field(
        default_factory=lambda: {"vocab_size": 2048}, description="TokenizerTrainConfig keys."
    )
    mix: dict[str, Any] = Field(
        default_factory=dict, description="MixConfig keys shared by the three demo variants."
    )
    tokenize: dict[str, Any] = Field(
        default_factory=lambda: {"seq_len": 256}, description="TokenizeConfig keys."
    )
    pretrain: dict[str, Any] = Field(
        default_factory=lambda: copy.deepcopy(DEMO_PRETRAIN),
        description="PretrainConfig keys shared by the vanilla, mix and instruct models.",
    )
    evaluate: dict[str, Any] = Field(
        default_factory=lambda: dict(DEMO_EVALUATE),
        description="EvaluateConfig keys (default: the world knowledge probe).",
    )
    tune: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_TUNE),
        description="SftConfig keys shared by the tuned vanilla, mix and instruct models "
        "(tuned/<variant>/, evaluated into eval/tuned/); None: no tune stage.",
    )
    magpie: dict[str, Any] | None = Field(
        default_factory=lambda: copy.deepcopy(DEMO_MAGPIE),
        description="MagpieConfig keys, run on the tuned instruct model (magpie/); "
        "None: no magpie stage.",
    )

    @model_validator(mode="after")
    def _sections_are_valid(self) -> RunConfig:
        # Validate each section now, with placeholder paths, so a typo fails before any work.
        from instructpt.cook.config import CookConfig
        from instructpt.evaluate.harness import EvaluateConfig
        from instructpt.mix.stage import MixConfig
        from instructpt.pack.tokenize import TokenizeConfig
        from instructpt.pack.tokenizer import TokenizerTrainConfig
        from instructpt.train.pretrain import PretrainConfig
        from instructpt.train.synthesizer import TrainSynthesizerConfig

        checks: list[tuple[str, type[BaseModel], dict[str, Any]]] = [
            ("ingest", IngestConfig, {"input": ["<world>"]}),
            ("synthesizer", TrainSynthesizerConfig, {"world_dir": "<world>"}),
            ("synthesize", SynthesizeConfig, {"model": "<synthesizer>"}),
            ("cook", CookConfig, {}),
            ("tokenizer", TokenizerTrainConfig, {"input": ["<corpus>"]}),
            ("mix", MixConfig, {"recipe": "vanilla", "tokenizer": "<t>", "corpus": "<c>"}),
            ("tokenize", TokenizeConfig, {"tokenizer": "<t>"}),
            ("pretrain", PretrainConfig, {"tokens": "<t>", "tokenizer": "<t>"}),
            ("evaluate", EvaluateConfig, {"model": "<m>", "tasks": ["world_probe_mc"]}),
        ]
        if self.filter is not None:
            from instructpt.filter.config import FilterConfig

            checks.append(("filter", FilterConfig, {}))
        if self.tune is not None:
            from instructpt.train.sft import SftConfig

            checks.append(("tune", SftConfig, {"model": "<m>", "data": ["<tune>"]}))
        if self.magpie is not None:
            from instructpt.magpie.config import MagpieConfig

            checks.append(("magpie", MagpieConfig, {"model": "<m>"}))
        for section, model, placeholders in checks:
            try:
                model.model_validate({**placeholders, **getattr(self, section)})
            except ValidationError as err:
                raise ValueError(_format_errors(model, err, f"the {section} section")) from None
        lora = (self.tune or {}).get("lora") or {}
        if lora.get("r") and not lora.get("merge"):
            raise ValueError(
                "tune.lora needs merge: true in a run: the tuned models are evaluated "
                "(and asked by magpie) as whole models"
            )
        return self

    def ingest_config(self, default_input: list[str]) -> IngestConfig:
        return IngestConfig.model_validate({"input": default_input, **self.ingest})


# --------------------------------------------------------------------------- synthesis


class EngineOptions(BaseModel):
    """Base of per-engine options: strict keys, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HFEngineConfig(EngineOptions):
    """In-process transformers `generate`, batched with left padding."""

    batch_size: int = Field(16, ge=1, description="Prompts per generate call.")
    device: str = Field(
        "auto", description="auto (cuda when available, else cpu), cpu, cuda, cuda:N."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on a GPU that supports it, float32 on CPU."
    )


class OpenAIEngineConfig(EngineOptions):
    """Any OpenAI-compatible `/v1/completions` server (raw completion, not chat)."""

    base_urls: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8000/v1"],
        min_length=1,
        description="Endpoints ending in /v1; requests are spread over all of them.",
    )
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="Environment variable holding the API key (never logged)."
    )
    served_model_name: str | None = Field(
        None, description="Model name sent in requests; defaults to `model`."
    )
    concurrency: int = Field(32, ge=1, description="Requests in flight, over all endpoints.")
    request_timeout_s: float = Field(300.0, gt=0, description="Whole-request timeout.")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout.")
    max_retries: int = Field(
        8, ge=0, description="Retries on 429/5xx/timeouts/dropped connections."
    )
    backoff_base_s: float = Field(0.5, gt=0, description="First backoff; doubles, with jitter.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest single backoff.")
    send_token_ids: bool = Field(
        True,
        description="Send prompts as token ids (vLLM, SGLang) so the server adds no second BOS; "
        "false sends text, for servers that only take strings.",
    )


class VLLMEngineConfig(EngineOptions):
    """In-process `vllm.LLM` with token-id prompts."""

    enable_prefix_caching: bool = Field(True, description="Reuse KV of shared M-shot prefixes.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="vLLM memory share.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model replica.")
    dtype: str = Field("auto", description="Weights dtype (auto, bfloat16, float16, float32).")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs (faster start).")
    kv_cache_gib: float | None = Field(
        None,
        gt=0,
        description="KV cache size in GiB instead of a share of memory (set it on CPUs, "
        "where the default share of RAM often cannot be reserved).",
    )


class SynthesizeConfig(StageConfig):
    """Documents -> `Synthesis` records through an instruction synthesizer engine."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"progress", "hf", "openai", "vllm", "replay_cache"}
    )

    engine: Literal["hf", "openai", "vllm", "miner"] = Field(
        "hf",
        description="Generation backend; miner: no model, the pattern miner of `instructpt "
        "mine` (its keys under `miner:`).",
    )
    model: str | None = Field(
        None, description="Synthesizer: a local directory or a hub name (not for miner)."
    )
    revision: str | None = Field(None, description="Hub revision (commit, tag, branch).")
    tokenizer: str | None = Field(
        None, description="Tokenizer to count and encode with; default: model."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub (off: safe).")
    max_new_tokens: int = Field(
        400, ge=1, description="Generation budget per text (released: 400)."
    )
    max_context: int = Field(
        4096, ge=64, description="Prompt + generation limit in tokens (released: 4096)."
    )
    temperature: float = Field(0.0, ge=0, description="0 = greedy, as the released synthesizer.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling when temperature > 0.")
    seed: int = Field(0, description="Seed for slot assignment and sampling.")
    num_rounds: int = Field(
        2, ge=1, le=16, description="M: texts per slot chain; round r sees the r earlier examples."
    )
    keep_raw: bool = Field(False, description="Keep raw completions in records, for audit.")
    replay_cache: bool = Field(True, description="Never send a finished request twice (sqlite).")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")
    hf: HFEngineConfig = Field(default_factory=HFEngineConfig)  # type: ignore[arg-type]
    openai: OpenAIEngineConfig = Field(default_factory=OpenAIEngineConfig)  # type: ignore[arg-type]
    vllm: VLLMEngineConfig = Field(default_factory=VLLMEngineConfig)  # type: ignore[arg-type]
    miner: dict[str, Any] = Field(
        default_factory=dict,
        description="engine miner: MineConfig keys (families, max_pairs, num_workers, ...).",
    )

    @model_validator(mode="after")
    def _budget_fits(self) -> SynthesizeConfig:
        if self.model is None and self.engine != "miner":
            raise ValueError(f"model is required with engine {self.engine} (only miner needs none)")
        if self.max_new_tokens >= self.max_context:
            raise ValueError("max_new_tokens must be < max_context, or no prompt fits")
        return self
