"""The mix stage's config: recipe, inputs and their exact token ratios."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from instructpt.core.config import StageConfig
from instructpt.mix.recipes import (
    DEFAULT_GENERAL_SHARE,
)


class MixConfig(StageConfig):
    """Mix raw, cooked and general text by one of the paper's recipes, exactly in tokens."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"corpus", "cooked", "general", "tokenizer", "num_workers", "progress"}
    )

    recipe: Literal["vanilla", "instruct", "mix", "domain"] = Field(
        ..., description="vanilla | instruct | mix (Mix PT control) | domain (continual)."
    )
    tokenizer: str = Field(
        ..., description="Tokenizer directory (tokenizer.json) whose tokens the ratios count."
    )
    corpus: str = Field(..., description="Corpus stage directory (raw Document shards).")
    cooked: str | None = Field(
        None, description="Cook stage directory; needed by instruct and domain."
    )
    general: list[str] = Field(
        default_factory=list,
        description="General instruction data (stage dirs or jsonl/parquet files); needed by "
        "mix (the synthesizer's training data) and domain.",
    )
    augment_doc_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        description="instruct: share of documents (by count) shown as cooked text (paper: 1/5).",
    )
    general_token_share: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="mix/domain: share of output tokens from general records "
        "(default: mix 0.2, domain 0.5, i.e. 1:1).",
    )
    num_tokens: int | None = Field(
        None,
        ge=1,
        description="Token budget (BOS/EOS included): give vanilla and instruct the same "
        "value to train them on equal tokens. None: as many as the inputs allow.",
    )
    keep_all_primary: bool = Field(
        False,
        description="mix/domain with no num_tokens: keep every corpus record and add general "
        "records up to general_token_share (fewer if they run short) instead of cutting the "
        "corpus to the share.",
    )
    seed: int = Field(0, description="Seed of augmentation choice, budget filling and order.")
    num_shards: int = Field(8, ge=1, le=100_000, description="Output shards.")
    write_parquet: bool = Field(True, description="Also write parquet/shard-*.parquet.")
    compression_level: int = Field(3, ge=1, le=19, description="zstd level of output shards.")
    num_workers: int = Field(1, ge=1, description="Processes encoding input units in parallel.")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")

    @model_validator(mode="after")
    def _inputs_fit_recipe(self) -> MixConfig:
        if self.recipe in ("instruct", "domain") and not self.cooked:
            raise ValueError(f"recipe '{self.recipe}' needs `cooked` (the cook stage directory)")
        if self.recipe in ("mix", "domain") and not self.general:
            raise ValueError(f"recipe '{self.recipe}' needs `general` (instruction data)")
        if self.recipe in ("vanilla", "instruct") and self.general_token_share:
            raise ValueError(f"general_token_share is for mix and domain, not '{self.recipe}'")
        return self

    @property
    def resolved_general_share(self) -> float:
        if self.general_token_share is not None:
            return self.general_token_share
        return DEFAULT_GENERAL_SHARE.get(self.recipe, 0.0)
