"""The cook stage: `Synthesis` shards in, cooked text shards out.

Chains. The synthesizer links a text to the texts shown before it (its
`chain`, oldest first, ending with the text of the previous round of its
slot). Cooking follows those links: a linked record's predecessor is the last
id of its `chain`, and each maximal run of linked records (a slot's texts
from the first one of the run to the last) becomes ONE cooked text, with the
id of its last record and `lineage` listing every text in order. Because
each record has at most one predecessor and is the predecessor of at most
one record, the runs are disjoint and every input text appears in exactly
one output record. A run may hold more texts than any single prompt showed
(when the synthesizer dropped the oldest examples to fit its context); they
are still one continuous chain of the slot. Slots never cross shards, so a
shard is cooked alone (it is materialized: shards are bounded).

Malformed links are counted and never lose a text: a predecessor missing
from the shard (`chain_missing_link`), a predecessor claimed twice (the
first claimer in input order wins, `chain_conflict`), or a cycle
(`chain_cycle`) leave the records concerned to start their own runs.

Texts without renderable pairs. With `texts_without_pairs: raw` (default)
a record none of whose pairs could be rendered is written as its text,
source "raw" (tags defused), so the mixer knows it carries no instruction
and every input text still appears once; `skip` leaves it out. Both are
counted (`outputs_raw`, `skipped_without_pairs`).

Outputs come in input order of their last record. Stats per shard: `read`,
`written`, `outputs_instruct`, `outputs_raw`, `chains`, `chained_texts`,
`pairs_in`, `pairs_rendered`, `rendered_<kind>`, `dropped_<reason>`,
`pairs_over_limit`, `none_of_the_above_answers`, `texts_with_tags`.
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from instructpt.cook.config import CookConfig
from instructpt.cook.render import cook_chain
from instructpt.core.executor import Executor
from instructpt.core.runner import StageResult, counts_line, dropped_counts, run_map_stage
from instructpt.synth.format import has_tag

STAGE = "cook"


def chain_groups(
    records: Sequence[dict[str, Any]], stats: Counter[str]
) -> list[list[dict[str, Any]]]:
    """Records grouped into maximal linked runs (oldest first), in order of their last record."""
    by_id = {r["id"]: r for r in records}
    pred: dict[str, str] = {}
    succ: dict[str, str] = {}
    for r in records:
        chain = r.get("chain") or []
        if not r.get("linked") or not chain:
            continue
        parent = chain[-1]
        if parent not in by_id or parent == r["id"]:
            stats["chain_missing_link"] += 1
        elif parent in succ:
            stats["chain_conflict"] += 1
        else:
            pred[r["id"]] = parent
            succ[parent] = r["id"]

    position = {r["id"]: i for i, r in enumerate(records)}
    groups: list[tuple[int, list[dict[str, Any]]]] = []
    covered: set[str] = set()
    for r in records:
        if r["id"] in succ:
            continue  # cooked as part of a later record's run
        run = [r["id"]]
        while run[-1] in pred:
            run.append(pred[run[-1]])
        run.reverse()
        covered.update(run)
        groups.append((position[r["id"]], [by_id[i] for i in run]))
    for r in records:
        if r["id"] not in covered:  # links forming a cycle have no last record: cook alone
            stats["chain_cycle"] += 1
            groups.append((position[r["id"]], [r]))
    groups.sort(key=lambda item: item[0])
    return [g for _, g in groups]


def cook_shard(
    records: Iterator[dict[str, Any]], stats: Counter[str], cfg: CookConfig
) -> Iterator[dict[str, Any]]:
    """Cook one shard of `Synthesis` records (a `run_map_stage` stage function)."""
    recs = list(records)
    if len({r["id"] for r in recs}) != len(recs):
        raise ValueError("duplicate record ids in a synthesis shard; it cannot be cooked")
    groups = chain_groups(recs, stats) if cfg.chains else [[r] for r in recs]
    for group in groups:
        stats["texts_with_tags"] += sum(has_tag(str(r["text"])) for r in group)
        out = cook_chain(group, cfg, stats)
        if len(group) > 1:
            stats["chains"] += 1
            stats["chained_texts"] += len(group)
        if out["source"] == "raw":
            if cfg.texts_without_pairs == "skip":
                stats["skipped_without_pairs"] += len(group)
                continue
            stats["outputs_raw"] += 1
        else:
            stats["outputs_instruct"] += 1
        yield out


class CookResult(StageResult):
    def head(self) -> str:
        st = self.manifest.stats
        return (
            f"cook: {st.get('written', 0):,} texts from {st.get('read', 0):,} records "
            f"({st.get('outputs_instruct', 0):,} with pairs, {st.get('outputs_raw', 0):,} raw, "
            f"{st.get('chains', 0):,} chains) in {self.out_dir}"
        )

    def details(self) -> list[str]:
        st = self.manifest.stats
        return [
            f"  {self.seconds:.1f} s; pairs {st.get('pairs_rendered', 0):,} rendered "
            f"of {st.get('pairs_in', 0):,}",
            *counts_line("dropped pairs", dropped_counts(st)),
        ]


def cook(
    cfg: CookConfig,
    synth_dir: Path,
    out_dir: Path,
    overwrite: bool = False,
    executor: Executor | None = None,
) -> CookResult:
    """Run (or resume) cooking of the synthesize stage in `synth_dir` into `out_dir`.

    `executor`: None cooks here; `--executor ray` cooks each shard as a Ray task.
    """
    start = time.perf_counter()
    fn = functools.partial(cook_shard, cfg=cfg)  # picklable: it may run in another process

    manifest, done = run_map_stage(
        STAGE,
        synth_dir,
        out_dir,
        fn,
        cfg,
        input_stage="synthesize",
        overwrite=overwrite,
        progress=cfg.progress,
        compression_level=cfg.compression_level,
        executor=executor,
    )
    return CookResult(manifest, out_dir, time.perf_counter() - start, already_done=done)
