"""Fixed-length sequences out of a tokenize stage directory, for the training loop.

The token shards, concatenated in index order, are one stream; sequence i is
stream[i * seq_len : (i + 1) * seq_len], so documents run across sequence
boundaries and every token but the last partial sequence is trained on.
For next-token prediction take inputs = seq[:-1], targets = seq[1:] (or
open the reader with seq_len = context + 1).

Shards are memory-mapped: opening costs nothing and memory stays flat.
Order is deterministic: sequential, or a permutation drawn from `seed`; with
`rank`/`world_size` each rank gets every world_size-th sequence of that order,
and `start` skips sequences already consumed, for exact resume of training.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from instructpt.errors import InputError
from instructpt.pack.tokenize import INDEX_NAME


class PackedTokens:
    """Read-only view of packed token shards: sequences, token ranges and record lineage."""

    def __init__(self, folder: str | Path, seq_len: int | None = None) -> None:
        self.folder = Path(folder)
        index_path = self.folder / INDEX_NAME
        if not index_path.is_file():
            raise InputError(
                f"{self.folder} has no {INDEX_NAME}: the tokenize stage has not finished there"
            )
        self.index: dict[str, Any] = orjson.loads(index_path.read_bytes())
        self.seq_len = int(seq_len or self.index["seq_len"])
        if self.seq_len < 2:
            raise ValueError("seq_len must be >= 2")
        self.dtype = np.dtype(self.index["dtype"])
        self.vocab_size = int(self.index["vocab_size"])
        self.num_tokens = int(self.index["num_tokens"])
        self._starts = [int(s["start"]) for s in self.index["shards"]]
        self._arrays = [
            np.load(self.folder / s["file"], mmap_mode="r") if s["num_tokens"] else None
            for s in self.index["shards"]
        ]
        self._record_index: list[dict[str, Any] | None] = [None] * len(self._arrays)

    @property
    def num_sequences(self) -> int:
        return self.num_tokens // self.seq_len

    def __len__(self) -> int:
        return self.num_sequences

    def tokens(self, start: int, stop: int) -> np.ndarray:
        """Tokens [start, stop) of the stream (a copy; may span shards)."""
        if not 0 <= start <= stop <= self.num_tokens:
            raise IndexError(f"token range [{start}, {stop}) outside [0, {self.num_tokens})")
        parts = []
        k = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while start < stop:
            array, base = self._arrays[k], self._starts[k]
            if array is not None and start < base + len(array):
                take = min(stop, base + len(array))
                parts.append(np.asarray(array[start - base : take - base]))
                start = take
            k += 1
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)

    def sequence(self, i: int) -> np.ndarray:
        if not 0 <= i < self.num_sequences:
            raise IndexError(f"sequence {i} outside [0, {self.num_sequences})")
        return self.tokens(i * self.seq_len, (i + 1) * self.seq_len)

    def order(self, seed: int | None = None, rank: int = 0, world_size: int = 1) -> np.ndarray:
        """Sequence numbers this rank reads, in order (seeded permutation when `seed` is set)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        n = self.num_sequences
        order = np.arange(n) if seed is None else np.random.default_rng(seed).permutation(n)
        return order[rank::world_size]

    def iter_sequences(
        self, *, seed: int | None = None, start: int = 0, rank: int = 0, world_size: int = 1
    ) -> Iterator[np.ndarray]:
        """Sequences of `seq_len` tokens (int64), skipping the first `start` of this rank."""
        for i in self.order(seed, rank, world_size)[start:]:
            yield self.sequence(int(i)).astype(np.int64)

    def iter_batches(
        self,
        batch_size: int,
        *,
        seed: int | None = None,
        start: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> Iterator[np.ndarray]:
        """Batches [batch_size, seq_len] (int64); a last incomplete batch is dropped.

        `start` counts sequences (batches consumed x batch_size) of this rank.
        """
        batch: list[np.ndarray] = []
        for seq in self.iter_sequences(seed=seed, start=start, rank=rank, world_size=world_size):
            batch.append(seq)
            if len(batch) == batch_size:
                yield np.stack(batch)
                batch = []

    # ----------------------------------------------------------------- lineage

    def _shard_records(self, k: int) -> dict[str, Any]:
        cached = self._record_index[k]
        if cached is None:
            path = self.folder / self.index["shards"][k]["index"]
            cached = orjson.loads(path.read_bytes())
            self._record_index[k] = cached
        return cached

    def iter_records(self) -> Iterator[tuple[str, int, int]]:
        """(record id, start, stop) of every record in stream order; BOS/EOS included."""
        for k, base in enumerate(self._starts):
            info = self._shard_records(k)
            offsets = info["offsets"]
            for j, rid in enumerate(info["ids"]):
                yield rid, base + offsets[j], base + offsets[j + 1]

    def records_at(self, start: int, stop: int) -> list[str]:
        """Ids of the records with tokens in [start, stop), e.g. those of one sequence."""
        found = []
        for k, base in enumerate(self._starts):
            size = int(self.index["shards"][k]["num_tokens"])
            if base >= stop or base + size <= start:
                continue
            info = self._shard_records(k)
            offsets = info["offsets"]
            lo = max(bisect.bisect_right(offsets, start - base) - 1, 0)
            hi = bisect.bisect_left(offsets, stop - base)
            found += info["ids"][lo:hi]
        return found
