"""The ingest stage: raw corpus files -> `Document` shards split by document id.

How it resumes exactly. Each source (file, txt folder, dataset split) is read
sequentially in *blocks* of `block_records` records. A block's documents are
routed to their shard by id and written as one piece per shard into a unit
folder, renamed into place with its stats when the block is complete. A kill
loses at most the block in flight; a rerun skips finished blocks (whose
record counts say where to resume reading) and redoes the rest. When every
source is read, each shard is assembled from its pieces in (source, block)
order, ids are de-duplicated within the shard (a shard holds every copy of
an id), and the shard is renamed into place. The manifest comes last. The
output therefore never depends on where a run was interrupted, nor on the
number of workers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.manifest import Manifest, ShardInfo
from instructpt.core.resume import StageDir, open_stage_dir
from instructpt.core.shards import dumps, iter_lines, shard_name, shard_of, write_lines
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.readers import ProgressTap, RawRecord, Source, discover_sources, iter_source
from instructpt.corpus.validate import to_document
from instructpt.errors import InputError

STAGE = "ingest"
BLOCK_MAX_BYTES = 64 << 20  # a block also ends here, so memory stays bounded for long texts
QUARANTINE_NAME = "quarantine.jsonl"


@dataclass
class IngestResult:
    manifest: Manifest
    out_dir: Path
    seconds: float
    resumed_blocks: int = 0
    already_done: bool = False

    def summary_lines(self) -> list[str]:
        st = self.manifest.stats
        rate = st["read"] / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"ingest: {st['kept']:,} documents kept of {st['read']:,} read "
            f"into {len(self.manifest.shards)} shards in {self.out_dir}",
        ]
        if self.already_done:
            lines[0] += " (already complete; nothing to do)"
        else:
            lines.append(f"  {self.seconds:.1f} s, {rate:,.0f} records/s")
        if self.resumed_blocks:
            lines.append(f"  resumed: {self.resumed_blocks} finished blocks reused")
        for reason, n in sorted(st["skipped"].items()):
            lines.append(f"  skipped {n:,} ({reason})")
        if st["skipped"]:
            lines.append(
                f"  quarantined records with file and line: {self.out_dir / QUARANTINE_NAME}"
            )
        return lines


def input_fingerprint(sources: list[Source]) -> str:
    blob = orjson.dumps([s.fingerprint() for s in sources])
    return hashlib.sha256(blob).hexdigest()[:16]


def ingest(cfg: IngestConfig, out_dir: Path, overwrite: bool = False) -> IngestResult:
    """Run (or resume) the ingest stage into `out_dir`."""
    start = time.perf_counter()
    sources = discover_sources(cfg.input, cfg.format)
    fingerprint = input_fingerprint(sources)
    stage = open_stage_dir(out_dir, STAGE, cfg, fingerprint, overwrite)
    if stage.done is not None:
        return IngestResult(stage.done, out_dir, 0.0, already_done=True)

    units = stage.work / "units"
    units.mkdir(exist_ok=True)
    for leftover in units.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    finished = _finished_blocks(units)
    resumed = sum(len(v) for v in finished.values())

    total_bytes = sum(s.size_bytes() for s in sources)
    with tqdm(
        total=total_bytes,
        unit="B",
        unit_scale=True,
        desc="ingest",
        disable=None if cfg.progress else True,
        file=sys.stderr,
    ) as bar:
        _read_all_sources(sources, cfg, units, finished, bar)
        manifest = stage.finish(_assemble_shards(stage, cfg, units))
    return IngestResult(manifest, out_dir, time.perf_counter() - start, resumed_blocks=resumed)


# --------------------------------------------------------------------------- reading blocks


@dataclass
class BlockStats:
    end_ordinal: int  # records of the source consumed up to the end of this block
    read: int = 0
    kept: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


def _unit_name(source_index: int, block: int) -> str:
    return f"u{source_index:05d}-b{block:07d}"


def _finished_blocks(units: Path) -> dict[int, list[BlockStats]]:
    """Finished blocks per source index, in block order (always a prefix)."""
    found: dict[int, list[tuple[int, BlockStats]]] = {}
    for unit in units.iterdir():
        if unit.name.startswith(".") or not (unit / "done.json").is_file():
            continue
        src, blk = unit.name[1:].split("-b")
        stats = BlockStats(**orjson.loads((unit / "done.json").read_bytes()))
        found.setdefault(int(src), []).append((int(blk), stats))
    out: dict[int, list[BlockStats]] = {}
    for src, blocks in found.items():
        blocks.sort(key=lambda b: b[0])
        prefix: list[BlockStats] = []
        for expected, (blk, stats) in enumerate(blocks):
            if blk != expected:  # a gap: later blocks are redone, so drop them
                shutil.rmtree(units / _unit_name(src, blk))
                continue
            prefix.append(stats)
        out[src] = prefix
    return out


def _read_all_sources(
    sources: list[Source],
    cfg: IngestConfig,
    units: Path,
    finished: dict[int, list[BlockStats]],
    bar: tqdm,
) -> None:
    todo = list(enumerate(sources))
    if cfg.num_workers <= 1 or len(todo) <= 1:
        started, docs_before = time.perf_counter(), 0
        for index, source in todo:
            last = 0

            def advance(consumed: int, read: int, docs_before: int = docs_before) -> None:
                nonlocal last
                bar.update(consumed - last)
                last = consumed
                rate = (docs_before + read) / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix_str(f"{docs_before + read:,} records, {rate:,.0f} records/s")

            docs_before += _read_source(index, source, cfg, units, finished.get(index, []), advance)
            bar.update(source.size_bytes() - last)
        return
    with ProcessPoolExecutor(max_workers=cfg.num_workers) as pool:
        futures = {
            pool.submit(_read_source, i, s, cfg, units, finished.get(i, []), None): s
            for i, s in todo
        }
        for future in as_completed(futures):
            future.result()  # re-raise a worker's InputError here
            bar.update(futures[future].size_bytes())


def _read_source(
    index: int,
    source: Source,
    cfg: IngestConfig,
    units: Path,
    done: list[BlockStats],
    advance: Callable[[int, int], None] | None,
) -> int:
    """Read one source block by block, writing each finished block as a unit folder.

    Returns the number of records read in this call (for progress).
    """
    skip = done[-1].end_ordinal if done else 0
    block = len(done)
    tap = ProgressTap()
    pieces: dict[int, list[bytes]] = {}
    quarantine: list[bytes] = []
    stats = BlockStats(end_ordinal=skip)
    skipped: Counter[str] = Counter()
    block_bytes = 0
    read_here = 0

    def flush() -> None:
        nonlocal pieces, quarantine, stats, skipped, block, block_bytes
        stats.skipped = dict(skipped)
        _write_unit(units, _unit_name(index, block), pieces, quarantine, stats)
        block += 1
        pieces, quarantine, skipped, block_bytes = {}, [], Counter(), 0
        stats = BlockStats(end_ordinal=stats.end_ordinal)
        if advance is not None:
            advance(tap.consumed, read_here)

    max_line_bytes = max(cfg.max_chars * 4 + 4096, 1 << 16)
    for rec in iter_source(source, skip=skip, max_line_bytes=max_line_bytes, tap=tap):
        stats.end_ordinal += 1
        stats.read += 1
        read_here += 1
        doc, reason, detail = to_document(
            rec, cfg.text_field, cfg.id_field, cfg.min_chars, cfg.max_chars
        )
        line = b""
        if doc is not None:
            try:
                line = dumps(doc.to_dict())
            except TypeError as exc:  # orjson: nested deeper than 255 levels
                doc, reason, detail = None, "unserializable", f"cannot be written as JSON: {exc}"
        if doc is None:
            assert reason is not None
            if cfg.on_error == "fail":
                raise InputError(
                    f"{rec.location}: {reason}: {detail}. Fix the input, or rerun with "
                    f"--on-error skip to quarantine bad records and go on."
                )
            skipped[reason] += 1
            quarantine.append(_quarantine_line(rec, reason, detail))
        else:
            stats.kept += 1
            block_bytes += len(line)
            pieces.setdefault(shard_of(doc.id, cfg.num_shards), []).append(line)
        if stats.read >= cfg.block_records or block_bytes >= BLOCK_MAX_BYTES:
            flush()
        elif advance is not None and stats.read & 1023 == 0:
            advance(tap.consumed, read_here)
    if stats.read:
        flush()
    return read_here


def _quarantine_line(rec: RawRecord, reason: str, detail: str) -> bytes:
    raw = rec.raw
    if not raw and rec.data is not None:
        try:
            raw = orjson.dumps(rec.data, default=str).decode()
        except TypeError:  # too deeply nested to write; the location still finds it
            raw = f"<a {type(rec.data).__name__} nested too deeply to write as JSON>"
    entry: dict[str, Any] = {
        "location": rec.location,
        "source": rec.source,
        "position": rec.position,
        "reason": reason,
        "detail": detail,
        "raw": raw,
    }
    return orjson.dumps(entry) + b"\n"


def _write_unit(
    units: Path,
    name: str,
    pieces: dict[int, list[bytes]],
    quarantine: list[bytes],
    stats: BlockStats,
) -> None:
    """Write a block's pieces into a temp folder, then rename it into place (atomic)."""
    tmp = units / f".tmp-{name}-{os.getpid()}"
    tmp.mkdir()
    for shard, lines in pieces.items():
        # Pieces are read once by assembly: the fastest zstd level is the right trade.
        write_lines(tmp / f"s{shard:05d}.jsonl.zst", lines, level=1)
    if quarantine:
        atomic_write_bytes(tmp / QUARANTINE_NAME, b"".join(quarantine))
    atomic_write_bytes(tmp / "done.json", orjson.dumps(stats.__dict__))
    os.replace(tmp, units / name)


