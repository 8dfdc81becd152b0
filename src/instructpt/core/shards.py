"""Shard files: zstd-compressed JSON lines, written atomically.

Why jsonl.zst and not parquet as the default: records are nested (pairs,
stats, lineage) and written one at a time by streaming stages; JSON lines
keep them readable with `zstdcat | head`, append without buffering a row
group, and give byte-identical output for identical input (orjson is
deterministic, zstd at a fixed level too), which is how resume is tested.
Parquet remains an input format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import zstandard

from instructpt.core.atomic import atomic_open
from instructpt.core.streams import open_binary

SHARD_SUFFIX = ".jsonl.zst"


def shard_name(index: int) -> str:
    return f"shard-{index:05d}{SHARD_SUFFIX}"


def shard_of(doc_id: str, num_shards: int) -> int:
    """The shard of a document depends on its id only, never on worker count."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_shards


def hashed_id(source: str, position: int | None) -> str:
    """Stable id for a record that has none: hash of its source and position."""
    key = f"{source}\n{'' if position is None else position}".encode()
    return hashlib.blake2b(key, digest_size=8).hexdigest()


def dumps(record: dict[str, Any]) -> bytes:
    # default=str: values JSON has no type for (bytes, Decimal from parquet) become strings
    return orjson.dumps(record, default=str) + b"\n"


def write_shard(path: Path, records: Iterable[dict[str, Any]], level: int = 3) -> tuple[int, str]:
    """Write records to `path` atomically; return (count, sha256 of the file)."""
    return write_lines(path, (dumps(r) for r in records), level)


def write_lines(path: Path, lines: Iterable[bytes], level: int = 3) -> tuple[int, str]:
    """Write serialized JSON lines to a zstd shard atomically; return (count, sha256)."""
    count = 0
    with atomic_open(path) as fh:
        hasher = _HashingWriter(fh)
        with zstandard.ZstdCompressor(level=level).stream_writer(hasher, closefd=False) as zw:
            for line in lines:
                zw.write(line)
                count += 1
    return count, hasher.sha256.hexdigest()


class _HashingWriter:
    """File wrapper hashing what is written, so checksums cost no second read."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def iter_lines(path: Path) -> Iterator[bytes]:
    """Raw JSON lines of a shard, for stages that pass records through untouched."""
    with open_binary(str(path)) as fh:
        yield from fh


def read_shard(path: Path) -> Iterator[dict[str, Any]]:
    for line in iter_lines(path):
        yield orjson.loads(line)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
