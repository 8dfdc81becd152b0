"""The wrong-pair injector of the pair-accuracy curve: exact share, only answers change."""

from __future__ import annotations

import pytest

from instructpt.world.noise import attribute_values, corrupt_answers

QA = [
    {"kind": "open", "attribute": "birth_city", "question": f"Where was P{i} born?",
     "answer": city}
    for i, city in enumerate(["Lindmoor", "Tarrow", "Veldholt", "Lindmoor", "Tarrow"] * 4)
] + [
    {"kind": "open", "attribute": "birth_year", "question": f"When was Q{i} born?",
     "answer": str(1950 + i)}
    for i in range(10)
] + [{"kind": "mc", "attribute": "birth_year", "question": "mc", "answer": "1900"}]  # fmt: skip
PAIRS = [q for q in QA if q["kind"] == "open"]


def test_attribute_values_are_distinct_open_answers() -> None:
    values = attribute_values(QA)
    assert values["birth_city"] == ["Lindmoor", "Tarrow", "Veldholt"]
    assert "1900" not in values["birth_year"] and len(values["birth_year"]) == 10


@pytest.mark.parametrize("share", [0.0, 0.1, 0.3, 0.5, 1.0])
def test_exact_share_changed_and_only_answers(share: float) -> None:
    out, wrong = corrupt_answers(PAIRS, share, attribute_values(QA), seed=7)
    assert wrong == round(share * len(PAIRS))
    changed = [(a, b) for a, b in zip(PAIRS, out, strict=True) if a["answer"] != b["answer"]]
    assert len(changed) == wrong  # every chosen answer really differs from the truth
    assert sum(bool(p.get("wrong")) for p in out) == wrong
    values = attribute_values(QA)
    for before, after in zip(PAIRS, out, strict=True):
        assert after["question"] == before["question"]
        assert after["attribute"] == before["attribute"]
        assert after["answer"] in values[before["attribute"]]  # a real value of the attribute
    assert PAIRS[0].get("wrong") is None  # the input is left as it was


def test_seeded_and_seed_sensitive() -> None:
    values = attribute_values(QA)
    first, _ = corrupt_answers(PAIRS, 0.3, values, seed=1)
    again, _ = corrupt_answers(PAIRS, 0.3, values, seed=1)
    other, _ = corrupt_answers(PAIRS, 0.3, values, seed=2)
    assert first == again
    assert first != other


def test_refuses_a_share_it_cannot_make() -> None:
    single = [{"attribute": "only", "question": "q?", "answer": "x"}] * 4
    with pytest.raises(ValueError, match="only 0 have"):
        corrupt_answers(single, 0.5, {"only": ["x"]}, seed=0)
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        corrupt_answers(PAIRS, 1.5, attribute_values(QA), seed=0)
