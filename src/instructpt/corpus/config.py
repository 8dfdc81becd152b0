"""The ingest stage's config: which raw files, which fields, which limits."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from instructpt.core.config import StageConfig

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
