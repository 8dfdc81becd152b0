"""The seeded demo world: determinism, the QA contract, groups, and text variety."""

from __future__ import annotations

import json
import re
import string
import time
from collections import Counter
from pathlib import Path

import pytest

from instructpt.core.manifest import read_manifest
from instructpt.errors import ResumeError
from instructpt.world import World, build_world, summarize, write_world
from instructpt.world import phrasings as ph
from instructpt.world.config import WorldConfig
from instructpt.world.entities import GROUPS, group_sizes
from instructpt.world.facts import Index, person_facts
from instructpt.world.stage import generate_world
from instructpt.world.vocab import FIELDS, HOBBIES, INDUSTRIES, MONTHS

FORMAT_TAGS = ("<s>", "<CON>", "</CON>", "<QUE>", "<ANS>", "</END>", "</s>")
FILES = ("documents.jsonl", "qa.jsonl", "entities.jsonl")
DATE = re.compile(rf"^([1-9]|[12][0-9]|3[01]) ({'|'.join(MONTHS)}) (1[89][0-9]{{2}}|20[0-2][0-9])$")
YEAR = re.compile(r"^(1[3-9][0-9]{2}|20[0-2][0-9])$")
POPULATION = re.compile(r"^[0-9]{1,3}(,[0-9]{3})+$")
TINY = WorldConfig(
    seed=7, num_people=10, num_countries=2, num_cities=2, num_universities=2, num_companies=2
)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(WorldConfig())


@pytest.fixture(scope="module")
def texts(world: World) -> dict[str, str]:
    return {t.entity_id: t.text for t in world.texts}


def _read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


# ------------------------------------------------------------------ determinism


def test_same_seed_writes_byte_identical_files(world: World, tmp_path: Path) -> None:
    first = write_world(world, tmp_path / "a")
    second = write_world(build_world(WorldConfig()), tmp_path / "b")
    assert first == second
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seed_gives_a_different_world(world: World, tmp_path: Path) -> None:
    other = build_world(WorldConfig(seed=WorldConfig().seed + 1))
    write_world(world, tmp_path / "a")
    write_world(other, tmp_path / "b")
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()
    names = {p.name for p in world.entities.people}
    assert len(names & {p.name for p in other.entities.people}) < 10


def test_files_are_json_lines_with_fixed_field_order(world: World, tmp_path: Path) -> None:
    summary = write_world(world, tmp_path)
    raw = (tmp_path / "documents.jsonl").read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    docs = _read_lines(tmp_path / "documents.jsonl")
    qa = _read_lines(tmp_path / "qa.jsonl")
    entities = _read_lines(tmp_path / "entities.jsonl")
    assert list(docs[0]) == ["id", "text", "meta"]
    assert list(docs[0]["meta"]) == ["entity_type", "group"]
    assert all(
        list(q)
        == [
            "id",
            "entity_id",
            "group",
            "kind",
            "attribute",
            "question",
            "answer",
            "final",
            "options",
        ]
        for q in qa
    )
    assert all((q["options"] is None) == (q["kind"] != "mc") for q in qa)
    assert list(entities[0]) == ["id", "type", "group", "name", "attributes", "links"]
    assert summary["documents"] == len(docs) == len(entities)
    assert summary["qa"] == len(qa)
    assert summary["qa.open"] + summary["qa.mc"] + summary["qa.cot"] == len(qa)
    assert summary["entities.person"] == 600
    assert summary["words"] == sum(len(d["text"].split()) for d in docs)


# ------------------------------------------------------------------ the QA contract


def test_every_final_answer_appears_verbatim_in_its_entity_text(
    world: World, texts: dict[str, str]
) -> None:
    missing = [q.id for q in world.qa if q.final not in texts[q.entity_id]]
    assert missing == []


def test_open_answers_are_the_bare_final(world: World) -> None:
    for q in world.qa:
        if q.kind == "open":
            assert q.answer == q.final and q.options is None
            assert "\n" not in q.question


