"""The filter stage's config."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from instructpt.core.config import StageConfig


class FilterConfig(StageConfig):
    """`Synthesis` records -> the same records with bad, duplicate or leaked pairs removed.

    Usable after any engine (synthesizer or miner). Texts are never dropped, only
    pairs; every dropped pair is counted by reason.
    """

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"progress", "batch_records", "offline"})

    # ---- well-formedness and grounding (per pair)
    grounding: bool = Field(
        True,
        description="Check each pair's form (multiple choice, chain of thought, lengths) and "
        "that open answers are grounded in their text.",
    )
    min_answer_overlap: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Extractive (short) open answers: least share of the answer's content "
        "words that must occur in the text; numbers must occur verbatim.",
    )
    min_generative_overlap: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Open answers longer than extractive_max_words and chain-of-thought "
        "answers: least share of content words found in the text.",
    )
    extractive_max_words: int = Field(
        12, ge=1, description="Open answers of at most this many words count as extractive."
    )
    min_question_chars: int = Field(3, ge=1, description="Shorter questions: too_short.")
    max_question_chars: int = Field(4000, ge=1, description="Longer questions: too_long.")
    min_answer_chars: int = Field(1, ge=1, description="Shorter answers: too_short.")
    max_answer_chars: int = Field(4000, ge=1, description="Longer answers: too_long.")

    # ---- near-duplicate pairs
    dedup: bool = Field(True, description="Drop duplicate and near-duplicate pairs.")
    dedup_corpus: bool = Field(
        True,
        description="Also across texts and shards (MinHash LSH; first occurrence in shard, "
        "then record order wins); false dedups within each text only.",
    )
    dedup_threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Jaccard similarity of word-3-gram sets of 'question answer' at which two "
        "pairs are near duplicates (exact within a text, LSH-estimated across texts).",
    )
    num_perm: int = Field(64, ge=8, le=1024, description="MinHash permutations.")
    dedup_seed: int = Field(1, ge=0, description="Seed of the MinHash permutations.")

    # ---- decontamination
    eval_files: list[str] = Field(
        default_factory=list,
        description="Evaluation sets as local files: .jsonl (one document per line, field "
        "eval_text_field) or .txt (one document per line).",
    )
    eval_text_field: str = Field("text", description="Field of .jsonl eval documents.")
    eval_tasks: list[str] = Field(
        default_factory=list,
        description="lm-eval task, group or tag names whose eval docs (prompt + target) are "
        "decontaminated against.",
    )
    eval_include_path: list[str] = Field(
        default_factory=list, description="Folders of local lm-eval task YAMLs."
    )
    offline: bool = Field(
        False, description="Load eval_tasks without touching the network (local data only)."
    )
    ngram: int = Field(
        13, ge=1, le=64, description="Word n-gram length shared with an eval doc = contaminated."
    )
    min_ngram: int = Field(
        8,
        ge=1,
        description="Eval docs shorter than ngram words are matched whole when they have at "
        "least this many words; shorter ones are ignored (counted).",
    )
    decontaminate_texts: bool = Field(
        False,
        description="Also check each text: a contaminated text loses all its pairs "
        "(contaminated_text) and is counted; the text itself is kept.",
    )

    # ---- output
    compression_level: int = Field(3, ge=1, le=19, description="zstd level of output shards.")
    batch_records: int = Field(
        512, ge=1, description="Records hashed per batch (speed only; output is the same)."
    )
    progress: bool = Field(True, description="Show a progress bar on a terminal.")

    @model_validator(mode="after")
    def _consistent(self) -> FilterConfig:
        if self.min_question_chars > self.max_question_chars:
            raise ValueError("filter.min_question_chars must not exceed max_question_chars")
        if self.min_answer_chars > self.max_answer_chars:
            raise ValueError("filter.min_answer_chars must not exceed max_answer_chars")
        if self.min_ngram > self.ngram:
            raise ValueError("filter.min_ngram must not exceed filter.ngram")
        if self.eval_include_path and not self.eval_tasks:
            raise ValueError("filter.eval_include_path is set but filter.eval_tasks is empty")
        return self

    @property
    def decontaminate(self) -> bool:
        return bool(self.eval_files or self.eval_tasks)
