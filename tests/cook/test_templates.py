"""The template set: size, ids, fields, and every family rendering every kind it claims."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.render import apply_template, eligible_templates, prepare_pair
from instructpt.cook.templates import (
    ALL_TEMPLATE_IDS,
    CHAIN_JOINS,
    FAMILY_KINDS,
    LAYOUT_FAMILIES,
    LAYOUTS,
    NONE_OF_THE_ABOVE,
    OPTION_STYLES,
    PAIR_FAMILIES,
    PAIR_KINDS,
    PAIR_TEMPLATES,
    TEMPLATE_SET_VERSION,
)
from instructpt.synth.format import TAGS

# One pair of each kind, written in the synthesizer's conventions.
PAIRS = {
    "open": {"question": "Where was Ana Tarr born?", "answer": "In Lindmoor"},
    "mc": {
        "question": "Where was Ana Tarr born?\nOptions:\n- Tarrow\n- Lindmoor\n- Veldholt",
        "answer": "Lindmoor",
    },
    "cot": {
        "question": "Which country was Ana Tarr born in?\nLet's think step by step.",
        "answer": "The text says Ana Tarr was born in Lindmoor. Lindmoor is in Veldmark.\n"
        "Therefore, the answer is Veldmark",
    },
    "mc_cot": {
        "question": "Which country was Ana Tarr born in?\nOptions:\n- Veldmark\n- Oskland\n"
        "- Brethorra\nLet's think step by step.",
        "answer": "The text says Ana Tarr was born in Lindmoor. Lindmoor is in Veldmark.\n"
        "Therefore, the answer is Veldmark",
    },
}
FINAL = {"open": "In Lindmoor", "mc": "Lindmoor", "cot": "Veldmark", "mc_cot": "Veldmark"}


def test_at_least_150_templates_with_unique_stable_ids():
    assert len(ALL_TEMPLATE_IDS) >= 150
    assert len(set(ALL_TEMPLATE_IDS)) == len(ALL_TEMPLATE_IDS)
    for tid in ALL_TEMPLATE_IDS:
        assert re.fullmatch(r"[a-z]+\.\d{3}", tid), tid
    assert TEMPLATE_SET_VERSION


def test_every_family_and_layout_has_templates():
    families = Counter(t.family for t in PAIR_TEMPLATES)
    assert set(families) == set(PAIR_FAMILIES)
    assert min(families[f] for f in ("qa", "mc", "cot", "mc_cot")) >= 25
    layouts = Counter(lay.family for lay in LAYOUTS)
    assert set(layouts) == set(LAYOUT_FAMILIES) and min(layouts.values()) >= 5
    assert len(CHAIN_JOINS) >= 4
    styles = Counter(t.options for t in PAIR_TEMPLATES if t.options)
    assert set(styles) == set(OPTION_STYLES)  # every option style is used
    assert sum(t.none_of_the_above for t in PAIR_TEMPLATES) >= 10


def test_no_template_holds_a_format_tag():
    for t in PAIR_TEMPLATES:
        assert not any(tag in t.question + t.answer for tag in TAGS)
    for lay in LAYOUTS:
        assert not any(tag in lay.frame + lay.pair for tag in TAGS)


@pytest.mark.parametrize("template", PAIR_TEMPLATES, ids=lambda t: t.id)
def test_every_template_renders_every_kind_it_claims(template):
    cfg = CookConfig(progress=False, none_of_the_above_rate=0.0)
    assert template.kinds == FAMILY_KINDS[template.family]
    for kind in template.kinds:
        prepared, reason = prepare_pair(PAIRS[kind])
        assert prepared is not None and prepared.kind == kind, reason
        assert template in eligible_templates(prepared, [template.family])
        out = apply_template(template, prepared, random.Random(0), cfg, Counter())
        assert out.template == template.id
        assert "{" not in out.question + out.answer  # every field was filled
        assert not any(tag in out.question + out.answer for tag in TAGS)
        assert "Ana Tarr" in out.question or "ana Tarr" in out.question
        if kind in ("mc", "mc_cot"):
            assert out.options[out.correct] == FINAL[kind]
            assert NONE_OF_THE_ABOVE in out.options or not template.none_of_the_above
        elif template.family != "verbatim":
            assert FINAL[kind] in out.answer
        if kind in ("cot", "mc_cot"):
            assert "Lindmoor is in Veldmark." in out.answer
            assert out.question.count("Let's think step by step.") <= 1  # the cue is not doubled


def test_templates_never_claim_kinds_they_cannot_render():
    for template in PAIR_TEMPLATES:
        for kind in set(PAIR_KINDS) - set(template.kinds):
            prepared, _ = prepare_pair(PAIRS[kind])
            assert template not in eligible_templates(prepared, list(PAIR_FAMILIES))


def test_lowercasing_templates_are_skipped_when_a_name_comes_first():
    prepared, _ = prepare_pair({"question": "Ana Tarr was born where?", "answer": "Lindmoor"})
    ids = {t.id for t in eligible_templates(prepared, ["qa"])}
    assert "qa.001" in ids and "qa.005" not in ids  # "Based on the text, {question_lc}"
    prepared, _ = prepare_pair(PAIRS["open"])
    assert "qa.005" in {t.id for t in eligible_templates(prepared, ["qa"])}


def test_templates_fix_one_format_for_every_record() -> None:
    """`templates: [pf.002, qa.001]` cooks every pair as the probe's Question/Answer lines."""
    from instructpt.cook.render import cook_record

    cfg = CookConfig(layouts=["pairs_first"], templates=["pf.002", "qa.001"], seed=3)
    pairs = [
        {"question": "Where was Ana Tarr born?", "answer": "Lindmoor"},
        {"question": "What does Ana Tarr do?", "answer": "a baker"},
    ]
    for i in range(20):
        out = cook_record({"id": f"d{i}", "text": "Ana Tarr bakes.", "pairs": pairs}, cfg)
        assert out["template"] == ["pf.002", "qa.001"]
        assert out["text"].startswith(
            "Question: Where was Ana Tarr born?\nAnswer: Lindmoor\n\n"
            "Question: What does Ana Tarr do?\nAnswer: a baker\n\n"
        )


@pytest.mark.parametrize(
    ("templates", "message"),
    [
        (["pf.02"], "did you mean 'pf.002'"),
        (["qa.001"], "names no layout"),
        (["pf.002"], "names no pair template"),
        (["pf.002", "pf.002", "qa.001"], "listed once"),
    ],
)
def test_templates_are_checked_on_load(templates: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CookConfig(layouts=["pairs_first"], templates=templates)