def _valid_values(world: World) -> dict[str, set[str] | re.Pattern[str]]:
    e = world.entities
    people = {p.name for p in e.people}
    cities = {c.name for c in e.cities}
    return {
        "occupation": {o for _, jobs in INDUSTRIES.values() for o in jobs},
        "birth_date": DATE,
        "birth_year": YEAR,
        "graduation_year": YEAR,
        "join_year": YEAR,
        "founded": YEAR,
        "birth_city": cities,
        "residence_city": cities,
        "capital": cities,
        "city": cities,
        "headquarters": cities,
        "university": {u.name for u in e.universities},
        "field": set(FIELDS),
        "employer": {c.name for c in e.companies},
        "hobby": set(HOBBIES),
        "spouse": people,
        "sibling": people,
        "mentor": people,
        "mentee": people,
        "language": {c.language for c in e.countries},
        "country": {c.name for c in e.countries},
        "population": POPULATION,
        "industry": set(INDUSTRIES),
    }


def test_multiple_choice_answer_is_one_of_four_distinct_options_of_its_type(world: World) -> None:
    valid = _valid_values(world)
    mc = [q for q in world.qa if q.kind == "mc"]
    assert mc
    for q in mc:
        assert q.options is not None
        assert len(q.options) == 4, q.id  # three distractors in the default world
        assert len(set(q.options)) == 4, q.id
        assert q.options.count(q.answer) == 1 and q.answer == q.final
        stem, _, listed = q.question.partition(ph.MC_OPTIONS_HEADER)
        assert stem and "\n" not in stem
        assert listed.split(ph.MC_OPTION_SEPARATOR) == list(q.options)
        kind = valid[q.attribute]
        for option in q.options:
            ok = kind.match(option) if isinstance(kind, re.Pattern) else option in kind
            assert ok, f"{q.id}: {option!r} is not a {q.attribute}"


def test_option_order_varies_so_the_answer_is_not_always_first(world: World) -> None:
    positions = Counter(q.options.index(q.answer) for q in world.qa if q.options)
    assert set(positions) == {0, 1, 2, 3}
    assert min(positions.values()) > 0.15 * sum(positions.values())


def test_person_is_never_offered_as_their_own_relative(world: World) -> None:
    names = {p.id: p.name for p in world.entities.people}
    for q in world.qa:
        if q.kind == "mc" and q.attribute in ("spouse", "sibling", "mentor", "mentee"):
            assert names[q.entity_id] not in q.options


def test_chain_of_thought_has_two_facts_and_the_therefore_line(
    world: World, texts: dict[str, str]
) -> None:
    cot = [q for q in world.qa if q.kind == "cot"]
    assert {q.attribute for q in cot} == set(ph.COT)
    for q in cot:
        assert q.question.endswith("\nLet's think step by step.")
        assert q.question.count("\n") == 1
        assert q.answer.endswith(f"\nTherefore, the answer is {q.final}")
        reasoning, _, _ = q.answer.partition("\nTherefore, the answer is ")
        hops = [s for s in reasoning.split(". ") if s]
        assert len(hops) == 2, q.answer
        # the bridge entity (first hop's object, second hop's subject) is in the text too
        bridge = hops[1].split(" is ")[0]
        assert bridge in texts[q.entity_id], q.id


def test_person_two_hop_facts_come_from_the_same_text(world: World, texts: dict[str, str]) -> None:
    index = Index.of(world.entities)
    for person in world.entities.people[:100]:
        facts = person_facts(person, index)
        text = texts[person.id]
        for key in ("birth_city", "birth_country", "employer", "employer_city", "university"):
            assert facts[key] in text
        for key in ("university_city", "residence_city", "residence_country"):
            assert facts[key] in text


