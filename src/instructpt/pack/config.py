"""Configs of the pack stages: tokenizer training and tokenize (packing)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from instructpt.core.config import StageConfig


class TokenizerTrainConfig(StageConfig):
    """`instructpt tokenizer train`: a byte-level BPE saved so transformers loads it."""

    input: list[str] = Field(
        ...,
        min_length=1,
        description="Stage directories (with _manifest.json) or jsonl/parquet files whose "
        "`text` field trains the tokenizer.",
    )
    vocab_size: int = Field(
        8192, ge=300, le=1 << 20, description="Vocabulary size, special tokens included."
    )
    min_frequency: int = Field(2, ge=1, description="Pairs seen fewer times are never merged.")
    bos_token: str = Field("<s>", description="Added before every document when packing.")
    eos_token: str = Field("</s>", description="Added after every document when packing.")
    pad_token: str = Field("<pad>", description="Padding token (for batched inference).")
    special_tokens: list[str] = Field(
        default_factory=list, description="More special tokens (single ids, never split)."
    )
    max_texts: int | None = Field(
        None, ge=1, description="Train on the first N texts only (None: all of them)."
    )

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"input"})

    @model_validator(mode="after")
    def _specials_distinct(self) -> TokenizerTrainConfig:
        specials = [self.pad_token, self.bos_token, self.eos_token, *self.special_tokens]
        if len(set(specials)) != len(specials):
            raise ValueError("pad_token, bos_token, eos_token and special_tokens must all differ")
        return self


class TokenizeConfig(StageConfig):
    """Mixed text -> packed token shards with an index back to record ids."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset(
        {"tokenizer", "num_workers", "use_mix_cache", "progress"}
    )

    tokenizer: str = Field(..., description="Tokenizer directory (must hold tokenizer.json).")
    seq_len: int = Field(
        256,
        ge=2,
        description="Tokens per packed sequence (recorded in index.json; the reader's default).",
    )
    num_workers: int = Field(1, ge=1, description="Processes packing shards in parallel.")
    use_mix_cache: bool = Field(
        True, description="Reuse the ids the mix stage kept when its tokenizer is the same."
    )
    progress: bool = Field(True, description="Show a progress bar on a terminal.")
