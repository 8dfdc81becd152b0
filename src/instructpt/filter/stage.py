"""The filter stage: `Synthesis` shards in, the same records with fewer pairs out.

Usable after any engine (the LM synthesizer or the model-free miner) and
before cook. Every record is written, in input order, with the same fields;
only `pairs` shrinks, and `stats["filtered"]` says per record how many pairs
each filter dropped (`{reason: n}`, empty when none). Texts are never
dropped: a text that loses all its pairs is cooked as raw text (cook's
`texts_without_pairs`), so the corpus keeps its tokens; removing a
contaminated *text* from pre-training is the corpus stage's job, this stage
only flags it (`texts_contaminated`).

Each pair goes through, in order (first failure wins): form and grounding
(grounding.py), decontamination (decontam.py: `contaminated`, or
`contaminated_text` for every pair of a contaminated text), duplicates within
its text, then corpus-wide near duplicates (dedup.py). Reasons:
`malformed` (question or answer not a string), grounding.REASONS,
`contaminated`, `contaminated_text`, `duplicate_in_text`,
`near_duplicate_in_text`, `near_duplicate_in_corpus`.

Resume. The corpus-wide index crosses shards, so shards are filtered
sequentially in manifest order (not with `run_map_stage`, which treats
shards as independent). After each shard the band keys of its kept pairs
are written atomically to `_work/dedup/<shard>.npy` before its done marker.
A rerun loads the keys of the finished prefix of shards in order, then
redoes every shard from the first unfinished one on (even ones marked done
after it), so the index a shard is checked against is always exactly the
kept pairs of the shards before it, and the output bytes equal an
uninterrupted run's. The evaluation set's fingerprint is part of the input
fingerprint: a changed eval set refuses to resume (or needs --overwrite).

Manifest stats: `read`, `written`, `pairs_in`, `pairs_kept`,
`dropped_<reason>`, `texts_emptied` (had pairs, now none),
`texts_contaminated`, the eval index's `eval_docs`, `eval_ngrams`,
`eval_docs_matched_whole`, `eval_docs_too_short`, and `dedup_index_keys`.
The manifest's stage is "filter"; cook reads any finished stage directory
(`require_manifest` checks the manifest exists, not its stage name).
"""

from __future__ import annotations

import hashlib
import io
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.manifest import ShardInfo, require_manifest
from instructpt.core.resume import open_stage_dir
from instructpt.core.runner import (
    StageResult,
    counts_line,
    dropped_counts,
    manifest_fingerprint,
)
from instructpt.core.shards import read_shard, write_shard
from instructpt.filter.config import FilterConfig
from instructpt.filter.decontam import EvalIndex, read_eval_file, task_docs
from instructpt.filter.dedup import CorpusDeduper, dedup_in_text, shingle_hashes
from instructpt.filter.grounding import TextGrounding, check_pair
from instructpt.filter.normalize import WordHasher, words

STAGE = "filter"
DEDUP_DIR = "dedup"


def build_eval_index(cfg: FilterConfig, hasher: WordHasher | None = None) -> EvalIndex | None:
    """The evaluation n-gram index of `cfg` (None when nothing is to be decontaminated)."""
    if not cfg.decontaminate:
        return None
    docs: list[str] = []
    for name in cfg.eval_files:
        docs.extend(read_eval_file(Path(name), cfg.eval_text_field))
    if cfg.eval_tasks:
        docs.extend(task_docs(cfg.eval_tasks, cfg.eval_include_path, offline=cfg.offline))
    return EvalIndex.build(docs, cfg.ngram, cfg.min_ngram, hasher or WordHasher())


