"""`instructpt run` with `base_model`: a user's model continued on the user's corpus.

The base is a tiny saved Llama with a real byte-level BPE (tests/assets/tiny_gguf.py),
so every part is real: its tokenizer packs the mixes, its weights start every
variant, lm-eval scores it before and after, and a rerun reuses every stage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from instructpt.core.config import load_config
from instructpt.core.tokenizers import load_tokenizer_spec
from instructpt.run_config import RunConfig
from tests.assets.tiny_gguf import build_tiny_llama
from tests.conftest import REPO, run_cli, write_jsonl

#: A corpus run continuing ./base: the miner's pairs, a few steps at a tiny lr, one local task.
BASE_RUN = """\
name: own
corpus: {input: [docs.jsonl]}
base_model: base
ingest: {num_shards: 2}
synthesize: {engine: miner, miner: {num_workers: 1, families: [title, nli, cause_effect]}}
tokenize: {seq_len: 64}
pretrain: {micro_batch_size: 4, epochs: 1, lr: 1.0e-5, num_threads: 1, log_every: 1}
evaluate: {tasks: [tiny_mc], include_path: [tasks], batch_size: 4}
"""

#: Stage folders of the run above, each finished with a manifest.
STAGE_DIRS = (
    "corpus", "synth", "cooked", "mix/vanilla", "mix/instruct",
    "tokens/vanilla", "tokens/instruct", "models/vanilla", "models/instruct",
)  # fmt: skip

#: A multiple-choice task lm-eval reads from local files (no hub).
TINY_TASK = {
    "task": "tiny_mc",
    "dataset_path": "json",
    "test_split": "test",
    "doc_to_text": "{{question}}",
    "doc_to_choice": "choices",
    "doc_to_target": "gold",
    "output_type": "multiple_choice",
    "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    "metadata": {"version": 1.0},
}
TINY_ITEMS = [
    {"question": "Paris is the capital of", "choices": ["France", "Germany"], "gold": 0},
    {"question": "Berlin is the capital of", "choices": ["France", "Germany"], "gold": 1},
    {"question": "The quick brown fox jumps over the", "choices": ["lazy dog", "moon"], "gold": 0},
    {"question": "Two plus two is", "choices": ["four", "five"], "gold": 0},
]


def write_base(folder: Path) -> Path:
    """A tiny Llama saved with save_pretrained, its BPE tokenizer beside it."""
    model, tokenizer = build_tiny_llama(seed=0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_task(folder: Path) -> Path:
    folder.mkdir(parents=True)
    write_jsonl(folder / "tiny_mc.test.jsonl", TINY_ITEMS)
    files = {"data_files": {"test": str(folder / "tiny_mc.test.jsonl")}}
    (folder / "tiny_mc.yaml").write_text(yaml.safe_dump({**TINY_TASK, "dataset_kwargs": files}))
    return folder


def weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_run_continues_a_base_model_on_a_corpus_and_resumes_complete(tmp_path):
    base = write_base(tmp_path / "base")
    write_task(tmp_path / "tasks")
    shutil.copy(REPO / "tests/fixtures/paragraphs.jsonl", tmp_path / "docs.jsonl")
    (tmp_path / "own.yaml").write_text(BASE_RUN)
    res = run_cli("run", "--config", "own.yaml", cwd=tmp_path, timeout=900)
    run_dir = tmp_path / "runs/own"

    # the tokenizer stage is skipped; the base model's tokenizer packed every variant
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "tokenizer" in summary["skipped"] and "tokenizer" not in summary["stages_run"]
    assert "tokenizer: skipped (the base model's tokenizer)" in res.stdout
    assert not (run_dir / "tokenizer").exists()
    spec = load_tokenizer_spec(base)
    for variant in ("vanilla", "instruct"):
        index = json.loads((run_dir / "tokens" / variant / "index.json").read_text())
        assert index["tokenizer_fingerprint"] == spec.fingerprint
        assert index["vocab_size"] == spec.vocab_size and index["bos_id"] == spec.bos_id
        tokens = yaml.safe_load((run_dir / "tokens" / variant / "config.yaml").read_text())
        assert tokens["tokenizer"] == "base"
    from instructpt.pack.reader import PackedTokens

    ids = PackedTokens(run_dir / "tokens/instruct").tokens(0, 10_000)
    assert 0 < ids.max() < spec.vocab_size

    # every variant starts from the base weights (a fresh init differs by ~0.02 a weight)
    # and trains on the same number of tokens
    start = weights(base)
    trained = {}
    for variant in ("vanilla", "instruct"):
        manifest = json.loads((run_dir / "models" / variant / "_manifest.json").read_text())
        trained[variant] = manifest["stats"]["tokens"]
        assert manifest["stats"]["init_from"] == "base"
        config = json.loads((run_dir / "models" / variant / "model/config.json").read_text())
        assert (config["hidden_size"], config["num_hidden_layers"]) == (32, 2)
        after = weights(run_dir / "models" / variant / "model")
        assert after.keys() == start.keys()
        drift = max((after[k] - start[k]).abs().max().item() for k in start)
        assert 0 < drift < 1e-3, variant
    assert trained["vanilla"] == trained["instruct"] > 0

    # the base model is evaluated once, untouched, beside each variant
    for name in ("base", "vanilla", "instruct"):
        result = json.loads((run_dir / "eval" / f"{name}.json").read_text())
        assert result["results"]["tiny_mc"]["num_samples"] == len(TINY_ITEMS), name
    assert "evaluate (base model):" in res.stdout

    # the report: base is the untouched model, not a trained variant missing its stages
    report = json.loads((run_dir / "report/summary.json").read_text())
    assert report["stages"]["tokenizer"] == "skipped: the base model's tokenizer"
    assert report["stages"]["pretrain"] == report["stages"]["evaluate"] == "done"
    assert set(report["training"]) == set(report["evaluation"]) == {"vanilla", "instruct"}
    assert report["base_model"]["model"] == "base"
    assert "acc" in report["base_model"]["evaluation"]["tiny_mc"]
    page = (run_dir / "report/report.html").read_text()
    assert "(before continued pre-training)" in page
    for section in ("training", "evaluation"):  # done: every variant the run trains
        assert f'<section id="{section}" data-state="done">' in page

    # the resolved config reloads as it was run
    resolved = load_config(RunConfig, run_dir / "config.yaml")
    assert resolved.base_model == "base" and resolved.tokenizer == {}

    manifests = {d: (run_dir / d / "_manifest.json").stat().st_mtime_ns for d in STAGE_DIRS}
    evals = {p.name: p.stat().st_mtime_ns for p in (run_dir / "eval").glob("*.json")}
    again = run_cli("run", "--config", "own.yaml", cwd=tmp_path, timeout=900)
    assert "pretrain (vanilla): reused" in again.stdout
    assert "pretrain (instruct): reused" in again.stdout
    assert {d: (run_dir / d / "_manifest.json").stat().st_mtime_ns for d in STAGE_DIRS} == (
        manifests
    )
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "eval").glob("*.json")} == evals


#: One variant continued long enough (~1,000 steps) to be killed between checkpoints.
KILL_RUN = """\
name: own
corpus: {input: [docs.jsonl]}
base_model: base
until: pretrain
variants: [vanilla]
ingest: {num_shards: 1}
synthesize: {engine: miner, miner: {num_workers: 1, families: [title]}}
tokenize: {seq_len: 64}
pretrain: {micro_batch_size: 4, num_tokens: 260000, lr: 1.0e-5, num_threads: 1,
           checkpoint_every: 50, log_every: 50, progress: false}