def test_no_format_tags_in_any_text_question_or_answer(world: World) -> None:
    for t in world.texts:
        assert not any(tag in t.text for tag in FORMAT_TAGS)
    for q in world.qa:
        for field in (q.question, q.answer):
            assert not any(tag in field for tag in FORMAT_TAGS), q.id


def test_every_person_is_asked_about_every_attribute_in_three_kinds(world: World) -> None:
    by_entity: dict[str, Counter[str]] = {}
    for q in world.qa:
        by_entity.setdefault(q.entity_id, Counter())[q.kind] += 1
    for person in world.entities.people:
        counts = by_entity[person.id]
        assert counts["open"] == counts["mc"] >= 12
        assert counts["cot"] == 4


# ------------------------------------------------------------------ ids and groups


def test_ids_and_names_are_unique(world: World) -> None:
    ids = [t.entity_id for t in world.texts]
    assert len(ids) == len(set(ids))
    qa_ids = [q.id for q in world.qa]
    assert len(qa_ids) == len(set(qa_ids))
    assert all(q.id.startswith(f"{q.entity_id}-qa") for q in world.qa)
    names = [e.name for e in world.all_entities()]
    assert len(names) == len(set(names))
    assert re.fullmatch(r"person-\d{4}", world.entities.people[0].id)


def test_groups_are_disjoint_and_sized_by_the_config_fractions(world: World) -> None:
    cfg = world.config
    e = world.entities
    for entities in (e.countries, e.cities, e.universities, e.companies, e.people):
        counts = Counter(x.group for x in entities)
        assert set(counts) <= set(GROUPS)
        n = len(entities)
        assert abs(counts["synth_train"] - n * cfg.synth_train_fraction) <= 1
        assert abs(counts["probe"] - n * cfg.probe_fraction) <= 1
        assert sum(counts.values()) == n
    assert Counter(p.group for p in e.people) == {"synth_train": 180, "augment": 300, "probe": 120}
    # each entity's texts and QA carry the entity's own group
    group_of = {x.id: x.group for x in world.all_entities()}
    assert all(t.group == group_of[t.entity_id] for t in world.texts)
    assert all(q.group == group_of[q.entity_id] for q in world.qa)


def test_group_sizes_leave_no_group_empty_from_three_entities() -> None:
    assert group_sizes(3, 0.3, 0.2) == {"synth_train": 1, "augment": 1, "probe": 1}
    assert group_sizes(10, 0.3, 0.2) == {"synth_train": 3, "augment": 5, "probe": 2}
    assert sum(group_sizes(2, 0.3, 0.2).values()) == 2


def test_relations_stay_within_a_group_and_are_stated_on_both_sides(world: World) -> None:
    people = {p.id: p for p in world.entities.people}
    inverse = {"spouse": "spouse", "sibling": "sibling", "mentor": "mentee", "mentee": "mentor"}
    one_sided = 0
    for person in people.values():
        assert person.relations
        for rel in person.relations:
            other = people[rel.person_id]
            assert other.id != person.id
            assert other.group == person.group
            back = {(r.kind, r.person_id) for r in other.relations}
            if (inverse[rel.kind], person.id) not in back:
                assert rel.kind == "mentor"  # a group's lone odd person
                one_sided += 1
            if rel.kind == "sibling":
                assert other.last_name == person.last_name
            if rel.kind == "mentor":
                assert other.birth_year < person.birth_year
    assert one_sided <= len(GROUPS)


# ------------------------------------------------------------------ phrasings and variety


def test_every_person_attribute_has_at_least_twenty_distinct_phrasings() -> None:
    for attribute, templates in ph.PERSON_ATTRIBUTE_TEMPLATES.items():
        assert len(set(templates)) == len(templates) >= 20, attribute
    for relation in ("spouse", "sibling", "mentor", "mentee"):
        assert relation in ph.PERSON_ATTRIBUTE_TEMPLATES