class PairFilter:
    """Every filter of one run plus the corpus-wide state; feed it records in corpus order."""

    def __init__(self, cfg: FilterConfig, eval_index: EvalIndex | None = None) -> None:
        self.cfg = cfg
        self.hasher = WordHasher()
        self.eval_index = eval_index if eval_index else None
        self.deduper = (
            CorpusDeduper(cfg.dedup_threshold, cfg.num_perm, cfg.dedup_seed)
            if cfg.dedup and cfg.dedup_corpus
            else None
        )

    def _record_reasons(
        self, record: dict[str, Any], stats: Counter[str]
    ) -> tuple[list[str], dict[int, np.ndarray]]:
        """Per pair of one record: drop reason ("" = still kept), and shingles of the kept."""
        cfg = self.cfg
        pairs = record.get("pairs") or []
        reasons = [""] * len(pairs)
        text = record.get("text") or ""
        if (
            pairs
            and self.eval_index is not None
            and cfg.decontaminate_texts
            and self.eval_index.contaminated(self.hasher(words(text)))
        ):
            stats["texts_contaminated"] += 1
            return ["contaminated_text"] * len(pairs), {}
        ground = TextGrounding(text) if cfg.grounding and pairs else None
        shingles: dict[int, np.ndarray] = {}
        for i, pair in enumerate(pairs):
            question = pair.get("question") if isinstance(pair, dict) else None
            answer = pair.get("answer") if isinstance(pair, dict) else None
            if not isinstance(question, str) or not isinstance(answer, str):
                reasons[i] = "malformed"
                continue
            if ground is not None:
                keep, why = check_pair(question, answer, ground, cfg)
                if not keep:
                    reasons[i] = why
                    continue
            hashes = self.hasher(words(question) + words(answer))
            if self.eval_index is not None and self.eval_index.contaminated(hashes):
                reasons[i] = "contaminated"
                continue
            shingles[i] = shingle_hashes(hashes)
        if cfg.dedup and shingles:
            live = list(shingles)
            sets = [frozenset(shingles[i].tolist()) for i in live]
            for i, why in zip(live, dedup_in_text(sets, cfg.dedup_threshold), strict=True):
                if why:
                    reasons[i] = why
                    del shingles[i]
        return reasons, shingles

    def filter_batch(
        self, records: list[dict[str, Any]], stats: Counter[str]
    ) -> tuple[list[dict[str, Any]], np.ndarray | None]:
        """Filtered copies of `records` (same order) and the band keys their kept pairs added."""
        per_record = [self._record_reasons(r, stats) for r in records]
        added = None
        if self.deduper is not None:
            order = [(j, i) for j, (_, sh) in enumerate(per_record) for i in sh]
            dup, added = self.deduper.check([per_record[j][1][i] for j, i in order])
            for (j, i), is_dup in zip(order, dup.tolist(), strict=True):
                if is_dup:
                    per_record[j][0][i] = "near_duplicate_in_corpus"
        out = []
        for record, (reasons, _) in zip(records, per_record, strict=True):
            pairs = record.get("pairs") or []
            kept = [p for p, why in zip(pairs, reasons, strict=True) if not why]
            filtered = Counter(why for why in reasons if why)
            stats["pairs_in"] += len(pairs)
            stats["pairs_kept"] += len(kept)
            stats["texts_emptied"] += bool(pairs) and not kept
            for why, n in filtered.items():
                stats[f"dropped_{why}"] += n
            new = dict(record)
            new["pairs"] = kept
            new["stats"] = {
                **(record.get("stats") or {}),
                "filtered": dict(sorted(filtered.items())),
            }
            out.append(new)
        return out, added


def filter_records(
    records: Iterable[dict[str, Any]],
    pair_filter: PairFilter,
    stats: Counter[str],
    added_keys: list[np.ndarray] | None = None,
) -> Iterator[dict[str, Any]]:
    """Filter a stream of `Synthesis` records (in corpus order), batch by batch.

    Batching changes speed only: within a batch, pairs are judged in record
    order exactly as one by one. Band keys added to the corpus index are
    appended to `added_keys` when given.
    """
    batch: list[dict[str, Any]] = []

    def flush() -> list[dict[str, Any]]:
        out, added = pair_filter.filter_batch(batch, stats)
        if added_keys is not None and added is not None:
            added_keys.append(added)
        batch.clear()
        return out

    for record in records:
        batch.append(record)
        if len(batch) >= pair_filter.cfg.batch_records:
            yield from flush()
    if batch:
        yield from flush()


