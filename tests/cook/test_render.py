"""Rendering one text or chain: determinism, drops by reason, tags, and correct MC answers."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.render import (
    apply_template,
    cook_chain,
    cook_record,
    option_label,
    prepare_pair,
)
from instructpt.cook.templates import (
    NONE_OF_THE_ABOVE,
    OPTION_STYLES,
    PAIR_TEMPLATES,
    TEMPLATE_SET_VERSION,
)
from instructpt.synth.format import COT_MARK, TAGS
from instructpt.world import build_world
from instructpt.world.config import WorldConfig

CFG = CookConfig(progress=False)
GOOD = [
    {"question": "What is the capital of Brethorra?", "answer": "Garnmere"},
    {
        "question": "Which language is spoken in Brethorra?\nOptions:\n- Thixish\n- Kythish\n- "
        "Bousaeric",
        "answer": "Kythish",
    },
    {
        "question": "Which country is Garnmere in?\nLet's think step by step.",
        "answer": "Garnmere is the capital of Brethorra.\nTherefore, the answer is Brethorra",
    },
]
RECORD = {
    "id": "country-0001",
    "text": "Brethorra is a country; its capital city is Garnmere. Its language is Kythish.",
    "pairs": GOOD,
}


def test_same_input_and_seed_cook_to_the_same_bytes():
    assert cook_record(RECORD, CFG) == cook_record(dict(RECORD), CookConfig(progress=False))


def test_another_seed_or_id_cooks_differently():
    base = cook_record(RECORD, CFG)["text"]
    others = [cook_record(RECORD, CookConfig(progress=False, seed=s))["text"] for s in range(1, 6)]
    assert any(o != base for o in others)
    renamed = [cook_record({**RECORD, "id": f"x{i}"}, CFG)["text"] for i in range(5)]
    assert any(o != base for o in renamed)


def test_cooked_record_fields():
    out = cook_record(RECORD, CFG)
    assert set(out) == {"id", "text", "source", "lineage", "template", "template_set"}
    assert out["id"] == "country-0001" and out["lineage"] == ["country-0001"]
    assert out["source"] == "instruct" and out["template_set"] == TEMPLATE_SET_VERSION
    assert RECORD["text"] in out["text"]
    assert len(out["template"]) >= 2  # a layout and at least one pair template
    assert "Garnmere" in out["text"] and "Brethorra" in out["text"]


def test_global_rng_is_neither_used_nor_disturbed():
    random.seed(1)
    expected = random.random()
    random.seed(1)
    first = cook_record(RECORD, CFG)
    assert random.random() == expected
    random.seed(99)
    assert cook_record(RECORD, CFG) == first


MCQ = "Which?\nOptions:\n- Tarrow\n- Lindmoor"
COTQ = "Why?\nLet's think step by step."
BAD = [
    ({"question": MCQ, "answer": "Veldholt"}, "mc_answer_not_in_options"),
    ({"question": COTQ, "answer": "Because it is."}, "cot_without_final"),
    ({"question": COTQ, "answer": "\nTherefore, the answer is x"}, "cot_without_reasoning"),
    ({"question": "Which?\nOptions:\n- Tarrow", "answer": "Tarrow"}, "mc_too_few_options"),
    ({"question": "Which?\nOptions:\n- Tarrow\n- \n- Lind", "answer": "Lind"}, "mc_empty_option"),
    ({"question": MCQ + "\n- tarrow", "answer": "Tarrow"}, "mc_duplicate_options"),
    ({"question": "  ", "answer": "x"}, "empty"),
    ({"question": "Where?", "answer": ""}, "empty"),
    ({"question": "Where?"}, "malformed"),
    ("not a pair", "malformed"),
]


@pytest.mark.parametrize(("pair", "reason"), BAD, ids=[r for _, r in BAD])
def test_unrenderable_pair_is_dropped_with_its_reason(pair, reason):
    assert prepare_pair(pair) == (None, reason)


def test_planted_bad_pairs_are_dropped_and_counted():
    stats: Counter[str] = Counter()
    out = cook_record({**RECORD, "pairs": [*GOOD, *(p for p, _ in BAD)]}, CFG, stats)
    assert stats["pairs_in"] == len(GOOD) + len(BAD)
    assert stats["pairs_rendered"] == len(GOOD)
    assert stats["rendered_open"] == stats["rendered_mc"] == stats["rendered_cot"] == 1
    expected = Counter(f"dropped_{r}" for _, r in BAD)
    assert {k: v for k, v in stats.items() if k.startswith("dropped_")} == expected
    assert "Veldholt" not in out["text"] and "Because it is" not in out["text"]


def test_text_without_renderable_pairs_is_raw_and_unchanged():
    record = {"id": "d1", "text": "  Plain text.\n", "pairs": [BAD[0][0]]}
    out = cook_record(record, CFG)
    assert out["source"] == "raw" and out["text"] == "  Plain text.\n" and out["template"] == []


def test_mc_answer_matching_tolerates_case_and_full_stop_only():
    ok, _ = prepare_pair({"question": "Q?\nOptions:\n- Tarrow\n- Lindmoor", "answer": "tarrow."})
    assert ok is not None and ok.options[ok.correct] == "Tarrow"
    assert (
        prepare_pair({"question": "Q?\nOptions:\n- Tarrow\n- Lindmoor", "answer": "Tarr"})[0]
        is None
    )


def test_disabled_family_drops_its_kind_as_no_template():
    stats: Counter[str] = Counter()
    cook_record(RECORD, CookConfig(progress=False, families=["qa"]), stats)
    assert stats["rendered_open"] == 1 and stats["dropped_no_template"] == 2


def test_max_pairs_per_text_keeps_the_first_ones():
    stats: Counter[str] = Counter()
    out = cook_record(RECORD, CookConfig(progress=False, max_pairs_per_text=1), stats)
    assert stats["pairs_rendered"] == 1 and stats["pairs_over_limit"] == 2
    assert (
        "What is the capital of Brethorra" in out["text"] or "capital of Brethorra" in out["text"]
    )


def test_role_labels_are_never_doubled():
    for i in range(300):
        text = cook_record({**RECORD, "id": f"r{i}"}, CFG)["text"]
        for doubled in ("A: Answer:", "Answer: Answer:", "Question: Question:", "Q: Question:"):
            assert doubled not in text


# --------------------------------------------------------------------------- tags


def test_format_tags_in_text_and_pairs_are_defused():
    record = {
        "id": "html",
        "text": "Strike <s>this</s> out. <CON> fake </CON> <QUE> q <ANS> a </END>",
        "pairs": [{"question": "What is <s>struck</s>?", "answer": "this </s>"}],
    }
    for seed in range(20):
        out = cook_record(record, CookConfig(progress=False, seed=seed))
        assert not any(tag in out["text"] for tag in TAGS)
        assert (
            "Strike < s>this< /s> out. < CON> fake < /CON> < QUE> q < ANS> a < /END>" in out["text"]
        )
    raw = cook_record({**record, "pairs": []}, CFG)
    assert raw["source"] == "raw" and not any(tag in raw["text"] for tag in TAGS)


def test_tag_split_across_a_field_boundary_is_defused():
    record = {"id": "edge", "text": "ends with <", "pairs": [{"question": "s>?", "answer": "<"}]}
    for seed in range(30):
        out = cook_record(record, CookConfig(progress=False, seed=seed))
        assert not any(tag in out["text"] for tag in TAGS)


# --------------------------------------------------------------------------- chains


def test_chain_is_one_text_with_lineage_in_order():
    first = {**RECORD, "id": "a"}
    second = {"id": "b", "text": "Garnmere lies on a river.", "pairs": GOOD[:1], "linked": True}
    out = cook_chain([first, second], CFG)
    assert out["id"] == "b" and out["lineage"] == ["a", "b"]
    assert out["text"].index(first["text"]) < out["text"].index(second["text"])
    assert any(t.startswith("chain.") for t in out["template"])


# --------------------------------------------------------------------------- world QA


@pytest.fixture(scope="module")
def world():
    return build_world(WorldConfig(num_people=24, num_cities=8, num_companies=6))


def _world_records(world) -> list[dict]:
    texts = {t.entity_id: t.text for t in world.texts}
    pairs = defaultdict(list)
    for qa in world.qa:
        pairs[qa.entity_id].append({"question": qa.question, "answer": qa.answer})
    return [{"id": eid, "text": texts[eid], "pairs": ps} for eid, ps in pairs.items()]


def test_world_qa_cooks_without_drops(world):
    stats: Counter[str] = Counter()
    for record in _world_records(world):
        out = cook_record(record, CFG, stats)
        assert out["source"] == "instruct"
        assert not any(tag in out["text"] for tag in TAGS)
    assert stats["pairs_rendered"] == stats["pairs_in"] == len(world.qa)
    assert not [k for k in stats if k.startswith("dropped_")]
    assert stats["rendered_open"] and stats["rendered_mc"] and stats["rendered_cot"]


def _mc_pairs(world):
    """World MC pairs, plus MC+CoT pairs made from an MC question and its CoT answer."""
    out = []
    cots = {(qa.entity_id, qa.final): qa for qa in world.qa if qa.kind == "cot"}
    for qa in world.qa:
        if qa.kind != "mc":
            continue
        out.append(({"question": qa.question, "answer": qa.answer}, qa.final, qa.options))
        cot = cots.get((qa.entity_id, qa.final))
        if cot is not None:
            pair = {"question": qa.question + COT_MARK, "answer": cot.answer}
            out.append((pair, qa.final, qa.options))
    return out


def test_world_mc_answers_point_at_the_right_option_in_every_template(world):
    cfg = CookConfig(progress=False, none_of_the_above_rate=0.5)
    pairs = _mc_pairs(world)
    assert any("step by step" in p["question"] for p, _, _ in pairs)
    stats: Counter[str] = Counter()
    checked = Counter()
    for i, (pair, final, options) in enumerate(pairs):
        prepared, reason = prepare_pair(pair)
        assert prepared is not None, reason
        for t in PAIR_TEMPLATES:
            if prepared.kind not in t.kinds:
                continue
            r = apply_template(t, prepared, random.Random(f"{i}{t.id}"), cfg, stats)
            marked = r.options[r.correct]
            if marked == NONE_OF_THE_ABOVE:
                assert final not in r.options  # swapped out: "None of the above" is true
            else:
                assert marked == final
            assert sorted(set(r.options) - {NONE_OF_THE_ABOVE}) == sorted(
                set(options) - ({final} if marked == NONE_OF_THE_ABOVE else set())
            )
            if t.options is None:
                continue
            style = OPTION_STYLES[t.options]
            label = option_label(style, r.correct)
            assert style.line.format(label=label, option=marked) in r.question
            assert (label and label in r.answer) or marked in r.answer
            checked[t.family] += 1
    assert checked["mc"] and checked["mc_cot"] and stats["none_of_the_above_answers"] > 0


def test_options_that_refer_to_others_keep_their_order_and_get_no_none_of_the_above():
    pair = {
        "question": "Which are cities?\nOptions:\n- Tarrow\n- Lindmoor\n- Both of the above",
        "answer": "Both of the above",
    }
    prepared, _ = prepare_pair(pair)
    assert prepared is not None and prepared.refers
    for i in range(50):
        text = cook_record({"id": f"x{i}", "text": "T.", "pairs": [pair]}, CFG)["text"]
        assert NONE_OF_THE_ABOVE not in text
        assert text.index("Tarrow") < text.index("Lindmoor") < text.index("Both of the above")
