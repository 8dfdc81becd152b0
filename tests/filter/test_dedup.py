"""Near duplicates: exact within a text, MinHash LSH across the corpus, first one wins."""

from __future__ import annotations

import numpy as np

from instructpt.filter.dedup import (
    BandIndex,
    CorpusDeduper,
    MinHasher,
    dedup_in_text,
    lsh_params,
    pair_shingles,
)
from instructpt.filter.normalize import WordHasher

LONG_Q = "Which university did Mara Quill attend before she founded the Quill Glass Works company?"


def shingles(pairs: list[tuple[str, str]]) -> list[np.ndarray]:
    hasher = WordHasher()
    return [pair_shingles(q, a, hasher) for q, a in pairs]


def test_signatures_equal_datasketch_minhash():
    hasher = MinHasher(num_perm=64, seed=3)
    batch = shingles([(LONG_Q, "Harlow University"), ("Hi", "x"), ("a b c d", "e")])
    sigs = hasher.signatures(batch)
    for row, sh in zip(sigs, batch, strict=True):
        assert np.array_equal(row, hasher.datasketch_minhash(sh).hashvalues)


def test_band_parameters_are_datasketchs():
    assert lsh_params(0.8, 64) == (5, 11)


def test_in_text_exact_and_near_duplicates_are_dropped_first_kept():
    sets = [
        frozenset(s.tolist())
        for s in shingles(
            [
                (LONG_Q, "Harlow University"),
                (LONG_Q.lower().rstrip("?"), "Harlow University."),  # same words
                (LONG_Q, "Harlow University indeed"),  # Jaccard 14/15
                ("Where was Mara Quill born?", "Dunmore"),
                ("Where was Mara Quill born?", "Dunmore"),
            ]
        )
    ]
    assert dedup_in_text(sets, 0.8) == [
        "",
        "duplicate_in_text",
        "near_duplicate_in_text",
        "",
        "duplicate_in_text",
    ]


def test_corpus_dedup_is_sequential_within_and_across_batches():
    dedup = CorpusDeduper(0.8, 64, 1)
    first = shingles([(LONG_Q, "Harlow University"), ("Where was she born?", "Dunmore")])
    dup, kept = dedup.check(first + first[:1])
    assert dup.tolist() == [False, False, True]
    assert kept.shape == (2, 5) and len(dedup.index) == 10
    later = shingles(
        [
            (LONG_Q, "Harlow University indeed"),
            ("What does the Quill Glass Works make?", "Lenses for cameras"),
        ]
    )
    dup, _ = dedup.check(later)
    assert dup.tolist() == [True, False]


def test_only_kept_pairs_enter_the_index(monkeypatch):
    # b shares a band with a and is dropped; c shares a band only with b, so c is kept.
    keys = {
        "a": [1, 2, 3, 4, 5],
        "b": [1, 6, 7, 8, 9],
        "c": [10, 6, 11, 12, 13],
    }
    dedup = CorpusDeduper(0.8, 64, 1)
    monkeypatch.setattr(
        dedup, "keys", lambda names: np.array([keys[n] for n in names], dtype=np.uint64)
    )
    assert dedup.check(["a", "b", "c"])[0].tolist() == [False, True, False]
    dedup = CorpusDeduper(0.8, 64, 1)
    monkeypatch.setattr(
        dedup, "keys", lambda names: np.array([keys[n] for n in names], dtype=np.uint64)
    )
    assert dedup.check(["a", "b"])[0].tolist() == [False, True]
    assert dedup.check(["c"])[0].tolist() == [False]


def test_band_index_finds_every_added_key_across_merged_runs():
    rng = np.random.default_rng(0)
    index = BandIndex()
    added = [rng.integers(0, 2**63, size=(n, 5), dtype=np.uint64) for n in (7, 3, 50, 1, 200)]
    for keys in added:
        index.add(keys)
    assert len(index.runs) <= 3 and len(index) == 261 * 5
    everything = np.concatenate(added)
    assert index.contains(everything).all()
    assert not index.contains(rng.integers(0, 2**63, size=(100, 5), dtype=np.uint64)).any()