# --------------------------------------------------------------------------- assembling shards


def _assemble_shards(stage: StageDir, cfg: IngestConfig, units: Path) -> Manifest:
    merged = stage.work / "merged"
    merged.mkdir(exist_ok=True)
    unit_dirs = sorted(u for u in units.iterdir() if not u.name.startswith("."))
    infos: list[ShardInfo] = []
    duplicates = 0
    for shard in range(cfg.num_shards):
        record_file = merged / f"{shard:05d}.json"
        target = stage.path / shard_name(shard)
        if record_file.is_file() and target.is_file():
            info = orjson.loads(record_file.read_bytes())
        else:
            info = _assemble_one(shard, unit_dirs, target, cfg.compression_level)
            atomic_write_bytes(record_file, orjson.dumps(info))
        infos.append(ShardInfo(**info["shard"]))
        duplicates += len(info["duplicates"])

    # Quarantine: unit entries in read order, then duplicates in shard order.
    skipped: Counter[str] = Counter()
    read = kept = 0
    chunks: list[bytes] = []
    for unit in unit_dirs:
        stats = orjson.loads((unit / "done.json").read_bytes())
        read += stats["read"]
        kept += stats["kept"]
        skipped.update(stats["skipped"])
        if (unit / QUARANTINE_NAME).is_file():
            chunks.append((unit / QUARANTINE_NAME).read_bytes())
    for shard in range(cfg.num_shards):
        for entry in orjson.loads((merged / f"{shard:05d}.json").read_bytes())["duplicates"]:
            chunks.append(orjson.dumps(entry) + b"\n")
    if duplicates:
        skipped["duplicate_id"] += duplicates
    if chunks:
        atomic_write_bytes(stage.path / QUARANTINE_NAME, b"".join(chunks))
    stats = {"read": read, "kept": kept - duplicates, "skipped": dict(sorted(skipped.items()))}
    return stage.manifest(infos, stats)


def _assemble_one(shard: int, unit_dirs: list[Path], target: Path, level: int) -> dict[str, Any]:
    seen: set[str] = set()
    duplicates: list[dict[str, Any]] = []

    def lines() -> Any:
        for unit in unit_dirs:
            piece = unit / f"s{shard:05d}.jsonl.zst"
            if not piece.is_file():
                continue
            for line in iter_lines(piece):
                doc = orjson.loads(line)
                if doc["id"] in seen:
                    meta = doc["meta"]
                    unit_key = "line" if "line" in meta else "row" if "row" in meta else None
                    position = meta.get(unit_key) if unit_key else None
                    where = meta["source"] + (f" {unit_key} {position}" if unit_key else "")
                    duplicates.append(
                        {
                            "location": where,
                            "source": meta["source"],
                            "position": position,
                            "reason": "duplicate_id",
                            "detail": f"id {doc['id']!r} appeared earlier; the first copy is kept",
                            "raw": line.decode().rstrip("\n"),
                        }
                    )
                    continue
                seen.add(doc["id"])
                yield line

    count, sha = write_lines(target, lines(), level)
    return {"shard": asdict(ShardInfo.of(target, count, sha)), "duplicates": duplicates}