"""


@pytest.mark.slow
def test_a_continued_pretrain_killed_mid_way_resumes_from_its_checkpoint(tmp_path):
    write_base(tmp_path / "base")
    shutil.copy(REPO / "tests/fixtures/paragraphs.jsonl", tmp_path / "docs.jsonl")
    (tmp_path / "kill.yaml").write_text(KILL_RUN)
    checkpoints = tmp_path / "runs/own/models/vanilla/checkpoints"
    cmd = [sys.executable, "-m", "instructpt.cli", "run", "--config", "kill.yaml"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (checkpoints.is_dir() and any(checkpoints.glob("step-" + "[0-9]" * 8))):
        assert proc.poll() is None, f"finished before its first checkpoint: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "no checkpoint within 300 s"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "runs/own/models/vanilla/_manifest.json").exists()
    again = run_cli("run", "--config", "kill.yaml", cwd=tmp_path, timeout=600)
    assert "pretrain (vanilla): resumed at step" in again.stdout
    manifest = json.loads((tmp_path / "runs/own/models/vanilla/_manifest.json").read_text())
    assert manifest["stats"]["init_from"] == "base" and manifest["stats"]["tokens"] >= 260000


def base_config(**extra) -> dict:
    return {"corpus": {"input": ["docs.jsonl"]}, "base_model": "some/model", **extra}


def test_a_base_model_defaults_to_continued_pretraining_without_a_tokenizer_section():
    cfg = RunConfig.model_validate(base_config())
    assert cfg.tokenizer == {} and "model" not in cfg.pretrain and cfg.pretrain["lr"] < 1e-3
    dumped = cfg.model_dump(mode="json")
    assert dumped["base_model"] == "some/model"
    assert "base_model" not in RunConfig().model_dump(mode="json")  # the demo's bytes as before


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"base_model": "some/model"}, "base_model needs a corpus"),
        (base_config(pretrain={"model": {"preset": "tiny-llama"}}), r"pretrain\.model \(preset\)"),
        (base_config(pretrain={"tokenizer": "t"}), r"pretrain\.tokenizer"),
        (base_config(tokenizer={"vocab_size": 512}), "remove the tokenizer section"),
        (base_config(pretrain={"lora": {"r": 8}}), r"pretrain\.lora.*tune\.lora"),
        ({"pretrain": {"init_from": "some/model"}}, r"pretrain\.init_from.*base_model"),
    ],
)
def test_what_a_base_model_makes_meaningless_fails_naming_the_key(values, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.model_validate(values)


def test_the_own_model_config_loads_without_fetching_anything(monkeypatch, tmp_path):
    monkeypatch.setenv("INSTRUCTPT_HOME", str(tmp_path / "empty-home"))
    cfg = load_config(RunConfig, REPO / "configs/own-model.yaml")
    assert cfg.base_model == "smollm2-135m-instruct" and cfg.corpus is not None
    assert cfg.run_variants == ("vanilla", "instruct") and cfg.mining
    assert cfg.evaluate is not None and cfg.evaluate["include_path"]
    assert not (tmp_path / "empty-home").exists()
