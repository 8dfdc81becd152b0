"""Wrong pairs on purpose: a controlled share of answers replaced by another true value.

Why: a synthesizer's pairs are never all right (the paper's ~70% by a GPT-4 judge,
ours 61-83% on held-out people), and no one has measured what the wrong ones cost.
The world knows every true answer, so its ground-truth pairs can be corrupted by an
exact amount and pre-trained on: the pair-accuracy curve (issue 22). A wrong answer
is another value of the *same attribute* (a real city for a birth city, a real year
for a year), so it is plausible, well-formed and of the right type, like a
synthesizer's mistake, and only its truth changes.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def _key(value: str) -> str:
    return " ".join(value.casefold().split())


def attribute_values(qa: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Every distinct answer of each attribute in the world's open QA, in first-seen order."""
    values: dict[str, dict[str, str]] = {}
    for row in qa:
        if row.get("kind", "open") != "open":
            continue
        values.setdefault(str(row["attribute"]), {}).setdefault(
            _key(str(row["answer"])), str(row["answer"])
        )
    return {attribute: list(seen.values()) for attribute, seen in values.items()}


def corrupt_answers(
    pairs: Sequence[Mapping[str, Any]],
    wrong_share: float,
    values: Mapping[str, Sequence[str]],
    seed: int,
) -> tuple[list[dict[str, Any]], int]:
    """A copy of `pairs` with exactly round(wrong_share * n) answers made wrong.

    Each pair needs `attribute` and `answer`; only `answer` of a chosen pair
    changes (to another value of its attribute, seeded), and it is marked
    `"wrong": True`. Pairs are chosen among those whose attribute has another
    value; if fewer than the requested number can be made wrong, ValueError
    (the share would silently be lower than asked).
    Returns (pairs, number made wrong).
    """
    if not 0.0 <= wrong_share <= 1.0:
        raise ValueError(f"wrong_share must be in [0, 1], got {wrong_share}")
    out = [dict(p) for p in pairs]
    target = round(wrong_share * len(out))
    if target == 0:
        return out, 0

    def others(pair: Mapping[str, Any]) -> list[str]:
        true = _key(str(pair["answer"]))
        return [v for v in values.get(str(pair["attribute"]), ()) if _key(v) != true]

    candidates = [i for i, p in enumerate(out) if others(p)]
    if len(candidates) < target:
        raise ValueError(
            f"asked for {target} wrong answers of {len(out)} pairs, but only "
            f"{len(candidates)} have an attribute with another value to swap in"
        )
    rng = random.Random(f"corrupt/{seed}/{wrong_share}")
    for i in sorted(rng.sample(candidates, target)):
        out[i]["answer"] = rng.choice(others(out[i]))
        out[i]["wrong"] = True
    return out, target
