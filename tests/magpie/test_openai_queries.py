"""Magpie over the openai engine against a real HTTP server that samples by seed.

The stand-in answers the bare prefix with the planted query its request's seed
picks, as a seeded server would, and honours `stop` as OpenAI and vLLM do (text
cut before the stop string, finish "stop"). So it shows what a real server sees:
how many queries are in flight at once, which seed each carries, and whether
the records and replay keys are those of the one-query-per-call stage before.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from instructpt.core.manifest import read_manifest
from instructpt.core.shards import read_shard
from instructpt.magpie import MagpieConfig, magpie
from instructpt.magpie.stage import group_seed
from instructpt.synth.cache import request_key
from instructpt.synth.engines.base import EngineError
from tests.conftest import tree_bytes
from tests.magpie.scripted import ANSWERS, PLANTED_QUERIES
from tests.magpie.tiny_chat import build_chat_tokenizer
from tests.synth.fault_server import FaultServer

pytestmark = pytest.mark.timeout(120)

#: What the stage wrote with seed 0 and 20 queries when openai queries still went out
#: one per call (captured from that code): (index, instruction, output, query_seed).
RECORDS_BEFORE = [
    (1, "Who founded Calder Mills?", "Calder Mills was founded by Ida Calder.", 563308049),
    (2, "What is the capital of Ostland?", "The capital of Ostland is Varn.", 1767383293),
    (4, "Where was Ada Brook born?", "Ada Brook was born in Lowmere.", 1693286180),
]


class SeededChatServer(FaultServer):
    """The fault server's HTTP side, answering like a seeded chat model (see module doc)."""

    def __init__(
        self, tokenizer: Any, prefix_ids: list[int], query_latency_s: float, **script: Any
    ) -> None:
        super().__init__(**script)
        self.tokenizer = tokenizer
        self.prefix_ids = prefix_ids
        self.query_latency_s = query_latency_s
        self.queries_in_flight = 0
        self.max_queries_in_flight = 0
        self._count = threading.Lock()

    def answer(self, body: dict) -> tuple[str, str]:
        if body["prompt"] == self.prefix_ids:
            text, finish = PLANTED_QUERIES[body["seed"] % len(PLANTED_QUERIES)]
        else:
            asked = self.tokenizer.decode(body["prompt"])
            text, finish = ANSWERS[next(q for q in ANSWERS if q in asked)]
        hits = [text.index(s) for s in body.get("stop", []) if s in text]
        return (text[: min(hits)], "stop") if hits else (text, finish)

    def query_started(self) -> None:
        with self._count:
            self.queries_in_flight += 1
            self.max_queries_in_flight = max(self.max_queries_in_flight, self.queries_in_flight)

    def query_ended(self) -> None:
        with self._count:
            self.queries_in_flight -= 1

    def _handler_class(self) -> type:
        server = self

        class Handler(super()._handler_class()):
            def ok(self, prompt: list[int], body: dict) -> None:
                is_query = prompt == server.prefix_ids
                if is_query:  # held open a while, so concurrent queries overlap
                    server.query_started()
                    time.sleep(server.query_latency_s)
                    server.query_ended()
                text, finish = server.answer(body)
                choice = {"index": 0, "text": text, "finish_reason": finish}
                usage = {"prompt_tokens": len(prompt), "completion_tokens": len(text.split())}
                self.send_json(200, {"choices": [choice], "usage": usage})

        return Handler


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("llama3-tokenizer")
    build_chat_tokenizer("llama3").save_pretrained(out)
    return out


def seeded_server(tokenizer_dir: Path, **script: Any) -> SeededChatServer:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    prefix = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    prefix_ids = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    return SeededChatServer(tokenizer, prefix_ids, query_latency_s=0.1, **script)


@pytest.fixture
def server(tokenizer_dir):
    with seeded_server(tokenizer_dir) as server:
        yield server


