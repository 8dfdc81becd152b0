"""The synthesizer quality evaluator on planted completions: right, wrong, unmatched, broken."""

from __future__ import annotations

import json

from instructpt.synth.engines.base import Completion
from instructpt.synth.format import Pair, chain_of_thought_answer, render_pairs
from instructpt.train.synth_eval import EvalItem, pair_kind, score_completions

TEXT = (
    "Ada Quill was born in Hildvale in 1815. She studied mathematics at Brenmoor University "
    "and works for Talvex as an engineer. Hildvale is a city in Buxestan."
)
GOLD = EvalItem(
    "person-1",
    TEXT,
    gold=(
        ("What year was Ada Quill born in?", "1815"),
        ("Where was Ada Quill born?", "Hildvale"),
        ("Which company does Ada Quill work for?", "Talvex"),
        ("Which country was Ada Quill born in?\nLet's think step by step.", "Buxestan"),
    ),
    labels=(
        ("birth_year", "open"),
        ("birth_city", "open"),
        ("employer", "open"),
        ("birth_country", "cot"),
    ),
)


def _done(pairs: list[Pair]) -> Completion:
    text = render_pairs(pairs)
    return Completion(text, "stop", 0, len(text.split()))


def test_planted_right_and_wrong_pairs_are_scored_exactly(tmp_path) -> None:
    cot = chain_of_thought_answer(
        "Ada Quill was born in Hildvale. Hildvale is a city in Buxestan.", "Buxestan"
    )
    planted = [
        Pair("What year was Ada Quill born in?", "1815"),  # right
        Pair(
            "Where was Ada Quill born?\nOptions:\n- Talvex\n- Hildvale\n- Buxestan", "Talvex"
        ),  # wrong option (grounded: Talvex is in the text)
        Pair("Which company does Ada Quill work for?", "The Talvex."),  # right after norm
        Pair("Which country was Ada Quill born in?\nLet's think step by step.", cot),  # right
        Pair("What is Ada Quill's favourite colour?", "green"),  # no gold question: wrong
    ]
    other = EvalItem(
        "person-2",
        "Bo Lin lives in Orvale.",
        (("Where does Bo Lin live?", "Orvale"),),
        (("residence_city", "open"),),
    )
    broken = Completion("<QUE>Where does Bo Lin live?<ANS>Orv", "length", 0, 9)
    samples = tmp_path / "samples.jsonl"
    m = score_completions([GOLD, other], [_done(planted), broken], 0.5, samples)

    assert m["texts"] == 2 and m["pairs"] == 5 and m["parse_yield"] == 0.5
    assert m["correct_fraction"] == 3 / 5
    assert m["question_matched_fraction"] == 4 / 5
    assert m["correct_attributes_per_text"] == 3 / 2  # birth_year, employer, birth_country
    assert m["dropped"] == {"truncated": 1} and m["stopped_fraction"] == 0.5
    by = m["by_label"]
    assert by["kind:mc"] == {"pairs": 1, "correct_fraction": 0.0}
    assert by["kind:cot"] == {"pairs": 1, "correct_fraction": 1.0}
    assert by["attribute:unmatched"] == {"pairs": 1, "correct_fraction": 0.0}
    assert by["attribute:birth_city"]["correct_fraction"] == 0.0
    # "green" is nowhere in the text: the grounding filter drops it, nothing else
    assert m["grounded_fraction"] == 4 / 5 and sum(m["ungrounded_reasons"].values()) == 1
    rows = [json.loads(line) for line in samples.read_text().splitlines()]
    assert [p["correct"] for p in rows[0]["pairs"]] == [True, False, True, True, False]
    assert rows[1]["pairs"] == []


def test_a_generated_question_is_typed_by_its_own_form() -> None:
    assert pair_kind("Where was Ada born?") == "open"
    assert pair_kind("Where was Ada born?\nOptions:\n- A\n- B") == "mc"
    assert pair_kind("Where was Ada born?\nLet's think step by step.") == "cot"


def test_no_completion_scores_zero_without_dividing_by_zero() -> None:
    m = score_completions([GOLD], [Completion("", "length", 0, 0)])
    assert m["parse_yield"] == 0.0 and m["correct_fraction"] == 0.0 and m["pairs"] == 0


def test_world_gold_holds_every_phrasing_of_each_attribute(tmp_path) -> None:
    from instructpt.train.synth_data import load_world
    from instructpt.train.synth_eval import world_eval_items
    from instructpt.world.config import WorldConfig
    from instructpt.world.stage import generate_world

    world = tmp_path / "world"
    generate_world(WorldConfig(num_people=12, num_countries=2, num_cities=4), world)
    entities = load_world(world, ["augment", "probe"])
    (item,) = world_eval_items(entities, 1, seed=0, types=["person"])
    person = next(e for e in entities if e.id == item.id)
    occupation = next(qa for qa in person.qa if qa["attribute"] == "occupation")
    asked = {q for q, _ in item.gold}
    others = [
        q.format(name=person.name, poss="her")
        for q in ("What does {name} do for a living?", "What job does {name} have?")
    ]
    assert occupation["question"] in asked and all(q in asked for q in others)
    # a pair in another phrasing of the world, with the true value, is right; a wrong value is not
    right = Completion(render_pairs([Pair(others[1], occupation["final"])]), "stop", 0, 1)
    wrong = Completion(render_pairs([Pair(others[1], "juggler of moons")]), "stop", 0, 1)
    assert score_completions([item], [right])["correct_fraction"] == 1.0
    assert score_completions([item], [wrong])["correct_fraction"] == 0.0
    assert score_completions([item], [right])["by_label"]["attribute:occupation"]["pairs"] == 1
