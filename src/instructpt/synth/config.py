"""Configs of the synthesis stage (engines and their options) and of `plan`."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from instructpt.core.config import StageConfig
from instructpt.corpus.config import InputFormat
from instructpt.synth.engines.options import (
    EngineOptions,
    HFEngineConfig,
    OpenAIEngineConfig,
    VLLMEngineConfig,
)
from instructpt.synth.engines.registry import ENGINES, check_engine_name, check_engine_options

__all__ = [
    "EngineOptions",
    "HFEngineConfig",
    "OpenAIEngineConfig",
    "PlanConfig",
    "SynthesizeConfig",
    "VLLMEngineConfig",
    "hide_empty_engine_options",
]


def hide_empty_engine_options(data: Any) -> Any:
    """A dump without `engine_options` when it is empty: configs of the built-in engines
    dump, and hash, exactly as before the field existed (resume keeps working)."""
    if isinstance(data, dict) and not data.get("engine_options"):
        data.pop("engine_options", None)
    return data


class SynthesizeConfig(StageConfig):
    """Documents -> `Synthesis` records through an instruction synthesizer engine."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"progress", "hf", "openai", "vllm", "engine_options", "replay_cache"}
    )

    engine: str = Field(
        "hf",
        description=f"Generation backend ({', '.join(ENGINES)}: synth/engines/registry.py); "
        "miner: no model, the pattern miner of `instructpt mine` (its keys under `miner:`).",
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
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options of an engine registered without a section of its own "
        "(validated by its options model; see synth/engines/registry.py).",
    )
    miner: dict[str, Any] = Field(
        default_factory=dict,
        description="engine miner: MineConfig keys (families, max_pairs, num_workers, ...).",
    )

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        return check_engine_name(name, ("miner",))

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return hide_empty_engine_options(handler(self))

    @model_validator(mode="after")
    def _budget_fits(self) -> SynthesizeConfig:
        check_engine_options(self, extra=("miner",))
        if self.model is None and self.engine != "miner":
            raise ValueError(f"model is required with engine {self.engine} (only miner needs none)")
        if self.max_new_tokens >= self.max_context:
            raise ValueError("max_new_tokens must be < max_context, or no prompt fits")
        return self


class PlanConfig(StageConfig):
    """Measure the named synthesis engine on a corpus sample; estimate the whole job."""

    synthesize: SynthesizeConfig = Field(
        default_factory=lambda: SynthesizeConfig(engine="miner"),
        description="SynthesizeConfig keys of the job to plan (engine, model, num_rounds, ...); "
        "with no engine and no model: the miner.",
    )
    input: list[str] = Field(
        default_factory=list,
        description="Raw corpus files, folders or globs to sample; empty: <run-dir>/corpus "
        "(the ingest stage's shards).",
    )
    format: InputFormat = Field("auto", description="Format of `input` (as for ingest).")
    text_field: str = Field("text", description="Field holding the text in `input` records.")
    id_field: str | None = Field("id", description="Field holding the id in `input` records.")
    num_sample_documents: int = Field(
        64,
        ge=1,
        description="Documents to measure on (the first ones of the corpus); enough to fill "
        "the engine's batches (vllm and openai: a few hundred) or the speed comes out low.",
    )
    num_documents: int | None = Field(
        None,
        ge=1,
        description="Documents to plan for; default: the whole corpus, from its manifest.",
    )
    num_replicas: int = Field(
        1, ge=1, description="Engine replicas working at once (GPUs / tensor_parallel_size)."
    )
    devices_per_replica: int | None = Field(
        None,
        ge=1,
        description="GPUs (or CPU cores) one replica holds; default: from the engine config "
        "(vllm tensor_parallel_size, 1 GPU for hf on cuda and openai, torch threads on CPU).",
    )
    scaling_efficiency: float = Field(
        1.0, gt=0, le=1, description="Share of linear speed-up reached over replicas."
    )
    price_per_device_hour: float | None = Field(
        None, ge=0, description="Price of one GPU-hour (CPU core-hour on CPU), for a cost row."
    )
    from_benchmark: str | None = Field(
        None,
        description="JSON of measured figures (a plan.json, or prompts/prompt_tokens/"
        "new_tokens/wall_s as benchmarks/vllm_engine.py reports): its speed is used instead "
        "of measuring one here.",
    )

    @model_validator(mode="before")
    @classmethod
    def _miner_without_a_model(cls, data: Any) -> Any:
        # As `synthesize`, a model with no engine means hf; with neither, plan the one
        # engine that needs nothing (rather than fail on hf's missing model).
        section = data.get("synthesize") if isinstance(data, dict) else None
        if isinstance(section, dict) and "engine" not in section and section.get("model") is None:
            return {**data, "synthesize": {**section, "engine": "miner"}}
        return data

    @model_validator(mode="after")
    def _sample_holds_whole_chains(self) -> PlanConfig:
        rounds = self.synthesize.num_rounds if self.synthesize.engine != "miner" else 1
        if self.num_sample_documents < rounds:
            raise ValueError(
                f"num_sample_documents ({self.num_sample_documents}) must be >= "
                f"synthesize.num_rounds ({rounds}), or no M-shot chain is measured"
            )
        return self
