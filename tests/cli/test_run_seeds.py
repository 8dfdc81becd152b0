"""`seeds`: every variant pre-trained again per further seed, and only what a seed should change."""

from __future__ import annotations

import hashlib
import json

import pytest

from instructpt.run_config import RunConfig
from tests.conftest import run_cli

SEEDED_RUN = """\
name: seeded
variants: [vanilla, instruct]
seeds: [7]
world: {num_people: 40, num_cities: 6, num_companies: 6, num_universities: 3, num_countries: 2}
ingest: {num_shards: 2}
synthesize: {engine: miner}
tokenizer: {vocab_size: 500}
tokenize: {seq_len: 64}
pretrain: {model: {preset: tiny-llama}, micro_batch_size: 4, epochs: 1, num_threads: 1}
evaluate: {tasks: [world_probe_mc], limit: 20}
tune: null
magpie: null
"""


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_further_seed_changes_the_model_and_nothing_before_it(tmp_path):
    (tmp_path / "seeded.yaml").write_text(SEEDED_RUN)
    res = run_cli("run", "--config", "seeded.yaml", cwd=tmp_path)
    run = tmp_path / "runs/seeded"
    for v in ("vanilla", "instruct"):
        first, again = run / f"models/{v}", run / f"seeds/7/models/{v}"
        # same tokens, same steps; other weights (the seed sets init and data order)
        stats = [json.loads((d / "_manifest.json").read_text())["stats"] for d in (first, again)]
        assert (stats[0]["steps"], stats[0]["tokens"]) == (stats[1]["steps"], stats[1]["tokens"])
        weights = [_digest(d / "model/model.safetensors") for d in (first, again)]
        assert weights[0] != weights[1], v
        assert f"pretrain ({v}, seed 7):" in res.stdout
        ev = json.loads((run / f"seeds/7/eval/{v}.json").read_text())
        assert ev["results"]["world_probe_mc"]["num_samples"] == 20
    assert not (run / "seeds/7/tokens").exists()  # the seed reads the run's own tokens
    summary = json.loads((run / "report/summary.json").read_text())
    cells = summary["seeds"]["variants"]["instruct"]["mc_acc"]
    assert summary["seeds"]["seeds"] == ["run", 7] and cells["n"] == 2
    assert len(cells["values"]) == 2 and cells["sd"] is not None
    assert "Over pre-training seeds" in (run / "report/report.html").read_text()

    seed_model = run / "seeds/7/models/instruct/model/model.safetensors"
    before = (_digest(seed_model), seed_model.stat().st_mtime_ns)
    again = run_cli("run", "--config", "seeded.yaml", cwd=tmp_path)  # resumes, trains nothing
    assert "already complete" in again.stdout
    assert (_digest(seed_model), seed_model.stat().st_mtime_ns) == before


@pytest.mark.parametrize(
    ("seeds", "message"),
    [([3, 3], "more than once"), ([1234], "is pretrain.seed")],
)
def test_seeds_are_checked_on_load(seeds: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunConfig(seeds=seeds)


def test_a_config_without_seeds_writes_no_seeds_key() -> None:
    assert "seeds" not in RunConfig().model_dump()
