"""The world stage's config: sizes and seed of the seeded demo world."""

from __future__ import annotations

from pydantic import Field, model_validator

from instructpt.core.config import StageConfig


class WorldConfig(StageConfig):
    """The seeded demo world: fictional people, places and organisations.

    Sizes are knobs; the defaults keep the full demo inside its CPU budget
    (a few hundred people, see shared/MACHINE.md for the sizing argument).
    """

    seed: int = Field(1234, description="Seed of the world; same seed, same bytes.")
    num_people: int = Field(600, ge=3, description="People (the main entities).")
    num_countries: int = Field(8, ge=2, description="Countries cities belong to.")
    num_cities: int = Field(40, ge=2, description="Cities (birth places, headquarters).")
    num_universities: int = Field(16, ge=2, description="Universities people attend.")
    num_companies: int = Field(48, ge=2, description="Companies people work for.")
    texts_per_entity: int = Field(
        1,
        ge=1,
        le=16,
        description="Independently rendered texts per entity (ids <id>, <id>~1, ...): "
        "paraphrase diversity, which makes stored facts extractable (Allen-Zhu & Li 2023).",
    )
    full_names: bool = Field(
        False,
        description="Name a person in full in every sentence instead of mostly by pronoun: "
        "each fact then sits next to the name it belongs to, which Physics of LMs 3.1 found "
        "makes stored facts extractable ('fullname' augmentation). Same template choices.",
    )
    synth_train_fraction: float = Field(
        0.3,
        gt=0,
        lt=1,
        description="Share of entities (by count) whose texts and QA train the synthesizer.",
    )
    probe_fraction: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="Share of entities (by count) held out as the knowledge probe.",
    )

    @model_validator(mode="after")
    def _fractions_leave_room(self) -> WorldConfig:
        if self.synth_train_fraction + self.probe_fraction >= 1:
            raise ValueError(
                "synth_train_fraction + probe_fraction must be < 1 so that some "
                "entities remain to be augmented"
            )
        return self
