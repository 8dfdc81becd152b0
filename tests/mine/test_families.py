"""Each task family turns specific sentences into specific pairs (exact strings)."""

from __future__ import annotations

import random

import pytest

from instructpt.mine import families as fam
from instructpt.mine.sentences import split_sentences
from instructpt.synth.format import COT_MARK, split_chain_of_thought, split_multiple_choice


def _mine(family: str, text: str, seed: int = 0) -> list[tuple[str, str]]:
    fn = fam.FAMILIES[family]
    return [
        (c["question"], c["answer"])
        for c in fn("d", text, split_sentences(text), random.Random(seed))
    ]


NEWS = "Storm Closes Coastal Roads\nHigh winds hit the coast. Roads closed. Schools shut early."


def test_a_title_line_is_asked_for_and_the_lead_sentence_summarizes():
    assert _mine("title", NEWS) == [
        ("What is a suitable title for this text?", "Storm Closes Coastal Roads")
    ]
    assert _mine("summarize", NEWS) == [
        ("Summarize the text in one sentence.", "High winds hit the coast.")
    ]


def test_no_title_when_the_first_line_ends_a_sentence_or_the_body_is_short():
    assert _mine("title", "High winds hit the coast.\nRoads closed.") == []
    assert _mine("summarize", "Storm Closes Roads\nHigh winds hit the coast. Roads closed.") == []


ADA_BODY = (
    "Ada Lovelace was an English mathematician and writer. She worked on Charles Babbage's "
    "Analytical Engine. Her notes include the first published algorithm. She died in 1852."
)


@pytest.mark.parametrize(
    ("text", "expected_title"),
    [
        ("Ada Lovelace.\n" + ADA_BODY, "Ada Lovelace"),
        (
            "The Battle of Hastings.\nThe Battle of Hastings was fought on 14 October 1066. "
            "The Norman army defeated the English. King Harold died. William was crowned.",
            "The Battle of Hastings",
        ),
        (  # sentence case: the lead repeats every content word ("paintings")
            "Cave painting.\nIn archaeology, cave paintings are a type of parietal art. "
            "They are found on the walls of caves. Many are very old. Some show animals.",
            "Cave painting",
        ),
        (  # a bracketed qualifier need not be repeated, and stays in the title
            "Bark (botany).\nBark is the outermost layer of stems and roots of woody plants. "
            "Trees have bark. Shrubs have bark. Vines have bark.",
            "Bark (botany)",
        ),
        (  # the period of an abbreviation belongs to the title
            "Apple Inc.\nApple Inc. is an American company that makes phones. It was founded "
            "in 1976. It is based in California. It sells computers.",
            "Apple Inc.",
        ),
    ],
)
def test_a_title_line_ending_in_a_period_is_asked_for_without_the_period(text, expected_title):
    assert _mine("title", text) == [("What is a suitable title for this text?", expected_title)]
    first_body_sentence = split_sentences(text)[1]
    assert _mine("summarize", text) == [
        ("Summarize the text in one sentence.", first_body_sentence)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "It rained all day.\nThe streets flooded by noon. Schools closed early. Buses stopped.",
        # Repeats "river", but "rose" and "day" are not repeated, and it is not Title Case.
        "The river rose all day.\nBy evening the river had flooded the lower town. "
        "Shops closed. People left.",
        "The river was high.\nThe river was higher than it had been for years. Shops closed.",
        "Hi John.\nJohn, thank you for the long letter you sent me last week. It came. Bye.",
        # Title Case, but two sentences on the line.
        "Storm Hits Coast. Roads Close.\nHigh winds hit the coast on Monday night. Roads "
        "closed. Schools shut.",
        # Title Case, but no full sentence longer than the line follows.
        "Storm Hits Coast.\nRoads closed. Schools shut early. Buses stopped.",
        "Storm Hits Coast...\nHigh winds hit the coast on Monday night. Roads closed. Schools.",
    ],
)
def test_an_ordinary_first_sentence_ending_in_a_period_is_no_title(text):
    assert _mine("title", text) == []
    assert _mine("summarize", text) == []


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        (
            "The mitochondrion is an organelle that produces energy for the cell.",
            ("What is the mitochondrion?", "an organelle that produces energy for the cell"),
        ),
        (
            "Osmosis refers to the movement of water across a membrane.",
            ("What does Osmosis refer to?", "the movement of water across a membrane"),
        ),
        (
            "The state of charge is defined as the available capacity of a cell.",
            ("How is the state of charge defined?", "the available capacity of a cell"),
        ),
        (
            "The Big Apple, also known as New York City, never sleeps.",
            ("What is another name for the Big Apple?", "New York City"),
        ),
    ],
)
def test_definitional_sentences_answer_what_is(text, pair):
    assert pair in _mine("word_to_text", text)


def test_a_salient_name_asks_for_a_sentence_that_uses_it():
    text = "The lamp failed, and the keeper, an old man named Elias Brandt, was ill."
    assert (
        "Write a sentence using the name 'Elias Brandt'.",
        text,
    ) in _mine("word_to_text", text)


def test_pronoun_subjects_are_not_defined():
    assert _mine("word_to_text", "It is a long way to the harbour from here.") == []


