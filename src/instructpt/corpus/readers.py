"""Streaming readers for raw corpora: one `RawRecord` at a time, memory flat.

Every record carries where it came from (file and 1-based line or row), so a
bad record can be quarantined with a location a user can open in an editor.
Readers never raise on bad data: they yield the record with an `error`
reason and let the stage decide whether to skip or fail.

Formats:
- `jsonl` (also `.jsonl.gz`, `.jsonl.zst`, `.json`, `.ndjson`): one JSON object a line.
  Our own reader, not `datasets`, because it must survive broken lines and
  report them by line number instead of failing the whole file.
- `parquet`: read in record batches with pyarrow; whole row groups are skipped
  on resume.
- `txt`: a folder of `.txt` files (recursively, sorted); one file, one document.
- `hf-disk`: a folder written by `datasets.Dataset.save_to_disk` (memory-mapped).
- `hf-json` / `hf-parquet`: files read through `datasets.load_dataset(..., streaming=True)`.
"""

from __future__ import annotations

import glob
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from instructpt.core.streams import open_binary  # moved
from instructpt.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".ndjson", ".json.gz", ".json.zst")
PARQUET_SUFFIXES = (".parquet",)


@dataclass(slots=True)
class RawRecord:
    """A record as read, before validation. `error` is a reason code when unusable."""

    source: str
    position: int | None  # 1-based line (jsonl) or row (tables); None for whole files
    data: Any = None
    error: str | None = None
    detail: str = ""
    raw: str = ""  # the offending input, kept so quarantine loses nothing

    @property
    def location(self) -> str:
        return location(self.source, self.position, self.unit)

    @property
    def unit(self) -> str:
        if self.position is None:
            return "file"
        return "line" if self.source.endswith(JSONL_SUFFIXES) else "row"


def location(source: str, position: int | None, unit: str = "line") -> str:
    return source if position is None else f"{source} {unit} {position}"


@dataclass(frozen=True, slots=True)
class Source:
    """One unit of input that is read sequentially: a file, a txt folder or a dataset split."""

    kind: str  # jsonl | parquet | txt | hf-disk | hf-json | hf-parquet
    name: str  # how records name their origin (path as given, normalised)
    path: str
    split: str | None = None

    def fingerprint(self) -> list[Any]:
        """Size and mtime of what is read: a resume over changed input is refused."""
        files = sorted(_txt_files(Path(self.path))) if self.kind == "txt" else [Path(self.path)]
        if self.kind == "hf-disk":
            files = sorted(p for p in Path(self.path).rglob("*") if p.is_file())
        out: list[Any] = [self.kind, self.name, self.split]
        for f in files:
            st = f.stat()
            out.append([str(f), st.st_size, st.st_mtime_ns])
        return out

    def size_bytes(self) -> int:
        if self.kind == "txt":
            return sum(f.stat().st_size for f in _txt_files(Path(self.path)))
        if self.kind == "hf-disk":
            return sum(p.stat().st_size for p in Path(self.path).rglob("*.arrow"))
        return Path(self.path).stat().st_size


def _txt_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.txt") if p.is_file())


def _is_hf_disk(folder: Path) -> bool:
    return (folder / "dataset_info.json").is_file() or (folder / "dataset_dict.json").is_file()


def _kind_of_file(path: str, fmt: str) -> str | None:
    if fmt in ("hf-json", "hf-parquet"):
        return fmt
    if fmt in ("jsonl", "parquet"):
        return fmt
    lower = path.lower()
    if lower.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return None


