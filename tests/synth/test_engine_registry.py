"""The engine registry: a new engine is one file plus one registry row, nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.core.config import build_config
from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import ConfigError
from instructpt.magpie.config import MagpieConfig
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.base import EngineError
from instructpt.synth.engines.options import EngineOptions
from instructpt.synth.engines.registry import (
    ENGINES,
    EngineSpec,
    build_engine,
    engine_spec,
    preferred_batch,
    register_engine,
)
from instructpt.synth.stage import synthesize
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import tree_bytes
from tests.synth.toy_engine import ToyEngine, ToyOptions

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(8)) + "." for i in range(200)]
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts)


@pytest.fixture
def toy():
    """The recipe's one registry row, removed again after the test."""
    register_engine("toy", EngineSpec("tests.synth.toy_engine", "ToyEngine", ToyOptions))
    ToyEngine.calls.clear()
    yield
    del ENGINES["toy"]


def _corpus(tmp_path: Path, texts: list[str]) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    ingest(IngestConfig(input=[str(path)], num_shards=2, progress=False), tmp_path / "corpus")
    return tmp_path / "corpus"


def test_a_registered_engine_runs_synthesize_end_to_end_with_its_own_batches(
    toy, tmp_path, tiny_model
):
    texts = [f"{w.capitalize()} is word number {i}." for i, w in enumerate(WORDS)]
    corpus = _corpus(tmp_path, texts)
    cfg = SynthesizeConfig(
        engine="toy",
        model=str(tiny_model),
        engine_options={"batch": 3, "prefix": "Q"},
        num_rounds=2,
        progress=False,
    )
    result = synthesize(cfg, corpus, tmp_path / "synth", tmp_path / "cache.sqlite")

    recs = {r["id"]: r for s in sorted((tmp_path / "synth").glob("shard-*")) for r in read_shard(s)}
    assert set(recs) == {f"d{i}" for i in range(len(texts))}
    assert recs["d2"]["pairs"] == [{"question": "Q: first word?", "answer": "Gamma"}]
    assert result.manifest.stats["engine"]["name"] == "toy"
    # The loop batches by the engine's own preference (3), not hf's 16 or vllm's 1024.
    assert ToyEngine.calls and max(ToyEngine.calls) == 3
    assert result.requests_sent == len(texts)

    # Resume from the replay cache: nothing is sent again and the bytes are the same.
    before = tree_bytes(tmp_path / "synth")
    ToyEngine.calls.clear()
    again = synthesize(cfg, corpus, tmp_path / "synth", tmp_path / "cache.sqlite", overwrite=True)
    assert ToyEngine.calls == [] and again.requests_sent == 0
    assert tree_bytes(tmp_path / "synth") == before


def test_registered_engine_options_are_validated_by_its_own_model(toy):
    with pytest.raises(ConfigError, match="batch"):
        build_config(
            SynthesizeConfig, {"engine": "toy", "model": "m", "engine_options": {"batch": 0}}
        )
    cfg = MagpieConfig(engine="toy", model="m", engine_options={"batch": 5})
    assert preferred_batch(cfg) == 5
    assert isinstance(build_engine(cfg.engine_config()), ToyEngine)


def test_unknown_engine_name_fails_at_config_time_with_did_you_mean():
    with pytest.raises(ConfigError, match=r"engine 'vlm' is unknown \(did you mean 'vllm'\?\)"):
        build_config(SynthesizeConfig, {"engine": "vlm", "model": "m"})
    with pytest.raises(ConfigError, match=r"did you mean 'miner'"):
        build_config(SynthesizeConfig, {"engine": "minr"})
    magpie_choices = r"did you mean 'hf'.*choose one of hf, openai, vllm \(got"  # no miner
    with pytest.raises(ConfigError, match=magpie_choices):
        build_config(MagpieConfig, {"engine": "hff", "model": "m"})
    with pytest.raises(ConfigError, match="did you mean 'openai'"):
        engine_spec("opneai")


def test_builtin_engines_keep_their_sections_and_reject_engine_options():
    with pytest.raises(ConfigError, match="under `hf:`"):
        build_config(SynthesizeConfig, {"model": "m", "engine_options": {"batch_size": 2}})
    # Configs of the built-in engines dump (and hash) as before engine_options existed.
    assert "engine_options" not in SynthesizeConfig(model="m").model_dump()
    assert "engine_options" not in MagpieConfig(model="m").model_dump()


def test_builtin_batches_come_from_each_engines_options():
    assert preferred_batch(SynthesizeConfig(model="m", hf={"batch_size": 7})) == 7
    assert (
        preferred_batch(SynthesizeConfig(engine="openai", model="m", openai={"concurrency": 4}))
        == 64
    )
    assert preferred_batch(SynthesizeConfig(engine="vllm", model="m")) == 1024


def test_options_without_a_batch_preference_fail_instead_of_falling_back():
    class Forgetful(EngineOptions):
        pass

    with pytest.raises(NotImplementedError, match="Forgetful must define preferred_batch"):
        Forgetful().preferred_batch()


def test_a_missing_optional_dependency_names_the_pip_extra():
    spec = EngineSpec("instructpt_no_such_backend", "Engine", ToyOptions, pip_extra="nosuch")
    with pytest.raises(EngineError, match=r"pip install 'instructpt\[nosuch\]'"):
        spec.load()


def test_a_name_cannot_be_registered_twice():
    with pytest.raises(ConfigError, match="already registered"):
        register_engine("hf", ENGINES["hf"])
