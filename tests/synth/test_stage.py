"""The synthesize stage: records, M-shot chains, fitting, chunking, resume and replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.format import Pair, build_prompt, context_prompt
from instructpt.synth.stage import synthesize
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import tree_bytes
from tests.synth.scripted_engine import ScriptedEngine

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)) + "." for i in range(300)]
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts)


def _corpus(tmp_path: Path, texts: list[str], num_shards: int = 2) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    ingest(
        IngestConfig(input=[str(path)], num_shards=num_shards, progress=False), tmp_path / "corpus"
    )
    return tmp_path / "corpus"


def _records(folder: Path) -> dict[str, dict]:
    return {r["id"]: r for s in sorted(folder.glob("shard-*")) for r in read_shard(s)}


def _run(tmp_path, corpus, engine, *, model, overwrite=False, **kw):
    cfg = SynthesizeConfig(model=str(model), progress=False, **kw)
    return synthesize(
        cfg,
        corpus,
        tmp_path / "synth",
        tmp_path / "cache.sqlite",
        overwrite=overwrite,
        engine_factory=lambda c: engine,
    )


def test_records_carry_pairs_chain_engine_and_stats(tmp_path, tiny_model):
    texts = [f"{w.capitalize()} is word number {i}." for i, w in enumerate(WORDS)]
    corpus = _corpus(tmp_path, texts)
    engine = ScriptedEngine()
    result = _run(tmp_path, corpus, engine, model=tiny_model, num_rounds=2)
    recs = _records(tmp_path / "synth")
    assert set(recs) == {f"d{i}" for i in range(len(texts))}
    r = recs["d0"]
    assert r["text"] == texts[0]
    assert r["pairs"] == [
        {"question": "What is the first word?", "answer": "Alpha"},
        {"question": "How many characters?", "answer": str(len(texts[0]))},
    ]
    assert r["stats"]["dropped"] == {"truncated": 1} and r["stats"]["pieces"] == 3
    assert r["engine"]["format_version"] == "instruction-synthesizer/1"
    assert r["engine"]["decoding"]["max_new_tokens"] == 400
    st = result.manifest.stats
    assert st["texts"] == len(texts) and st["pairs"] == 2 * len(texts) and st["parse_yield"] == 1.0
    # each slot has two texts; round 1 texts are linked to their slot's round 0 text
    by_slot: dict[str, list[dict]] = {}
    for rec in recs.values():
        by_slot.setdefault(rec["slot"], []).append(rec)
    for members in by_slot.values():
        members.sort(key=lambda m: m["round"])
        assert [m["round"] for m in members] == list(range(len(members)))
        assert not members[0]["linked"]
        if len(members) == 2:
            assert members[1]["linked"] and members[1]["chain"] == [members[0]["id"]]
    assert st["linked"] == sum(len(m) - 1 for m in by_slot.values())
    assert (tmp_path / "synth/stats.json").is_file()


def test_round_one_prompt_is_the_literal_m_shot_chain(tmp_path, tiny_model):
    corpus = _corpus(tmp_path, ["First text here.", "Second text here."], num_shards=1)
    engine = ScriptedEngine()
    _run(tmp_path, corpus, engine, model=tiny_model, num_rounds=2)
    recs = _records(tmp_path / "synth")
    first, second = sorted(recs.values(), key=lambda r: r["round"])
    pairs = [Pair(p["question"], p["answer"]) for p in first["pairs"]]
    assert engine.prompts == [
        context_prompt(first["text"]),
        build_prompt([(first["text"], pairs)], second["text"]),
    ]


def test_text_without_pairs_breaks_the_chain(tmp_path, tiny_model):
    corpus = _corpus(
        tmp_path, ["Barren text yields nothing.", "Fertile text yields pairs."], num_shards=1
    )
    _run(tmp_path, corpus, ScriptedEngine(), model=tiny_model, num_rounds=2, seed=3)
    recs = sorted(_records(tmp_path / "synth").values(), key=lambda r: r["round"])
    if recs[0]["text"].startswith("Barren"):
        assert recs[0]["pairs"] == [] and not recs[1]["linked"]
    else:
        assert recs[1]["linked"]


def test_oldest_examples_are_dropped_first_when_the_chain_does_not_fit(tmp_path, tiny_model):
    long = " ".join(WORDS * 3)
    corpus = _corpus(tmp_path, [f"{w} {long}" for w in ("Aa", "Bb", "Cc")], num_shards=1)
    engine = ScriptedEngine()
    # room for the own context plus exactly one earlier example
    _run(
        tmp_path, corpus, engine, model=tiny_model, num_rounds=3, max_context=280, max_new_tokens=20
    )
    recs = sorted(_records(tmp_path / "synth").values(), key=lambda r: r["round"])
    assert recs[2]["chain"] == [recs[1]["id"]]  # round 0 dropped, round 1 kept
    assert recs[1]["chain"] == [recs[0]["id"]]


def test_a_text_longer_than_the_budget_is_chunked_at_sentences(tmp_path, tiny_model):
    sentences = [f"{w.capitalize()} sentence {i} is here." for i, w in enumerate(WORDS * 4)]
    corpus = _corpus(tmp_path, [" ".join(sentences)], num_shards=1)
    engine = ScriptedEngine()
    _run(
        tmp_path, corpus, engine, model=tiny_model, num_rounds=1, max_context=200, max_new_tokens=50
    )
    rec = _records(tmp_path / "synth")["d0"]
    assert rec["stats"]["chunks"] == len(engine.prompts) > 1
    full = " ".join(sentences)
    contexts = [p.split("<CON> ")[1].split(" </CON>")[0] for p in engine.prompts]
    contexts.sort(key=full.index)  # the engine gets prompts length-sorted, not in text order
    assert " ".join(contexts) == full  # nothing lost, split at sentence ends
    assert all(c.endswith("here.") for c in contexts)
    assert not rec["linked"]
    # the question "What is the first word?" repeats across chunks: pooled once
    assert [p["question"] for p in rec["pairs"]].count("What is the first word?") == 1


def test_crash_then_rerun_gives_identical_records_and_resends_nothing(tmp_path, tiny_model):
    texts = [f"{WORDS[i % 12].capitalize()} text {i}." for i in range(40)]
    corpus = _corpus(tmp_path, texts, num_shards=3)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    _run(ref_dir, corpus, ScriptedEngine(), model=tiny_model, num_rounds=2)

    crashing = ScriptedEngine(fail_after=30)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, corpus, crashing, model=tiny_model, num_rounds=2)
    resumed = ScriptedEngine()
    _run(tmp_path, corpus, resumed, model=tiny_model, num_rounds=2)
    assert tree_bytes(tmp_path / "synth") == tree_bytes(ref_dir / "synth")
    sent_twice = set(crashing.seen) & set(resumed.seen)
    assert not sent_twice
    assert len(crashing.seen) + len(resumed.seen) == 40


def test_replay_cache_survives_overwrite(tmp_path, tiny_model):
    corpus = _corpus(tmp_path, [f"Text {i}." for i in range(6)])
    _run(tmp_path, corpus, ScriptedEngine(), model=tiny_model, num_rounds=1)
    again = ScriptedEngine()
    result = _run(tmp_path, corpus, again, model=tiny_model, num_rounds=1, overwrite=True)
    assert again.prompts == [] and result.cache_hits == 6


def test_real_hf_engine_end_to_end_on_a_tiny_model(tmp_path, tiny_model):
    corpus = _corpus(tmp_path, [f"{w.capitalize()} is a word." for w in WORDS[:6]])
    cfg = SynthesizeConfig(
        model=str(tiny_model), num_rounds=2, max_new_tokens=24, progress=False, keep_raw=True
    )
    result = synthesize(cfg, corpus, tmp_path / "synth", tmp_path / "cache.sqlite")
    recs = _records(tmp_path / "synth")
    assert len(recs) == 6 and result.requests_sent == 6
    for rec in recs.values():
        assert rec["stats"]["completion_tokens"] <= 24 and len(rec["raw"]) == 1
    # a rerun with --overwrite replays all six requests from the cache, same bytes
    before = tree_bytes(tmp_path / "synth")
    again = synthesize(cfg, corpus, tmp_path / "synth", tmp_path / "cache.sqlite", overwrite=True)
    assert again.requests_sent == 0 and tree_bytes(tmp_path / "synth") == before


def test_prompt_token_ids_hold_exactly_one_bos_per_example(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    prompt = build_prompt([("A.", [Pair("q", "a")])], "B.")
    ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert ids.count(tok.bos_token_id) == 2  # one per example, none added
