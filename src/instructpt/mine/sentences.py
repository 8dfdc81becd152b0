"""A small rule-based sentence splitter, written for mining (no dependency).

Why rules and not a trained splitter (punkt, spaCy): the miner only needs
sentences good enough to match patterns on, it must be fast on hundreds of
megabytes, and it must give the same answer everywhere. Sentence ends are
`.`, `!`, `?` (with closing quotes or brackets) followed by space and an
upper-case letter, digit, quote or bracket, except after a known
abbreviation ("Dr.", "e.g.", "U.S.", "Inc.") or a single initial ("J. K.").
Decimals ("3.14") never split: no space follows their point. Blank lines
always end a sentence; a single line break does when the line before looks
finished (ends in punctuation) or is short (a title or list item), so
hard-wrapped paragraphs are joined again.

Sentences are returned with their whitespace collapsed to single spaces:
every sentence is a substring of the text *modulo whitespace*, which is how
the miner checks that answers are grounded.
"""

from __future__ import annotations

import re


def _word_set(words: str) -> frozenset[str]:
    """A set of words written as one string (long lists read better that way)."""
    return frozenset(words.split())


#: Words that end with a period without ending the sentence (compared lower-case).
ABBREVIATIONS = _word_set(
    """
    mr mrs ms dr prof st jr sr rev hon gen col lt sgt capt cmdr gov sen rep mt ft
    vs e.g i.e cf viz al approx dept est fig figs no nos vol vols pp ed eds
    inc ltd co corp bros plc llc assn univ
    jan feb mar apr jun jul aug sep sept oct nov dec
    u.s u.k u.n e.u a.m p.m ph.d b.a m.a b.sc m.sc
    """
)

# A candidate end: terminal punctuation, closers, whitespace, then something that
# can start a sentence. The abbreviation check happens in Python on the match.
_END = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]?[A-Z0-9])")
_WORD_BEFORE = re.compile(r"(\S+)$")
_BLANK = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_FINISHED_LINE = re.compile(r"[.!?:;\"'”’)]\s*$")
_LIST_ITEM = re.compile(r"\s*(?:[-*•]|\d+[.)])\s")
#: A line with at most this many words ends a sentence (a heading or list item).
SHORT_LINE_WORDS = 12


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`, whitespace collapsed, in order, none empty."""
    out: list[str] = []
    for block in _blocks(text):
        out.extend(_split_block(block))
    return out


def _blocks(text: str) -> list[str]:
    """Runs of text that no sentence crosses: paragraphs, titles, list items."""
    blocks: list[str] = []
    for para in _BLANK.split(text):
        lines = [line.strip() for line in para.split("\n")]
        current: list[str] = []
        for i, line in enumerate(lines):
            if not line:
                continue
            current.append(line)
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if (
                _FINISHED_LINE.search(line)
                or len(line.split()) <= SHORT_LINE_WORDS
                or _LIST_ITEM.match(nxt)
            ):
                blocks.append(" ".join(current))
                current = []
        if current:
            blocks.append(" ".join(current))
    return blocks


def _split_block(block: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for m in _END.finditer(block):
        if block[m.start()] == "." and _is_abbreviation(block, m.start()):
            continue
        piece = block[start : m.end()].strip()
        if piece:
            sentences.append(" ".join(piece.split()))
        start = m.end()
    tail = block[start:].strip()
    if tail:
        sentences.append(" ".join(tail.split()))
    return sentences


def _is_abbreviation(block: str, dot: int) -> bool:
    """Whether the period at `dot` closes an abbreviation or an initial, not a sentence."""
    m = _WORD_BEFORE.search(block, max(0, dot - 16), dot)
    if m is None:
        return False
    word = m.group(1).lstrip("(\"'“‘[")
    if len(word) == 1 and word.isupper():
        return True  # an initial: "J. K. Rowling"
    return word.lower() in ABBREVIATIONS
