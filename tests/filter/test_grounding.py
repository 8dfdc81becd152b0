"""Form and grounding: each kind of bad pair is caught with its reason, clean pairs pass."""

from __future__ import annotations

import pytest

from instructpt.filter.config import FilterConfig
from instructpt.filter.grounding import TextGrounding, check_pair
from tests.filter.helpers import TEXT, cot, mc, pair

CFG = FilterConfig(max_answer_chars=300, progress=False)

CLEAN = [
    pair("Where was Mara Quill born?", "Dunmore"),
    pair("In which year was Mara Quill born?", "1962"),
    pair("What did she found?", "The Quill Glass Works."),
    pair("Did Mara Quill study chemistry?", "Yes"),
    mc("What did Mara Quill study?", ["Chemistry", "Law", "Music"], "Chemistry"),
    cot(
        "What does the company Mara Quill founded make?",
        "Mara Quill founded the Quill Glass Works. It makes lenses.",
        "lenses",
    ),
    cot(
        "Which subject did Mara Quill study?\nOptions:\n- Chemistry\n- Law",
        "She studied chemistry at Harlow University.",
        "Chemistry",
    ),
    pair(
        "Summarize Mara Quill's life.",
        "Mara Quill, born in Dunmore, studied chemistry at Harlow University and went on to "
        "found a glass company whose lenses serve photographers and astronomers alike.",
    ),
]

BAD = [
    (pair("Where did Mara Quill retire?", "Sunnyvale Beach"), "ungrounded"),
    (pair("When and where was Mara Quill born?", "Dunmore, 1963"), "ungrounded"),
    (
        pair(
            "What is the history of the company?",
            "It was bought by a multinational conglomerate in the nineties and moved its "
            "entire production overseas to cut its labour costs drastically.",
        ),
        "ungrounded",
    ),
    (mc("What did Mara Quill study?", ["Chemistry", "Law"], "Physics"), "mc_answer_not_option"),
    (
        mc("What did Mara Quill study?", ["Chemistry", "chemistry ", "Law"], "Chemistry"),
        "mc_duplicate_options",
    ),
    (mc("What did Mara Quill study?", ["Chemistry"], "Chemistry"), "mc_too_few_options"),
    (mc("What did Mara Quill study?", ["Chemistry", " ", "Law"], "Law"), "mc_empty_option"),
    (
        cot("Which subject did she study?\nOptions:\n- Chemistry\n- Law", "She studied it.", "Art"),
        "mc_answer_not_option",
    ),
    (pair("What does the company make?\nLet's think step by step.", "Lenses."), "cot_malformed"),
    (
        pair(
            "What does the company make?\nLet's think step by step.",
            "\nTherefore, the answer is lenses",
        ),
        "cot_malformed",
    ),
    (pair("Q?", "Dunmore"), "too_short"),
    (pair("Where was Mara Quill born?", "Dunmore " * 60), "too_long"),
    (pair("Mara Quill studied chemistry.", "mara quill studied CHEMISTRY"), "question_is_answer"),
]


@pytest.mark.parametrize("p", CLEAN, ids=lambda p: p["question"][:30])
def test_clean_pairs_are_kept(p):
    assert check_pair(p["question"], p["answer"], TextGrounding(TEXT), CFG) == (True, "")


@pytest.mark.parametrize(("p", "reason"), BAD, ids=[f"{r}-{i}" for i, (_, r) in enumerate(BAD)])
def test_each_bad_pair_is_caught_with_its_reason(p, reason):
    assert check_pair(p["question"], p["answer"], TextGrounding(TEXT), CFG) == (False, reason)


def test_a_changed_number_is_ungrounded_even_when_the_words_overlap():
    ground = TextGrounding(TEXT)
    assert check_pair("When and where?", "Dunmore, 1962", ground, CFG) == (True, "")
    assert check_pair("When and where?", "Dunmore, 1963", ground, CFG) == (False, "ungrounded")


def test_thresholds_are_configurable():
    answer = "Dunmore lenses telescopes Berlin Paris"  # 3 of 5 content words in the text
    ground = TextGrounding(TEXT)
    assert check_pair("What?", answer, ground, CFG) == (True, "")
    strict = FilterConfig(min_answer_overlap=0.8, progress=False)
    assert check_pair("What?", answer, ground, strict) == (False, "ungrounded")
