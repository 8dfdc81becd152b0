"""Mine reading-comprehension pairs from one text, with no model (AdaptLLM).

`mine_text(doc_id, text, cfg)` runs the enabled task families of
`instructpt.mine.families` over the text's sentences and keeps at most
`max_per_family` pairs per family and `max_pairs` per text. Which candidates
are kept is drawn by a `random.Random` seeded by sha256(seed, document id,
family): the pairs of a document depend on nothing but its id, its text and
the config, never on the worker count or the order documents are seen in.

Selection. Every family's valid candidates are shuffled by its generator;
then families take turns (in config order), one pair per turn, skipping
questions already taken (case-insensitive, the synthesizer format's rule),
until each family has `max_per_family` pairs or the text has `max_pairs`.
Taking turns keeps the pairs of a text varied when the cap is reached.

Every candidate is checked before it can be kept, each drop counted by
reason: `empty`, `answer_too_short` / `answer_too_long` (`min_answer_chars`,
`max_answer_chars`; for chain of thought the final answer counts),
`stray_tag` (a format tag copied from the text would corrupt the example),
`ungrounded` (an extractive answer that is not in the text modulo
whitespace: a bug guard, it should never fire), `duplicate_question`,
`family_limit` and `text_limit`.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter

from instructpt.mine.config import ALL_FAMILIES, MineConfig
from instructpt.mine.families import FAMILIES, Candidate
from instructpt.mine.sentences import split_sentences
from instructpt.synth.format import Pair, has_tag, split_chain_of_thought

#: Recorded as the engine revision: bump when a pattern or the selection changes.
MINER_VERSION = "adaptllm-patterns/3"

assert set(ALL_FAMILIES) == set(FAMILIES), "FamilyName and FAMILIES must list the same names"

__all__ = ["ALL_FAMILIES", "MINER_VERSION", "MineConfig", "mine_text", "split_sentences"]


def family_rng(seed: int, doc_id: str, family: str) -> random.Random:
    """The generator of one family on one document: sha256 of (seed, id, family)."""
    key = f"{seed}\n{doc_id}\n{family}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def _check(cand: Candidate, flat_text: str | None, cfg: MineConfig) -> tuple[str, Pair | None]:
    question, answer = cand["question"].strip(), cand["answer"].strip()
    if not question or not answer:
        return "empty", None
    final = answer
    if question.endswith("Let's think step by step."):
        split = split_chain_of_thought(answer)
        if split is None:
            return "empty", None
        final = split[1]
    if len(final) < cfg.min_answer_chars:
        return "answer_too_short", None
    if len(final) > cfg.max_answer_chars:
        return "answer_too_long", None
    if has_tag(question) or has_tag(answer):
        return "stray_tag", None
    grounded = flat_text is None or " ".join(final.split()) in flat_text
    if cand.get("extractive", True) and not grounded:
        return "ungrounded", None
    return "", Pair(question, answer)


def mine_text(doc_id: str, text: str, cfg: MineConfig) -> tuple[list[Pair], Counter[str]]:
    """Pairs mined from one text, and what happened (`pieces`, `dropped_<reason>`, ...).

    Stats keys: `pieces` (candidates the families proposed), `kept`,
    `dropped_<reason>`, `family_<name>` (pairs kept per family), and
    `truncated` / `empty` (0 or 1) for the text itself.
    """
    stats: Counter[str] = Counter()
    if len(text) > cfg.max_chars:
        stats["truncated"] = 1
        text = text[: cfg.max_chars]
    if not text.strip():
        stats["empty"] = 1
        return [], stats
    sentences = split_sentences(text)
    flat_text = " ".join(text.split())

    queues: list[tuple[str, list[Pair]]] = []
    for name in cfg.families:
        rng = family_rng(cfg.seed, doc_id, name)
        candidates = FAMILIES[name](doc_id, text, sentences, rng)
        stats["pieces"] += len(candidates)
        valid: list[Pair] = []
        for cand in candidates:
            reason, pair = _check(cand, flat_text, cfg)
            if pair is None:
                stats[f"dropped_{reason}"] += 1
            else:
                valid.append(pair)
        rng.shuffle(valid)
        queues.append((name, valid))

    pairs: list[Pair] = []
    seen: set[str] = set()
    taken = dict.fromkeys(cfg.families, 0)
    positions = dict.fromkeys(cfg.families, 0)
    progress = True
    while progress and len(pairs) < cfg.max_pairs:
        progress = False
        for name, queue in queues:
            if len(pairs) >= cfg.max_pairs or taken[name] >= cfg.max_per_family:
                continue
            while positions[name] < len(queue):
                pair = queue[positions[name]]
                positions[name] += 1
                key = pair.question.lower()
                if key in seen:
                    stats["dropped_duplicate_question"] += 1
                    continue
                seen.add(key)
                pairs.append(pair)
                taken[name] += 1
                stats[f"family_{name}"] += 1
                progress = True
                break
    for name, queue in queues:
        left = len(queue) - positions[name]
        if left:
            limit = "family_limit" if taken[name] >= cfg.max_per_family else "text_limit"
            stats[f"dropped_{limit}"] += left
    stats["kept"] = len(pairs)
    return pairs, stats
