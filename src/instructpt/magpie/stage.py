"""The magpie stage: an aligned chat model in, instruction records out (Magpie, Xu et al. 2024).

Order of work:
1. Queries. `num_queries` copies of the template prefix (the start of a user
   turn, nothing else) are sampled at temperature 1, top_p 1 (the paper's
   section 2.1 settings) and end at the first end-of-turn string: the engines
   stop there (the template's stops are the request's stop strings), and the
   text is cut there once more in case a completion still holds one. A query
   whose turn did not end (EOS or a stop string) within `max_query_tokens` is
   dropped: where it would have ended is unknown.
2. Query filters (length, repetition, template leaks), then near-duplicates
   against the queries kept before it.
3. Responses to the kept queries, greedy, through the model's own chat
   template when the tokenizer has one (the preset's format otherwise), ending
   at the end of the assistant turn (the response stops, as for queries); then
   the response filters (truncation, length, repetition, leaks, refusals).

Every request goes through the engines of `synth/engines` and the replay
cache of `synth/cache.py`, so a killed run resumes without re-sending a
finished request and ends with the same bytes.

Seeding. Identical prompts with one seed give identical samples on every
backend, so the copies of the prefix must not share a seed where requests
are seeded one by one. vLLM and OpenAI-style servers seed each request: each
query `i` carries its own seed `group_seed(seed, i)` (`Prompt.seed`), and the
queries go out in large calls, so a server gets `concurrency` of them at a
time. The hf engine draws a whole batch from one torch generator: there the
queries are sampled in groups of `hf.batch_size`, one `generate` call and one
seed `group_seed(seed, g)` per group, and they differ because they draw one
after another. The same seed (and, on hf, batch size) gives the same queries.

Output: `shard-*.jsonl.zst` records `{id, instruction, input, output,
messages, meta}` (Alpaca fields for `sft`, chat `messages`, and `instruction`
+ `output` that `mix --general` reads), `_manifest.json` with the stats,
`stats.json` and the resolved `config.yaml`; beside the folder,
`<folder>-dropped.jsonl.zst` holds each drop with its reason (`query`,
`response`, `raw`: field names no instruction reader takes for data).
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.manifest import Manifest, ShardInfo
from instructpt.core.resume import open_stage_dir
from instructpt.core.runner import StageResult, counts_line
from instructpt.core.shards import shard_name, write_shard
from instructpt.errors import ConfigError
from instructpt.magpie.config import MagpieConfig
from instructpt.magpie.filters import MagpieFilters
from instructpt.magpie.templates import (
    TEMPLATES_VERSION,
    ChatTemplate,
    check_prefix,
    from_tokenizer,
    response_prompt,
    template_from_config,
)
from instructpt.synth.cache import request_key
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import (
    Completion,
    DecodingParams,
    Engine,
    Prompt,
    cut_at_stop,
    require_completions,
)
from instructpt.synth.engines.registry import build_engine, preferred_batch, seeds_per_request
from instructpt.synth.requests import CachedRequests
from instructpt.synth.runner import load_tokenizer

STAGE = "magpie"
STATS_NAME = "stats.json"
DROPPED_SUFFIX = "-dropped.jsonl.zst"


@dataclass
class MagpieResult(StageResult):
    requests_sent: int = 0
    cache_hits: int = 0

    def head(self) -> str:
        st = self.manifest.stats
        return (
            f"magpie: {st['records']:,} instruction records from {st['queries_sampled']:,} "
            f"sampled queries ({st['well_formed_share']:.1%} well-formed) in {self.out_dir}"
        )

    def details(self) -> list[str]:
        st = self.manifest.stats
        lines = [f"  template {st['template']}: prefix {st['prefix']!r}"]
        lines.append(
            f"  queries ended their turn {st['queries_ended']:,}, kept {st['queries_kept']:,}; "
            f"responses kept {st['records']:,}"
        )
        lines += counts_line("dropped", st["dropped"])
        lines.append(
            f"  {self.seconds:.1f} s; requests sent {self.requests_sent:,}, replayed from cache "
            f"{self.cache_hits:,}; tokens in {st['prompt_tokens']:,}, "
            f"out {st['completion_tokens']:,}"
        )
        sample = st.get("sample")
        if sample:
            lines.append(f"  sample instruction: {_clip(sample['instruction'])}")
            lines.append(f"  sample output:      {_clip(sample['output'])}")
        return lines


def _clip(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def dropped_path(out_dir: Path) -> Path:
    """The side file of drops, beside the stage folder: a glob over the folder's data
    files (`magpie/*.jsonl.zst`) must never feed dropped refusals to training."""
    return out_dir.with_name(out_dir.name + DROPPED_SUFFIX)


def resolve_template(cfg: MagpieConfig, tokenizer: Any) -> ChatTemplate:
    """The configured template; fails before any generation when it cannot fit the model."""
    preset = template_from_config(cfg.template, cfg.prefix, tuple(cfg.stop))
    template = preset if preset is not None else from_tokenizer(tokenizer, tuple(cfg.stop))
    if cfg.check_template:
        problem = check_prefix(template, tokenizer)
        if problem:
            raise ConfigError(problem)
    return template


def model_fingerprint(cfg: MagpieConfig) -> str:
    """The model's identity for resume: file names, sizes and times of a local directory."""
    parts = [cfg.model, str(cfg.revision)]
    for name in (cfg.model, cfg.tokenizer):
        folder = Path(name) if name else None
        if folder is not None and folder.is_dir():
            for f in sorted(folder.iterdir()):
                if f.is_file():
                    st = f.stat()
                    parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def group_seed(seed: int, group: int) -> int:
    """Seed of query group `group`: hashed, so runs with nearby seeds share no group."""
    digest = hashlib.blake2b(f"magpie\x1f{seed}\x1f{group}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFFFFFF


def magpie(
    cfg: MagpieConfig,
    out_dir: Path,
    overwrite: bool = False,
    cache_path: Path | None = None,
    engine_factory: Callable[[SynthesizeConfig], Engine] = build_engine,
) -> MagpieResult:
    """Run (or resume) Magpie generation into `out_dir`."""
    start = time.perf_counter()
    scfg = cfg.engine_config()
    # Fail at the edge: a template that cannot fit the model stops the run before the
    # stage directory records this config.
    tokenizer = load_tokenizer(scfg)
    template = resolve_template(cfg, tokenizer)
    opened = open_stage_dir(out_dir, STAGE, cfg, model_fingerprint(cfg), overwrite)
    if opened.done is not None:
        return MagpieResult(opened.done, out_dir, already_done=True)
    markers = template.template_tokens + tuple(getattr(tokenizer, "all_special_tokens", []) or [])
    filters = MagpieFilters(cfg, markers)
    gen = _Generator(
        cfg, CachedRequests(scfg, engine_factory, cache_path if cfg.replay_cache else None)
    )
    try:
        records, dropped, stats = _generate(cfg, tokenizer, template, filters, gen)
    finally:
        gen.close()

    infos: list[ShardInfo] = []
    for k, begin in enumerate(range(0, max(len(records), 1), cfg.records_per_shard)):
        target = out_dir / shard_name(k)
        count, sha = write_shard(target, records[begin : begin + cfg.records_per_shard])
        infos.append(ShardInfo(target.name, count, sha, target.stat().st_size))
    if cfg.write_dropped:
        write_shard(dropped_path(out_dir), dropped)
    stats["engine"] = gen.identity("response", _response_params(cfg, template))
    manifest = Manifest(
        stage=STAGE,
        config_hash=cfg.config_hash(),
        input_fingerprint=model_fingerprint(cfg),
        format="jsonl.zst",
        shards=infos,
        stats=stats,
    )
    atomic_write_bytes(out_dir / STATS_NAME, orjson.dumps(stats, option=orjson.OPT_INDENT_2))
    opened.finish(manifest)
    return MagpieResult(
        manifest,
        out_dir,
        time.perf_counter() - start,
        requests_sent=gen.requests.sent,
        cache_hits=gen.requests.cache_hits,
    )


def _response_params(cfg: MagpieConfig, template: ChatTemplate) -> DecodingParams:
    return DecodingParams(
        cfg.max_response_tokens,
        temperature=0.0,
        top_p=1.0,
        seed=cfg.seed,
        stop=template.response_stops(),
    )


def _query_groups(
    cfg: MagpieConfig, stops: tuple[str, ...] = ()
) -> list[tuple[list[int], DecodingParams]]:
    """Query indices per `generate` call, with the call's params (see Seeding above).

    On hf the call's seed is the group's; elsewhere each query brings its own
    (`_query_prompts`), and the call's seed is its first query's.
    """
    per_request = seeds_per_request(cfg)
    size = preferred_batch(cfg)
    groups = []
    for g, begin in enumerate(range(0, cfg.num_queries, size)):
        seed = group_seed(cfg.seed, begin if per_request else g)
        params = DecodingParams(
            cfg.max_query_tokens, cfg.query_temperature, cfg.query_top_p, seed, stop=stops
        )
        groups.append((list(range(begin, min(begin + size, cfg.num_queries))), params))
    return groups


def _query_prompts(cfg: MagpieConfig, prefix: Prompt) -> list[Prompt]:
    """The prefix once per query; where requests are seeded one by one, query `i` carries
    seed `group_seed(seed, i)`: the seed it had when such queries went one per call."""
    if not seeds_per_request(cfg):
        return [prefix] * cfg.num_queries
    return [replace(prefix, seed=group_seed(cfg.seed, i)) for i in range(cfg.num_queries)]


def _encode(tokenizer: Any, text: str) -> Prompt:
    return Prompt(text, tuple(tokenizer(text, add_special_tokens=False)["input_ids"]))


def _generate(
    cfg: MagpieConfig,
    tokenizer: Any,
    template: ChatTemplate,
    filters: MagpieFilters,
    gen: _Generator,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    reasons: Counter[str] = Counter()
    dropped: list[dict[str, Any]] = []
    tokens = Counter[str]()

    def drop(index: int, reason: str, **fields: Any) -> None:
        reasons[reason] += 1
        dropped.append({"index": index, "reason": reason, **fields})

    # ---- 1. queries
    query_prompts = _query_prompts(cfg, _encode(tokenizer, template.prefix))
    groups = _query_groups(cfg, template.query_stops())
    seeds = {i: params.seed_for(query_prompts[i]) for idxs, params in groups for i in idxs}
    with gen.progress(cfg.num_queries, "magpie queries"):
        query_out = gen.complete(query_prompts, groups, "query")
    queries: dict[int, str] = {}
    ended_count = 0
    for i, c in enumerate(query_out):
        tokens["prompt"] += c.prompt_tokens
        tokens["completion"] += c.completion_tokens
        if c.finish_reason == "skipped":
            drop(i, "query_skipped", detail=c.detail)
            continue
        # The engines stop at the query stops and cut them off, finishing "stop"; an
        # EOS finishes "stop" too and ends the turn just as well. A stop string left
        # in the text (a completion cached before requests carried stops, a server
        # that ignores them) is cut here and ends the turn, whatever the finish.
        text, found = cut_at_stop(c.text, template.query_stops())
        ended = found or c.finish_reason == "stop"
        ended_count += ended
        query = text.strip()
        reason = filters.query(query, ended)
        if reason:
            drop(i, reason, query=query, raw=c.text)
        else:
            queries[i] = query

    # ---- 2. near-duplicates, first kept occurrence wins
    order = sorted(queries)
    for i, dup in zip(order, filters.duplicates([queries[i] for i in order]), strict=True):
        if dup:
            drop(i, "query_near_duplicate", query=queries.pop(i))
    queries_kept = len(queries)

    # ---- 3. responses, greedy
    order = sorted(queries)
    prompts = [
        _encode(tokenizer, response_prompt(template, tokenizer, queries[i], cfg.use_chat_template))
        for i in order
    ]
    by_length = sorted(range(len(prompts)), key=lambda j: (len(prompts[j].token_ids), j))
    batch = preferred_batch(cfg)
    params = _response_params(cfg, template)
    calls = [(by_length[b : b + batch], params) for b in range(0, len(by_length), batch)]
    with gen.progress(len(prompts), "magpie responses"):
        response_out = gen.complete(prompts, calls, "response")

    records: list[dict[str, Any]] = []
    for j, (i, c) in enumerate(zip(order, response_out, strict=True)):
        tokens["prompt"] += c.prompt_tokens
        tokens["completion"] += c.completion_tokens
        query = queries[i]
        if c.finish_reason == "skipped":
            drop(i, "response_skipped", query=query, detail=c.detail)
            continue
        text, found = cut_at_stop(c.text, template.response_stops())
        output = text.strip()
        reason = filters.response(output, found or c.finish_reason == "stop")
        if reason:
            drop(i, reason, query=query, response=output, raw=c.text)
            continue
        records.append(
            {
                "id": _record_id(cfg, template, i),
                "instruction": query,
                "input": "",
                "output": output,
                "messages": [
                    {"role": "user", "content": query},
                    {"role": "assistant", "content": output},
                ],
                "meta": {
                    "source": "magpie",
                    "model": cfg.model,
                    "revision": cfg.revision,
                    "template": template.name,
                    "templates_version": TEMPLATES_VERSION,
                    "index": i,
                    "query_seed": seeds[i],
                    "response_prompt_tokens": len(prompts[j].token_ids),
                    "response_finish": c.finish_reason,
                },
            }
        )

    dropped.sort(key=lambda d: d["index"])
    n = cfg.num_queries
    stats: dict[str, Any] = {
        "queries_sampled": n,
        "queries_ended": ended_count,
        "queries_kept": queries_kept,
        "records": len(records),
        "well_formed_share": round(len(records) / n, 4),
        "query_well_formed_share": round(queries_kept / n, 4),
        # A rough sign of whether the model writes questions at all (the filters only
        # check shape): kept instructions that end in a question mark.
        "question_mark_records": sum(r["instruction"].rstrip().endswith("?") for r in records),
        "dropped": dict(sorted(reasons.items())),
        "prompt_tokens": tokens["prompt"],
        "completion_tokens": tokens["completion"],
        "template": template.name,
        "prefix": template.prefix,
        "query_stops": list(template.query_stops()),
        "response_stops": list(template.response_stops()),
        "sample": (
            {"instruction": records[0]["instruction"], "output": records[0]["output"]}
            if records
            else None
        ),
    }
    return records, dropped, stats


def _record_id(cfg: MagpieConfig, template: ChatTemplate, index: int) -> str:
    """Stable and distinct across models, templates and seeds (outputs can be concatenated)."""
    key = f"{cfg.model}\x1f{cfg.revision}\x1f{template.name}\x1f{cfg.seed}\x1f{index}"
    return "magpie-" + hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


class _Generator:
    """Magpie's calls (seeded query groups, then responses) over the shared request loop."""

    def __init__(self, cfg: MagpieConfig, requests: CachedRequests) -> None:
        self.cfg = cfg
        self.requests = requests
        self.bar: Any = None

    def identity(self, kind: str, params: DecodingParams) -> dict[str, Any]:
        return self.requests.identity(params, magpie=kind)

    @contextmanager
    def progress(self, total: int, desc: str) -> Iterator[None]:
        self.bar = tqdm(
            total=total,
            desc=desc,
            unit="req",
            disable=None if self.cfg.progress else True,
            file=sys.stderr,
        )
        try:
            yield
        finally:
            self.bar.close()
            self.bar = None

    def complete(
        self,
        prompts: Sequence[Prompt],
        calls: Sequence[tuple[list[int], DecodingParams]],
        kind: str,
    ) -> list[Completion]:
        """One completion per prompt; each call is one `generate` with its own params.

        A query drawn from a seed shared by its group (hf) depends on its row and
        on the whole group, so a group with any request missing is sent whole.
        A query with its own seed, like a greedy response, depends on nothing
        else in its call: only its missing requests are sent.
        """
        results: list[Completion | None] = [None] * len(prompts)
        for idxs, params in calls:
            keys = self._keys(prompts, idxs, params, kind)
            cached = self.requests.cached(keys)
            if kind == "query" and any(prompts[i].seed is None for i in idxs):
                todo = [] if all(c is not None for c in cached) else list(range(len(idxs)))
            else:
                todo = [r for r, c in enumerate(cached) if c is None]
            pending = set(todo)
            for r, c in enumerate(cached):
                if r not in pending:
                    results[idxs[r]] = c
                    self._tick()
            if not todo:
                continue

            def on_result(
                j: int, completion: Completion, todo: list[int] = todo, idxs: list[int] = idxs
            ) -> None:
                results[idxs[todo[j]]] = completion
                self._tick()

            self.requests.send(
                [prompts[idxs[r]] for r in todo], [keys[r] for r in todo], params, on_result
            )
        return require_completions(results, lambda i: f"magpie {kind} request {i}")

    def _keys(
        self, prompts: Sequence[Prompt], idxs: list[int], params: DecodingParams, kind: str
    ) -> list[str]:
        """Replay keys of one call's requests, each with the seed it was sampled with.

        A query of a shared-seed group is keyed by its row and the group's size;
        one with its own seed is keyed as a group of one with that seed, which
        is what it was when such queries went out one per call.
        """
        keys = []
        for r, i in enumerate(idxs):
            prompt = prompts[i]
            ident = self.identity(kind, replace(params, seed=params.seed_for(prompt)))
            if kind == "query":
                own = prompt.seed is not None
                ident = {**ident, "row": 0 if own else r, "rows": 1 if own else len(idxs)}
            keys.append(request_key(ident, prompt.token_ids))
        return keys

    def _tick(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        self.requests.close()
