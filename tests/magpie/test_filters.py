"""Each Magpie filter on planted cases."""

from __future__ import annotations

import pytest

from instructpt.magpie.config import MagpieConfig
from instructpt.magpie.filters import (
    MagpieFilters,
    is_refusal,
    leaked_marker,
    repeated_ngram_ratio,
)


def filters(**overrides) -> MagpieFilters:
    cfg = MagpieConfig(model="m", **overrides)
    return MagpieFilters(cfg, ["<|eot_id|>", "<|begin_of_text|>"])


def test_repeated_ngram_ratio_counts_repeats_of_earlier_ngrams():
    assert repeated_ngram_ratio("one two three four five", 3) == 0.0
    # 8 trigrams, 3 distinct: "a b c", "b c a", "c a b"
    assert repeated_ngram_ratio("a b c a b c a b c a", 3) == pytest.approx(5 / 8)
    assert repeated_ngram_ratio("too short", 3) == 0.0


def test_leaked_marker_names_the_marker():
    assert leaked_marker("hi <|eot_id|> there", ["<|im_end|>", "<|eot_id|>"]) == "<|eot_id|>"
    assert leaked_marker("plain text", ["<|eot_id|>"]) is None


@pytest.mark.parametrize(
    "text",
    ["I'm sorry, but I can't help.", "As an AI, I cannot say.", "I\u2019m unable to do that."],
)
def test_refusals_are_found_near_the_start(text):
    assert is_refusal(text, MagpieConfig(model="m").refusal_phrases, 200)


def test_a_refusal_phrase_beyond_the_window_is_not_a_refusal():
    text = "Varn is the capital of Ostland. " * 10 + "I'm sorry for the long answer."
    assert not is_refusal(text, ["i'm sorry"], 200)


@pytest.mark.parametrize(
    ("query", "ended", "reason"),
    [
        ("Where was Ada Brook born?", True, ""),
        ("Where was Ada Brook born", False, "query_unterminated"),
        ("   ", True, "query_empty"),
        ("Hi?", True, "query_too_short"),
        ("Where is<|begin_of_text|> Varn?", True, "query_template_leak"),
        ("river river river river river river river", True, "query_repetitive"),
        ("x" * 5000, True, "query_too_long"),
        ("juggling\x15ame Touhe spent fishing", True, "query_control_chars"),
        ("Where was Ada\tBrook born?\nSay it briefly.", True, ""),
    ],
)
def test_query_checks(query, ended, reason):
    assert filters().query(query, ended) == reason


@pytest.mark.parametrize(
    ("output", "ended", "reason"),
    [
        ("Ada Brook was born in Lowmere.", True, ""),
        ("Ada Brook was born in", False, "response_truncated"),
        ("", True, "response_empty"),
        ("I'm sorry, but I cannot share secrets.", True, "response_refusal"),
        ("flows river flows river flows river flows river", True, "response_repetitive"),
        ("Lowmere<|eot_id|>", True, "response_template_leak"),
        ("Low\x7fmere", True, "response_control_chars"),
    ],
)
def test_response_checks(output, ended, reason):
    assert filters().response(output, ended) == reason


def test_truncated_responses_are_kept_when_asked():
    assert filters(drop_truncated=False).response("Ada Brook was born in", False) == ""


def test_length_limits_come_from_the_config():
    f = filters(min_instruction_chars=30, max_output_chars=5)
    assert f.query("Where was Ada Brook born?", True) == "query_too_short"
    assert f.response("Lowmere.", True) == "response_too_long"


def test_near_duplicate_queries_lose_to_the_first_kept_one_across_calls():
    f = filters()
    first = f.duplicates(["Where was Ada Brook born?", "Who founded Calder Mills?"])
    second = f.duplicates(
        [
            "where was Ada Brook born",
            "Which company does Tom Reed work for?",
            "Who founded Calder Mills?",
        ]
    )
    assert first == [False, False]
    assert second == [True, False, True]


def test_dedup_can_be_switched_off():
    assert filters(dedup=False).duplicates(["Same question?", "Same question?"]) == [False, False]
