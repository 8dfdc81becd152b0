"""The displayed value of every attribute, shared by the texts and the questions.

Texts and ground-truth answers both read their strings from here, so an
answer can never drift from the way its text states it (the QA contract:
every final answer appears verbatim in its entity's own text).
"""

from __future__ import annotations

from dataclasses import dataclass

from instructpt.world.entities import City, Company, Country, Entities, Person, University
from instructpt.world.vocab import with_article

Entity = Country | City | University | Company | Person


@dataclass(frozen=True, slots=True)
class Index:
    """Entities by id, for resolving links while rendering."""

    by_id: dict[str, Entity]
    cities_of_country: dict[str, tuple[City, ...]]

    @classmethod
    def of(cls, entities: Entities) -> Index:
        by_id: dict[str, Entity] = {}
        for group in (
            entities.countries,
            entities.cities,
            entities.universities,
            entities.companies,
            entities.people,
        ):
            for e in group:
                by_id[e.id] = e
        cities: dict[str, list[City]] = {c.id: [] for c in entities.countries}
        for city in entities.cities:
            cities[city.country_id].append(city)
        return cls(by_id, {k: tuple(v) for k, v in cities.items()})

    def name(self, eid: str) -> str:
        return self.by_id[eid].name

    def city_country(self, city_id: str) -> str:
        city = self.by_id[city_id]
        assert isinstance(city, City)
        return self.name(city.country_id)


def entity_type(entity: Entity) -> str:
    """The type word used in ids, records and `meta.entity_type`."""
    return entity.id.split("-", 1)[0]


def person_facts(person: Person, index: Index) -> dict[str, str]:
    """Every stated attribute of a person, as it reads in the text."""
    university = index.by_id[person.university_id]
    employer = index.by_id[person.employer_id]
    assert isinstance(university, University) and isinstance(employer, Company)
    facts = {
        "name": person.name,
        "occupation": person.occupation,
        "a_occupation": with_article(person.occupation),
        "birth_date": person.birth_date,
        "birth_year": str(person.birth_year),
        "birth_city": index.name(person.birth_city_id),
        "birth_country": index.city_country(person.birth_city_id),
        "university": university.name,
        "university_city": index.name(university.city_id),
        "field": person.field,
        "graduation_year": str(person.graduation_year),
        "employer": employer.name,
        "employer_city": index.name(employer.city_id),
        "join_year": str(person.join_year),
        "industry": employer.industry,
        "a_industry": with_article(employer.industry),
        "residence_city": index.name(person.residence_city_id),
        "residence_country": index.city_country(person.residence_city_id),
        "hobby": person.hobby,
    }
    for relation in person.relations:
        facts[relation.kind] = index.name(relation.person_id)
    return facts


def place_facts(entity: Country | City | University | Company, index: Index) -> dict[str, str]:
    """Every stated attribute of a place or organisation, as it reads in the text."""
    if isinstance(entity, Country):
        facts = {"name": entity.name, "language": entity.language}
        if entity.capital_id is not None:
            facts["capital"] = index.name(entity.capital_id)
        return facts
    if isinstance(entity, City):
        return {
            "name": entity.name,
            "country": index.name(entity.country_id),
            "population": f"{entity.population:,}",
        }
    if isinstance(entity, University):
        return {
            "name": entity.name,
            "city": index.name(entity.city_id),
            "country": index.city_country(entity.city_id),
            "founded": str(entity.founded),
        }
    return {
        "name": entity.name,
        "city": index.name(entity.city_id),
        "headquarters": index.name(entity.city_id),
        "country": index.city_country(entity.city_id),
        "industry": entity.industry,
        "a_industry": with_article(entity.industry),
        "founded": str(entity.founded),
    }