def config(tokenizer_dir: Path, url: str, **overrides: Any) -> MagpieConfig:
    values = {
        "model": str(tokenizer_dir),
        "engine": "openai",
        "num_queries": 20,
        "progress": False,
        "openai": {"base_urls": [url], "served_model_name": "tiny", "concurrency": 4},
    }
    return MagpieConfig.model_validate({**values, **overrides})


def records(out: Path) -> list[dict]:
    return [r for s in read_manifest(out).shards for r in read_shard(out / s.file)]


def query_bodies(server: SeededChatServer) -> list[dict]:
    return [b for b in server.bodies if b["prompt"] == server.prefix_ids]


def test_queries_go_out_concurrently_each_with_its_own_seed(tokenizer_dir, server, tmp_path):
    result = magpie(config(tokenizer_dir, server.url), tmp_path / "magpie")
    bodies = query_bodies(server)
    # every query once, with the seed query i always had; `concurrency` of them at a time
    assert sorted(b["seed"] for b in bodies) == sorted(group_seed(0, i) for i in range(20))
    assert server.max_queries_in_flight == 4
    assert all(b["stop"] == result.manifest.stats["query_stops"] for b in bodies)
    # the same records as when queries went out one at a time
    got = [
        (r["meta"]["index"], r["instruction"], r["output"], r["meta"]["query_seed"])
        for r in records(tmp_path / "magpie")
    ]
    assert got == RECORDS_BEFORE
    st = result.manifest.stats
    assert (st["queries_ended"], st["queries_kept"], st["records"]) == (17, 4, 3)


def test_each_query_is_cached_under_its_own_seed_and_replayed(tokenizer_dir, server, tmp_path):
    cfg = config(tokenizer_dir, server.url)
    cache = tmp_path / "replay.sqlite"
    result = magpie(cfg, tmp_path / "a", cache_path=cache)
    stops = result.manifest.stats["query_stops"]
    prefix_ids = tuple(server.prefix_ids)
    expected = {
        request_key(
            {
                "name": "openai",
                "model": cfg.model,
                "revision": None,
                "decoding": {
                    "max_new_tokens": cfg.max_query_tokens,
                    "temperature": 1.0,
                    "top_p": 1.0,
                    "seed": group_seed(0, i),
                    "stop": stops,
                },
                "magpie": "query",
                # the key of a group of one, as each query was before
                "row": 0,
                "rows": 1,
            },
            prefix_ids,
        )
        for i in range(20)
    }
    with sqlite3.connect(cache) as db:
        stored = {k for (k,) in db.execute("SELECT key FROM completions")}
    assert expected <= stored

    sent = server.total_requests
    again = magpie(cfg, tmp_path / "b", cache_path=cache)
    assert again.requests_sent == 0 and server.total_requests == sent
    assert records(tmp_path / "b") == records(tmp_path / "a")


def test_a_killed_run_resends_only_the_queries_it_had_not_finished(tokenizer_dir, tmp_path):
    with seeded_server(tokenizer_dir) as server:
        cfg = config(tokenizer_dir, server.url)
        magpie(cfg, tmp_path / "whole", cache_path=tmp_path / "c1.sqlite")
    # six queries answered, then the server refuses everything: the run stops
    with seeded_server(tokenizer_dir, script=["ok"] * 6, default="401") as server:
        cfg = config(tokenizer_dir, server.url)
        with pytest.raises(EngineError):
            magpie(cfg, tmp_path / "resumed", cache_path=tmp_path / "c2.sqlite")
    with seeded_server(tokenizer_dir) as server:
        cfg = config(tokenizer_dir, server.url)
        result = magpie(cfg, tmp_path / "resumed", cache_path=tmp_path / "c2.sqlite")
        resent = len(query_bodies(server))
    # finished queries came from the cache, one by one (not their whole call again)
    assert 1 <= result.cache_hits <= 6 and resent == 20 - result.cache_hits
    assert tree_bytes(tmp_path / "resumed") == tree_bytes(tmp_path / "whole")
