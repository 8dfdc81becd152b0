"""Configs fail before work with the key and file named; flags beat the file."""

from __future__ import annotations

import pytest
import yaml

from instructpt.cli.options import given
from instructpt.core.config import dump_config, load_config
from instructpt.corpus.config import IngestConfig
from instructpt.errors import ConfigError
from instructpt.run_config import RunConfig
from instructpt.train.config import TrainSynthesizerConfig
from instructpt.world.config import WorldConfig
from tests.conftest import REPO


def test_unknown_key_names_file_and_suggests(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: [a.jsonl]\nnum_shard: 4\n")
    with pytest.raises(ConfigError) as info:
        load_config(IngestConfig, path)
    msg = str(info.value)
    assert str(path) in msg and "num_shard: unknown key (did you mean 'num_shards'?)" in msg


def test_ill_typed_value_names_key_and_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: [a.jsonl]\nnum_shards: many\non_error: explode\n")
    with pytest.raises(ConfigError) as info:
        load_config(IngestConfig, path)
    msg = str(info.value)
    assert "num_shards:" in msg and "'many'" in msg
    assert "on_error:" in msg and "'explode'" in msg


def test_missing_required_key_and_non_mapping_file(tmp_path):
    with pytest.raises(ConfigError, match="input: Field required"):
        load_config(IngestConfig, None, {})
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(IngestConfig, path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(IngestConfig, bad)


def test_flags_override_file_including_false_over_true(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("input: [a.jsonl]\nnum_shards: 4\nprogress: true\n")
    flags = {"num_shards": 9, "progress": False, "text_field": None, "input": ()}
    cfg = load_config(IngestConfig, path, given(flags, IngestConfig))
    assert cfg.num_shards == 9 and cfg.progress is False and cfg.input == ["a.jsonl"]


def test_cross_field_rules_are_checked():
    with pytest.raises(ConfigError, match="synth_train_fraction \\+ probe_fraction"):
        load_config(WorldConfig, None, {"synth_train_fraction": 0.6, "probe_fraction": 0.5})


def test_config_hash_ignores_runtime_fields_only():
    a = IngestConfig(input=["x"], num_workers=1)
    assert a.config_hash() == IngestConfig(input=["x"], num_workers=4, progress=False).config_hash()
    assert a.config_hash() != IngestConfig(input=["x"], num_shards=3).config_hash()


def test_run_config_rejects_a_typo_in_the_ingest_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ingest:\n  num_shardz: 3\n")
    with pytest.raises(ConfigError, match="num_shardz: unknown key \\(did you mean 'num_shards'"):
        load_config(RunConfig, path)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    data = yaml.safe_load(path.read_text())
    if "world" in data or "ingest" in data or "name" in data:
        model = RunConfig
    elif "rows_paths" in data:  # a train-synthesizer config (configs/synthesizer-*.yaml)
        model = TrainSynthesizerConfig
    else:
        model = IngestConfig
    load_config(model, path)


def test_quick_run_config_is_valid_and_a_file_still_overrides_it():
    from instructpt.core.config import build_config, merge_values
    from instructpt.run_config import QUICK_RUN, RunConfig

    quick = build_config(RunConfig, merge_values(QUICK_RUN, {}))
    assert quick.name == "quick" and quick.world.num_people == 40
    assert quick.pretrain["model"] == {"preset": "demo-llama"}  # demo keys kept, epochs cut
    assert quick.pretrain["epochs"] < RunConfig().pretrain["epochs"]
    mine = build_config(RunConfig, merge_values(QUICK_RUN, {"world": {"num_people": 50}}))
    assert mine.world.num_people == 50 and mine.world.num_cities == 6


def test_run_config_compare_round_trips_and_is_left_out_of_the_config_when_unset(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("name: demo-lm\ncompare: [runs/demo]\n")
    cfg = load_config(RunConfig, path)
    assert cfg.compare == ["runs/demo"]
    dump_config(cfg, tmp_path / "resolved.yaml")
    resolved = yaml.safe_load((tmp_path / "resolved.yaml").read_text())
    assert resolved["compare"] == ["runs/demo"]
    assert load_config(RunConfig, tmp_path / "resolved.yaml") == cfg
    # unset (the demo's, and every config before `compare` existed): no key at all
    assert "compare" not in RunConfig().model_dump(mode="json")
    demo = load_config(RunConfig, REPO / "configs/demo.yaml")
    assert demo.compare == [] and "compare" not in demo.model_dump(mode="json")


@pytest.mark.parametrize(
    ("compare", "message"),
    [
        ("[' ']", "compare: Value error, each entry is a run directory"),
        ("[runs/demo, runs/demo]", "names runs/demo more than once"),
        ("[runs/demo-lm/]", "runs/demo-lm is this run itself"),
        ("runs/demo", "compare: Input should be a valid list"),
    ],
)
def test_run_config_compare_names_other_run_directories(tmp_path, compare, message):
    path = tmp_path / "run.yaml"
    path.write_text(f"name: demo-lm\ncompare: {compare}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(RunConfig, path)


def test_a_corpus_run_cooks_in_every_template_not_the_demo_probes_one_format():
    demo = RunConfig()
    assert demo.cook["templates"] == ["pf.002", "qa.001"] and demo.world.full_names
    own = RunConfig.model_validate({"name": "own", "corpus": {"input": ["docs.jsonl"]}})
    assert own.cook == {"layouts": ["pairs_first"]}
    # a cook section the config names is kept as written
    named = {"name": "own", "corpus": {"input": ["d.jsonl"]}, "cook": {"layouts": ["reading"]}}
    assert RunConfig.model_validate(named).cook == {"layouts": ["reading"]}