def discover_sources(inputs: list[str], fmt: str = "auto") -> list[Source]:
    """Expand files, folders and globs into an ordered list of sources.

    The order is the order of `inputs`, and sorted within a folder or glob, so
    the same command always reads the same records in the same order.
    """
    sources: list[Source] = []
    for spec in inputs:
        matches = sorted(glob.glob(spec, recursive=True)) if glob.has_magic(spec) else [spec]
        if not matches:
            raise InputError(f"input '{spec}' matches no file")
        for match in matches:
            sources.extend(_sources_for_path(Path(match), fmt))
    if not sources:
        raise InputError(f"no readable input in {inputs} (format {fmt})")
    names = [s.name + (f"[{s.split}]" if s.split else "") for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InputError(f"input listed twice: {sorted(dupes)}; each source may appear once")
    return sources


def _sources_for_path(path: Path, fmt: str) -> list[Source]:
    name = os.path.normpath(str(path))
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if path.is_dir():
        if fmt == "hf-disk" or (fmt == "auto" and _is_hf_disk(path)):
            return _hf_disk_sources(path, name)
        if fmt == "txt" or (fmt == "auto" and _txt_files(path) and not _data_files(path, fmt)):
            return [Source("txt", name, str(path))]
        files = _data_files(path, fmt)
        if not files:
            raise InputError(
                f"folder {path} holds no .jsonl/.jsonl.gz/.jsonl.zst/.parquet/.txt files "
                "and is not a datasets save_to_disk folder"
            )
        return [
            Source(_kind_of_file(str(f), fmt) or "jsonl", os.path.normpath(str(f)), str(f))
            for f in files
        ]
    if fmt in ("txt", "hf-disk"):
        raise InputError(f"--format {fmt} needs a folder, got the file {path}")
    kind = _kind_of_file(str(path), fmt)
    if kind is None:
        raise InputError(
            f"cannot tell the format of {path} from its name; pass --format "
            "(jsonl, parquet, hf-json, hf-parquet)"
        )
    return [Source(kind, name, str(path))]


def _data_files(folder: Path, fmt: str) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and _kind_of_file(str(p), fmt) is not None
    )


def _hf_disk_sources(path: Path, name: str) -> list[Source]:
    if (path / "dataset_dict.json").is_file():
        splits = orjson.loads((path / "dataset_dict.json").read_bytes()).get("splits", [])
        return [Source("hf-disk", name, str(path), split=s) for s in splits]
    return [Source("hf-disk", name, str(path))]


# --------------------------------------------------------------------------- reading


@dataclass(slots=True)
class ProgressTap:
    """How many bytes of a source's files have been consumed, for progress bars and ETA."""

    consumed: int = 0


def iter_source(
    source: Source,
    skip: int = 0,
    max_line_bytes: int = 64 << 20,
    tap: ProgressTap | None = None,
) -> Iterator[RawRecord]:
    """Yield the records of `source` in order, starting after the first `skip`."""
    tap = tap if tap is not None else ProgressTap()
    if source.kind == "jsonl":
        return _iter_jsonl(source, skip, max_line_bytes, tap)
    if source.kind == "parquet":
        return _iter_parquet(source, skip, tap)
    if source.kind == "txt":
        return _iter_txt(source, skip, tap)
    if source.kind == "hf-disk":
        return _iter_hf_disk(source, skip, tap)
    if source.kind in ("hf-json", "hf-parquet"):
        return _iter_hf_streaming(source, skip, tap)
    raise InputError(f"unknown source kind {source.kind}")


def _iter_jsonl(
    source: Source, skip: int, max_line_bytes: int, tap: ProgressTap
) -> Iterator[RawRecord]:
    import zstandard

    raw_file = open(source.path, "rb")  # noqa: SIM115 - closed with fh (or below)
    with raw_file, open_binary(source.path, raw_file) as fh:
        position = 0
        ordinal = 0
        while True:
            try:
                line = fh.readline(max_line_bytes)
            except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
                # A truncated or corrupt .gz/.zst: the lines before it were kept; the
                # rest of the file cannot be read, so it is quarantined from here on.
                ordinal += 1
                if ordinal > skip:
                    yield RawRecord(
                        source.name,
                        position + 1,
                        error="unreadable_file",
                        detail=f"{type(exc).__name__}: {exc}; the rest of the file is lost",
                    )
                return
            if not line:
                tap.consumed = os.fstat(raw_file.fileno()).st_size
                return
            position += 1
            if position & 1023 == 0:
                tap.consumed = raw_file.tell()
            too_long = len(line) >= max_line_bytes and not line.endswith(b"\n")
            if too_long:
                # Drain the rest of the line without holding it: memory stays bounded.
                total = len(line)
                while True:
                    chunk = fh.readline(max_line_bytes)
                    total += len(chunk)
                    if not chunk or chunk.endswith(b"\n"):
                        break
            if position == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]  # a UTF-8 byte order mark is not part of the JSON
            if not too_long and not line.strip():
                continue  # blank lines are layout, not records
            ordinal += 1
            if ordinal <= skip:
                continue
            if too_long:
                yield RawRecord(
                    source.name,
                    position,
                    error="line_too_long",
                    detail=f"{total} bytes > limit {max_line_bytes}",
                    raw=line[:1000].decode("utf-8", "backslashreplace"),
                )
                continue
            yield _parse_json_line(source.name, position, line)


