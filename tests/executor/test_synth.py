"""`synthesize --executor ray`: engine replicas as Ray actors, same records as a local run.

The HF engine with a tiny random model runs in CPU actors and must give the
local run's shards byte for byte. Multi-round M-shot synthesis is checked
with the scripted engine (it always yields pairs, so texts really are linked
to the earlier texts of their slot). A replica whose process dies mid-shard
is restarted by Ray and the shard redone, without losing or duplicating a
record. The vLLM path is the same actors with GPUs; it runs where vLLM and a
GPU are, and is skipped elsewhere.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path

import pytest

from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.ray_synth import default_replicas, engine_resources
from instructpt.synth.stage import synthesize
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import tree_bytes
from tests.synth.scripted_engine import ScriptedEngine
from tests.synth.test_stage import WORDS


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)) + "." for i in range(200)]
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("synth-corpus")
    texts = [f"{w.capitalize()} is word number {i}. It follows {WORDS[i - 1]}." for i, w in
             enumerate(WORDS)]  # fmt: skip
    docs = tmp / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in
                            enumerate(texts)))  # fmt: skip
    ingest(IngestConfig(input=[str(docs)], num_shards=3, progress=False), tmp / "corpus")
    return tmp / "corpus"


def _files(folder: Path) -> dict[str, bytes]:
    return {**tree_bytes(folder), **tree_bytes(folder, "_manifest.json")}


def _records(folder: Path) -> list[dict]:
    return [r for s in sorted(folder.glob("shard-*")) for r in read_shard(s)]


def scripted(cfg: SynthesizeConfig) -> ScriptedEngine:
    return ScriptedEngine()


class _DyingEngine(ScriptedEngine):
    """Scripted answers; the first engine ever to generate kills its own process."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def generate(self, prompts, params, on_result=None):
        if not os.path.exists(self.marker):
            Path(self.marker).touch()
            os._exit(1)
        return super().generate(prompts, params, on_result)


def dying(cfg: SynthesizeConfig, *, marker: str) -> ScriptedEngine:
    return _DyingEngine(marker)


def _run(tmp: Path, corpus: Path, cfg: SynthesizeConfig, executor=None, factory=None):
    kwargs = {"engine_factory": factory} if factory is not None else {}
    return synthesize(cfg, corpus, tmp / "synth", tmp / "cache.sqlite", executor=executor, **kwargs)


def test_hf_engine_in_cpu_actors_writes_the_local_shards(
    tmp_path, corpus, tiny_model, ray_executor
):
    cfg = SynthesizeConfig(
        engine="hf", model=str(tiny_model), num_rounds=2, max_new_tokens=12,
        hf={"device": "cpu", "batch_size": 4}, progress=False,
    )  # fmt: skip
    local = _run(tmp_path / "local", corpus, cfg)
    on_ray = _run(tmp_path / "ray", corpus, cfg, ray_executor)
    assert on_ray.requests_sent == local.requests_sent == len(WORDS)  # own caches: all sent
    assert _files(tmp_path / "ray" / "synth") == _files(tmp_path / "local" / "synth")


def test_multi_round_slots_keep_their_order_across_rounds(
    tmp_path, corpus, tiny_model, ray_executor
):
    cfg = SynthesizeConfig(engine="hf", model=str(tiny_model), num_rounds=3, progress=False)
    _run(tmp_path / "local", corpus, cfg, factory=scripted)
    result = _run(tmp_path / "ray", corpus, cfg, ray_executor, factory=scripted)
    assert result.manifest.stats["linked_fraction"] > 0.3  # rounds 1 and 2 show earlier texts
    records = _records(tmp_path / "ray" / "synth")
    rounds = {r["id"]: (r["slot"], r["round"]) for r in records}
    for rec in records:
        if rec["linked"]:  # each example shown is an earlier round of the same slot, in order
            shown = [rounds[i] for i in rec["chain"]]
            assert [s for s, _ in shown] == [rec["slot"]] * len(shown)
            assert [r for _, r in shown] == list(range(rec["round"] - len(shown), rec["round"]))
    assert _files(tmp_path / "ray" / "synth") == _files(tmp_path / "local" / "synth")


@pytest.mark.slow
@pytest.mark.ci  # a replica restart reloads its engine: ~35 s on a loaded 2-core machine
def test_a_killed_engine_replica_loses_and_duplicates_nothing(
    tmp_path, corpus, tiny_model, ray_executor
):
    cfg = SynthesizeConfig(engine="hf", model=str(tiny_model), num_rounds=2, progress=False)
    _run(tmp_path / "local", corpus, cfg, factory=scripted)
    marker = tmp_path / "killed-once"
    factory = functools.partial(dying, marker=str(marker))
    result = _run(tmp_path / "ray", corpus, cfg, ray_executor, factory=factory)
    assert marker.exists()  # a replica really died and was restarted
    ids = [r["id"] for r in _records(tmp_path / "ray" / "synth")]
    assert len(ids) == len(set(ids)) == result.manifest.num_records == len(WORDS)
    assert _files(tmp_path / "ray" / "synth") == _files(tmp_path / "local" / "synth")


def test_engine_replicas_get_gpus_for_vllm_and_cpus_for_hf():
    cpu_only = {"CPU": 16.0}
    gpus = {"CPU": 64.0, "GPU": 8.0}
    vllm = SynthesizeConfig(engine="vllm", model="m", vllm={"tensor_parallel_size": 2})
    hf = SynthesizeConfig(engine="hf", model="m")
    openai = SynthesizeConfig(engine="openai", model="m")
    assert engine_resources(vllm, gpus) == {"num_cpus": 1, "num_gpus": 2}
    assert default_replicas(vllm, engine_resources(vllm, gpus), gpus) == 4
    assert engine_resources(hf, cpu_only) == {"num_cpus": 1}
    assert default_replicas(hf, engine_resources(hf, cpu_only), cpu_only) == 16
    assert engine_resources(hf, gpus) == {"num_cpus": 1, "num_gpus": 1}
    assert default_replicas(openai, engine_resources(openai, gpus), gpus) == 1


def _has_vllm_and_gpu() -> bool:
    if importlib.util.find_spec("vllm") is None or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
@pytest.mark.skipif(not _has_vllm_and_gpu(), reason="needs vLLM and a CUDA GPU")
def test_vllm_replicas_on_gpus_write_the_local_shards(tmp_path, corpus, tiny_model, ray_executor):
    cfg = SynthesizeConfig(
        engine="vllm", model=str(tiny_model), num_rounds=2, max_new_tokens=12, progress=False,
        vllm={"enforce_eager": True, "gpu_memory_utilization": 0.3},
    )  # fmt: skip
    _run(tmp_path / "local", corpus, cfg)
    _run(tmp_path / "ray", corpus, cfg, ray_executor)
    assert _files(tmp_path / "ray" / "synth") == _files(tmp_path / "local" / "synth")
