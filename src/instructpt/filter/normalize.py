"""Words and word n-gram hashes shared by grounding, dedup and decontamination.

One normalization for all three filters, so that "the same words" means the
same thing everywhere: Unicode case folding, then maximal runs of word
characters (`\\w+`: letters, digits, underscore, in any script). Punctuation
and whitespace only separate words, so `"Paris."`, `"paris"` and `" PARIS "`
are one word.

N-grams are hashed to 64-bit integers in numpy rather than kept as strings:
an n-gram costs 8 bytes wherever it is stored, and a whole batch of texts is
hashed with a handful of array operations. Each distinct word is hashed once
with BLAKE2b (a stable hash: Python's `hash` is salted per process and would
make outputs differ between runs); the per-word results are memoized in a
bounded dict owned by the caller (`WordHasher`), never in a module global.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD_RE = re.compile(r"\w+")

# MurmurHash3's 64-bit finalizer and three odd multipliers (from splitmix64 and
# xxHash): position-dependent weights make "a b c" and "c b a" hash apart.
_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)
_S33 = np.uint64(33)
_POSITION_WEIGHTS = (
    0x9E3779B97F4A7C15,
    0xBF58476D1CE4E5B9,
    0x94D049BB133111EB,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x27D4EB2F165667C5,
)


def words(text: str) -> list[str]:
    """Case-folded word tokens of `text` (see the module docstring)."""
    return _WORD_RE.findall(text.casefold())


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's avalanching bijection on uint64 (wrapping arithmetic is intended)."""
    x = x ^ (x >> _S33)
    x = x * _M1
    x = x ^ (x >> _S33)
    x = x * _M2
    return x ^ (x >> _S33)


def _weight(position: int) -> np.uint64:
    base = _POSITION_WEIGHTS[position % len(_POSITION_WEIGHTS)]
    # Positions beyond the table reuse a weight, perturbed so it stays odd and distinct.
    return np.uint64((base + 2 * (position // len(_POSITION_WEIGHTS))) % (1 << 64) | 1)


class WordHasher:
    """Stable 64-bit hashes of words, memoized (bounded) for the text at hand.

    The memo is cleared when it holds `max_cached` words, so memory stays
    bounded on any corpus while the common words of a batch hit the cache.
    """

    def __init__(self, max_cached: int = 1 << 20) -> None:
        self.max_cached = max_cached
        self._cache: dict[str, int] = {}

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        cache = self._cache
        out = np.empty(len(tokens), dtype=np.uint64)
        for i, token in enumerate(tokens):
            value = cache.get(token)
            if value is None:
                if len(cache) >= self.max_cached:
                    cache.clear()
                digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
                value = cache[token] = int.from_bytes(digest, "little")
            out[i] = value
        return out


def ngram_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """64-bit hashes of every run of `n` consecutive words (empty when fewer words)."""
    count = len(word_hashes) - n + 1
    if count <= 0:
        return np.empty(0, dtype=np.uint64)
    with np.errstate(over="ignore"):
        acc = np.zeros(count, dtype=np.uint64)
        for j in range(n):
            acc += word_hashes[j : j + count] * _weight(j)
        # The length goes in too, so a 5-word run never equals a 13-word one.
        return fmix64(acc ^ np.uint64(n))


def sequence_hash(word_hashes: np.ndarray) -> int:
    """Hash of a whole word sequence, equal to `ngram_hashes(word_hashes, len(...))[0]`."""
    return int(ngram_hashes(word_hashes, len(word_hashes))[0])