def test_connectives_label_entailment_without_giving_it_away():
    pairs = _mine("nli", "Heavy rain fell overnight. As a result, the river burst its banks.")
    assert pairs == [
        (
            'Does the sentence "Heavy rain fell overnight." entail the sentence '
            '"The river burst its banks."?\nOptions:\n- Yes\n- It is not possible to tell\n- No',
            "Yes",
        )
    ]
    ((question, answer),) = _mine(
        "nli", "The drug lowered fever. However, it caused nausea in some."
    )
    stem, options = split_multiple_choice(question)
    assert answer == "No" and answer in options and "However" not in stem
    ((_, answer),) = _mine("nli", "The bridge is old. Moreover, it carries heavy lorries daily.")
    assert answer == "It is not possible to tell"


def test_as_a_result_across_sentences_gives_cause_and_effect():
    pairs = _mine(
        "cause_effect", "Heavy rain fell overnight. As a result, the river burst its banks."
    )
    assert pairs == [
        ('What is the cause of "the river burst its banks"?', "Heavy rain fell overnight"),
        ('What is an effect of "heavy rain fell overnight"?', "the river burst its banks"),
    ]


@pytest.mark.parametrize(
    ("text", "cause", "effect"),
    [
        (
            "The match was cancelled because the pitch was flooded.",
            "the pitch was flooded",
            "The match was cancelled",
        ),
        (
            "Due to a shortage of parts, the factory closed for a week.",
            "a shortage of parts",
            "the factory closed for a week",
        ),
        (
            "The shop ran out of bread, so the baker worked through the night.",
            "The shop ran out of bread",
            "the baker worked through the night",
        ),
    ],
)
def test_causal_patterns_inside_a_sentence(text, cause, effect):
    for seed in range(4):  # the cause question is sometimes asked with chain of thought
        pairs = dict(_mine("cause_effect", text, seed))
        effect_q = f'What is an effect of "{cause[0].lower() + cause[1:]}"?'
        assert pairs[effect_q] == effect
        cause_q = next(q for q in pairs if q.startswith("What is the cause"))
        if cause_q.endswith(COT_MARK):
            reasoning, final = split_chain_of_thought(pairs[cause_q])
            assert final == cause and text in reasoning
        else:
            assert pairs[cause_q] == cause


def test_chain_of_thought_is_drawn_for_some_links():
    text = "The match was cancelled because the pitch was flooded."
    kinds = {q.endswith(COT_MARK) for s in range(8) for q, _ in _mine("cause_effect", text, s)}
    assert kinds == {True, False}


def test_so_that_is_purpose_not_effect():
    assert _mine("cause_effect", "She saved money for months, so that she could travel.") == []


def test_restatements_are_paraphrases():
    assert _mine("paraphrase", "The enzyme is thermolabile, i.e. it breaks down when heated.") == [
        ("Rephrase: The enzyme is thermolabile", "it breaks down when heated")
    ]
    text = "The tax applies to every household. In other words, nobody is exempt from it."
    assert _mine("paraphrase", text) == [
        ("Rephrase: The tax applies to every household", "nobody is exempt from it")
    ]
    assert _mine("paraphrase", "The box that is red holds the spare keys for the shed.") == []


def test_completion_splits_a_long_sentence_near_the_middle_at_a_word_boundary():
    text = (
        "The committee met on Monday and agreed to publish its final report before the end "
        "of the month."
    )
    ((question, answer),) = _mine("completion", text)
    first = question.removeprefix("How would you complete this sentence: '").removesuffix("'?")
    assert f"{first} {answer}" == text
    assert len(answer.split()) >= 3 and abs(len(first.split()) - 9) <= 3
    assert _mine("completion", "Too short to complete.") == []


def test_completion_never_cuts_inside_a_name():
    text = (
        "She specialised in linguistics while at Saevaily College, which is located in Vyldhaven."
    )
    for seed in range(6):
        ((question, _),) = _mine("completion", text, seed)
        assert not question.endswith("Saevaily'?")


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        (
            "Ada Lovelace was born in London on 10 December 1815.",
            [
                ("Where was Ada Lovelace born?", "London"),
                ("When was Ada Lovelace born?", "10 December 1815"),
            ],
        ),
        (
            "Grace Hopper joined the United States Navy in 1943.",
            [
                ("When did Grace Hopper join the United States Navy?", "1943"),
                ("Who employs Grace Hopper?", "the United States Navy"),
            ],
        ),
        (
            "Alan Turing is a British mathematician.",
            [("What is Alan Turing's profession?", "mathematician")],
        ),
        (
            "Kokrer Trurithsby is a dedicated food scientist.",
            [("What is Kokrer Trurithsby's profession?", "food scientist")],
        ),
        ("Jo Bloggs works for U.S. Steel in Ohio.", [("Who employs Jo Bloggs?", "U.S. Steel")]),
        (
            "Sam Ode founded Brightway Robotics in 2016.",
            [
                ("Who founded Brightway Robotics?", "Sam Ode"),
                ("When did Sam Ode found Brightway Robotics?", "2016"),
            ],
        ),
    ],
)
def test_fact_sentences_about_named_people(text, pairs):
    assert _mine("fact", text) == pairs


@pytest.mark.parametrize(
    "text",
    [
        "She was born in Leeds on 4 March 1984.",  # a pronoun is never resolved
        "Dileimoor is a city located in the country of Vaeovia.",  # not a profession
        "Nibrei Gairic is a mentee of Kokrer Trurithsby.",  # a relation, not a job
        "Britain joined the European Union in 1973 after a long debate.",
    ],
)
def test_fact_stays_silent_without_a_named_person_and_a_fact(text):
    pairs = _mine("fact", text)
    assert all("employs Britain" not in q for q, _ in pairs)
    if not text.startswith("Britain"):
        assert pairs == []
