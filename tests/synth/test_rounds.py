"""Slot assignment and splitting, as pure functions."""

from __future__ import annotations

from instructpt.synth.format import Pair, context_prompt
from instructpt.synth.rounds import Earlier, assign_slots, plan_prompts, split_to_fit


def chars(text: str) -> int:
    """A stand-in token counter: one token per character (exact arithmetic for tests)."""
    return len(text)


def test_slots_depend_on_ids_and_seed_not_on_input_order():
    ids = [f"doc-{i}" for i in range(10)]
    a = assign_slots(ids, 3, seed=0, shard_index=2)
    assert a == assign_slots(list(reversed(ids)), 3, seed=0, shard_index=2)
    assert a != assign_slots(ids, 3, seed=1, shard_index=2)
    rounds_per_slot: dict[str, list[int]] = {}
    for slot, r in a.values():
        rounds_per_slot.setdefault(slot, []).append(r)
    assert sorted(len(v) for v in rounds_per_slot.values()) == [1, 3, 3, 3]
    assert all(sorted(v) == list(range(len(v))) for v in rounds_per_slot.values())
    assert all(slot.startswith("00002-") for slot, _ in a.values())


def test_chain_is_the_unbroken_run_before_this_round():
    e = [
        Earlier("a", "A.", (Pair("q", "a"),), False),
        Earlier("b", "B.", (), False),  # yielded nothing: breaks the chain
        Earlier("c", "C.", (Pair("q", "c"),), False),
    ]
    [plan] = plan_prompts("d", "D.", e, chars, max_context=10_000, max_new_tokens=10)
    assert plan.chain == ("c",)


def test_split_never_exceeds_the_budget_even_without_spaces():
    text = "x" * 5000
    budget = 300
    chunks = split_to_fit(text, chars, budget)
    assert "".join(chunks) == text
    assert all(len(context_prompt(c)) <= budget for c in chunks)


def test_split_prefers_paragraphs():
    paras = ["First paragraph. " * 5, "Second one. " * 5, "Third. " * 5]
    text = "\n\n".join(p.strip() for p in paras)
    budget = len(context_prompt(paras[0])) + 5
    chunks = split_to_fit(text, chars, budget)
    assert chunks == [p.strip() for p in paras]
