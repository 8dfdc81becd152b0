"""Multi-round M-shot scheduling: which texts are shown before which, and what fits.

The paper's multi-round synthesis (M rounds): the texts of a shard are put
into *slots* of M texts each, deterministically by id (a seeded hash order,
so a slot's texts are unrelated and the assignment never depends on worker
count or input order). The text of round r is prompted with the finished
examples of the texts of rounds < r of its slot, oldest first, then its own
context. An earlier text is shown only if it yielded at least one pair; the
chain is the unbroken run of such texts ending at round r-1 (a text that
yielded nothing breaks it, so `linked` always means "continues the previous
text of its slot"). When prompt plus generation budget do not fit the
context, the oldest examples are dropped first; counts are real tokens of
the engine's tokenizer, and the final prompt is re-counted whole.

A text whose own context cannot fit is split into chunks at paragraph, then
sentence, then word boundaries; each chunk is prompted alone and the pairs
are pooled. Such a text neither joins nor continues a chain.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from instructpt.synth.format import Pair, build_prompt, context_prompt, example

CountTokens = Callable[[str], int]


def assign_slots(
    doc_ids: Sequence[str], num_rounds: int, seed: int, shard_index: int
) -> dict[str, tuple[str, int]]:
    """doc id -> (slot name, round). Slots hold `num_rounds` texts in seeded hash order."""

    def key(doc_id: str) -> tuple[bytes, str]:
        digest = hashlib.blake2b(f"{seed}\0{doc_id}".encode(), digest_size=8).digest()
        return digest, doc_id

    ordered = sorted(doc_ids, key=key)
    out: dict[str, tuple[str, int]] = {}
    for k, start in enumerate(range(0, len(ordered), num_rounds)):
        slot = f"{shard_index:05d}-{k:06d}"
        for r, doc_id in enumerate(ordered[start : start + num_rounds]):
            out[doc_id] = (slot, r)
    return out


@dataclass(frozen=True, slots=True)
class Earlier:
    """A finished text of an earlier round of the same slot."""

    doc_id: str
    text: str
    pairs: tuple[Pair, ...]
    chunked: bool


@dataclass(frozen=True, slots=True)
class PlannedPrompt:
    doc_id: str
    text: str  # the prompt text (token ids are made by the caller's tokenizer)
    chain: tuple[str, ...]  # ids of the examples shown, oldest first
    chunk: int
    num_chunks: int


def plan_prompts(
    doc_id: str,
    text: str,
    earlier: Sequence[Earlier],
    count: CountTokens,
    max_context: int,
    max_new_tokens: int,
) -> list[PlannedPrompt]:
    """The prompt(s) for one text: one with its fitting chain, or one per chunk."""
    budget = max_context - max_new_tokens
    own = count(context_prompt(text))
    if own > budget:
        chunks = split_to_fit(text, count, budget)
        return [
            PlannedPrompt(doc_id, context_prompt(c), (), i, len(chunks))
            for i, c in enumerate(chunks)
        ]

    chain: list[Earlier] = []
    for prev in reversed(earlier):  # newest first, stop at the first break
        if not prev.pairs or prev.chunked:
            break
        chain.insert(0, prev)
    sizes = [count(example(e.text, e.pairs)) for e in chain]
    while chain and own + sum(sizes) > budget:
        chain.pop(0)  # oldest first
        sizes.pop(0)
    while True:
        prompt = build_prompt([(e.text, e.pairs) for e in chain], text)
        if not chain or count(prompt) <= budget:
            break
        chain.pop(0)  # part counts can undercount the joined prompt by a few tokens
    return [PlannedPrompt(doc_id, prompt, tuple(e.doc_id for e in chain), 0, 1)]


_BOUNDARIES = (
    re.compile(r"(\n[ \t]*\n\s*)"),  # paragraphs
    re.compile(r"(?<=[.!?。])(\s+)"),  # sentences
    re.compile(r"(\s+)"),  # words
)


def _split_keeping_separators(segment: str, level: int) -> list[str]:
    """Pieces that concatenate back to `segment` exactly (separators stay attached)."""
    if level >= len(_BOUNDARIES):
        half = max(1, len(segment) // 2)
        return [segment[:half], segment[half:]]
    bits = _BOUNDARIES[level].split(segment)
    return ["".join(bits[i : i + 2]) for i in range(0, len(bits), 2) if "".join(bits[i : i + 2])]


def split_to_fit(text: str, count: CountTokens, budget: int) -> list[str]:
    """Split `text` into chunks whose own context prompt fits `budget` tokens.

    Boundaries are tried coarse to fine: paragraphs, sentences, words, and
    characters as the last resort (a 50 kB token soup with no spaces).
    """
    overhead = count(context_prompt(""))
    room = budget - overhead
    if room < 8:
        raise ValueError(f"max_context leaves {room} tokens for text; raise max_context")

    def fits(piece: str) -> bool:
        return count(context_prompt(piece)) <= budget

    def pieces(segment: str, level: int) -> list[str]:
        if fits(segment):
            return [segment]
        parts = _split_keeping_separators(segment, level)
        if len(parts) == 1:
            return pieces(segment, level + 1)
        out: list[str] = []
        for part in parts:
            out.extend(pieces(part, level + 1) if not fits(part) else [part])
        return _pack(out, count, room, fits)

    # Chunks are exact consecutive substrings; only whitespace at their edges is trimmed.
    return [c.strip() for c in pieces(text, 0) if c.strip()]


def _pack(
    parts: list[str], count: CountTokens, room: int, fits: Callable[[str], bool]
) -> list[str]:
    """Greedily join consecutive parts while the joined chunk still fits.

    Part counts are summed (one tokenization per part); the whole chunk is
    re-counted only near the limit, where joining may merge tokens, so long
    texts are split in linear rather than quadratic time.
    """
    margin = 16
    chunks: list[str] = []
    current, estimate = "", 0
    for part in parts:
        size = count(part) + 2
        candidate = current + part
        if current and (
            estimate + size > room or (estimate + size > room - margin and not fits(candidate))
        ):
            chunks.append(current)
            current, estimate = part, size
        else:
            current, estimate = candidate, estimate + size
    if current:
        chunks.append(current)
    return chunks
