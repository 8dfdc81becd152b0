"""Synthesis of one process: (round, shard) units through the shared cached request loop.

`SynthRunner.run_round` turns one (round, shard) unit into `Synthesis`
records: it plans the M-shot prompts, sends (through `synth/requests.py`,
which magpie uses too) only requests the replay cache has not answered,
parses the completions and counts every drop. The stage
(`synth/stage.py`) runs units in order locally; `synth/ray_synth.py` runs
them in engine actors. Both build their runner with `make_runner`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from instructpt.core.shards import read_shard, write_shard
from instructpt.synth.cache import ReplayCache, request_key
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import (
    Completion,
    DecodingParams,
    Engine,
    EngineError,
    Prompt,
    require_completions,
)
from instructpt.synth.engines.registry import build_engine
from instructpt.synth.format import EOS as FORMAT_EOS
from instructpt.synth.format import FORMAT_VERSION, Pair, parse_completion
from instructpt.synth.requests import CachedRequests
from instructpt.synth.rounds import Earlier, PlannedPrompt, assign_slots, plan_prompts


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


def make_runner(
    cfg: SynthesizeConfig,
    engine_factory: Callable[[SynthesizeConfig], Engine] = build_engine,
    cache_path: Path | None = None,
) -> SynthRunner:
    """Tokenizer, decoding params, replay cache and (lazily) engine of one process."""
    # The format's "</s>" is text: a fine-tuned base model (SmolLM2, Gemma) writes it
    # as several ordinary tokens, not as its EOS token, so it must stop on the string.
    params = DecodingParams(
        cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.seed, stop=(FORMAT_EOS,)
    )
    cache = cache_path if cfg.replay_cache else None
    return SynthRunner(cfg, params, load_tokenizer(cfg), engine_factory, cache)


def synthesize_unit(
    runner: SynthRunner, r: int, index: int, shard_file: str, corpus_dir: Path, work: Path
) -> None:
    """Round `r` of one shard, published atomically to `_work/r{r}/<shard>`."""
    docs = list(read_shard(corpus_dir / shard_file))
    write_shard(work / f"r{r}" / shard_file, runner.run_round(r, index, docs, work, shard_file))


class SynthRunner:
    """The tokenizer and counters of one run, around the shared cached request loop."""

    def __init__(
        self,
        cfg: SynthesizeConfig,
        params: DecodingParams,
        tokenizer: Any,
        engine_factory: Callable[[SynthesizeConfig], Engine],
        cache_path: Path | None,
    ) -> None:
        self.cfg = cfg
        self.params = params
        self.tokenizer = tokenizer
        self.cache_path = cache_path
        self.requests = CachedRequests(cfg, engine_factory, cache_path)
        self.bar: Any = None
        self.tokens_out = 0
        self.live_pairs = 0
        self.started = time.perf_counter()

    @property
    def sent(self) -> int:
        return self.requests.sent

    @property
    def cache(self) -> ReplayCache | None:
        return self.requests.cache

    def identity(self) -> dict[str, Any]:
        return self.requests.identity(self.params, format_version=FORMAT_VERSION)

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        self.requests.close()

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
        results = self.requests.cached(keys)
        remaining: Counter[str] = Counter(p.doc_id for p in planned)
        for i, res in enumerate(results):
            if res is not None:
                self._progress(planned[i].doc_id, res, remaining)
        # Length-sorted chunks of a fixed size: stable batches (exact resume) with little padding.
        order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i].token_ids), i))
        batch = self.requests.batch_size
        for start in range(0, len(order), batch):
            missing = [i for i in order[start : start + batch] if results[i] is None]
            if not missing:
                continue

            def on_result(j: int, completion: Completion, missing: list[int] = missing) -> None:
                results[missing[j]] = completion
                self._progress(planned[missing[j]].doc_id, completion, remaining)

            self.requests.send(
                [prompts[i] for i in missing], [keys[i] for i in missing], self.params, on_result
            )
        return require_completions(results, lambda i: f"request for text {planned[i].doc_id}")

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