class FilterResult(StageResult):
    def head(self) -> str:
        st = self.manifest.stats
        pairs_in, kept = st.get("pairs_in", 0), st.get("pairs_kept", 0)
        return (
            f"filter: kept {kept:,} of {pairs_in:,} pairs "
            f"({kept / max(pairs_in, 1):.1%}) over {st.get('written', 0):,} texts in {self.out_dir}"
        )

    def details(self) -> list[str]:
        st = self.manifest.stats
        return [
            f"  {self.seconds:.1f} s; {st.get('texts_emptied', 0):,} texts lost all pairs, "
            f"{st.get('texts_contaminated', 0):,} texts contaminated",
            *counts_line("dropped pairs", dropped_counts(st)),
        ]


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def filter_pairs(
    cfg: FilterConfig, synth_dir: Path, out_dir: Path, overwrite: bool = False
) -> FilterResult:
    """Run (or resume) filtering of the `Synthesis` stage in `synth_dir` into `out_dir`."""
    start = time.perf_counter()
    synth_dir, out_dir = Path(synth_dir), Path(out_dir)
    source = require_manifest(synth_dir, "synthesize (or mine)")
    hasher = WordHasher()
    eval_index = build_eval_index(cfg, hasher)  # before any output: fail at the edge
    eval_fp = eval_index.fingerprint() if eval_index is not None else "none"
    fingerprint = hashlib.sha256(f"{manifest_fingerprint(source)}|{eval_fp}".encode()).hexdigest()
    opened = open_stage_dir(out_dir, STAGE, cfg, fingerprint[:16], overwrite)
    if opened.done is not None:
        return FilterResult(opened.done, out_dir, time.perf_counter() - start, already_done=True)

    done_dir = opened.work / "done"
    keys_dir = opened.work / DEDUP_DIR
    done_dir.mkdir(exist_ok=True)
    keys_dir.mkdir(exist_ok=True)
    pair_filter = PairFilter(cfg, eval_index)
    pair_filter.hasher = hasher
    dedup = pair_filter.deduper

    infos: list[ShardInfo] = []
    totals: Counter[str] = Counter()
    resuming = True  # still in the finished prefix of shards
    with tqdm(
        total=source.num_records,
        unit="rec",
        desc=STAGE,
        disable=None if cfg.progress else True,
        file=sys.stderr,
    ) as bar:
        for shard in source.shards:
            marker = done_dir / f"{shard.file}.json"
            keys_file = keys_dir / f"{shard.file}.npy"
            target = out_dir / shard.file
            resuming = (
                resuming
                and marker.is_file()
                and target.is_file()
                and (dedup is None or keys_file.is_file())
            )
            if resuming:
                info = orjson.loads(marker.read_bytes())
                if dedup is not None:
                    dedup.load(np.load(keys_file, allow_pickle=False))
                bar.update(shard.records)
            else:
                stats: Counter[str] = Counter()
                added: list[np.ndarray] = []

                def counted(
                    records: Iterator[dict[str, Any]], stats: Counter[str] = stats
                ) -> Iterator[dict[str, Any]]:
                    for record in records:
                        stats["read"] += 1
                        bar.update(1)
                        yield record

                count, sha = write_shard(
                    target,
                    filter_records(
                        counted(read_shard(synth_dir / shard.file)), pair_filter, stats, added
                    ),
                    cfg.compression_level,
                )
                stats["written"] = count
                if dedup is not None:
                    kept = np.concatenate(added) if added else np.empty((0, dedup.bands), np.uint64)
                    atomic_write_bytes(keys_file, _npy_bytes(kept))
                info = {"shard": asdict(ShardInfo.of(target, count, sha)), "stats": dict(stats)}
                atomic_write_bytes(marker, orjson.dumps(info))
            infos.append(ShardInfo(**info["shard"]))
            totals.update(info["stats"])

    if eval_index is not None:
        totals.update(eval_index.stats)
    if dedup is not None:
        totals["dedup_index_keys"] = len(dedup.index)
    manifest = opened.finish(opened.manifest(infos, dict(sorted(totals.items()))))
    return FilterResult(manifest, out_dir, time.perf_counter() - start)
