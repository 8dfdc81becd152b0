"""Magpie's filters: each check returns a drop reason, or "" to keep.

Queries are checked before they are answered (no compute on a query that
will be dropped), responses after. Reasons, counted by the stage:
  query_unterminated / response_truncated: the turn did not end within its
      token budget (a query then has no known end; a response is cut off)
  *_empty, *_template_leak: nothing left after the cut, or a template marker
      (e.g. `<|im_start|>`) inside the text: the turn was cut in the wrong place
  *_control_chars: a control character other than newline and tab (small or
      broken models emit them; they corrupt whatever is trained on the record)
  *_too_short / *_too_long: outside the configured character range
  *_repetitive: too large a share of the word n-grams repeat earlier ones
      (small or broken models loop)
  response_refusal: a refusal phrase near the start of the response
  query_near_duplicate: word-3-gram Jaccard >= threshold with an earlier kept
      query, by `filter/dedup.py`'s MinHash LSH (the same arithmetic and
      band choice as the pair filter), so "first occurrence wins" is exact
"""

from __future__ import annotations

from collections.abc import Sequence

from instructpt.filter.dedup import CorpusDeduper, shingle_hashes
from instructpt.filter.normalize import WordHasher, words
from instructpt.magpie.config import MagpieConfig


def repeated_ngram_ratio(text: str, n: int) -> float:
    """Share of the word n-grams of `text` that repeat an earlier n-gram (0 when none)."""
    tokens = words(text)
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    if not grams:
        return 0.0
    return 1 - len(set(grams)) / len(grams)


def leaked_marker(text: str, markers: Sequence[str]) -> str | None:
    """The first template marker found in `text`, or None."""
    for marker in markers:
        if marker and marker in text:
            return marker
    return None


def has_control_chars(text: str) -> bool:
    """A C0/C1 control character or DEL other than newline, tab and carriage return."""
    return any((ord(c) < 32 and c not in "\n\t\r") or 127 <= ord(c) < 160 for c in text)


def is_refusal(text: str, phrases: Sequence[str], window: int) -> bool:
    head = text[:window].casefold().replace("\u2019", "'")
    return any(p.casefold() in head for p in phrases)


class MagpieFilters:
    """The configured checks, plus the near-duplicate index over kept queries."""

    def __init__(self, cfg: MagpieConfig, markers: Sequence[str]) -> None:
        self.cfg = cfg
        self.markers = tuple(m for m in markers if m)
        self.hasher = WordHasher()
        self.deduper = (
            CorpusDeduper(cfg.dedup_threshold, cfg.num_perm, cfg.dedup_seed) if cfg.dedup else None
        )

    def _text(self, kind: str, text: str, low: int, high: int) -> str:
        if not text.strip():
            return f"{kind}_empty"
        if leaked_marker(text, self.markers):
            return f"{kind}_template_leak"
        if has_control_chars(text):
            return f"{kind}_control_chars"
        if len(text) < low:
            return f"{kind}_too_short"
        if len(text) > high:
            return f"{kind}_too_long"
        if repeated_ngram_ratio(text, self.cfg.repetition_ngram) > self.cfg.max_repetition:
            return f"{kind}_repetitive"
        return ""

    def query(self, text: str, ended: bool) -> str:
        """Reason to drop a (cut, stripped) query, or ""."""
        if not ended:
            return "query_unterminated"
        cfg = self.cfg
        return self._text("query", text, cfg.min_instruction_chars, cfg.max_instruction_chars)

    def response(self, text: str, ended: bool) -> str:
        """Reason to drop a (cut, stripped) response, or ""."""
        cfg = self.cfg
        if not ended and cfg.drop_truncated:
            return "response_truncated"
        reason = self._text("response", text, cfg.min_output_chars, cfg.max_output_chars)
        if not reason and is_refusal(text, cfg.refusal_phrases, cfg.refusal_window):
            return "response_refusal"
        return reason

    def duplicates(self, queries: Sequence[str]) -> list[bool]:
        """For queries in order: whether each near-duplicates an earlier kept one."""
        if self.deduper is None or not queries:
            return [False] * len(queries)
        shingles = [shingle_hashes(self.hasher(words(q))) for q in queries]
        dup, _kept = self.deduper.check(shingles)
        return [bool(d) for d in dup]
