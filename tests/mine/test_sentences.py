"""The rule-based sentence splitter: abbreviations, initials, decimals, titles, wrapping."""

from __future__ import annotations

from instructpt.mine.sentences import split_sentences


def test_abbreviations_initials_and_decimals_do_not_end_a_sentence():
    text = (
        "Dr. Smith met J. K. Rowling in the U.S. last May. It cost 3.50 dollars, e.g. Cheap. Wow!"
    )
    assert split_sentences(text) == [
        "Dr. Smith met J. K. Rowling in the U.S. last May.",
        "It cost 3.50 dollars, e.g. Cheap.",
        "Wow!",
    ]


def test_a_title_line_is_its_own_sentence_and_wrapped_lines_are_joined():
    text = (
        "A Title Here\nThe first line of a paragraph that was hard wrapped at some width\n"
        "and goes on here. Second.\n\n  New   paragraph."
    )
    assert split_sentences(text) == [
        "A Title Here",
        "The first line of a paragraph that was hard wrapped at some width and goes on here.",
        "Second.",
        "New paragraph.",
    ]


def test_quotes_close_a_sentence():
    assert split_sentences('He said "Stop." Then he left.') == ['He said "Stop."', "Then he left."]


def test_empty_text_has_no_sentences():
    assert split_sentences(" \n\n ") == []
