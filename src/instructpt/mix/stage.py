"""The `mix` stage: documents, cooked texts and general records in, mixed text shards out.

Order of work (each step resumes on its own after a kill):
1. augmentation (instruct, domain): read the cooked records' lineage only and
   choose which documents appear as cooked text (`recipes.select_augmented`);
2. encode: every candidate record is tokenized once with the target tokenizer,
   one input unit (shard or file) per task, in parallel across processes;
   the ids are kept in `_work/enc/` so nothing is encoded twice;
3. plan: exact token counts (BOS/EOS included) go through `recipes.plan_mix`,
   which picks records and their seeded output order;
4. write: records are routed to their output shard through bucket files in
   `_work/buckets/` (memory stays bounded by one output shard, not the
   corpus), then each output shard is written in order: the text shard
   `shard-NNNNN.jsonl.zst`, its token cache `shard-NNNNN.tokens.npz` (the
   unframed ids, so `tokenize` with the same tokenizer does not encode again)
   and, optionally, `parquet/shard-NNNNN.parquet`.
The manifest (last) and `stats.json` carry tokens per source, the achieved
general-token share and what augmentation covered.

Output records: {"id", "text", "source" (raw|instruct|general), "lineage"
(input ids that went into the text)}, plus "template" for cooked texts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_open, atomic_write_bytes
from instructpt.core.manifest import Manifest, ShardInfo, require_manifest
from instructpt.core.parallel import map_ordered
from instructpt.core.resume import StageDir, open_stage_dir
from instructpt.core.shards import read_shard, shard_name, write_lines
from instructpt.core.tokenizers import TokenizerSpec, encode_texts, load_tokenizer_spec
from instructpt.errors import InputError
from instructpt.mix.config import MixConfig
from instructpt.mix.inputs import Unit, general_units, iter_unit, stage_units
from instructpt.mix.parquet import PARQUET_DIR, write_parquet
from instructpt.mix.recipes import (
    Candidate,
    Cooked,
    MixPlan,
    plan_mix,
    select_augmented,
)

STAGE = "mix"
CACHE_SUFFIX = ".tokens.npz"
ENCODE_BATCH = 1024
_FRAME = struct.Struct("<qII")  # output position, bytes of the JSON line, number of ids


def cache_name(shard_file: str) -> str:
    """Token cache beside a mix shard: `shard-00000.jsonl.zst` -> `shard-00000.tokens.npz`."""
    return shard_file.removesuffix(".jsonl.zst") + CACHE_SUFFIX


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class EncodeTask:
    unit: Unit
    target: str  # _work/enc/uNNNNN.npz
    spec: TokenizerSpec
    skip_ids: frozenset[str] = frozenset()  # raw documents replaced by cooked text
    rows: frozenset[int] | None = None  # cooked rows chosen (None: every row)


@dataclass
class Encoded:
    rows: np.ndarray  # row of each candidate within its unit
    lengths: np.ndarray  # unframed tokens of each candidate
    ids: list[str]  # record id of each candidate


def _wanted(task: EncodeTask) -> Iterator[tuple[int, dict[str, Any]]]:
    for row, rec in enumerate(iter_unit(task.unit)):
        if task.rows is not None and row not in task.rows:
            continue
        if task.skip_ids and rec["id"] in task.skip_ids:
            continue
        yield row, rec


def _load_encoded(path: Path) -> Encoded:
    with np.load(path) as data:
        return Encoded(data["rows"], np.diff(data["offsets"]), data["record_ids"].tolist())


def encode_unit(task: EncodeTask) -> Encoded:
    """Tokenize the wanted records of one unit and keep the ids in `task.target`."""
    backend = task.spec.backend()
    rows: list[int] = []
    rec_ids: list[str] = []
    chunks: list[np.ndarray] = []
    lengths: list[int] = []
    batch: list[tuple[int, dict[str, Any]]] = []
    dtype = task.spec.dtype

    def flush() -> None:
        for (row, rec), ids in zip(
            batch, encode_texts(backend, [r["text"] for _, r in batch]), strict=True
        ):
            rows.append(row)
            rec_ids.append(rec["id"])
            lengths.append(len(ids))
            chunks.append(np.asarray(ids, dtype=dtype))
        batch.clear()

    for item in _wanted(task):
        batch.append(item)
        if len(batch) >= ENCODE_BATCH:
            flush()
    flush()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(chunks) if chunks else np.zeros(0, dtype=task.spec.dtype)
    with atomic_open(Path(task.target)) as fh:
        np.savez(
            fh,
            rows=np.asarray(rows, dtype=np.int64),
            offsets=offsets,
            ids=flat,
            record_ids=np.asarray(rec_ids, dtype=str),
        )
    return Encoded(np.asarray(rows, dtype=np.int64), np.asarray(lengths), rec_ids)


def _worker_init() -> None:
    # One process per core already: a Rust thread pool per worker would oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"


def _encode_all(tasks: list[EncodeTask], num_workers: int, progress: bool) -> list[Encoded]:
    results: list[Encoded | None] = [
        _load_encoded(Path(t.target)) if Path(t.target).is_file() else None for t in tasks
    ]
    pending = [i for i, r in enumerate(results) if r is None]
    bar = tqdm(
        total=len(tasks),
        initial=len(tasks) - len(pending),
        unit="unit",
        desc="mix: encode",
        disable=None if progress else True,
        file=sys.stderr,
    )
    with bar:
        todo = [tasks[i] for i in pending]
        for i, res in zip(
            pending, map_ordered(encode_unit, todo, num_workers, _worker_init), strict=True
        ):
            results[i] = res
            bar.update(1)
    return [r for r in results if r is not None]


# --------------------------------------------------------------------------- the stage


def _fingerprint(spec: TokenizerSpec, parts: list[Any]) -> str:
    blob = orjson.dumps([spec.fingerprint, parts], default=str)
    return hashlib.sha256(blob).hexdigest()[:16]


def mix(cfg: MixConfig, out_dir: Path, overwrite: bool = False) -> Manifest:
    """Run the mix stage into `out_dir`; returns its manifest (at once when already done)."""
    spec = load_tokenizer_spec(cfg.tokenizer)
    raw_units, raw_fp, num_docs = stage_units(Path(cfg.corpus), "raw", "corpus")
    cooked_units: list[Unit] = []
    gen_units: list[Unit] = []
    parts: list[Any] = [raw_fp]
    if cfg.recipe in ("instruct", "domain"):
        assert cfg.cooked is not None
        cooked_units, cooked_fp, _ = stage_units(Path(cfg.cooked), "instruct", "cook")
        parts.append(cooked_fp)
    if cfg.recipe in ("mix", "domain"):
        gen_units, gen_fp = general_units(cfg.general)
        parts.append(gen_fp)
    opened = open_stage_dir(out_dir, STAGE, cfg, _fingerprint(spec, parts), overwrite)
    if opened.done is not None:
        return opened.done

    # 1. augmentation: which documents appear as cooked text.
    stats: dict[str, Any] = {"recipe": cfg.recipe, "documents": num_docs}
    chosen_rows: list[frozenset[int] | None] = [None] * len(cooked_units)
    covered: set[str] = set()
    if cooked_units:
        cooked: list[Cooked] = []
        for u, unit in enumerate(cooked_units):
            for row, rec in enumerate(iter_unit(unit)):
                cooked.append(Cooked(key=(u << 32) | row, id=rec["id"], lineage=rec["lineage"]))
        fraction = cfg.augment_doc_fraction if cfg.recipe == "instruct" else 1.0
        keys, covered = select_augmented(cooked, num_docs, fraction, cfg.seed)
        by_unit: list[set[int]] = [set() for _ in cooked_units]
        for key in keys:
            by_unit[key >> 32].add(key & 0xFFFFFFFF)
        chosen_rows = [frozenset(rows) for rows in by_unit]
        stats["cooked_records"] = len(cooked)
        stats["cooked_records_used"] = len(keys)

    # 2. encode every candidate once.
    units = raw_units + cooked_units + gen_units
    enc_dir = opened.work / "enc"
    enc_dir.mkdir(exist_ok=True)
    skip = frozenset(covered)
    tasks = [
        EncodeTask(
            unit,
            str(enc_dir / f"u{i:05d}.npz"),
            spec,
            skip_ids=skip if unit.pool == "raw" else frozenset(),
            rows=chosen_rows[i - len(raw_units)] if unit.pool == "instruct" else None,
        )
        for i, unit in enumerate(units)
    ]
    encoded = _encode_all(tasks, cfg.num_workers, cfg.progress)

    # 3. plan: exact token counts, including the BOS/EOS `tokenize` adds.
    primary: list[Candidate] = []
    general: list[Candidate] = []
    bases: list[int] = []
    key = 0
    for unit, enc in zip(units, encoded, strict=True):
        bases.append(key)
        pool = general if unit.pool == "general" else primary
        for rid, length in zip(enc.ids, enc.lengths.tolist(), strict=True):
            pool.append(Candidate(key, rid, unit.pool, length + spec.num_frame_tokens))
            key += 1
    raw_docs_kept = sum(len(e.ids) for u, e in zip(units, encoded, strict=True) if u.pool == "raw")
    if cooked_units:
        stats["augmented_docs"] = num_docs - raw_docs_kept
        stats["augmented_doc_fraction"] = round((num_docs - raw_docs_kept) / max(num_docs, 1), 6)
    plan = plan_mix(
        primary,
        general,
        general_share=cfg.resolved_general_share,
        num_tokens=cfg.num_tokens,
        seed=cfg.seed,
        keep_all_primary=cfg.keep_all_primary,
    )
    if not plan.keys:
        raise InputError(f"mix selected no records from {cfg.corpus}; is the corpus empty?")
    stats.update(plan.stats)

    # 4. write the output shards.
    infos = _write_outputs(opened, cfg, spec, units, encoded, bases, plan)
    stats["tokenizer_fingerprint"] = spec.fingerprint
    stats["token_cache"] = CACHE_SUFFIX
    return opened.finish(opened.manifest(infos, stats))


def _write_outputs(
    opened: StageDir,
    cfg: MixConfig,
    spec: TokenizerSpec,
    units: list[Unit],
    encoded: list[Encoded],
    bases: list[int],
    plan: MixPlan,
) -> list[ShardInfo]:
    n, num_shards = len(plan.keys), cfg.num_shards
    # Output shard k holds positions [k*n//S, (k+1)*n//S) of the planned order.
    place = {key: pos for pos, key in enumerate(plan.keys)}
    bounds = [k * n // num_shards for k in range(num_shards + 1)]
    buckets = opened.work / "buckets"
    if not (buckets / "done").is_file():
        shutil.rmtree(buckets, ignore_errors=True)
        buckets.mkdir()
        _fill_buckets(buckets, units, encoded, bases, place, bounds, spec)
        (buckets / "done").touch()

    done_dir = opened.work / "done"
    done_dir.mkdir(exist_ok=True)
    infos = []
    for k in range(num_shards):
        name = shard_name(k)
        marker = done_dir / f"{name}.json"
        if marker.is_file() and (opened.path / name).is_file():
            infos.append(ShardInfo(**orjson.loads(marker.read_bytes())))
            continue
        lines, ids = _read_bucket(buckets / f"{k:05d}.bin", spec)
        records = [orjson.loads(line) for line in lines]
        count, sha = write_lines(opened.path / name, lines, cfg.compression_level)
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum([len(x) for x in ids], out=offsets[1:])
        flat = np.concatenate(ids) if ids else np.zeros(0, dtype=spec.dtype)
        with atomic_open(opened.path / cache_name(name)) as fh:
            np.savez(
                fh,
                ids=flat,
                offsets=offsets,
                record_ids=np.asarray([r["id"] for r in records], dtype=str),
                fingerprint=np.asarray(spec.fingerprint),
            )
        if cfg.write_parquet:
            parquet = opened.path / PARQUET_DIR / name.replace(".jsonl.zst", ".parquet")
            write_parquet(parquet, records)
        info = ShardInfo.of(opened.path / name, count, sha)
        atomic_write_bytes(marker, orjson.dumps(info.__dict__))
        infos.append(info)
    return infos


def _fill_buckets(
    buckets: Path,
    units: list[Unit],
    encoded: list[Encoded],
    bases: list[int],
    place: dict[int, int],
    bounds: list[int],
    spec: TokenizerSpec,
) -> None:
    import bisect

    files = [open(buckets / f"{k:05d}.bin", "wb") for k in range(len(bounds) - 1)]  # noqa: SIM115
    try:
        for u, (unit, enc) in enumerate(zip(units, encoded, strict=True)):
            wanted = {row: j for j, row in enumerate(enc.rows.tolist())}
            if not any(bases[u] + j in place for j in range(len(enc.ids))):
                continue
            with np.load(Path(units_cache(buckets, u))) as data:
                offsets, ids = data["offsets"], data["ids"]
            for row, rec in enumerate(iter_unit(unit)):
                j = wanted.get(row)
                if j is None or (pos := place.get(bases[u] + j)) is None:
                    continue
                line = orjson.dumps(rec) + b"\n"
                toks = ids[offsets[j] : offsets[j + 1]].astype(spec.dtype, copy=False)
                k = bisect.bisect_right(bounds, pos) - 1
                files[k].write(_FRAME.pack(pos, len(line), len(toks)) + line + toks.tobytes())
    finally:
        for fh in files:
            fh.close()


def units_cache(buckets: Path, unit_index: int) -> Path:
    """Where the encode step kept a unit's ids (`_work/enc/uNNNNN.npz`)."""
    return buckets.parent / "enc" / f"u{unit_index:05d}.npz"


def _read_bucket(path: Path, spec: TokenizerSpec) -> tuple[list[bytes], list[np.ndarray]]:
    """Lines and ids of one output shard, in output order."""
    data = path.read_bytes()
    items: list[tuple[int, bytes, np.ndarray]] = []
    at, width = 0, spec.dtype.itemsize
    while at < len(data):
        pos, nline, ntok = _FRAME.unpack_from(data, at)
        at += _FRAME.size
        line = data[at : at + nline]
        at += nline
        toks = np.frombuffer(data, dtype=spec.dtype, count=ntok, offset=at)
        at += ntok * width
        items.append((pos, line, toks))
    items.sort(key=lambda item: item[0])
    return [line for _, line, _ in items], [toks for _, _, toks in items]


def read_mix(mix_dir: Path) -> Iterator[dict[str, Any]]:
    """Every record of a finished mix directory, in order (for tests and inspection)."""
    for shard in require_manifest(mix_dir, "mix").shards:
        yield from read_shard(mix_dir / shard.file)
