"""`instructpt plan`: known figures give known estimates; real runs measure real figures."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.errors import ConfigError, InputError
from instructpt.mine import MineConfig, mine_text
from instructpt.synth.config import PlanConfig, SynthesizeConfig
from instructpt.synth.plan import (
    Shape,
    Speed,
    estimate_plan,
    format_bytes,
    format_duration,
    plan,
    read_benchmark,
)
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import REPO, run_cli
from tests.synth.fault_server import FaultServer
from tests.synth.scripted_engine import ScriptedEngine

FIXTURES = REPO / "tests" / "fixtures" / "paragraphs.jsonl"


def shape(**kw) -> Shape:
    figures = dict(
        documents=10, requests=10, prompt_tokens=5000, completion_tokens=2000, pairs=40,
        texts_with_pairs=9, bytes_out=10_000, input_chars=20_000, num_rounds=2,
    )  # fmt: skip
    return Shape(**{**figures, **kw})


def speed(**kw) -> Speed:
    figures = dict(
        documents_per_s=None, prompt_tokens_per_s=1000.0, completion_tokens_per_s=400.0,
        device="gpu", devices_per_replica=2, seconds=5.0, source="test",
    )  # fmt: skip
    return Speed(**{**figures, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """The paragraphs fixture ingested into a run directory (12 documents, 2 shards)."""
    run_dir = tmp_path_factory.mktemp("run")
    ingest(IngestConfig(input=[str(FIXTURES)], num_shards=2, progress=False), run_dir / "corpus")
    return run_dir / "corpus"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    texts = [json.loads(line)["text"] for line in FIXTURES.read_text("utf-8").splitlines()]
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny", texts, hidden_size=32)


# --------------------------------------------------------------------------- arithmetic


def test_known_figures_give_known_wall_time_gpu_hours_pairs_and_size():
    # 500 prompt tokens at 1000/s and 200 generated at 400/s: 0.5 s per document either way
    est = estimate_plan(shape(), speed(), 7200, 4, price_per_device_hour=3.0)
    assert est.seconds_per_document == pytest.approx(0.5)
    assert est.wall_seconds == pytest.approx(7200 * 0.5 / 4)  # 900 s
    assert est.device_hours == pytest.approx(900 / 3600 * 4 * 2)  # 4 replicas of 2 GPUs
    assert est.cost == pytest.approx(2.0 * 3.0)
    assert est.pairs == pytest.approx(7200 * 4)
    assert est.bytes_out == pytest.approx(7200 * 1000)
    assert est.requests == pytest.approx(7200)
    assert est.prompt_tokens == pytest.approx(7200 * 500)
    assert est.completion_tokens == pytest.approx(7200 * 200)


def test_the_slower_token_rate_bounds_a_document():
    long_prompts = shape(prompt_tokens=20_000)  # 2000 per doc at 1000/s: 2 s
    assert estimate_plan(long_prompts, speed(), 1).seconds_per_document == pytest.approx(2.0)
    long_answers = shape(completion_tokens=8000)  # 800 per doc at 400/s: 2 s
    assert estimate_plan(long_answers, speed(), 1).seconds_per_document == pytest.approx(2.0)


def test_without_token_rates_documents_per_second_set_the_pace():
    miner_shape = shape(requests=0, prompt_tokens=0, completion_tokens=0)
    miner_speed = speed(
        documents_per_s=250.0,
        prompt_tokens_per_s=0.0,
        completion_tokens_per_s=0.0,
        device="cpu-core",
        devices_per_replica=1,
    )
    est = estimate_plan(miner_shape, miner_speed, 1_000_000, 8, scaling_efficiency=0.8)
    assert est.wall_seconds == pytest.approx(1_000_000 / 250 / (8 * 0.8))  # 625 s
    assert est.device_hours == pytest.approx(625 / 3600 * 8)
    assert est.device == "cpu-core" and est.cost is None


def test_devices_per_replica_override_scales_device_hours_not_wall_time():
    base = estimate_plan(shape(), speed(), 3600, 1)
    tp4 = estimate_plan(shape(), speed(), 3600, 1, devices_per_replica=4)
    assert tp4.wall_seconds == base.wall_seconds
    assert tp4.device_hours == pytest.approx(base.device_hours * 2)


def test_figures_with_nothing_to_convert_are_an_error_not_a_division_by_zero():
    with pytest.raises(InputError, match="nothing to estimate from"):
        estimate_plan(shape(prompt_tokens=0, completion_tokens=0), speed(), 10)


def test_table_units_read_naturally():
    assert format_duration(42) == "42.0 s"
    assert format_duration(90) == "1.5 min"
    assert format_duration(2 * 3600 + 17 * 60) == "2 h 17 min"
    assert format_duration(10 * 86400) == "10.0 days"
    assert format_bytes(464) == "464 B"
    assert format_bytes(464_500_000) == "464.5 MB"


# --------------------------------------------------------------------------- measured runs


def test_measured_miner_run_counts_the_miners_pairs_and_plans_the_whole_corpus(corpus, tmp_path):
    out = tmp_path / "plan.json"
    result = plan(PlanConfig(num_replicas=4), corpus, out)
    docs = [json.loads(line) for line in FIXTURES.read_text("utf-8").splitlines()]
    expected_pairs = sum(len(mine_text(d["id"], d["text"], MineConfig())[0]) for d in docs)
    sh, est = result.shape, result.estimate
    assert sh.documents == 12 and sh.pairs == expected_pairs
    assert sh.requests == sh.prompt_tokens == sh.completion_tokens == 0
    assert sh.bytes_out > sh.input_chars // 4  # zstd shards of texts plus their pairs
    assert est.num_documents == 12  # the whole corpus, from its manifest
    assert est.pairs == pytest.approx(expected_pairs)
    assert result.speed.device == "cpu-core" and result.speed.documents_per_s > 0
    saved = orjson.loads(out.read_bytes())
    assert saved["measurement"]["pairs"] == expected_pairs
    assert saved["estimate"]["wall_seconds"] == pytest.approx(est.wall_seconds)
    assert saved["config"]["num_replicas"] == 4
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically


def test_measured_hf_run_on_a_tiny_model_counts_tokens_of_both_rounds(corpus, tiny_model, tmp_path):
    cfg = PlanConfig(
        synthesize=SynthesizeConfig(
            engine="hf", model=str(tiny_model), max_new_tokens=8, num_rounds=2,
            hf={"device": "cpu", "batch_size": 4},
        ),
        num_sample_documents=4,
        num_documents=1000,
    )  # fmt: skip
    result = plan(cfg, corpus, tmp_path / "plan.json")
    sh, sp = result.shape, result.speed
    assert sh.documents == 4 and sh.requests == 4 and sh.num_rounds == 2
    assert 0 < sh.completion_tokens <= 4 * 8
    assert sh.prompt_tokens > sh.input_chars // 10  # the texts themselves are in the prompts
    # shape and speed from one run: the time model gives back seconds / documents
    assert sp.seconds > 0
    assert result.estimate.seconds_per_document == pytest.approx(sp.seconds / 4)
    assert result.estimate.wall_seconds == pytest.approx(1000 * sp.seconds / 4)
    assert sp.device == "cpu-core"


def test_pairs_per_document_come_from_parsing_the_completions(corpus, tiny_model, tmp_path):
    # the scripted engine answers two well-formed pairs and one cut-off piece per text
    cfg = PlanConfig(
        synthesize=SynthesizeConfig(engine="hf", model=str(tiny_model), num_rounds=2),
        num_sample_documents=6,
    )
    result = plan(cfg, corpus, tmp_path / "plan.json", engine_factory=lambda c: ScriptedEngine())
    assert result.shape.pairs == 12 and result.shape.texts_with_pairs == 6
    assert result.estimate.pairs == pytest.approx(2 * 12)  # 12 documents in the corpus


def test_each_openai_endpoint_counts_as_one_replica(corpus, tiny_model, tmp_path):
    with FaultServer(latency_s=0.1) as a, FaultServer(latency_s=0.1) as b:
        openai = {"base_urls": [a.url, b.url], "served_model_name": "tiny", "concurrency": 4}
        cfg = PlanConfig(
            synthesize=SynthesizeConfig(
                engine="openai", model=str(tiny_model), num_rounds=1, openai=openai
            ),
            num_sample_documents=4,
        )
        result = plan(cfg, corpus, tmp_path / "plan.json")
    assert result.shape.requests == 4 and result.shape.completion_tokens > 0
    assert result.speed.device == "gpu" and result.speed.devices_per_replica == 1
    # the four requests ran at once, 0.1 s each, spread over two endpoints: one endpoint
    # alone is credited with twice the engine time
    assert result.speed.seconds >= 2 * 0.1


def test_a_sample_of_raw_input_files_needs_a_document_count(tmp_path):
    cfg = PlanConfig(input=[str(FIXTURES)], num_sample_documents=5)
    with pytest.raises(ConfigError, match="--num-documents"):
        plan(cfg, None, tmp_path / "plan.json")
    cfg = PlanConfig(input=[str(FIXTURES)], num_sample_documents=5, num_documents=10**6)
    result = plan(cfg, None, tmp_path / "plan.json")
    assert result.shape.documents == 5 and result.estimate.num_documents == 10**6


# --------------------------------------------------------------------------- --from-benchmark


def test_a_previous_plan_json_replans_without_measuring(corpus, tmp_path, monkeypatch):
    first = plan(PlanConfig(), corpus, tmp_path / "first.json")
    import instructpt.synth.plan as plan_module

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(plan_module, "measure", no_measuring)
    cfg = PlanConfig(from_benchmark=str(tmp_path / "first.json"), num_documents=12_000)
    again = plan(cfg, None, tmp_path / "second.json")
    assert again.shape.pairs == first.shape.pairs
    assert again.estimate.pairs == pytest.approx(first.estimate.pairs * 1000)
    assert again.estimate.wall_seconds == pytest.approx(first.estimate.wall_seconds * 1000)
    assert again.engine == "miner"


def test_gpu_token_rates_combine_with_a_shape_measured_here(corpus, tiny_model, tmp_path):
    # the fields and figures of benchmarks/vllm_engine.py's overhead row (RESULTS.md)
    bench = tmp_path / "vllm.json"
    bench.write_text(
        json.dumps({"prompts": 128, "prompt_tokens": 42000, "new_tokens": 8192, "wall_s": 8.69})
    )
    cfg = PlanConfig(
        synthesize=SynthesizeConfig(engine="hf", model=str(tiny_model), hf={"device": "cpu"}),
        num_sample_documents=4,
        num_replicas=8,
        from_benchmark=str(bench),
    )
    # the shape is measured here (scripted completions, real tokenizer), the speed is the file's
    result = plan(cfg, corpus, tmp_path / "plan.json", engine_factory=lambda c: ScriptedEngine())
    assert result.shape.prompt_tokens > 0 and result.shape.completion_tokens > 0
    sh, sp = result.shape, result.speed
    assert sp.prompt_tokens_per_s == pytest.approx(42000 / 8.69)
    assert sp.completion_tokens_per_s == pytest.approx(8192 / 8.69)
    assert sp.device == "gpu"
    per_doc = max(sh.prompt_tokens / 4 / (42000 / 8.69), sh.completion_tokens / 4 / (8192 / 8.69))
    assert result.estimate.seconds_per_document == pytest.approx(per_doc)
    assert result.estimate.wall_seconds == pytest.approx(12 * per_doc / 8)
    saved = orjson.loads((tmp_path / "plan.json").read_bytes())["measurement"]
    assert saved["speed_source"] == str(bench) and saved["measured_here"]["device"] == "cpu-core"


def test_benchmark_with_several_replicas_divides_their_rates(tmp_path):
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps({"documents": 400, "seconds": 10, "replicas": 4}))
    sp, sh, _ = read_benchmark(bench)
    assert sp.documents_per_s == pytest.approx(10.0) and sh is None


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "one JSON object"),
        ('{"pairs": 3}', "gives no speed"),
        ('{"seconds": 0, "new_tokens": 5}', "'seconds' must be > 0"),
        ('{"seconds": 2, "new_tokens": "many"}', "'completion_tokens' must be a number"),
        ('{"seconds": 2, "new_tokens": 5, "device": "tpu"}', "'device' must be"),
    ],
)
def test_bad_benchmark_files_say_what_is_wrong(tmp_path, content, message):
    bench = tmp_path / "b.json"
    bench.write_text(content)
    with pytest.raises(InputError, match=message):
        read_benchmark(bench)


def test_missing_benchmark_file_and_missing_corpus_are_clear(tmp_path):
    with pytest.raises(InputError, match="benchmark file not found"):
        read_benchmark(tmp_path / "nope.json")
    with pytest.raises(InputError, match="no finished ingest stage"):
        plan(PlanConfig(num_documents=5), tmp_path / "corpus", tmp_path / "plan.json")
    speeds_only = tmp_path / "speeds.json"
    speeds_only.write_text('{"wall_s": 2, "new_tokens": 100, "prompts": 4}')
    cfg = PlanConfig(from_benchmark=str(speeds_only), num_documents=5)
    with pytest.raises(InputError, match="no per-document figures"):
        plan(cfg, tmp_path / "corpus", tmp_path / "plan.json")


def test_no_engine_and_no_model_plans_the_miner_a_model_alone_means_hf():
    assert PlanConfig().synthesize.engine == "miner"
    assert PlanConfig(synthesize={"miner": {"max_pairs": 2}}).synthesize.engine == "miner"
    assert PlanConfig(synthesize={"model": "m"}).synthesize.engine == "hf"


def test_a_sample_smaller_than_one_chain_is_refused():
    with pytest.raises(ValueError, match="num_sample_documents"):
        PlanConfig(
            synthesize=SynthesizeConfig(engine="hf", model="m", num_rounds=3),
            num_sample_documents=2,
        )


# --------------------------------------------------------------------------- CLI


def test_cli_prints_the_table_and_writes_plan_json(corpus, tmp_path):
    run_dir = corpus.parent
    out = tmp_path / "p.json"
    config = tmp_path / "plan.yaml"
    config.write_text("num_replicas: 2\nsynthesize:\n  engine: miner\n  miner: {max_pairs: 2}\n")
    res = run_cli(
        "plan", "--config", str(config), "--run-dir", str(run_dir),
        "--num-documents", "40000000", "--num-replicas", "16",
        "--price-per-device-hour", "0.04", "--out", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    assert "40,000,000 docs x 16 replicas" in res.stdout  # the flag beats the file
    for row in ("CPU core-hours", "cost", "pairs", "output size"):
        assert row in res.stdout
    saved = orjson.loads(out.read_bytes())
    assert saved["estimate"]["num_documents"] == 40_000_000
    assert saved["estimate"]["cost"] == pytest.approx(saved["estimate"]["device_hours"] * 0.04)
    assert 0 < saved["measurement"]["pairs_per_document"] <= 2  # the file's miner keys
    assert saved["config"]["synthesize"]["miner"] == {"max_pairs": 2}


def test_cli_errors_are_one_line_and_exit_2(tmp_path):
    from click.testing import CliRunner

    from instructpt.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["plan", "--run-dir", str(tmp_path / "none")])
    assert res.exit_code == 2 and "--num-documents" in res.stderr
    res = runner.invoke(
        main, ["plan", "--from-benchmark", str(tmp_path / "b.json"), "--num-documents", "10"]
    )
    assert res.exit_code == 2 and "benchmark file not found" in res.stderr
    res = runner.invoke(main, ["plan", "--num-replicas", "0", "--num-documents", "10"])
    assert res.exit_code == 2 and "num_replicas" in res.stderr
    assert "Traceback" not in res.stderr
