"""Entities -> encyclopedia-style paragraphs, seeded per entity.

Each entity's text depends only on (seed, entity id) and the facts it states,
never on the order in which other entities were rendered: the generator is
derived from the id. A person's paragraph opens with an intro sentence naming
them, then states birth, education, graduation, work, career start, residence,
hobby and relations in a shuffled order, referring to the person by pronoun,
full name or surname (never the bare surname when a sibling shares it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from instructpt.world import phrasings as ph
from instructpt.world.entities import City, Company, Country, Person, University, derive_rng
from instructpt.world.facts import Entity, Index, entity_type, person_facts, place_facts

_PRONOUNS = {"female": ("she", "her"), "male": ("he", "his")}


@dataclass(frozen=True, slots=True)
class EntityText:
    """One rendered text plus the template ids it used (for audit and tests)."""

    entity_id: str
    entity_type: str
    group: str
    text: str
    template_ids: tuple[str, ...]
    rendering: int = 0  # 0: the entity's main text; k > 0: its k-th extra rendering

    @property
    def doc_id(self) -> str:
        return self.entity_id if self.rendering == 0 else f"{self.entity_id}~{self.rendering}"


def _sentence(template: str, values: dict[str, str]) -> str:
    text = template.format(**values)
    return text[0].upper() + text[1:]


def _pick(rng: random.Random, slot: str, templates: tuple[str, ...]) -> tuple[str, str]:
    i = rng.randrange(len(templates))
    return f"{slot}-{i:02d}", templates[i]


def render_person(person: Person, index: Index, seed: int, full_names: bool = False) -> EntityText:
    """The person's paragraph: intro first, the other sentences in seeded order.

    `full_names` names the person in full in every sentence; the generator is drawn
    exactly as without it, so both texts use the same templates in the same order.
    """
    rng = derive_rng(seed, "text", person.id)
    facts = person_facts(person, index)
    pron, poss = _PRONOUNS[person.gender]
    # A bare surname would be ambiguous next to a sibling who shares it.
    has_sibling = any(r.kind == "sibling" for r in person.relations)
    names = (person.name,) if has_sibling else (person.name, person.last_name)

    slots: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
        (name, templates, {}) for name, templates in ph.PERSON_SLOTS.items()
    ]
    for relation in person.relations:
        other = {"other": index.name(relation.person_id)}
        slots.append((relation.kind, ph.RELATION[relation.kind], other))
    rng.shuffle(slots)

    tid, template = _pick(rng, "intro", ph.INTRO)
    ids = [tid]
    sentences = [_sentence(template, facts)]
    for slot, templates, extra in slots:
        tid, template = _pick(rng, slot, templates)
        # Pronouns most of the time, as in encyclopedia prose; the name now and
        # then so that every sentence is not anchored on "she"/"he" alone.
        ref = rng.choice(names)
        subj = rng.choices((pron, *names), weights=(5, 3, 2)[: len(names) + 1])[0]
        if full_names:
            ref = subj = person.name
        values = {**facts, **extra, "subj": subj, "ref": ref, "pron": pron, "poss": poss}
        ids.append(tid)
        sentences.append(_sentence(template, values))
    return EntityText(person.id, "person", person.group, " ".join(sentences), tuple(ids))


def _place_sentences(
    entity: Country | City | University | Company, index: Index, rng: random.Random
) -> tuple[list[str], list[str]]:
    facts = place_facts(entity, index)
    kind = entity_type(entity)
    if isinstance(entity, Country):
        cities = [c.name for c in index.cities_of_country[entity.id]][:5]
        listed = ", ".join(cities[:-1]) + " and " + cities[-1] if len(cities) > 1 else ""
        groups: list[tuple[str, tuple[str, ...]]] = []
        if entity.capital_id is None:
            groups.append(("country-capital", ph.COUNTRY_NO_CAPITAL))
        else:
            groups.append(("country-capital", ph.COUNTRY[0]))
        groups.append(("country-language", ph.COUNTRY[1]))
        if listed:  # a one-city country is already described by its capital
            groups.append(("country-cities", ph.COUNTRY[2]))
        facts = {**facts, "cities": listed}
    else:
        table = {City: ph.CITY, University: ph.UNIVERSITY, Company: ph.COMPANY}[type(entity)]
        groups = [(f"{kind}-{i}", templates) for i, templates in enumerate(table)]
    ids: list[str] = []
    sentences: list[str] = []
    for slot, templates in groups:
        tid, template = _pick(rng, slot, templates)
        ids.append(tid)
        sentences.append(_sentence(template, facts))
    return ids, sentences


def render_entity(entity: Entity, index: Index, seed: int, full_names: bool = False) -> EntityText:
    """Any entity's text; people get the long varied paragraph, the rest a short one."""
    if isinstance(entity, Person):
        return render_person(entity, index, seed, full_names)
    rng = derive_rng(seed, "text", entity.id)
    ids, sentences = _place_sentences(entity, index, rng)
    return EntityText(entity.id, entity_type(entity), entity.group, " ".join(sentences), tuple(ids))
