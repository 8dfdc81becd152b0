"""The magpie stage's config: one typed model, flags map 1:1 to its fields."""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from instructpt.core.config import StageConfig
from instructpt.magpie.templates import TEMPLATE_CHOICES
from instructpt.synth.config import SynthesizeConfig, hide_empty_engine_options
from instructpt.synth.engines.options import (
    HFEngineConfig,
    OpenAIEngineConfig,
    VLLMEngineConfig,
)
from instructpt.synth.engines.registry import ENGINES, check_engine_name, check_engine_options

#: Openings of refusals and disclaimers, matched case-insensitively near the start of a
#: response (Magpie's released filters drop such answers; the list is ours, editable).
DEFAULT_REFUSALS = (
    "i'm sorry",
    "i am sorry",
    "i apologize",
    "i cannot",
    "i can't",
    "i can not",
    "i'm unable",
    "i am unable",
    "i'm not able to",
    "i am not able to",
    "i won't",
    "i will not",
    "as an ai",
    "as a language model",
    "i'm just an ai",
)


class MagpieConfig(StageConfig):
    """An aligned chat model -> instruction records, with no seed data (Magpie, Xu et al. 2024).

    The model is prompted with its template up to the start of a user turn and
    writes a query (sampled); the query, cut at the end of the turn, is then
    answered greedily. Both go through the synthesis engines.
    """

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"progress", "openai", "vllm", "replay_cache"}
    )

    engine: str = Field(
        "hf",
        description=f"Generation backend ({', '.join(ENGINES)}: synth/engines/registry.py).",
    )
    model: str = Field(..., description="Aligned chat model: a local directory or a hub name.")
    revision: str | None = Field(None, description="Hub revision (commit, tag, branch).")
    tokenizer: str | None = Field(
        None, description="Tokenizer for prompts and chat templates; default: model."
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub (off: safe).")
    template: str = Field(
        "auto",
        description="Where a user turn opens: a preset (llama3, qwen2, phi3, gemma2, mistral), "
        "auto (read off the tokenizer's chat template) or custom (give prefix and stop).",
    )
    prefix: str | None = Field(
        None, description="template custom: the exact text that opens a user turn, BOS included."
    )
    stop: list[str] = Field(
        default_factory=list,
        description="Extra strings that end a user turn (template custom: all of them).",
    )
    check_template: bool = Field(
        True,
        description="Refuse a preset whose prefix differs from the tokenizer's own chat template.",
    )
    use_chat_template: bool = Field(
        True,
        description="Ask for answers through the tokenizer's chat template when it has one "
        "(else the preset's own format).",
    )
    num_queries: int = Field(1000, ge=1, description="Queries to sample (before filtering).")
    max_query_tokens: int = Field(
        256, ge=1, description="Token budget of a query; one that does not end is dropped."
    )
    max_response_tokens: int = Field(1024, ge=1, description="Token budget of a response.")
    query_temperature: float = Field(
        1.0, gt=0, description="Sampling temperature of queries (Magpie: 1)."
    )
    query_top_p: float = Field(1.0, gt=0, le=1, description="Nucleus of queries (Magpie: 1).")
    max_context: int = Field(
        4096, ge=64, description="Prompt + generation limit in tokens (vllm engine)."
    )
    seed: int = Field(0, description="Seed of query sampling; same seed, same queries.")

    # ---- filters (every drop is counted by reason)
    min_instruction_chars: int = Field(10, ge=1, description="Shorter queries: too short.")
    max_instruction_chars: int = Field(4000, ge=1, description="Longer queries: too long.")
    min_output_chars: int = Field(1, ge=1, description="Shorter responses: too short.")
    max_output_chars: int = Field(16000, ge=1, description="Longer responses: too long.")
    repetition_ngram: int = Field(3, ge=1, le=16, description="Word n-gram size for repetition.")
    max_repetition: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Largest share of a text's word n-grams that repeat an earlier one.",
    )
    refusal_phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSALS),
        description="Responses whose first refusal_window characters hold one of these "
        "(case-insensitive) are refusals.",
    )
    refusal_window: int = Field(200, ge=1, description="Characters searched for a refusal.")
    drop_truncated: bool = Field(
        True, description="Drop responses that hit max_response_tokens without ending."
    )
    dedup: bool = Field(True, description="Drop near-duplicate queries (first one wins).")
    dedup_threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard of word-3-gram sets at which queries are near dups."
    )
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash permutations.")
    dedup_seed: int = Field(1, ge=0, description="Seed of the MinHash permutations.")

    # ---- output
    write_dropped: bool = Field(
        True,
        description="Write each drop with its reason to <out>-dropped.jsonl.zst "
        "(beside the output folder).",
    )
    records_per_shard: int = Field(50_000, ge=1, description="Output records per shard file.")
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

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, name: str) -> str:
        return check_engine_name(name)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> Any:
        return hide_empty_engine_options(handler(self))

    @model_validator(mode="after")
    def _consistent(self) -> MagpieConfig:
        check_engine_options(self)

        if self.template not in TEMPLATE_CHOICES:
            close = difflib.get_close_matches(self.template, TEMPLATE_CHOICES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"template '{self.template}' is unknown{hint}; choose one of "
                f"{', '.join(TEMPLATE_CHOICES)}"
            )
        if self.template == "custom" and not self.prefix:
            raise ValueError("template custom needs prefix (the text that opens a user turn)")
        if self.template != "custom" and self.prefix:
            raise ValueError("prefix is only for template custom; drop it or set template custom")
        if self.min_instruction_chars > self.max_instruction_chars:
            raise ValueError("min_instruction_chars must not exceed max_instruction_chars")
        if self.min_output_chars > self.max_output_chars:
            raise ValueError("min_output_chars must not exceed max_output_chars")
        if max(self.max_query_tokens, self.max_response_tokens) >= self.max_context:
            raise ValueError("max_query_tokens and max_response_tokens must be < max_context")
        return self

    def engine_config(self) -> SynthesizeConfig:
        """The same engine settings as `synthesize` takes, so its engine factory builds ours."""
        return SynthesizeConfig(
            engine=self.engine,
            model=self.model,
            revision=self.revision,
            tokenizer=self.tokenizer,
            trust_remote_code=self.trust_remote_code,
            max_new_tokens=max(self.max_query_tokens, self.max_response_tokens),
            max_context=self.max_context,
            seed=self.seed,
            hf=self.hf,
            openai=self.openai,
            vllm=self.vllm,
            engine_options=self.engine_options,
            progress=self.progress,
        )
