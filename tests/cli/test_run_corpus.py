"""`instructpt run` on a user's own files: no world, the stages that need it skipped, resumable."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from instructpt.run_config import RunConfig
from tests.conftest import REPO, run_cli, write_jsonl

USER_RUN = """\
name: user
corpus: {input: [docs.jsonl]}
ingest: {num_shards: 2}
synthesize: {engine: miner, miner: {num_workers: 1, families: [title, nli, cause_effect]}}
tokenizer: {vocab_size: 400}
tokenize: {seq_len: 64}
pretrain: {model: {preset: tiny-llama}, micro_batch_size: 4, epochs: 1, num_threads: 1}
"""

#: Stage folders of the run above, each finished with a manifest.
STAGE_DIRS = (
    "corpus", "synth", "cooked", "tokenizer", "mix/vanilla", "mix/instruct",
    "tokens/vanilla", "tokens/instruct", "models/vanilla", "models/instruct",
)  # fmt: skip


def test_run_on_a_user_corpus_skips_the_world_stages_and_resumes_complete(tmp_path):
    shutil.copy(REPO / "tests/fixtures/paragraphs.jsonl", tmp_path / "docs.jsonl")
    (tmp_path / "u.yaml").write_text(USER_RUN)
    res = run_cli("run", "--config", "u.yaml", cwd=tmp_path)
    run_dir = tmp_path / "runs/user"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stages_run"] == [
        "ingest", "synthesize", "cook", "tokenizer", "mix", "tokenize", "pretrain", "report",
    ]  # fmt: skip
    assert summary["not_run"] == []
    assert summary["skipped"] == [
        "world", "train-synthesizer", "filter", "evaluate", "tune", "magpie",
    ]  # fmt: skip
    assert not (run_dir / "world").exists() and not (run_dir / "corpus-augment").exists()
    assert "world: skipped" in res.stdout and "evaluate: skipped (not configured)" in res.stdout
    # no general data: the mix variant is left out, and the resolved config says so
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["variants"] == ["vanilla", "instruct"] and not (run_dir / "mix/mix").exists()
    assert resolved["evaluate"] is None and resolved["tune"] is None
    corpus = json.loads((run_dir / "corpus/_manifest.json").read_text())["stats"]
    assert corpus["kept"] == 12
    # the whole corpus was augmented, so every document of the instruct mix is cooked
    mix = json.loads((run_dir / "mix/instruct/_manifest.json").read_text())["stats"]
    assert mix["augmented_docs"] == mix["documents"] == 12 and mix["augmented_doc_fraction"] == 1
    stages = json.loads((run_dir / "report/summary.json").read_text())["stages"]
    for stage in ("world", "evaluate", "tune", "magpie"):
        assert stages[stage] == "skipped: not configured", stage
    for stage in ("ingest", "synthesize", "cook", "mix", "tokenize", "pretrain"):
        assert stages[stage] == "done", stage

    manifests = {d: (run_dir / d / "_manifest.json").stat().st_mtime_ns for d in STAGE_DIRS}
    again = run_cli("run", "--config", "u.yaml", cwd=tmp_path)
    assert again.stdout.count("already complete") == 3  # ingest, mine, cook say so
    assert "pretrain (vanilla): reused" in again.stdout
    assert {d: (run_dir / d / "_manifest.json").stat().st_mtime_ns for d in STAGE_DIRS} == (
        manifests
    )


def corpus_config(**extra) -> dict:
    return {"corpus": {"input": ["docs.jsonl"]}, **extra}


def test_a_corpus_defaults_to_the_miner_without_the_world_only_biography_family():
    cfg = RunConfig.model_validate(corpus_config())
    assert cfg.mining and "biography" not in cfg.synthesize["miner"]["families"]
    assert cfg.evaluate is None and cfg.tune is None and cfg.run_variants == ("vanilla", "instruct")
    with_data = corpus_config(corpus={"input": ["d"], "general": ["g"], "tune": ["t"]})
    cfg = RunConfig.model_validate(with_data)
    assert cfg.run_variants == ("vanilla", "mix", "instruct") and cfg.tune is not None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"variants": ["vanilla", "mix"]}, "corpus.general"),
        ({"evaluate": {"tasks": ["world_probe_mc"]}}, "needs the world"),
        ({"tune": {"template": "qa"}}, "corpus.tune"),
        ({"synthesize": {"engine": "hf"}}, "synthesize.model"),
    ],
)
def test_what_a_corpus_cannot_do_without_the_world_fails_before_any_work(extra, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.model_validate(corpus_config(**extra))


def test_the_demo_config_writes_neither_corpus_nor_variants():
    dumped = RunConfig().model_dump(mode="json")
    assert "corpus" not in dumped and "variants" not in dumped
    assert list(dumped)[:4] == ["name", "runs_root", "until", "world"]


def test_user_files_go_through_ingest_settings_of_the_run(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"doc_id": "a", "content": "x"}])
    cfg = RunConfig.model_validate(
        {**corpus_config(), "ingest": {"text_field": "content", "id_field": "doc_id"}}
    )
    icfg = cfg.ingest_config(["d.jsonl"])
    assert icfg.input == ["d.jsonl"] and icfg.text_field == "content"
