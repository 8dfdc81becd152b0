"""The cook stage's config."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from instructpt.cook.templates import LAYOUTS, PAIR_TEMPLATES, TEMPLATE_SET_VERSION
from instructpt.core.config import StageConfig, _did_you_mean

PairFamily = Literal["qa", "mc", "cot", "mc_cot", "verbatim"]
LayoutFamily = Literal["reading", "dialog", "numbered", "pairs_first"]


class CookConfig(StageConfig):
    """`Synthesis` records -> cooked text: each text and its pairs rendered by templates."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"progress"})

    seed: int = Field(
        0, description="Seeds every template choice, with the record id and template set."
    )
    template_set: str = Field(
        TEMPLATE_SET_VERSION,
        description="Template set version; must be this build's (recorded so that a cooked "
        "corpus, and a resume, always name the set that made it).",
    )
    families: list[PairFamily] = Field(
        default_factory=lambda: ["qa", "mc", "cot", "mc_cot", "verbatim"],
        min_length=1,
        description="Pair template families to draw from (qa, mc, cot, mc_cot, verbatim); a "
        "pair whose kind no enabled family renders is dropped as no_template.",
    )
    layouts: list[LayoutFamily] = Field(
        default_factory=lambda: ["reading", "dialog", "numbered", "pairs_first"],
        min_length=1,
        description="Layout families to draw from (reading, dialog, numbered, pairs_first).",
    )
    templates: list[str] | None = Field(
        None,
        description="Only these pair-template and layout ids (e.g. [pf.002, qa.001]: every "
        "pair as 'Question: ...' / 'Answer: ...' before its text, one fixed format as in the "
        "Physics of LMs protocol); None: every template of the enabled families and layouts.",
    )
    chains: bool = Field(
        True,
        description="Cook linked (M-shot) records with their chain into one text; false "
        "cooks every record alone.",
    )
    max_pairs_per_text: int | None = Field(
        None, ge=1, description="Keep at most this many renderable pairs per text (first ones)."
    )
    shuffle_options: bool = Field(True, description="Shuffle multiple-choice options.")
    none_of_the_above_rate: float = Field(
        0.25,
        ge=0,
        le=1,
        description="Share of pairs cooked with a none-of-the-above template (when valid) "
        "whose correct option is removed, making 'None of the above' the answer.",
    )
    texts_without_pairs: Literal["raw", "skip"] = Field(
        "raw",
        description="raw: a text with no renderable pair is written as is, source 'raw', so "
        "every input text appears once; skip: left out (counted).",
    )
    compression_level: int = Field(3, ge=1, le=19, description="zstd level of output shards.")
    progress: bool = Field(True, description="Show a progress bar on a terminal.")

    @field_validator("template_set")
    @classmethod
    def _known_template_set(cls, value: str) -> str:
        if value != TEMPLATE_SET_VERSION:
            raise ValueError(
                f"this build of instructpt has template set {TEMPLATE_SET_VERSION!r}; "
                f"set cook.template_set to it (or leave it out) to cook with it"
            )
        return value

    @field_validator("families", "layouts")
    @classmethod
    def _no_repeats(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each family may be listed once")
        return value

    @field_validator("templates")
    @classmethod
    def _known_template_ids(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        known = [t.id for t in PAIR_TEMPLATES] + [lay.id for lay in LAYOUTS]
        for template_id in value:
            if template_id not in known:
                raise ValueError(
                    f"unknown template id {template_id!r}{_did_you_mean(template_id, known)}; "
                    "pair templates and layouts are listed in instructpt/cook/templates.py"
                )
        if len(set(value)) != len(value):
            raise ValueError("each template id may be listed once")
        return value

    @model_validator(mode="after")
    def _templates_leave_a_choice(self) -> CookConfig:
        """A `templates` list must keep at least one layout and one pair template enabled."""
        if self.templates is None:
            return self
        allowed = set(self.templates)
        if not any(lay.id in allowed and lay.family in self.layouts for lay in LAYOUTS):
            raise ValueError(
                f"templates: names no layout of the enabled layouts {self.layouts} "
                "(add one, e.g. pf.002 for pairs_first)"
            )
        if not any(t.id in allowed and t.family in self.families for t in PAIR_TEMPLATES):
            raise ValueError(
                f"templates: names no pair template of the enabled families {self.families} "
                "(add one, e.g. qa.001 for open questions)"
            )
        return self
