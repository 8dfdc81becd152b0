"""Pure selection rules of the recipes: first-fit budgets, augmentation coverage, shares."""

from __future__ import annotations

import pytest

from instructpt.errors import InputError
from instructpt.mix.recipes import Candidate, Cooked, fill, plan_mix, select_augmented


def _pool(source: str, sizes: list[int], start: int = 0) -> list[Candidate]:
    return [Candidate(start + i, f"{source}-{i}", source, n) for i, n in enumerate(sizes)]


def test_fill_skips_a_record_too_long_for_what_is_left_and_keeps_filling():
    pool = _pool("raw", [50, 30, 7, 3, 10])
    chosen = fill(pool, 20, seed=0)
    assert sum(c.tokens for c in chosen) == 20


def test_fill_takes_the_whole_pool_when_the_target_exceeds_it():
    pool = _pool("raw", [5, 6])
    assert fill(pool, 100, seed=0) == pool


def test_augmentation_covers_the_fraction_and_never_a_document_twice():
    cooked = [
        Cooked(0, "c0", ("d0", "d1")),
        Cooked(1, "c1", ("d1",)),  # overlaps c0
        Cooked(2, "c2", ("d2",)),
        Cooked(3, "c3", ()),  # no lineage: unusable
        Cooked(4, "c4", ("d3",)),
    ]
    keys, covered = select_augmented(cooked, num_docs=10, fraction=1.0, seed=1)
    assert 3 not in keys
    assert not ({0, 1} <= set(keys))
    assert len(covered) == sum(len(cooked[k].lineage) for k in keys)
    keys, covered = select_augmented(cooked, num_docs=10, fraction=0.2, seed=1)
    assert len(covered) >= 2 and len(covered) <= 3


def test_plan_hits_the_share_in_tokens_and_is_seed_stable():
    primary = _pool("raw", [7 + i % 13 for i in range(400)])
    general = _pool("general", [5 + i % 11 for i in range(400)], start=1000)
    plan = plan_mix(primary, general, general_share=0.5, num_tokens=3000, seed=4)
    assert plan.stats["tokens"] == 3000
    assert plan.stats["tokens_general"] == 1500
    again = plan_mix(primary, general, general_share=0.5, num_tokens=3000, seed=4)
    assert again.keys == plan.keys


def test_plan_without_general_records_is_refused_when_a_share_is_asked():
    with pytest.raises(InputError, match="no general records"):
        plan_mix(_pool("raw", [5]), [], general_share=0.5, num_tokens=None, seed=0)


def test_keep_all_primary_never_cuts_the_corpus():
    from instructpt.mix.recipes import Candidate, plan_mix

    primary = [Candidate(i, f"p{i}", "raw", 10) for i in range(10)]
    general = [Candidate(100 + i, f"g{i}", "general", 5) for i in range(3)]
    cut = plan_mix(primary, general, general_share=0.2, num_tokens=None, seed=0)
    assert cut.stats["tokens_raw"] < 100  # general runs short: the corpus is cut to the share
    kept = plan_mix(
        primary, general, general_share=0.2, num_tokens=None, seed=0, keep_all_primary=True
    )
    assert kept.stats["tokens_raw"] == 100 and kept.stats["tokens_general"] == 15
    many = [Candidate(100 + i, f"g{i}", "general", 5) for i in range(40)]
    capped = plan_mix(
        primary, many, general_share=0.2, num_tokens=None, seed=0, keep_all_primary=True
    )
    assert capped.stats["tokens_raw"] == 100 and capped.stats["tokens_general"] == 25
