"""The magpie stage with a scripted engine: drops by reason, records, resume, seeds."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from instructpt.core.manifest import read_manifest
from instructpt.core.shards import read_shard
from instructpt.errors import ConfigError, ResumeError
from instructpt.magpie import MagpieConfig, magpie
from instructpt.magpie.stage import _query_groups, _query_prompts, group_seed
from instructpt.magpie.templates import PRESETS
from instructpt.mix.inputs import general_text
from instructpt.synth.engines.base import Prompt
from tests.conftest import tree_bytes
from tests.magpie.scripted import EXPECTED_DROPS, EXPECTED_RECORDS, ScriptedChatEngine
from tests.magpie.tiny_chat import build_chat_tokenizer

PREFIX = PRESETS["llama3"].prefix


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("llama3-tokenizer")
    build_chat_tokenizer("llama3").save_pretrained(out)
    return out


def config(model: Path, **overrides) -> MagpieConfig:
    values = {"model": str(model), "num_queries": 10, "progress": False, "hf": {"batch_size": 4}}
    return MagpieConfig.model_validate({**values, **overrides})


def run(cfg: MagpieConfig, out: Path, engine: ScriptedChatEngine | None = None, **kw):
    engine = engine or ScriptedChatEngine(PREFIX, cfg.seed, cfg.hf.batch_size)
    return magpie(cfg, out, engine_factory=lambda _scfg: engine, **kw), engine


def records(out: Path) -> list[dict]:
    manifest = read_manifest(out)
    return [r for s in manifest.shards for r in read_shard(out / s.file)]


def test_planted_queries_and_answers_are_kept_or_dropped_by_reason(tokenizer_dir, tmp_path):
    result, engine = run(config(tokenizer_dir), tmp_path / "magpie")
    got = [(r["instruction"], r["output"]) for r in records(tmp_path / "magpie")]
    assert got == EXPECTED_RECORDS
    st = result.manifest.stats
    assert st["dropped"] == EXPECTED_DROPS
    assert st["queries_sampled"] == 10 and st["records"] == 3
    assert st["queries_kept"] == 5  # answered: 5 of 10 survive the query filters
    assert st["queries_ended"] == 9  # all but the one that never ended its turn
    assert st["well_formed_share"] == 0.3
    assert st["question_mark_records"] == 3  # all three kept instructions are questions
    assert sum(st["dropped"].values()) + st["records"] == st["queries_sampled"]
    # responses are asked only for kept queries, greedily
    assert engine.requests == 10 + 5
    assert [p.temperature for _, p in engine.calls[-2:]] == [0.0, 0.0]
    # every request carries the turn's stop strings, so the engines end there
    assert {p.stop for _, p in engine.calls[:3]} == {tuple(st["query_stops"])}
    assert {p.stop for _, p in engine.calls[3:]} == {tuple(st["response_stops"])}


def test_records_are_alpaca_and_chat_shaped_and_readable_as_general_mix_data(
    tokenizer_dir, tmp_path
):
    run(config(tokenizer_dir), tmp_path / "magpie")
    rec = records(tmp_path / "magpie")[0]
    assert set(rec) == {"id", "instruction", "input", "output", "messages", "meta"}
    assert rec["messages"] == [
        {"role": "user", "content": "Where was Ada Brook born?"},
        {"role": "assistant", "content": "Ada Brook was born in Lowmere."},
    ]
    assert rec["input"] == "" and rec["id"].startswith("magpie-")
    assert rec["meta"]["template"] == "auto" and rec["meta"]["source"] == "magpie"
    assert general_text(rec) == "Where was Ada Brook born? Ada Brook was born in Lowmere."
    assert len({r["id"] for r in records(tmp_path / "magpie")}) == 3


def test_records_are_the_same_whether_the_engine_or_the_stage_cuts_at_the_stops(
    tokenizer_dir, tmp_path
):
    # A server that ignores `stop` (or a completion cached before requests carried
    # stops) leaves the stop string and what follows in the text; the stage cuts it.
    run(config(tokenizer_dir), tmp_path / "engine-cuts")
    ignoring = ScriptedChatEngine(PREFIX, 0, 4, honour_stop=False)
    result, _ = run(config(tokenizer_dir), tmp_path / "stage-cuts", ignoring)
    assert result.manifest.stats["queries_ended"] == 9
    assert result.manifest.stats["dropped"] == EXPECTED_DROPS

    engine_cut = records(tmp_path / "engine-cuts")
    stage_cut = records(tmp_path / "stage-cuts")
    assert [(r["instruction"], r["output"]) for r in stage_cut] == EXPECTED_RECORDS
    # the planted answer that runs past "user\n\n" to its token limit: an engine that
    # stops at the string finishes "stop", one that ignores it ran out of tokens
    assert [r["meta"]["response_finish"] for r in engine_cut] == ["stop", "stop", "stop"]
    assert [r["meta"]["response_finish"] for r in stage_cut] == ["stop", "length", "stop"]
    for r in engine_cut + stage_cut:
        del r["meta"]["response_finish"]
    assert stage_cut == engine_cut


def test_outputs_beside_the_records(tokenizer_dir, tmp_path):
    out = tmp_path / "magpie"
    result, _ = run(config(tokenizer_dir), out)
    assert (out / "config.yaml").is_file() and not (out / "_work").exists()
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert stats["dropped"] == EXPECTED_DROPS and stats["sample"]["instruction"]
    dropped = list(read_shard(tmp_path / "magpie-dropped.jsonl.zst"))
    assert [d["reason"] for d in dropped].count("response_refusal") == 1
    assert all("index" in d for d in dropped) and len(dropped) == 7
    assert not any("instruction" in d or "output" in d for d in dropped)
    lines = result.summary_lines()
    assert "3 instruction records from 10 sampled queries (30.0% well-formed)" in lines[0]
    assert any(line.startswith("  sample instruction: Where was Ada Brook born?") for line in lines)


def test_a_finished_run_is_not_redone_and_a_changed_config_is_refused(tokenizer_dir, tmp_path):
    out = tmp_path / "magpie"
    run(config(tokenizer_dir), out)
    again, engine = run(config(tokenizer_dir), out)
    assert again.already_done and engine.requests == 0
    with pytest.raises(ResumeError, match="num_queries"):
        run(config(tokenizer_dir, num_queries=12), out)


def test_a_killed_run_resumes_from_the_replay_cache_with_the_same_bytes(tokenizer_dir, tmp_path):
    cfg = config(tokenizer_dir)
    run(cfg, tmp_path / "whole", cache_path=tmp_path / "c1.sqlite")
    killer = ScriptedChatEngine(PREFIX, cfg.seed, 4, fail_after=12)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "resumed", killer, cache_path=tmp_path / "c2.sqlite")
    result, engine = run(cfg, tmp_path / "resumed", cache_path=tmp_path / "c2.sqlite")
    # the 10 queries and 2 of the 5 responses were finished and cached before the kill
    assert result.cache_hits == 12 and engine.requests == 3
    assert tree_bytes(tmp_path / "resumed") == tree_bytes(tmp_path / "whole")


def test_hf_queries_share_a_seed_per_batch_and_other_engines_get_one_per_query(tokenizer_dir):
    hf_cfg = config(tokenizer_dir, num_queries=10)
    hf = _query_groups(hf_cfg)
    assert [len(idxs) for idxs, _ in hf] == [4, 4, 2]
    assert [p.seed for _, p in hf] == [group_seed(0, g) for g in range(3)]
    assert all(p.temperature == 1.0 and p.top_p == 1.0 for _, p in hf)
    prefix = Prompt("prefix", (1, 2))
    assert {p.seed for p in _query_prompts(hf_cfg, prefix)} == {None}  # the batch's seed
    assert {p.seed for _, p in _query_groups(config(tokenizer_dir, seed=1))}.isdisjoint(
        {p.seed for _, p in hf}
    )


@pytest.mark.parametrize("engine", ["openai", "vllm"])
def test_per_request_engines_get_many_queries_per_call_each_with_the_seed_it_always_had(
    tokenizer_dir, engine
):
    cfg = config(tokenizer_dir, num_queries=70, engine=engine, openai={"concurrency": 2})
    groups = _query_groups(cfg)
    # openai: 16 waves of `concurrency` per call; vllm: all 70 in one call
    assert [len(idxs) for idxs, _ in groups] == ([32, 32, 6] if engine == "openai" else [70])
    prompts = _query_prompts(cfg, Prompt("prefix", (1, 2)))
    # query i keeps the seed of the one-query group i it was before
    assert [p.seed for p in prompts] == [group_seed(0, i) for i in range(70)]
    assert {(p.text, p.token_ids) for p in prompts} == {("prefix", (1, 2))}


def test_a_preset_that_does_not_fit_the_models_template_fails_before_generation(
    tokenizer_dir, tmp_path
):
    cfg = config(tokenizer_dir, template="qwen2")
    with pytest.raises(ConfigError, match="template: auto"):
        run(cfg, tmp_path / "magpie")
    assert not (tmp_path / "magpie").exists()  # refused before the stage dir was made
    result, _ = run(config(tokenizer_dir, template="llama3"), tmp_path / "ok")
    assert result.manifest.stats["records"] == 3


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="did you mean 'gemma2'"):
        MagpieConfig(model="m", template="gemma-2")
    with pytest.raises(ValueError, match="needs prefix"):
        MagpieConfig(model="m", template="custom")
    with pytest.raises(ValueError, match="max_context"):
        MagpieConfig(model="m", max_response_tokens=5000)


def test_the_output_folder_is_read_by_sft_as_chat_records(tokenizer_dir, tmp_path):
    from instructpt.train.sft_data import ReadStats, read_records

    run(config(tokenizer_dir), tmp_path / "magpie")
    stats = ReadStats()
    got = list(read_records([str(tmp_path / "magpie" / "shard-*.jsonl.zst")], stats, "fail"))
    assert stats.kept == 3 and not stats.dropped  # drops are not in the shards
    assert got[0][1] == [
        {"role": "user", "content": "Where was Ada Brook born?"},
        {"role": "assistant", "content": "Ada Brook was born in Lowmere."},
    ]