def test_person_templates_state_their_attributes_and_start_safely() -> None:
    lower_values = {"{occupation}", "{field}", "{hobby}", "{industry}", "{a_occupation}"}
    required = {
        "INTRO": {"name", "occupation"},
        "BIRTH": {"birth_date", "birth_city", "birth_country"},
        "EDUCATION": {"university", "university_city", "field"},
        "GRADUATION": {"graduation_year"},
        "WORK": {"employer", "employer_city"},
        "CAREER": {"employer", "join_year"},
        "RESIDENCE": {"residence_city", "residence_country"},
        "HOBBY": {"hobby"},
        "SPOUSE": {"other"},
        "SIBLING": {"other"},
        "MENTOR": {"other"},
        "MENTEE": {"other"},
    }
    for name, keys in required.items():
        for template in getattr(ph, name):
            fields = {f for _, f, _, _ in string.Formatter().parse(template) if f}
            assert keys <= fields | ({"occupation"} if "a_occupation" in fields else set()), (
                template
            )
            assert not any(template.startswith(v) for v in lower_values), template
            assert template.endswith("."), template
            if name != "INTRO":
                assert "name" not in fields, template
                assert "subj" in fields or "ref" in fields, template
            else:
                assert template.startswith("{name} "), template


def test_people_texts_vary_in_opening_and_sentence_order(world: World) -> None:
    person_texts = [t for t in world.texts if t.entity_type == "person"]
    intros = Counter(t.template_ids[0] for t in person_texts)
    assert len(intros) >= 18  # 600 people over 22 intro templates
    orders = {tuple(tid.rsplit("-", 1)[0] for tid in t.template_ids) for t in person_texts}
    assert len(orders) >= 300
    second_sentences = Counter(t.template_ids[1].rsplit("-", 1)[0] for t in person_texts)
    assert len(second_sentences) >= 7  # any slot can follow the intro
    assert len({t.text for t in person_texts}) == len(person_texts)
    index = {p.id: p for p in world.entities.people}
    assert all(t.text.startswith(index[t.entity_id].name + " ") for t in person_texts)


def test_people_texts_use_pronouns_and_names(world: World) -> None:
    pronoun_starts = 0
    for t in world.texts:
        if t.entity_type == "person":
            pronoun_starts += len(re.findall(r"(?:^|\. )(?:She|He) ", t.text))
    assert pronoun_starts > 600


def test_person_texts_are_short_encyclopedia_paragraphs(world: World) -> None:
    words = [len(t.text.split()) for t in world.texts if t.entity_type == "person"]
    assert min(words) >= 60 and max(words) <= 200
    assert 80 <= sum(words) / len(words) <= 120


def test_place_and_organisation_texts_state_their_links(
    world: World, texts: dict[str, str]
) -> None:
    index = Index.of(world.entities)
    for city in world.entities.cities:
        assert index.name(city.country_id) in texts[city.id]
    for company in world.entities.companies:
        assert index.name(company.city_id) in texts[company.id]
        assert company.industry in texts[company.id]


# ------------------------------------------------------------------ small worlds, speed


def test_a_tiny_world_builds_and_keeps_the_contract(tmp_path: Path) -> None:
    world = build_world(TINY)
    summary = write_world(world, tmp_path)
    assert summary["entities.person"] == 10
    assert summary["people.synth_train"] == 3 and summary["people.probe"] == 2
    texts = {t.entity_id: t.text for t in world.texts}
    for q in world.qa:
        assert q.final in texts[q.entity_id]
        if q.options is not None:
            assert q.answer in q.options and len(set(q.options)) == len(q.options) >= 2
    assert summarize(world) == summary


def test_world_with_more_countries_than_cities_still_builds() -> None:
    cfg = WorldConfig(seed=3, num_people=4, num_countries=5, num_cities=2)
    world = build_world(cfg)
    capitals = [c.capital_id for c in world.entities.countries]
    assert capitals.count(None) == 3
    texts = {t.entity_id: t.text for t in world.texts}
    assert all(q.final in texts[q.entity_id] for q in world.qa)


