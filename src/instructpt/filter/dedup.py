"""Duplicate and near-duplicate pairs: within a text, and across the whole corpus.

A pair is represented by the set of word 3-grams ("shingles") of its
normalized `question answer` (normalize.words; a pair of fewer than three
words is one shingle). Two pairs are near duplicates when the Jaccard
similarity of their shingle sets reaches `threshold`.

Within a text (`dedup_in_text`) the pairs are few, so similarity is computed
exactly: `duplicate_in_text` for identical normalized pairs, and
`near_duplicate_in_text` for Jaccard >= threshold against an earlier kept
pair of the same text.

Across the corpus (`CorpusDeduper`) exact comparison is quadratic, so pairs
are MinHashed (datasketch's `MinHash`, affine32 scheme, its permutations
and hash-value arithmetic) and looked up by locality-sensitive hashing with
the band count `b` and rows `r` that datasketch's `MinHashLSH` picks for
(threshold, num_perm): 64 permutations at 0.8 give 5 bands of 11 rows. A
pair whose band hashes collide with any earlier *kept* pair's is dropped as
`near_duplicate_in_corpus`; like `MinHashLSH.query`, candidates are not
re-verified (that would need every signature kept). Only kept pairs enter
the index, so a pair is never dropped for resembling a pair that was itself
dropped, and "first occurrence in shard order, then record order, wins" is
exact. Identical pairs have identical signatures, so exact duplicates across
texts are always caught.

Memory (why not `MinHashLSH` itself). `MinHashLSH` keeps, per key, the key
object and in each band a dict entry from the band's bytes (r x 4 bytes) to
a list of keys: ~1 KB per pair in CPython (benchmarks/dedup.py measures
it), 100 GB for 10^8 pairs. Here a pair costs only its `b` band hashes, as
64-bit integers in sorted numpy arrays: 8 * b bytes (40 B at the defaults,
4 GB for 10^8 pairs), no Python object per pair. A 64-bit band hash makes
a false collision negligible (10^8 * 5 keys / 2^64 per lookup). The arrays
form a log-structured index (`BandIndex`): each batch adds one sorted run,
and runs of similar size are merged (numpy's stable sort is a radix sort on
integers, linear in the merged size), so there are O(log n) runs to search
and the total merge work is O(n log n); the largest merge briefly holds the
old and new arrays, so the peak is about twice the steady size.

Hashing. Words are hashed once (normalize.WordHasher); a shingle's hash is a
mix of its three word hashes folded to 32 bits, which is what datasketch's
default `sha1_hash32` would give per shingle, only vectorized. A batch of
pairs is MinHashed with the very arithmetic of `MinHash.update_batch` (the
murmur3 finalizer, then `a * h + b` mod 2^32 per permutation, then the
minimum per pair); tests check the signatures equal `MinHash.hashvalues`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH

from instructpt.filter.normalize import WordHasher, fmix64, ngram_hashes, words

SHINGLE = 3
SCHEME = "affine32"

# datasketch's 32-bit murmur3 finalizer (minhash._fmix for width 32), restated so
# that a private helper of another package is not a dependency.
_F1, _F2 = np.uint32(0x85EBCA6B), np.uint32(0xC2B2AE35)
_S16, _S13 = np.uint32(16), np.uint32(13)


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _S16)
    h = h * _F1
    h = h ^ (h >> _S13)
    h = h * _F2
    return h ^ (h >> _S16)


def shingle_hashes(word_hashes: np.ndarray) -> np.ndarray:
    """32-bit hashes of the word 3-grams of one pair (one shingle when shorter)."""
    if len(word_hashes) < SHINGLE:
        padded = np.zeros(SHINGLE, dtype=np.uint64)
        padded[: len(word_hashes)] = word_hashes
        word_hashes = padded
    return (ngram_hashes(word_hashes, SHINGLE) >> np.uint64(32)).astype(np.uint32)


def jaccard(a: set[int], b: set[int]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def dedup_in_text(shingle_sets: Sequence[frozenset[int]], threshold: float) -> list[str]:
    """Per pair of one text, in order: "" (keep), duplicate_in_text or near_duplicate_in_text.

    Exact Jaccard against the pairs kept before it in the same text; a pair
    equal to a kept one (same shingle set) counts as an exact duplicate.
    """
    kept: list[frozenset[int]] = []
    reasons: list[str] = []
    for shingles in shingle_sets:
        reason = ""
        for earlier in kept:
            if shingles == earlier:
                reason = "duplicate_in_text"
                break
            if jaccard(shingles, earlier) >= threshold:
                reason = "near_duplicate_in_text"
                break
        if not reason:
            kept.append(shingles)
        reasons.append(reason)
    return reasons


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) exactly as datasketch's `MinHashLSH` chooses them."""
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


