"""The synthesize stage: `Document` shards in, `Synthesis` shards out.

Order of work: round 0 of every shard, then round 1 of every shard, ... (a
round-r prompt needs the finished round r-1 texts of its slot, and slots
never cross shards). Each (round, shard) is one unit: its results are
published atomically to `_work/r{r}/<shard>`; a rerun skips finished units.
Inside a unit, every request goes through the replay cache, so a unit cut
short by a kill re-sends nothing that had finished. At the end each shard
is assembled in input order and the manifest and `stats.json` are written.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tqdm import tqdm

from instructpt.config import SynthesizeConfig
from instructpt.corpus.atomic import atomic_write_bytes
from instructpt.corpus.manifest import Manifest, ShardInfo, require_manifest
from instructpt.corpus.resume import open_stage_dir
from instructpt.corpus.runner import manifest_fingerprint
from instructpt.corpus.shards import read_shard, write_shard
from instructpt.synth.cache import ReplayCache, request_key
from instructpt.synth.engines.base import (
    Completion,
    DecodingParams,
    Engine,
    EngineError,
    Prompt,
    require_completions,
)
from instructpt.synth.format import FORMAT_VERSION, Pair, parse_completion
from instructpt.synth.rounds import Earlier, PlannedPrompt, assign_slots, plan_prompts

if TYPE_CHECKING:
    from instructpt.executor.ray_executor import RayExecutor

STAGE = "synthesize"
STATS_NAME = "stats.json"


def build_engine(cfg: SynthesizeConfig) -> Engine:
    """The configured backend; heavy imports happen only for the one chosen."""
    if cfg.engine == "hf":
        from instructpt.synth.engines.hf import HFEngine

        return HFEngine(cfg.model, cfg.revision, cfg.hf, cfg.tokenizer, cfg.trust_remote_code)
    if cfg.engine == "openai":
        from instructpt.synth.engines.openai import OpenAIEngine

        engine = OpenAIEngine(cfg.model, cfg.revision, cfg.openai)
        engine.check()
        return engine
    from instructpt.synth.engines.vllm import VLLMEngine

    return VLLMEngine(
        cfg.model,
        cfg.revision,
        cfg.vllm,
        cfg.max_context,
        tokenizer=cfg.tokenizer,
        trust_remote_code=cfg.trust_remote_code,
        seed=cfg.seed,
    )


def load_tokenizer(cfg: SynthesizeConfig) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            cfg.tokenizer or cfg.model,
            revision=cfg.revision,
            trust_remote_code=cfg.trust_remote_code,
        )
    except OSError as exc:
        raise EngineError(
            f"cannot load the tokenizer '{cfg.tokenizer or cfg.model}' (needed to count and encode "
            f"prompts): {exc}"
        ) from None


@dataclass
class SynthResult:
    manifest: Manifest
    out_dir: Path
    seconds: float = 0.0
    already_done: bool = False
    requests_sent: int = 0
    cache_hits: int = 0

    def summary_lines(self) -> list[str]:
        st = self.manifest.stats
        head = (
            f"synthesize: {st['pairs']:,} pairs for {st['texts']:,} texts "
            f"({st['pairs_per_text']:.2f} per text, parse yield {st['parse_yield']:.1%}) "
            f"in {self.out_dir}"
        )
        if self.already_done:
            return [head + " (already complete; nothing to do)"]
        lines = [head]
        lines.append(
            f"  {self.seconds:.1f} s; requests sent {self.requests_sent:,}, replayed from cache "
            f"{self.cache_hits:,}; tokens in {st['prompt_tokens']:,}, "
            f"out {st['completion_tokens']:,}"
        )
        lines.append(
            f"  linked (M-shot) {st['linked_fraction']:.1%}, chunked texts {st['chunked_texts']}, "
            f"skipped requests {st['skipped_requests']}"
        )
        if st["dropped"]:
            drops = ", ".join(f"{k} {v}" for k, v in st["dropped"].items())
            lines.append(f"  dropped pieces: {drops}")
        return lines


def synthesize(
    cfg: SynthesizeConfig,
    corpus_dir: Path,
    out_dir: Path,
    cache_path: Path | None = None,
    overwrite: bool = False,
    engine_factory: Callable[[SynthesizeConfig], Engine] = build_engine,
    executor: RayExecutor | None = None,
) -> SynthResult | Any:
    """Run (or resume) synthesis of `corpus_dir` into `out_dir`.

    With engine "miner" the model-free miner writes the same records (a `MineResult`).
    `executor`: None runs the engine in this process; a `RayExecutor` runs engine
    replicas as Ray actors, one shard (all its rounds) at a time each; same units.
    """
    if cfg.engine == "miner":
        from instructpt.mine import MineConfig, mine

        mcfg = MineConfig.model_validate({"seed": cfg.seed, "progress": cfg.progress, **cfg.miner})
        return mine(mcfg, corpus_dir, out_dir, overwrite, executor=executor)
    start = time.perf_counter()
    source = require_manifest(corpus_dir, "ingest")
    opened = open_stage_dir(out_dir, STAGE, cfg, manifest_fingerprint(source), overwrite)
    if opened.done is not None:
        return SynthResult(opened.done, out_dir, already_done=True)

    runner = make_runner(cfg, engine_factory, cache_path)
    remote = {"sent": 0, "cache_hits": 0}
    try:
        with tqdm(
            total=source.num_records,
            unit="doc",
            desc="synthesize",
            disable=None if cfg.progress else True,
            file=sys.stderr,
        ) as bar:
            runner.bar = bar
            if executor is not None:
                remote = executor.synthesize_shards(
                    cfg, source, corpus_dir, opened.work, runner.cache_path, engine_factory,
                    bar.update,
                )  # fmt: skip
            else:
                _run_rounds(runner, source, corpus_dir, opened.work, bar)
        manifest = _assemble(cfg, source, corpus_dir, out_dir, opened.work, runner.identity())
    finally:
        runner.close()
    opened.finish(manifest)
    atomic_write_bytes(
        out_dir / STATS_NAME, orjson.dumps(manifest.stats, option=orjson.OPT_INDENT_2)
    )
    return SynthResult(
        manifest,
        out_dir,
        time.perf_counter() - start,
        requests_sent=runner.sent + remote["sent"],
        cache_hits=(runner.cache.hits if runner.cache else 0) + remote["cache_hits"],
    )


def make_runner(
    cfg: SynthesizeConfig,
    engine_factory: Callable[[SynthesizeConfig], Engine],
    cache_path: Path | None,
) -> _Runner:
    """Tokenizer, decoding params, replay cache and (lazily) engine of one process."""
    params = DecodingParams(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed)
    cache = cache_path if cfg.replay_cache else None
    return _Runner(cfg, params, load_tokenizer(cfg), engine_factory, cache)


def synthesize_unit(
    runner: _Runner, r: int, index: int, shard_file: str, corpus_dir: Path, work: Path
) -> None:
    """Round `r` of one shard, published atomically to `_work/r{r}/<shard>`."""
    docs = list(read_shard(corpus_dir / shard_file))
    write_shard(work / f"r{r}" / shard_file, runner.run_round(r, index, docs, work, shard_file))


def _run_rounds(runner: _Runner, source: Manifest, corpus_dir: Path, work: Path, bar: Any) -> None:
    """In this process: round 0 of every shard, then round 1, ...; finished units skipped."""
    for r in range(runner.cfg.num_rounds):
        for index, shard in enumerate(source.shards):
            if (work / f"r{r}" / shard.file).is_file():
                bar.update(_count_round(work, r, shard.file))
                continue
            synthesize_unit(runner, r, index, shard.file, corpus_dir, work)


def _count_round(work: Path, r: int, shard_file: str) -> int:
    return sum(1 for _ in read_shard(work / f"r{r}" / shard_file))


@dataclass
class _Runner:
    """Holds the engine (built lazily), tokenizer, cache and counters of one run."""

    cfg: SynthesizeConfig
    params: DecodingParams
    tokenizer: Any
    engine_factory: Callable[[SynthesizeConfig], Engine]
    cache_path: Path | None
    bar: Any = None
    engine: Engine | None = None
    cache: ReplayCache | None = None
    sent: int = 0
    tokens_out: int = 0
    live_pairs: int = 0
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        if self.cache_path is not None:
            self.cache = ReplayCache(self.cache_path)

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.cfg.engine,
            "model": self.cfg.model,
            "revision": self.cfg.revision,
            "decoding": self.params.as_dict(),
            "format_version": FORMAT_VERSION,
        }

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        if self.cache is not None:
            self.cache.close()

    # ---------------------------------------------------------------- one (round, shard)

    def run_round(
        self, r: int, shard_index: int, docs: list[dict[str, Any]], work: Path, shard_file: str
    ) -> list[dict[str, Any]]:
        slots = assign_slots(
            [d["id"] for d in docs], self.cfg.num_rounds, self.cfg.seed, shard_index
        )
        by_position = {slots[d["id"]]: d for d in docs}
        earlier_results = [
            {res["id"]: res for res in read_shard(work / f"r{rr}" / shard_file)} for rr in range(r)
        ]
        planned: list[PlannedPrompt] = []
        todo = [d for d in docs if slots[d["id"]][1] == r]
        for doc in todo:
            slot = slots[doc["id"]][0]
            earlier = []
            for rr in range(r):
                prev_doc = by_position[(slot, rr)]
                prev = earlier_results[rr][prev_doc["id"]]
                pairs = tuple(Pair(p["question"], p["answer"]) for p in prev["pairs"])
                earlier.append(Earlier(prev_doc["id"], prev_doc["text"], pairs, prev["chunked"]))
            planned.extend(
                plan_prompts(
                    doc["id"],
                    doc["text"],
                    earlier,
                    self.count,
                    self.cfg.max_context,
                    self.cfg.max_new_tokens,
                )
            )
        completions = self.complete(planned)
        results = []
        by_doc: dict[str, list[tuple[PlannedPrompt, Completion]]] = {}
        for plan, completion in zip(planned, completions, strict=True):
            by_doc.setdefault(plan.doc_id, []).append((plan, completion))
        for doc in todo:
            slot, rnd = slots[doc["id"]]
            results.append(self._result(doc["id"], slot, rnd, by_doc[doc["id"]]))
        return results

    def _result(
        self, doc_id: str, slot: str, rnd: int, parts: list[tuple[PlannedPrompt, Completion]]
    ) -> dict[str, Any]:
        pairs: list[dict[str, str]] = []
        seen: set[str] = set()
        dropped: Counter[str] = Counter()
        pieces = prompt_tokens = completion_tokens = skipped = 0
        finish: Counter[str] = Counter()
        for _plan, completion in parts:
            prompt_tokens += completion.prompt_tokens
            completion_tokens += completion.completion_tokens
            finish[completion.finish_reason] += 1
            if completion.finish_reason == "skipped":
                skipped += 1
                continue
            parsed = parse_completion(completion.text)
            pieces += parsed.pieces
            dropped.update(parsed.dropped)
            for pair in parsed.pairs:
                if pair.question.lower() in seen:  # across the chunks of one long text
                    dropped["duplicate_question"] += 1
                    continue
                seen.add(pair.question.lower())
                pairs.append(pair.to_dict())
        chain = list(parts[0][0].chain)
        result: dict[str, Any] = {
            "id": doc_id,
            "slot": slot,
            "round": rnd,
            "linked": bool(chain),
            "chain": chain,
            "chunked": len(parts) > 1,
            "pairs": pairs,
            "stats": {
                "pieces": pieces,
                "kept": len(pairs),
                "dropped": dict(sorted(dropped.items())),
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "finish": dict(sorted(finish.items())),
                "chunks": len(parts),
                "skipped_requests": skipped,
            },
        }
        if self.cfg.keep_raw:
            result["raw"] = [c.text for _, c in parts]
        return result

    # ---------------------------------------------------------------- requests

    def complete(self, planned: Sequence[PlannedPrompt]) -> list[Completion]:
        """Completions for `planned`, from the replay cache where possible."""
        prompts = [
            Prompt(p.text, tuple(self.tokenizer(p.text, add_special_tokens=False)["input_ids"]))
            for p in planned
        ]
        identity = self.identity()
        keys = [request_key(identity, p.token_ids) for p in prompts]
        results: list[Completion | None] = [
            self.cache.get(k) if self.cache is not None else None for k in keys
        ]
        remaining: Counter[str] = Counter(p.doc_id for p in planned)
        for i, res in enumerate(results):
            if res is not None:
                self._progress(planned[i].doc_id, res, remaining)
        # Length-sorted chunks of a fixed size: stable batches (exact resume) with little padding.
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i].token_ids), i))
        batch = self._batch_size()
        for start in range(0, len(order), batch):
            missing = [i for i in order[start : start + batch] if results[i] is None]
            if not missing:
                continue
            engine = self.get_engine()

            def on_result(j: int, completion: Completion, missing: list[int] = missing) -> None:
                i = missing[j]
                results[i] = completion
                if self.cache is not None and completion.finish_reason != "error":
                    self.cache.put(keys[i], completion)
                self._progress(planned[i].doc_id, completion, remaining)

            self.sent += len(missing)
            engine.generate([prompts[i] for i in missing], self.params, on_result)
        return require_completions(results, lambda i: f"request for text {planned[i].doc_id}")

    def _batch_size(self) -> int:
        """Prompts per engine call. From the config, never from the engine object, so a
        resumed run forms the same batches before the engine is even loaded."""
        if self.cfg.engine == "hf":
            return self.cfg.hf.batch_size
        if self.cfg.engine == "openai":
            return self.cfg.openai.concurrency * 16
        return 1024

    def get_engine(self) -> Engine:
        if self.engine is None:
            self.engine = self.engine_factory(self.cfg)
        return self.engine

    def _progress(self, doc_id: str, completion: Completion, remaining: Counter[str]) -> None:
        self.tokens_out += completion.completion_tokens
        self.live_pairs += len(parse_completion(completion.text).pairs)
        remaining[doc_id] -= 1
        if self.bar is None or remaining[doc_id] > 0:
            return
        self.bar.update(1)
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        self.bar.set_postfix_str(
            f"{self.live_pairs / elapsed:,.1f} pairs/s, {self.tokens_out / elapsed:,.0f} tok/s out",
            refresh=False,
        )


# --------------------------------------------------------------------------- assembly


def _assemble(
    cfg: SynthesizeConfig,
    source: Manifest,
    corpus_dir: Path,
    out_dir: Path,
    work: Path,
    identity: dict[str, Any],
) -> Manifest:
    totals: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    histogram: Counter[int] = Counter()
    infos: list[ShardInfo] = []
    for shard in source.shards:
        results: dict[str, dict[str, Any]] = {}
        for r in range(cfg.num_rounds):
            for res in read_shard(work / f"r{r}" / shard.file):
                results[res["id"]] = res

        def records(shard_file: str = shard.file, results: dict = results) -> Any:
            for doc in read_shard(corpus_dir / shard_file):
                res = results[doc["id"]]
                stats = res["stats"]
                totals["texts"] += 1
                totals["pairs"] += len(res["pairs"])
                totals["texts_with_pairs"] += bool(res["pairs"])
                totals["linked"] += res["linked"]
                totals["chunked_texts"] += res["chunked"]
                for key in ("pieces", "prompt_tokens", "completion_tokens", "skipped_requests"):
                    totals[key] += stats[key]
                dropped.update(stats["dropped"])
                histogram[min(len(res["pairs"]), 10)] += 1
                record = {
                    "id": doc["id"],
                    "text": doc["text"],
                    "pairs": res["pairs"],
                    "slot": res["slot"],
                    "round": res["round"],
                    "linked": res["linked"],
                    "chain": res["chain"],
                    "engine": identity,
                    "stats": stats,
                    "meta": doc.get("meta", {}),
                }
                if "raw" in res:
                    record["raw"] = res["raw"]
                yield record

        target = out_dir / shard.file
        count, sha = write_shard(target, records())
        infos.append(ShardInfo(shard.file, count, sha, target.stat().st_size))
    texts = max(totals["texts"], 1)
    stats: dict[str, Any] = {
        "texts": totals["texts"],
        "pairs": totals["pairs"],
        "pairs_per_text": round(totals["pairs"] / texts, 4),
        "parse_yield": round(totals["texts_with_pairs"] / texts, 4),
        "pairs_per_text_histogram": {
            (f"{k}+" if k == 10 else str(k)): v for k, v in sorted(histogram.items())
        },
        "pieces": totals["pieces"],
        "dropped": dict(sorted(dropped.items())),
        "prompt_tokens": totals["prompt_tokens"],
        "completion_tokens": totals["completion_tokens"],
        "linked": totals["linked"],
        "linked_fraction": round(totals["linked"] / texts, 4),
        "chunked_texts": totals["chunked_texts"],
        "skipped_requests": totals["skipped_requests"],
        "engine": identity,
    }
    return Manifest(
        stage=STAGE,
        config_hash=cfg.config_hash(),
        input_fingerprint=manifest_fingerprint(source),
        format="jsonl.zst",
        shards=infos,
        stats=stats,
    )
