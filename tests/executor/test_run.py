"""`instructpt run --executor ray`: the whole loop with its shard stages on Ray, same bytes."""

from __future__ import annotations

import yaml

from instructpt.core.layout import PAPER_VARIANTS
from instructpt.run import run_pipeline
from instructpt.run_config import RunConfig
from tests.conftest import tree_bytes

#: A small world, mined, cooked, mixed and packed: the stages Ray runs, and those it feeds.
RUN = """\
name: r
runs_root: runs
until: tokenize
world: {num_people: 40, num_cities: 6, num_companies: 6, num_universities: 3, num_countries: 2}
ingest: {num_shards: 4}
tokenizer: {vocab_size: 500}
tokenize: {seq_len: 64}
"""

RAY_STAGES = ("synth", "cooked", *(f"tokens/{v}" for v in PAPER_VARIANTS))


def outputs(stage_dir) -> dict[str, bytes]:
    """A stage's data files (shards, token arrays and their index), not its timings."""
    found = tree_bytes(stage_dir, "shard-*") | tree_bytes(stage_dir, "tokens-*")
    found |= tree_bytes(stage_dir, "index.json")
    assert found, f"no outputs in {stage_dir}"
    return found


def test_run_on_ray_equals_local_and_a_local_start_finishes_on_ray(
    tmp_path, monkeypatch, ray_executor
):
    cfg = RunConfig.model_validate(yaml.safe_load(RUN))
    # relative run directories, as `instructpt run` makes them: Ray gets absolute ones
    for name in ("local", "ray", "switched"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "local")
    run_pipeline(cfg, echo=lambda _line: None)
    monkeypatch.chdir(tmp_path / "ray")
    lines: list[str] = []
    run_pipeline(cfg, echo=lines.append, executor=ray_executor)
    assert any(line.startswith("mine:") for line in lines)
    for stage in RAY_STAGES:
        local, ray = (tmp_path / n / "runs/r" / stage for n in ("local", "ray"))
        assert outputs(ray) == outputs(local), stage

    # started here up to cook, finished on Ray: the configs hold the same paths
    monkeypatch.chdir(tmp_path / "switched")
    run_pipeline(cfg.model_copy(update={"until": "cook"}), echo=lambda _line: None)
    lines = []
    run_pipeline(cfg, echo=lines.append, executor=ray_executor)
    assert any("already complete" in line for line in lines if line.startswith("cook:"))
    for stage in RAY_STAGES:
        local, switched = (tmp_path / n / "runs/r" / stage for n in ("local", "switched"))
        assert outputs(switched) == outputs(local), stage
