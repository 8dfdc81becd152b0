"""Magpie end to end on a tiny chat model trained here: hf engine, CLI, and a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from instructpt.cli import main
from instructpt.core.manifest import read_manifest
from instructpt.core.shards import read_shard
from instructpt.magpie import MagpieConfig, magpie
from tests.conftest import run_cli, tree_bytes
from tests.magpie.tiny_chat import CONVERSATIONS, build_chat_model, one_torch_thread
from tests.serve import transformers_serve

ANSWER = dict(CONVERSATIONS)
SMALL = {
    "num_queries": 16,
    "max_query_tokens": 24,
    "max_response_tokens": 24,
    "min_instruction_chars": 5,
    "max_context": 256,
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch):
    """Generation in this process and in the subprocesses on one thread (see one_torch_thread)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def chat_model(tmp_path_factory) -> Path:
    """A tiny Llama-3-templated chat model that recites CONVERSATIONS (trained in seconds)."""
    return build_chat_model(tmp_path_factory.mktemp("chat") / "model", "llama3", steps=120)


def records(out: Path) -> list[dict]:
    return [r for s in read_manifest(out).shards for r in read_shard(out / s.file)]


def test_hf_engine_samples_the_models_own_queries_and_answers_them(chat_model, tmp_path):
    cfg = MagpieConfig(model=str(chat_model), progress=False, hf={"batch_size": 8}, **SMALL)
    result = magpie(cfg, tmp_path / "magpie")
    st = result.manifest.stats
    assert st["template"] == "auto" and st["prefix"].startswith("<|begin_of_text|>")
    assert sum(st["dropped"].values()) + st["records"] == 16
    # the model ends its turns: EOS is <|eot_id|>
    assert st["queries_ended"] >= 12
    # 16 samples of 7 memorised queries: duplicates must be found
    assert st["dropped"].get("query_near_duplicate", 0) >= 4
    got = records(tmp_path / "magpie")
    recited = [r for r in got if ANSWER.get(r["instruction"]) == r["output"]]
    assert len(recited) >= 2, got
    assert all("<|" not in r["instruction"] + r["output"] for r in got)
    assert "Tell me a secret about Varn." not in {r["instruction"] for r in got}  # refusal


def test_cli_runs_resumes_and_repeats_byte_for_byte(chat_model, tmp_path):
    args = ["magpie", "--model", str(chat_model), "--no-progress", "--hf-batch-size", "8"]
    for key, value in SMALL.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    runner = CliRunner()
    first = runner.invoke(main, [*args, "--run-dir", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    assert "instruction records from 16 sampled queries" in first.output
    assert "sample instruction:" in first.output
    again = runner.invoke(main, [*args, "--run-dir", str(tmp_path / "a")])
    assert "already complete" in again.output
    other = runner.invoke(main, [*args, "--run-dir", str(tmp_path / "b")])
    assert other.exit_code == 0, other.output
    assert tree_bytes(tmp_path / "a" / "magpie") == tree_bytes(tmp_path / "b" / "magpie")
    assert (tmp_path / "a" / "cache" / "magpie-replay.sqlite").is_file()
    bad = runner.invoke(main, [*args, "--run-dir", str(tmp_path / "c"), "--template", "qwen2"])
    assert bad.exit_code == 2 and "template: auto" in bad.output


@pytest.mark.slow
@pytest.mark.ci
def test_console_command_writes_records_that_mix_reads_as_general_data(chat_model, tmp_path):
    from instructpt.mix.inputs import general_units, iter_unit

    args = ["magpie", "--run-dir", str(tmp_path), "--model", str(chat_model), "--no-progress"]
    for key, value in SMALL.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = run_cli(*args, cwd=tmp_path)
    assert "well-formed" in proc.stdout
    units, _ = general_units([str(tmp_path / "magpie")])
    general = [rec for unit in units for rec in iter_unit(unit)]
    assert general and all(g["source"] == "general" for g in general)
    assert len(general) == read_manifest(tmp_path / "magpie").num_records


@pytest.fixture(scope="module")
def served_chat_model(chat_model):
    """The real `transformers serve`, pinned to the tiny chat model."""
    with transformers_serve(chat_model) as url:
        yield url


@pytest.mark.slow
def test_openai_engine_against_a_real_server(chat_model, served_chat_model, tmp_path):
    # `transformers serve` takes text prompts only; this tokenizer adds no BOS of its
    # own, so the server sees exactly the prefix (the engine checks the token count).
    cfg = MagpieConfig(
        model=str(chat_model),
        engine="openai",
        progress=False,
        openai={"base_urls": [served_chat_model], "send_token_ids": False, "concurrency": 2},
        **{**SMALL, "num_queries": 6},
    )
    result = magpie(cfg, tmp_path / "magpie")
    st = result.manifest.stats
    assert sum(st["dropped"].values()) + st["records"] == 6
    assert st["queries_ended"] >= 4
    assert records(tmp_path / "magpie"), st
