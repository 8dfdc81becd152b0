"""The structured world: countries, cities, universities, companies and people.

Generation is a pure function of `WorldConfig`. Each step draws from its own
random generator derived from (seed, step name), so adding a step later does
not reshuffle the steps before it.

Groups (see DESIGN.md, "The embedded default"): every entity belongs to one
of three disjoint groups, chosen by a seeded shuffle with sizes rounded from
the config fractions (by count, per entity type):
- `synth_train`: texts and QA train the small synthesizer (the Mix PT data);
- `augment`: in the pre-training corpus, texts get instruction-augmented;
- `probe`: in the pre-training corpus, questions never shown to any model.
Places and organisations are split the same simple way per type. Their facts
also appear inside people's texts of every group (a person's text says which
country their birth city is in), so the probe measures knowledge of *people*;
place/org probe items are a weaker, leaky signal by design.

People are related only to people of their own group, so no synth_train text
ever states the answer to a probe person's relation question.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from instructpt.world.config import WorldConfig
from instructpt.world.names import NameMaker
from instructpt.world.vocab import FIELDS, HOBBIES, INDUSTRIES, MONTH_DAYS, format_date

Group = Literal["synth_train", "augment", "probe"]
GROUPS: tuple[Group, ...] = ("synth_train", "augment", "probe")

#: How the *other* person relates to this one: "mentor" means "the other is my mentor".
RelationKind = Literal["spouse", "sibling", "mentor", "mentee"]


def derive_rng(seed: int, *parts: str) -> random.Random:
    """A generator seeded by (seed, parts) through sha256: independent of draw order elsewhere."""
    key = ":".join((str(seed), *parts)).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


@dataclass(frozen=True, slots=True)
class Country:
    id: str
    group: Group
    name: str
    language: str
    capital_id: str | None  # None only when a tiny world has fewer cities than countries


@dataclass(frozen=True, slots=True)
class City:
    id: str
    group: Group
    name: str
    country_id: str
    population: int


@dataclass(frozen=True, slots=True)
class University:
    id: str
    group: Group
    name: str
    city_id: str
    founded: int


@dataclass(frozen=True, slots=True)
class Company:
    id: str
    group: Group
    name: str
    city_id: str
    industry: str
    founded: int


@dataclass(frozen=True, slots=True)
class Relation:
    kind: RelationKind
    person_id: str


@dataclass(frozen=True, slots=True)
class Person:
    id: str
    group: Group
    first_name: str
    last_name: str
    gender: Literal["female", "male"]
    birth_day: int
    birth_month: int
    birth_year: int
    birth_city_id: str
    university_id: str
    field: str
    graduation_year: int
    employer_id: str
    occupation: str
    join_year: int
    residence_city_id: str
    hobby: str
    #: Relations stated in this person's own text (the lone odd person of a
    #: group is mentored by someone whose text does not mention it).
    relations: tuple[Relation, ...]

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def birth_date(self) -> str:
        return format_date(self.birth_day, self.birth_month, self.birth_year)


@dataclass(frozen=True, slots=True)
class Entities:
    """All structured entities of one world, in id order per type."""

    countries: tuple[Country, ...]
    cities: tuple[City, ...]
    universities: tuple[University, ...]
    companies: tuple[Company, ...]
    people: tuple[Person, ...]


#: Nobody in the world is younger than this; keeps every person an adult with a career.
_LATEST_BIRTH_YEAR = 2000
#: The world's "now": no event is dated later.
LAST_YEAR = 2025


def entity_id(kind: str, index: int) -> str:
    return f"{kind}-{index + 1:04d}"


def group_sizes(n: int, synth_train_fraction: float, probe_fraction: float) -> dict[Group, int]:
    """Group sizes by count, rounded half up; with n >= 3 no group is left empty."""
    synth = int(n * synth_train_fraction + 0.5)
    probe = int(n * probe_fraction + 0.5)
    if n >= 3:
        synth = min(max(synth, 1), n - 2)
        probe = min(max(probe, 1), n - synth - 1)
    else:  # too few to fill three groups: keep at least one entity to augment
        probe = min(probe, max(n - synth - 1, 0))
        synth = min(synth, max(n - probe - 1, 0))
    return {"synth_train": synth, "augment": n - synth - probe, "probe": probe}


def assign_groups(ids: list[str], cfg: WorldConfig, rng: random.Random) -> dict[str, Group]:
    """Seeded shuffle, then the first ids train the synthesizer and the last are the probe."""
    sizes = group_sizes(len(ids), cfg.synth_train_fraction, cfg.probe_fraction)
    order = list(ids)
    rng.shuffle(order)
    groups: dict[str, Group] = {}
    start = 0
    for group in ("synth_train", "probe", "augment"):
        for eid in order[start : start + sizes[group]]:
            groups[eid] = group
        start += sizes[group]
    return groups


def _pair_relations(
    ids_by_group: dict[Group, list[str]], all_ids: list[str], rng: random.Random
) -> tuple[dict[str, list[Relation]], list[tuple[str, str, RelationKind]]]:
    """Pair people within their group; returns relations per person and the pairs.

    A pair is (a, b, kind); in a "mentor" pair, a mentored b. A group of odd
    size leaves one person, who gets a mentor from the same group (or, in a
    one-person group, from anyone).
    """
    relations: dict[str, list[Relation]] = {pid: [] for pid in all_ids}
    pairs: list[tuple[str, str, RelationKind]] = []
    for group in GROUPS:
        members = list(ids_by_group[group])
        rng.shuffle(members)
        for a, b in zip(members[0::2], members[1::2], strict=False):
            kind: RelationKind = rng.choice(("spouse", "sibling", "mentor"))
            pairs.append((a, b, kind))
            if kind == "mentor":  # a mentored b
                relations[a].append(Relation("mentee", b))
                relations[b].append(Relation("mentor", a))
            else:
                relations[a].append(Relation(kind, b))
                relations[b].append(Relation(kind, a))
        if len(members) % 2 == 1:
            lone = members[-1]
            pool = [m for m in members if m != lone] or [p for p in all_ids if p != lone]
            mentor = rng.choice(pool)
            pairs.append((mentor, lone, "mentor"))
            relations[lone].append(Relation("mentor", mentor))
    return relations, pairs


def _random_day(rng: random.Random) -> tuple[int, int]:
    month = rng.randint(1, 12)
    return rng.randint(1, MONTH_DAYS[month - 1]), month


def generate_entities(cfg: WorldConfig) -> Entities:
    """Build every structured entity of the world described by `cfg`."""
    names = NameMaker(derive_rng(cfg.seed, "names"))
    rng = derive_rng(cfg.seed, "places")

    # Places and organisations. Each country gets a first city (its capital)
    # before the rest are spread at random, so no country is empty when possible.
    country_ids = [entity_id("country", i) for i in range(cfg.num_countries)]
    city_ids = [entity_id("city", i) for i in range(cfg.num_cities)]
    uni_ids = [entity_id("university", i) for i in range(cfg.num_universities)]
    company_ids = [entity_id("company", i) for i in range(cfg.num_companies)]
    group_rng = derive_rng(cfg.seed, "groups")
    groups: dict[str, Group] = {}
    for ids in (country_ids, city_ids, uni_ids, company_ids):
        groups.update(assign_groups(ids, cfg, group_rng))

    city_country = [
        country_ids[i] if i < len(country_ids) else rng.choice(country_ids)
        for i in range(len(city_ids))
    ]
    countries = tuple(
        Country(
            id=cid,
            group=groups[cid],
            name=names.country(),
            language=names.language(),
            capital_id=city_ids[i] if i < len(city_ids) else None,
        )
        for i, cid in enumerate(country_ids)
    )
    cities = tuple(
        City(
            id=cid,
            group=groups[cid],
            name=names.city(),
            country_id=city_country[i],
            # capitals are the larger cities, as a reader would expect
            population=rng.randint(800, 2400) * 100
            if i < len(country_ids)
            else rng.randint(40, 900) * 100,
        )
        for i, cid in enumerate(city_ids)
    )
    universities = tuple(
        University(
            id=uid,
            group=groups[uid],
            name=names.university(),
            city_id=rng.choice(city_ids),
            founded=rng.randint(1350, 1980),
        )
        for uid in uni_ids
    )
    industry_names = sorted(INDUSTRIES)
    companies_list: list[Company] = []
    for i, co_id in enumerate(company_ids):
        # cycle through industries first so each one is represented
        industry = industry_names[i] if i < len(industry_names) else rng.choice(industry_names)
        companies_list.append(
            Company(
                id=co_id,
                group=groups[co_id],
                name=names.company(INDUSTRIES[industry][0]),
                city_id=rng.choice(city_ids),
                industry=industry,
                founded=rng.randint(1820, 2005),
            )
        )
    companies = tuple(companies_list)

    # People: groups first, then relations within groups, then names (siblings
    # share a surname) and birth years that fit the relation.
    person_ids = [entity_id("person", i) for i in range(cfg.num_people)]
    person_groups = assign_groups(person_ids, cfg, derive_rng(cfg.seed, "person-groups"))
    ids_by_group: dict[Group, list[str]] = {g: [] for g in GROUPS}
    for pid in person_ids:
        ids_by_group[person_groups[pid]].append(pid)
    relations, pairs = _pair_relations(ids_by_group, person_ids, derive_rng(cfg.seed, "relations"))

    life_rng = derive_rng(cfg.seed, "lives")
    surname: dict[str, str] = {}
    year: dict[str, int] = {}
    for a, b, kind in pairs:
        if kind == "sibling":
            surname[a] = surname[b] = names.surname()
        # b is born `offset` years after a: a mentor is a generation older.
        if kind == "mentor":
            offset = life_rng.randint(14, 30)
        elif kind == "sibling":
            offset = life_rng.randint(1, 8)
        else:
            offset = life_rng.randint(-5, 5)
        if a in year and b not in year:  # the lone mentee of a group, or a tiny world
            year[b] = min(year[a] + offset, _LATEST_BIRTH_YEAR)
        elif b in year and a not in year:
            year[a] = year[b] - offset
        elif a not in year:
            year[b] = life_rng.randint(1950, _LATEST_BIRTH_YEAR + min(offset, 0))
            year[a] = year[b] - offset

    people_list: list[Person] = []
    for pid in person_ids:
        first, last = names.person(surname.get(pid))
        day, month = _random_day(life_rng)
        company = life_rng.choice(companies)
        born = year.get(pid, life_rng.randint(1940, _LATEST_BIRTH_YEAR))
        graduated = born + life_rng.randint(21, 26)
        # joined after graduating and after the company existed, never in the future
        joined = min(max(graduated + life_rng.randint(0, 15), company.founded + 1), LAST_YEAR)
        people_list.append(
            Person(
                id=pid,
                group=person_groups[pid],
                first_name=first,
                last_name=last,
                gender=life_rng.choice(("female", "male")),
                birth_day=day,
                birth_month=month,
                birth_year=born,
                birth_city_id=life_rng.choice(city_ids),
                university_id=life_rng.choice(uni_ids),
                field=life_rng.choice(FIELDS),
                graduation_year=graduated,
                employer_id=company.id,
                occupation=life_rng.choice(INDUSTRIES[company.industry][1]),
                join_year=joined,
                # people often live where they work; otherwise anywhere
                residence_city_id=company.city_id
                if life_rng.random() < 0.5
                else life_rng.choice(city_ids),
                hobby=life_rng.choice(HOBBIES),
                relations=tuple(relations[pid]),
            )
        )
    return Entities(countries, cities, universities, companies, tuple(people_list))