def _parse_json_line(name: str, position: int, line: bytes) -> RawRecord:
    try:
        return RawRecord(name, position, data=orjson.loads(line))
    except orjson.JSONDecodeError as exc:
        raw = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as uexc:
            return RawRecord(
                name,
                position,
                error="invalid_utf8",
                detail=f"byte {uexc.start}: {uexc.reason}",
                raw=raw,
            )
        return RawRecord(name, position, error="malformed_json", detail=str(exc), raw=raw)


def _iter_parquet(source: Source, skip: int, tap: ProgressTap) -> Iterator[RawRecord]:
    import pyarrow as pa

    try:
        yield from _iter_parquet_rows(source, skip, tap)
    except (OSError, pa.ArrowException) as exc:
        # Not a parquet file, or a corrupt row group: rows before it were kept.
        yield RawRecord(
            source.name,
            None,
            error="unreadable_file",
            detail=f"{type(exc).__name__}: {exc}; the rest of the file is lost",
        )


def _iter_parquet_rows(source: Source, skip: int, tap: ProgressTap) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(source.path)
    total_rows = max(1, pf.metadata.num_rows)
    size = Path(source.path).stat().st_size
    groups: list[int] = []
    row = 0  # rows before the first group read
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if row + n <= skip and not groups:
            row += n
            continue
        groups.append(g)
    if not groups:
        return
    for batch in pf.iter_batches(batch_size=4096, row_groups=groups):
        tap.consumed = size * row // total_rows
        for item in batch.to_pylist():
            row += 1
            if row <= skip:
                continue
            yield RawRecord(source.name, row, data=item)


def _iter_txt(source: Source, skip: int, tap: ProgressTap) -> Iterator[RawRecord]:
    for i, path in enumerate(_txt_files(Path(source.path))):
        if i < skip:
            continue
        data = path.read_bytes()
        tap.consumed += len(data)
        name = os.path.normpath(str(path))
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            yield RawRecord(
                name,
                None,
                error="invalid_utf8",
                detail=f"byte {exc.start}: {exc.reason}",
                raw=data[:1000].decode("utf-8", "backslashreplace"),
            )
            continue
        yield RawRecord(name, None, data={"text": text})


def _iter_hf_disk(source: Source, skip: int, tap: ProgressTap) -> Iterator[RawRecord]:
    import datasets

    ds = datasets.load_from_disk(source.path)
    if source.split is not None:
        ds = ds[source.split]
    name = source.name + (f"[{source.split}]" if source.split else "")
    if skip:
        ds = ds.select(range(skip, len(ds)))
    row = skip
    size, total = source.size_bytes(), max(1, skip + len(ds))
    for batch in ds.iter(batch_size=1024):
        tap.consumed = size * row // total
        keys = list(batch)
        for values in zip(*(batch[k] for k in keys), strict=True):
            row += 1
            yield RawRecord(name, row, data=dict(zip(keys, values, strict=True)))


def _iter_hf_streaming(source: Source, skip: int, tap: ProgressTap) -> Iterator[RawRecord]:
    import datasets

    builder = "json" if source.kind == "hf-json" else "parquet"
    ds = datasets.load_dataset(builder, data_files=source.path, split="train", streaming=True)
    if skip:
        ds = ds.skip(skip)
    row = skip
    for item in ds:
        row += 1
        yield RawRecord(source.name, row, data=item)
    tap.consumed = source.size_bytes()