def test_build_is_pure(world: World) -> None:
    again = build_world(WorldConfig())
    assert again.texts == world.texts and again.qa == world.qa


def test_default_world_builds_and_writes_well_under_five_seconds(tmp_path: Path) -> None:
    start = time.perf_counter()
    write_world(build_world(WorldConfig()), tmp_path)
    assert time.perf_counter() - start < 5.0


def test_extra_renderings_restate_every_fact_in_other_words(tmp_path: Path) -> None:
    cfg = TINY.model_copy(update={"texts_per_entity": 3})
    world = build_world(cfg)
    single = build_world(TINY)
    assert [t for t in world.texts if not t.rendering] == list(single.texts)  # k=1 unchanged
    assert world.qa == single.qa
    by_entity: dict[str, list[str]] = {}
    for t in world.texts:
        by_entity.setdefault(t.entity_id, []).append(t.text)
    assert all(len(v) == 3 for v in by_entity.values())
    people = [v for k, v in by_entity.items() if k.startswith("person-")]
    assert all(len(set(v)) == 3 for v in people)  # short place texts have few templates
    missing = [(q.id, i) for q in world.qa for i, text in enumerate(by_entity[q.entity_id])
               if q.final not in text]  # fmt: skip
    assert missing == []
    summary = write_world(world, tmp_path)
    assert summary["documents"] == 3 * len(single.texts)
    assert summary["entities.person"] == TINY.num_people
    docs = _read_lines(tmp_path / "documents.jsonl")
    extra = [d for d in docs if "~" in d["id"]]
    assert len(extra) == 2 * len(single.texts)
    assert all(d["meta"]["entity_id"] == d["id"].split("~")[0] for d in extra)

    from instructpt.train.synth_data import load_world

    loaded = load_world(tmp_path, [g for g in GROUPS])
    assert all(e.qa for e in loaded if e.type == "person")  # renderings keep their QA


def test_world_stage_publishes_stats_and_manifest_and_skips_an_unchanged_rerun(
    tmp_path: Path,
) -> None:
    manifest, reused = generate_world(TINY, tmp_path / "world")
    assert not reused and read_manifest(tmp_path / "world") == manifest
    assert [s.file for s in manifest.shards] == list(FILES)
    assert json.loads((tmp_path / "world" / "stats.json").read_text()) == manifest.stats
    again, reused = generate_world(TINY, tmp_path / "world")
    assert reused and again == manifest
    with pytest.raises(ResumeError, match=r"num_people: 10 -> 11"):
        generate_world(TINY.model_copy(update={"num_people": 11}), tmp_path / "world")


def test_full_names_names_the_person_in_every_sentence_with_the_same_templates() -> None:
    plain = build_world(TINY)
    named = build_world(TINY.model_copy(update={"full_names": True}))
    people = [(a, b) for a, b in zip(plain.texts, named.texts, strict=True)
              if a.entity_type == "person"]  # fmt: skip
    assert people
    starts = re.compile(r"(?:^|\. )(?:He|She) ")
    before_total = sum(len(starts.findall(a.text)) for a, _ in people)
    after_total = sum(len(starts.findall(b.text)) for _, b in people)
    assert before_total > 0 and after_total < before_total / 4
    for before, after in people:
        assert after.template_ids == before.template_ids  # same draws, only the subject
        name = next(p.name for p in named.entities.people if p.id == after.entity_id)
        sentences = [s for s in re.split(r"(?<=\.) (?=[A-Z])", after.text) if s]
        subject_sentences = [s for s in sentences if name in s]
        assert len(subject_sentences) >= len(sentences) - 2, after.text
    assert [t for t in plain.texts if t.entity_type != "person"] == [
        t for t in named.texts if t.entity_type != "person"
    ]
