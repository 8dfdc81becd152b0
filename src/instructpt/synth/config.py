"""Configs of the synthesis stage (engines and their options) and of `plan`."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from instructpt.core.config import StageConfig
from instructpt.corpus.config import InputFormat  # moved


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
