"""The biography family: references resolved to the main subject, every attribute asked."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from instructpt.mine.biography import biography, main_subject
from instructpt.mine.sentences import split_sentences
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "paragraphs.jsonl"

BIO = (
    "Ada Quillfeather is a respected chemist. She was born on 4 May 1961 in Lowmarsh, a city "
    "in Vendria. Quillfeather studied geology at Harrow Bay University in Tessford. She "
    "graduated in 1984. She works for Ostwind Mining, a firm based in Tessford. She joined "
    "Ostwind Mining in 1990. Today she resides in Tessford in Vendria. In her spare time, "
    "she enjoys rowing. Ada Quillfeather is married to Bram Oakhollow. She has a sibling, "
    "Cleo Quillfeather. Ada Quillfeather was mentored by Dina Marsh."
)


def _pairs(text: str) -> dict[str, str]:
    cands = biography("d", text, split_sentences(text), random.Random(0))
    assert all(c["family"] == "biography" and c["extractive"] for c in cands)
    return {c["question"]: c["answer"] for c in cands}


def test_every_attribute_of_a_biography_is_asked_about_its_main_subject():
    assert _pairs(BIO) == {
        "When was Ada Quillfeather born?": "4 May 1961",
        "In which year was Ada Quillfeather born?": "1961",
        "Where was Ada Quillfeather born?": "Lowmarsh",
        "Which university did Ada Quillfeather attend?": "Harrow Bay University",
        "What did Ada Quillfeather study?": "geology",
        "When did Ada Quillfeather graduate?": "1984",
        "Which company does Ada Quillfeather work for?": "Ostwind Mining",
        "When did Ada Quillfeather join Ostwind Mining?": "1990",
        "Where does Ada Quillfeather live?": "Tessford",
        "What is Ada Quillfeather's hobby?": "rowing",
        "Who is Ada Quillfeather's spouse?": "Bram Oakhollow",
        "Who is Ada Quillfeather's sibling?": "Cleo Quillfeather",
    }


def test_the_city_wins_over_the_country_and_mentors_are_skipped():
    text = (
        "Bo Lindqvist is a pilot. He was born in Vendria, in the city of Lowmarsh, on "
        "2 June 1970. He was mentored by Cy Brandt. Cy Brandt mentored him well."
    )
    pairs = _pairs(text)
    assert pairs["Where was Bo Lindqvist born?"] == "Lowmarsh"
    assert not any("mentor" in q for q in pairs)


def test_texts_not_about_one_named_person_yield_nothing():
    assert main_subject(split_sentences("She was born in Lowmarsh in 1961.")) is None
    assert _pairs("She was born on 4 May 1961 in Lowmarsh. She studied geology.") == {}
    # Real prose of many kinds: silent unless a text is about one named person.
    mined = {}
    for line in FIXTURES.read_text("utf-8").splitlines():
        doc = json.loads(line)
        if pairs := _pairs(doc["text"]):
            mined[doc["id"]] = pairs
    assert mined == {
        "enc-painter": {
            "When was Maria Lindqvist born?": "12 June 1911",
            "In which year was Maria Lindqvist born?": "1911",
            "Where was Maria Lindqvist born?": "Uppsala",
            "Which university did Maria Lindqvist attend?": "Royal Academy of Fine Arts",
        }
    }


def test_a_relation_sentence_with_two_other_people_is_ambiguous_and_skipped():
    text = "Ada Quillfeather is a chemist. She and Bram Oakhollow married after Cleo Marsh left."
    assert _pairs(text) == {}


def test_on_the_demo_world_every_pair_matches_the_ground_truth(tmp_path):
    """Precision 100% and recall >= 90% for the attributes every biography states."""
    cfg = WorldConfig(
        seed=11,
        num_people=40,
        num_countries=3,
        num_cities=6,
        num_universities=3,
        num_companies=5,
        texts_per_entity=2,
    )
    write_world(build_world(cfg), tmp_path)
    gold: dict[str, dict[str, str]] = defaultdict(dict)
    for line in (tmp_path / "qa.jsonl").read_text("utf-8").splitlines():
        q = json.loads(line)
        if q["kind"] == "open":
            gold[q["entity_id"]][q["attribute"]] = q["final"]
    attribute_of = {
        "which year": "birth_year",
        "When was": "birth_date",
        "born?": "birth_city",
        "university": "university",
        "study?": "field",
        "graduate?": "graduation_year",
        "work for?": "employer",
        " join ": "join_year",
        "live?": "residence_city",
        "hobby": "hobby",
        "spouse": "spouse",
        "sibling": "sibling",
    }
    found: dict[str, int] = defaultdict(int)
    texts = 0
    for line in (tmp_path / "documents.jsonl").read_text("utf-8").splitlines():
        doc = json.loads(line)
        if doc["meta"]["entity_type"] != "person":
            continue
        texts += 1
        entity = doc["meta"].get("entity_id", doc["id"])
        for question, answer in _pairs(doc["text"]).items():
            attr = next(a for k, a in attribute_of.items() if k in question)
            assert gold[entity][attr] == answer, (doc["id"], question, answer)
            found[attr] += 1
    assert texts == 40 * 2
    for attr in ("birth_city", "birth_date", "university", "employer", "residence_city"):
        assert found[attr] >= 0.9 * texts, attr
    for attr in ("field", "graduation_year", "join_year", "hobby"):
        assert found[attr] >= 0.8 * texts, attr
