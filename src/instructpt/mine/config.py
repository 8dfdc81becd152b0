"""The mine stage's config: which pattern families, how many pairs, how long answers."""

from __future__ import annotations

import os
from typing import ClassVar, Literal, get_args

from pydantic import Field, field_validator

from instructpt.core.config import StageConfig

FamilyName = Literal[
    "title",
    "summarize",
    "word_to_text",
    "nli",
    "cause_effect",
    "paraphrase",
    "completion",
    "fact",
    "biography",
]
ALL_FAMILIES: tuple[str, ...] = get_args(FamilyName)


class MineConfig(StageConfig):
    """Documents -> `Synthesis` records whose pairs are mined by patterns, not generated."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"num_workers", "progress"})

    seed: int = Field(0, description="Seeds which candidates are kept, with each document id.")
    families: list[FamilyName] = Field(
        default_factory=lambda: list(ALL_FAMILIES),
        min_length=1,
        description="Task families to mine (title, summarize, word_to_text, nli, cause_effect, "
        "paraphrase, completion, fact, biography); their order is the order they take turns in.",
    )
    max_per_family: int = Field(2, ge=1, description="At most this many pairs per family per text.")
    max_pairs: int = Field(8, ge=1, description="At most this many pairs per text.")
    min_answer_chars: int = Field(1, ge=1, description="Shorter answers are dropped.")
    max_answer_chars: int = Field(600, ge=1, description="Longer answers are dropped.")
    max_chars: int = Field(
        1_000_000,
        ge=1,
        description="Only the first this many characters of a text are mined (counted as "
        "truncated_texts); the record keeps the whole text.",
    )
    compression_level: int = Field(3, ge=1, le=19, description="zstd level of output shards.")
    num_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Processes mining shards in parallel (output does not depend on it).",
    )
    progress: bool = Field(True, description="Show a progress bar on a terminal.")

    @field_validator("families")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each family may be listed once")
        return value
