"""`_manifest.json`: what a finished stage wrote, and the proof it is finished.

A stage directory is complete exactly when its manifest exists: the manifest
is written last, atomically, after every shard has been renamed into place.
Downstream stages read shard names, counts and checksums from it and never
list the folder, so a stray temp file can never be mistaken for data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from instructpt import __version__
from instructpt.core.atomic import atomic_write_bytes
from instructpt.errors import InputError

MANIFEST_NAME = "_manifest.json"
#: The manifest's `stats`, alone and indented, for people and reports to read.
STATS_NAME = "stats.json"


@dataclass
class ShardInfo:
    file: str
    records: int
    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path, records: int, sha256: str) -> ShardInfo:
        """The entry of a file just written to `path` (named by its file name)."""
        return cls(path.name, records, sha256, path.stat().st_size)


@dataclass
class Manifest:
    stage: str
    config_hash: str
    input_fingerprint: str
    format: str
    shards: list[ShardInfo]
    stats: dict[str, Any] = field(default_factory=dict)
    instructpt_version: str = __version__

    @property
    def num_records(self) -> int:
        return sum(s.records for s in self.shards)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2) + b"\n"


def write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write_bytes(folder / MANIFEST_NAME, manifest.to_json())


def write_stats(folder: Path, stats: dict[str, Any]) -> None:
    atomic_write_bytes(folder / STATS_NAME, orjson.dumps(stats, option=orjson.OPT_INDENT_2))


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of a finished stage, or None when the stage has not finished."""
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data = orjson.loads(path.read_bytes())
        data["shards"] = [ShardInfo(**s) for s in data["shards"]]
        manifest = Manifest(**data)
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path} is not a valid manifest ({exc}); rerun that stage with --overwrite"
        ) from None
    for shard in manifest.shards:
        # Shard names are joined to folders by every reader: one from an edited or
        # foreign manifest must not reach outside the stage folder.
        name = PurePosixPath(shard.file) if isinstance(shard.file, str) else None
        if name is None or name.is_absolute() or ".." in name.parts or "\\" in shard.file:
            raise InputError(
                f"{path} names a shard outside its folder ({shard.file!r}); rerun that stage "
                "with --overwrite"
            )
    return manifest


def require_manifest(folder: Path, what: str) -> Manifest:
    """The manifest of an input stage; a clear error when that stage has not finished."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise InputError(
            f"{folder} has no {MANIFEST_NAME}: the {what} stage has not finished there. "
            f"Run (or resume) it first."
        )
    return manifest