class MinHasher:
    """Batched MinHash signatures with datasketch's `MinHash` permutations and arithmetic."""

    def __init__(self, num_perm: int, seed: int) -> None:
        template = MinHash(num_perm=num_perm, seed=seed, scheme=SCHEME)
        self.num_perm = num_perm
        self.seed = seed
        self.permutations = template.permutations  # (2, num_perm) uint32: a (odd), b
        self._empty = template.hashvalues

    def signatures(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        """(len(shingles), num_perm) uint32: row i equals MinHash.update_batch(shingles[i])."""
        if not shingles:
            return np.empty((0, self.num_perm), dtype=np.uint32)
        sizes = np.fromiter((len(s) for s in shingles), dtype=np.int64, count=len(shingles))
        out = np.tile(self._empty, (len(shingles), 1))
        nonempty = np.flatnonzero(sizes)
        if len(nonempty):
            flat = np.concatenate([shingles[i] for i in nonempty])
            a, b = self.permutations
            hv = _fmix32(flat.astype(np.uint32)).reshape(-1, 1)
            phv = hv * a + b
            starts = np.concatenate(([0], np.cumsum(sizes[nonempty])[:-1]))
            out[nonempty] = np.minimum.reduceat(phv, starts, axis=0)
        return out

    def datasketch_minhash(self, shingles: np.ndarray) -> MinHash:
        """The same signature through datasketch itself (tests compare the two)."""
        m = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=int,
            permutations=self.permutations,
            scheme=SCHEME,
        )
        m.update_batch(shingles.tolist())
        return m


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: one hash per band of `rows` signature values, band index mixed in."""
    n = signatures.shape[0]
    sig = signatures[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    with np.errstate(over="ignore"):
        acc = np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        acc = np.broadcast_to(acc, (n, bands)).copy()
        for j in range(rows):
            acc = fmix64(acc ^ sig[:, :, j])
    return acc


class BandIndex:
    """A set of 64-bit band keys in sorted numpy runs (log-structured; see module docstring)."""

    def __init__(self) -> None:
        self.runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def contains(self, keys: np.ndarray) -> np.ndarray:
        """Boolean array of keys' shape: which keys are in the index."""
        flat = keys.ravel()
        hit = np.zeros(len(flat), dtype=bool)
        for run in self.runs:
            pos = np.searchsorted(run, flat)
            pos[pos == len(run)] = 0
            hit |= run[pos] == flat
        return hit.reshape(keys.shape)

    def add(self, keys: np.ndarray) -> None:
        """Add keys (callers only add keys not yet present)."""
        if keys.size == 0:
            return
        self.runs.append(np.sort(keys.ravel(), kind="stable"))
        while len(self.runs) > 1 and len(self.runs[-2]) <= 2 * len(self.runs[-1]):
            last = self.runs.pop()
            merged = np.concatenate((self.runs.pop(), last))
            merged.sort(kind="stable")
            self.runs.append(merged)


class CorpusDeduper:
    """Corpus-wide near-duplicate detection; feed pairs in corpus order.

    `check` answers for a batch in order, as if the pairs were checked one by
    one: a pair is a duplicate when it shares a band key with any kept pair
    before it (earlier batches or earlier in this batch). The keys of the
    batch's kept pairs are returned so that a resumable stage can persist
    them per shard and `load` them back instead of recomputing.
    """

    def __init__(self, threshold: float, num_perm: int, seed: int) -> None:
        self.hasher = MinHasher(num_perm, seed)
        self.bands, self.rows = lsh_params(threshold, num_perm)
        self.index = BandIndex()

    def keys(self, shingles: Sequence[np.ndarray]) -> np.ndarray:
        return band_keys(self.hasher.signatures(shingles), self.bands, self.rows)

    def check(self, shingles: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(is_duplicate bool (n,), band keys of the kept pairs (k, bands) uint64)."""
        keys = self.keys(shingles)
        dup = self.index.contains(keys).any(axis=1)
        # Within the batch: sequential, only kept pairs claim their keys.
        claimed: set[int] = set()
        for i in np.flatnonzero(~dup):
            row = keys[i].tolist()
            if any(k in claimed for k in row):
                dup[i] = True
            else:
                claimed.update(row)
        kept = keys[~dup]
        self.index.add(kept)
        return dup, kept

    def load(self, kept_keys: np.ndarray) -> None:
        """Add the keys of pairs kept earlier (a resumed run replaying finished shards)."""
        self.index.add(kept_keys.reshape(-1, self.bands))


def pair_shingles(question: str, answer: str, hasher: WordHasher) -> np.ndarray:
    """Shingle hashes of one pair's normalized `question answer`."""
    return shingle_hashes(hasher(words(question) + words(answer)))
