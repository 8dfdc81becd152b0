"""The paper's recipes as pure selection functions: which records go in, by exact token counts.

Nothing here reads files or tokenizes: the stage hands in candidates with their
token counts (BOS/EOS included, exactly what `tokenize` will write) and gets
back the chosen ones. Every choice is a function of record ids and the seed,
never of input order or worker count.

Recipes (DESIGN.md, "Recipes"; paper sections 3-4):
- `vanilla`: raw documents only, the baseline.
- `instruct`: a fraction *of documents* is augmented: cooked records are taken
  in seeded order until their lineage covers that many documents; those
  documents appear as their cooked text, every other document raw.
- `mix` (Mix PT): raw documents plus general instruction data (the
  synthesizer's own training data, not about the raw texts), with a share of
  *tokens* from the general data.
- `domain`: every cooked record plus the raw documents no cooked record
  covers, mixed 1:1 *by tokens* with general instruction records.

Token budgets are filled first-fit over a seeded order: a record is taken when
it fits what is left, so a pool ends within one short record of its target
instead of one long record, and records are never cut (lineage stays whole).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from instructpt.errors import InputError

#: Default share of general-instruction tokens per recipe (domain: 1:1 by tokens).
DEFAULT_GENERAL_SHARE = {"mix": 0.2, "domain": 0.5}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A record that may go into the mix: `key` is the stage's handle on it."""

    key: int
    id: str
    source: str  # raw | instruct | general
    tokens: int


@dataclass(frozen=True, slots=True)
class Cooked:
    """A cooked record as augmentation sees it: its id and the document ids it replaces."""

    key: int
    id: str
    lineage: tuple[str, ...]


@dataclass
class MixPlan:
    keys: list[int]  # chosen candidates, in output order (seeded shuffle)
    stats: dict[str, float | int | str] = field(default_factory=dict)


def seeded_rank(seed: int, *parts: str) -> bytes:
    """A sort key that depends on the seed and ids only (not on position or shard count)."""
    blob = "\x1f".join((str(seed), *parts)).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=8).digest()


def select_augmented(
    cooked: Sequence[Cooked], num_docs: int, fraction: float, seed: int
) -> tuple[list[int], set[str]]:
    """Cooked records to use so that `fraction` of the `num_docs` documents are augmented.

    Cooked records are taken in seeded order until their lineage covers
    round(fraction * num_docs) documents; a record with no lineage, or one that
    overlaps a document already covered, is skipped (a document is augmented
    once). Returns (keys of chosen cooked records, ids of the documents they replace).
    """
    want = round(fraction * num_docs)
    chosen: list[int] = []
    covered: set[str] = set()
    for rec in sorted(cooked, key=lambda c: seeded_rank(seed, "augment", c.id)):
        if len(covered) >= want:
            break
        lineage = set(rec.lineage)
        if not lineage or lineage & covered:
            continue
        chosen.append(rec.key)
        covered |= lineage
    return chosen, covered


def fill(pool: Sequence[Candidate], target: int, seed: int) -> list[Candidate]:
    """First-fit over a seeded order: records whose tokens sum to at most `target`."""
    if target >= sum(c.tokens for c in pool):
        return list(pool)
    left = target
    chosen = []
    for cand in sorted(pool, key=lambda c: seeded_rank(seed, "fill", c.source, c.id)):
        if cand.tokens <= left:
            chosen.append(cand)
            left -= cand.tokens
            if left == 0:
                break
    return chosen


def plan_mix(
    primary: Sequence[Candidate],
    general: Sequence[Candidate],
    *,
    general_share: float,
    num_tokens: int | None,
    seed: int,
    keep_all_primary: bool = False,
) -> MixPlan:
    """Choose records so that the output has `num_tokens` (or as many as the pools allow)
    with `general_share` of them from `general`; then shuffle them (seeded).

    `general_share` counts tokens. With no budget, the larger pool is cut to
    the ratio and the smaller one is used whole; with `keep_all_primary`, the
    primary pool is always whole and general fills up to the share.
    """
    p_avail = sum(c.tokens for c in primary)
    g_avail = sum(c.tokens for c in general)
    if general_share > 0 and not general:
        raise InputError("general_token_share > 0 but no general records were given")
    if keep_all_primary and num_tokens is None:
        available = p_avail
        if general_share > 0:
            available += min(g_avail, round(p_avail * general_share / (1 - general_share)))
    elif general_share == 0:
        available = p_avail
    else:
        available = min(int(p_avail / (1 - general_share)), int(g_avail / general_share))
    if num_tokens is not None and num_tokens > available:
        raise InputError(
            f"num_tokens {num_tokens} is more than the inputs allow ({available} tokens with "
            f"general_token_share {general_share}); lower num_tokens or add input"
        )
    total = available if num_tokens is None else num_tokens
    g_target = round(general_share * total)
    p_target = total - g_target
    if keep_all_primary and num_tokens is None:
        p_target, g_target = p_avail, total - p_avail
    chosen = fill(primary, p_target, seed) + (fill(general, g_target, seed) if g_target else [])
    # Output order: a seeded shuffle of everything, so sources interleave evenly.
    chosen.sort(key=lambda c: seeded_rank(seed, "order", c.source, c.id, str(c.key)))

    per_source: dict[str, int] = {}
    records: dict[str, int] = {}
    for c in chosen:
        per_source[c.source] = per_source.get(c.source, 0) + c.tokens
        records[c.source] = records.get(c.source, 0) + 1
    got = sum(per_source.values())
    g_got = per_source.get("general", 0)
    stats: dict[str, float | int | str] = {
        "target_tokens": total,
        "available_tokens": available,
        "tokens": got,
        "shortfall_tokens": total - got,
        "general_token_share_target": general_share,
        "general_token_share": round(g_got / got, 6) if got else 0.0,
        "records": len(chosen),
    }
    for source in sorted(per_source):
        stats[f"tokens_{source}"] = per_source[source]
        stats[f"records_{source}"] = records[source]
    return MixPlan([c.key for c in chosen], stats)
