"""One text: limits, determinism, grounding, and well-formed pairs on real paragraphs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from instructpt.core.config import build_config
from instructpt.errors import ConfigError
from instructpt.mine.config import MineConfig
from instructpt.mine.miner import ALL_FAMILIES, mine_text
from instructpt.synth.format import (
    COT_MARK,
    Pair,
    parse_completion,
    render_pairs,
    split_chain_of_thought,
    split_multiple_choice,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "paragraphs.jsonl"
CFG = MineConfig(num_workers=1, progress=False)


def _paragraphs() -> list[dict]:
    return [json.loads(line) for line in FIXTURES.read_text("utf-8").splitlines()]


def test_fixture_paragraphs_cover_four_genres_three_each():
    genres = [p["meta"]["genre"] for p in _paragraphs()]
    assert sorted(genres) == sorted(["news", "encyclopedic", "technical", "narrative"] * 3)


@pytest.mark.parametrize("doc", _paragraphs(), ids=lambda d: d["id"])
def test_every_pair_on_real_paragraphs_is_well_formed_and_grounded(doc):
    pairs, stats = mine_text(doc["id"], doc["text"], CFG)
    assert pairs, "every fixture paragraph yields pairs"
    assert len(pairs) <= CFG.max_pairs and stats["kept"] == len(pairs)
    assert sum(v for k, v in stats.items() if k.startswith("family_")) == len(pairs)
    assert all(v <= CFG.max_per_family for k, v in stats.items() if k.startswith("family_"))
    assert stats.get("dropped_ungrounded", 0) == 0
    # The synthesizer format round-trips: render, parse, same pairs, nothing dropped.
    parsed = parse_completion(render_pairs(pairs))
    assert parsed.pairs == pairs and not parsed.dropped
    flat = re.sub(r"\s+", " ", doc["text"])
    for p in pairs:
        assert "\n" not in p.answer or COT_MARK in p.question
        mc = split_multiple_choice(p.question)
        if mc is not None:
            assert p.answer in mc[1]
        elif p.question.endswith(COT_MARK):
            reasoning, final = split_chain_of_thought(p.answer)
            assert final in flat and reasoning
        else:
            assert p.answer in flat  # extractive: copied from the text


def test_families_together_yield_every_family_on_the_fixtures():
    cfg = MineConfig(num_workers=1, max_pairs=50)
    seen = set()
    for doc in _paragraphs():
        _, stats = mine_text(doc["id"], doc["text"], cfg)
        seen |= {k[len("family_") :] for k in stats if k.startswith("family_")}
    assert seen == set(ALL_FAMILIES)


def test_a_title_with_or_without_a_final_period_gives_the_same_title_and_summary():
    body = (
        "Ada Lovelace was an English mathematician and writer. She worked on Charles "
        "Babbage's Analytical Engine. Her notes include the first published algorithm. "
        "She died in 1852."
    )
    cfg = MineConfig(num_workers=1, families=["title", "summarize"])
    expected = [
        Pair("What is a suitable title for this text?", "Ada Lovelace"),
        Pair(
            "Summarize the text in one sentence.",
            "Ada Lovelace was an English mathematician and writer.",
        ),
    ]
    assert mine_text("ada", "Ada Lovelace.\n" + body, cfg)[0] == expected
    assert mine_text("ada", "Ada Lovelace\n" + body, cfg)[0] == expected
    assert mine_text("ada", body, cfg)[0] == []
    sentence_first = "It rained all day.\n" + body
    assert mine_text("rain", sentence_first, cfg)[0] == []


def test_same_id_same_pairs_and_the_seed_changes_the_draw():
    doc = _paragraphs()[0]
    first, _ = mine_text(doc["id"], doc["text"], CFG)
    assert mine_text(doc["id"], doc["text"], CFG)[0] == first
    draws = {
        tuple(mine_text(doc["id"], doc["text"], MineConfig(num_workers=1, seed=s))[0])
        for s in range(6)
    }
    assert len(draws) > 1


def test_questions_are_unique_case_insensitively_and_limits_hold():
    text = " ".join(
        f"Sensor {i} in the north hall failed last night because cable {i} was cut."
        for i in range(20)
    )
    cfg = MineConfig(
        num_workers=1, families=["cause_effect", "completion"], max_per_family=3, max_pairs=4
    )
    pairs, stats = mine_text("x", text, cfg)
    assert len(pairs) == 4
    assert len({p.question.lower() for p in pairs}) == 4
    assert stats["family_cause_effect"] == 2 and stats["family_completion"] == 2  # turns
    assert stats["dropped_text_limit"] > 0


def test_disabling_a_family_does_not_change_the_others_draws():
    doc = _paragraphs()[3]
    alone, _ = mine_text(doc["id"], doc["text"], MineConfig(num_workers=1, families=["completion"]))
    together, _ = mine_text(doc["id"], doc["text"], MineConfig(num_workers=1, max_pairs=50))
    assert all(p in together for p in alone)


def test_empty_overlong_and_tagged_texts_still_give_a_result():
    assert mine_text("e", "  \n ", CFG) == ([], {"empty": 1})
    head = "Heavy rain fell overnight. As a result, the river burst its banks."
    long_text = head + " The Zebra Quokka is a rare animal that lives on one island." * 9
    pairs, stats = mine_text("l", long_text, MineConfig(num_workers=1, max_chars=len(head)))
    assert stats["truncated"] == 1 and pairs
    assert all("Quokka" not in p.question + p.answer for p in pairs)
    tagged = "The tag <QUE> marks a question in the format. As a result, parsers split on the tag."
    pairs, stats = mine_text("t", tagged, CFG)
    assert stats["dropped_stray_tag"] >= 1
    assert all("<QUE>" not in p.question + p.answer for p in pairs)


def test_answer_length_limits_are_counted():
    text = "Heavy rain fell overnight. As a result, the river burst its banks."
    _, stats = mine_text(
        "x", text, MineConfig(num_workers=1, max_answer_chars=5, families=["cause_effect"])
    )
    assert stats["dropped_answer_too_long"] == 2


def test_config_rejects_unknown_or_repeated_families_naming_the_key():
    with pytest.raises(ConfigError, match="families"):
        build_config(MineConfig, {"families": ["fact", "poetry"]})
    with pytest.raises(ConfigError, match="once"):
        build_config(MineConfig, {"families": ["fact", "fact"]})
    with pytest.raises(ConfigError, match="did you mean 'max_pairs'"):
        build_config(MineConfig, {"max_pair": 3})


def test_worker_count_and_progress_do_not_change_the_config_hash():
    assert (
        MineConfig(num_workers=1).config_hash()
        == MineConfig(num_workers=7, progress=False).config_hash()
    )
    assert MineConfig(seed=1).config_hash() != MineConfig(seed=2).config_hash()
