"""Ground-truth question-answer pairs per entity, in the synthesizer's conventions.

Three kinds, exactly as the released synthesizer writes them (DESIGN.md,
"The synthesizer format"):
- `open`: a plain question; the answer is the attribute value as the text states it.
- `mc`: the question, then `\\nOptions:\\n- ` and the options joined by `\\n- `;
  the answer is one option verbatim. Distractors are other values of the same
  type (other cities for a city, other dates for a date), order seeded.
- `cot`: a two-hop question ending in `\\nLet's think step by step.`; the answer
  is `{reasoning}\\nTherefore, the answer is {final}`, and both hops are facts
  stated in the entity's own text.
Every `final` appears verbatim in the entity's text (tested).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from instructpt.world import phrasings as ph
from instructpt.world.entities import (
    LAST_YEAR,
    City,
    Company,
    Country,
    Entities,
    Person,
    University,
    derive_rng,
)
from instructpt.world.facts import Entity, Index, person_facts, place_facts
from instructpt.world.vocab import FIELDS, HOBBIES, INDUSTRIES, MONTH_DAYS, format_date

QAKind = Literal["open", "mc", "cot"]

#: Distractors per multiple-choice question (fewer only when the pool is smaller).
NUM_DISTRACTORS = 3

#: Attributes asked about, per entity type, in this order (open, then mc, then cot).
_PERSON_ATTRIBUTES = (
    "occupation",
    "birth_date",
    "birth_year",
    "birth_city",
    "university",
    "field",
    "graduation_year",
    "employer",
    "join_year",
    "residence_city",
    "hobby",
)
_RELATION_ATTRIBUTES = ("spouse", "sibling", "mentor", "mentee")
_PERSON_COT = ("birth_country", "employer_city", "university_city", "residence_country")
_PLACE_ATTRIBUTES: dict[type, tuple[str, ...]] = {
    Country: ("capital", "language"),
    City: ("country", "population"),
    University: ("city", "founded"),
    Company: ("headquarters", "industry", "founded"),
}
_PLACE_COT: dict[type, tuple[str, ...]] = {
    Country: (),
    City: (),
    University: ("university_country",),
    Company: ("company_country",),
}
#: A cot attribute whose final answer is stored under another fact name.
_COT_FINAL: dict[str, str] = {"university_country": "country", "company_country": "country"}

#: Which pool an attribute's distractors come from.
_VALUE_TYPE: dict[str, str] = {
    "occupation": "occupation",
    "birth_date": "date",
    "birth_year": "year",
    "founded": "year",
    "graduation_year": "year",
    "join_year": "year",
    "birth_city": "city",
    "residence_city": "city",
    "capital": "city",
    "city": "city",
    "headquarters": "city",
    "university": "university",
    "field": "field",
    "employer": "company",
    "hobby": "hobby",
    "spouse": "person",
    "sibling": "person",
    "mentor": "person",
    "mentee": "person",
    "language": "language",
    "country": "country",
    "population": "population",
    "industry": "industry",
}


@dataclass(frozen=True, slots=True)
class QAPair:
    """One ground-truth pair; `answer` follows the synthesizer convention, `final` is bare."""

    id: str
    entity_id: str
    group: str
    kind: QAKind
    attribute: str
    question: str
    answer: str
    final: str
    options: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Pools:
    """Closed sets of values that multiple-choice distractors are drawn from."""

    named: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, entities: Entities) -> Pools:
        occupations = sorted({o for _, jobs in INDUSTRIES.values() for o in jobs})
        return cls(
            {
                "person": tuple(p.name for p in entities.people),
                "city": tuple(c.name for c in entities.cities),
                "country": tuple(c.name for c in entities.countries),
                "language": tuple(c.language for c in entities.countries),
                "university": tuple(u.name for u in entities.universities),
                "company": tuple(c.name for c in entities.companies),
                "occupation": tuple(occupations),
                "field": FIELDS,
                "hobby": HOBBIES,
                "industry": tuple(sorted(INDUSTRIES)),
            }
        )


def _draw_distinct(
    rng: random.Random, make: Callable[[], str], exclude: set[str], k: int, tries: int = 200
) -> list[str]:
    """Up to k distinct values from `make` that are not in `exclude`."""
    out: list[str] = []
    seen = set(exclude)
    for _ in range(tries):
        if len(out) == k:
            break
        value = make()
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def _distractors(
    value_type: str, answer: str, exclude: set[str], pools: Pools, rng: random.Random
) -> list[str]:
    if value_type == "date":
        year = int(answer.rsplit(" ", 1)[1])

        def make() -> str:
            month = rng.randint(1, 12)
            day = rng.randint(1, MONTH_DAYS[month - 1])
            return format_date(day, month, year + rng.randint(-3, 3))

    elif value_type == "year":
        year = int(answer)

        def make() -> str:
            offset = rng.randint(1, 15)
            # no distractor from the future: a later year would be easy to rule out
            later = rng.random() < 0.5 and year + offset <= LAST_YEAR
            return str(year + offset if later else year - offset)

    elif value_type == "population":

        def make() -> str:
            return f"{rng.randint(40, 2400) * 100:,}"

    else:
        pool: Sequence[str] = pools.named[value_type]

        def make() -> str:
            return pool[rng.randrange(len(pool))]

    # Small pools (a two-country world) cannot give three distractors: give fewer.
    return _draw_distinct(rng, make, exclude | {answer}, NUM_DISTRACTORS)


def _question(attribute: str, facts: dict[str, str], poss: str, rng: random.Random) -> str:
    return rng.choice(ph.QUESTIONS[attribute]).format(name=facts["name"], poss=poss)


def entity_qa(entity: Entity, index: Index, pools: Pools, seed: int) -> list[QAPair]:
    """All ground-truth pairs of one entity: open and mc per attribute, then cot."""
    rng = derive_rng(seed, "qa", entity.id)
    if isinstance(entity, Person):
        facts = person_facts(entity, index)
        poss = "her" if entity.gender == "female" else "his"
        attributes = _PERSON_ATTRIBUTES + tuple(
            a for a in _RELATION_ATTRIBUTES if any(r.kind == a for r in entity.relations)
        )
        cot_attributes = _PERSON_COT
        exclude = {entity.name}  # never offer the person as their own spouse
    else:
        facts = place_facts(entity, index)
        poss = "its"
        attributes = tuple(a for a in _PLACE_ATTRIBUTES[type(entity)] if a in facts)
        cot_attributes = _PLACE_COT[type(entity)]
        exclude = {entity.name}

    pairs: list[QAPair] = []

    def add(kind: QAKind, attribute: str, question: str, answer: str, final: str,
            options: tuple[str, ...] | None = None) -> None:  # fmt: skip
        qid = f"{entity.id}-qa{len(pairs) + 1}"
        pairs.append(
            QAPair(qid, entity.id, entity.group, kind, attribute, question, answer, final, options)
        )

    for attribute in attributes:
        value = facts[attribute]
        add("open", attribute, _question(attribute, facts, poss, rng), value, value)
    for attribute in attributes:
        value = facts[attribute]
        options = [value, *_distractors(_VALUE_TYPE[attribute], value, exclude, pools, rng)]
        rng.shuffle(options)
        question = (
            _question(attribute, facts, poss, rng)
            + ph.MC_OPTIONS_HEADER
            + ph.MC_OPTION_SEPARATOR.join(options)
        )
        add("mc", attribute, question, value, value, tuple(options))
    for attribute in cot_attributes:
        questions, reasoning = ph.COT[attribute]
        final = facts[_COT_FINAL.get(attribute, attribute)]
        question = rng.choice(questions).format(name=facts["name"]) + ph.COT_SUFFIX
        answer = reasoning.format(**facts) + ph.COT_THEREFORE + final
        add("cot", attribute, question, answer, final)
    return pairs
