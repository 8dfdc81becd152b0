"""The mine stage: a drop-in for synthesize's output, cooked unchanged, worker-independent."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.stage import cook
from instructpt.core.manifest import read_manifest
from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.mine import MineConfig, mine, mine_text
from instructpt.synth.format import FORMAT_VERSION
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig
from tests.conftest import tree_bytes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "paragraphs.jsonl"
SMALL_WORLD = WorldConfig(
    seed=7, num_people=30, num_countries=3, num_cities=6, num_universities=3, num_companies=4
)
SYNTH_RECORD_KEYS = [
    "id",
    "text",
    "pairs",
    "slot",
    "round",
    "linked",
    "chain",
    "engine",
    "stats",
    "meta",
]


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(build_world(SMALL_WORLD), out)
    return out


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, world_dir) -> Path:
    """Fixture paragraphs, the small world's texts and two edge cases, in 3 shards."""
    tmp = tmp_path_factory.mktemp("corpus")
    edge = [
        {"id": "edge-tags", "text": "A <QUE> tag. As a result, the parser split the text wrongly."},
        {"id": "edge-short", "text": "Ok."},
    ]
    (tmp / "edge.jsonl").write_text("".join(json.dumps(r) + "\n" for r in edge), "utf-8")
    inputs = [str(FIXTURES), str(world_dir / "documents.jsonl"), str(tmp / "edge.jsonl")]
    ingest(IngestConfig(input=inputs, num_shards=3, progress=False), tmp / "corpus")
    return tmp / "corpus"


def _records(folder: Path) -> list[dict]:
    return [r for s in read_manifest(folder).shards for r in read_shard(folder / s.file)]


def test_records_have_exactly_the_synthesize_fields(corpus_dir, tmp_path):
    result = mine(MineConfig(num_workers=1, progress=False), corpus_dir, tmp_path / "synth")
    records = _records(tmp_path / "synth")
    assert len(records) == read_manifest(corpus_dir).num_records
    for r in records:
        assert list(r) == SYNTH_RECORD_KEYS
        assert (
            r["slot"] == r["id"] and r["round"] == 0 and r["linked"] is False and r["chain"] == []
        )
        assert r["engine"]["name"] == "miner" and r["engine"]["model"] is None
        assert r["engine"]["format_version"] == FORMAT_VERSION and r["engine"]["decoding"] is None
        assert all(list(p) == ["question", "answer"] for p in r["pairs"])
        st = r["stats"]
        assert st["kept"] == len(r["pairs"]) == sum(st["by_family"].values())
        assert st["chunks"] == 1 and st["prompt_tokens"] == st["completion_tokens"] == 0
    st = result.manifest.stats
    assert result.manifest.stage == "synthesize"
    assert st["texts"] == len(records) and st["pairs"] == sum(len(r["pairs"]) for r in records)
    assert st["parse_yield"] == round(sum(bool(r["pairs"]) for r in records) / len(records), 4)
    assert sum(st["by_family"].values()) == st["pairs"] and st["by_family"]["fact"] > 0
    assert sum(st["pairs_per_text_histogram"].values()) == st["texts"]
    assert json.loads((tmp_path / "synth" / "stats.json").read_text()) == st
    assert any("mine:" in line for line in result.summary_lines())
    again = mine(MineConfig(num_workers=1, progress=False), corpus_dir, tmp_path / "synth")
    assert again.already_done and again.manifest.stats == st


def test_output_bytes_do_not_depend_on_the_worker_count(corpus_dir, tmp_path):
    one = mine(MineConfig(num_workers=1, progress=False), corpus_dir, tmp_path / "one")
    two = mine(MineConfig(num_workers=2, progress=False), corpus_dir, tmp_path / "two")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")
    assert (tmp_path / "one/_manifest.json").read_bytes() == (
        tmp_path / "two/_manifest.json"
    ).read_bytes()
    assert one.manifest.stats == two.manifest.stats


def test_cook_renders_every_mined_pair(corpus_dir, tmp_path):
    mined = mine(MineConfig(num_workers=1, progress=False), corpus_dir, tmp_path / "synth")
    cooked = cook(CookConfig(progress=False), tmp_path / "synth", tmp_path / "cooked")
    st = cooked.manifest.stats
    assert st["pairs_in"] == mined.manifest.stats["pairs"] == st["pairs_rendered"]
    assert not [k for k in st if k.startswith("dropped_")]
    assert st["written"] == mined.manifest.stats["texts"]
    assert st["outputs_instruct"] == round(mined.manifest.stats["parse_yield"] * st["written"])


def test_fact_pairs_on_the_demo_world_match_its_ground_truth(world_dir):
    gold: dict[str, dict[str, str]] = defaultdict(dict)
    for line in (world_dir / "qa.jsonl").read_text("utf-8").splitlines():
        q = json.loads(line)
        if q["kind"] == "open":
            gold[q["entity_id"]][q["attribute"]] = q["final"]
    attribute = {
        "Where was": "birth_city",
        "When was": "birth_date",
        "When did": "join_year",
        "Who employs": "employer",
        "profession": "occupation",
    }
    cfg = MineConfig(num_workers=1, families=["fact"], max_per_family=20, max_pairs=20)
    mined: dict[str, dict[str, str]] = {}
    correct = total = 0
    for line in (world_dir / "documents.jsonl").read_text("utf-8").splitlines():
        doc = json.loads(line)
        if doc["meta"]["entity_type"] != "person":
            continue
        pairs, _ = mine_text(doc["id"], doc["text"], cfg)
        mined[doc["id"]] = {p.question: p.answer for p in pairs}
        for p in pairs:
            attr = next(a for k, a in attribute.items() if k in p.question)
            total += 1
            correct += gold[doc["id"]].get(attr) == p.answer
    assert total >= 60 and correct / total >= 0.9
    # "Faebaix Dustmont entered the world in Dircrest, a Romainorra city, on 23 September 1956."
    assert mined["person-0001"]["Where was Faebaix Dustmont born?"] == "Dircrest"
    assert mined["person-0001"]["When was Faebaix Dustmont born?"] == "23 September 1956"
    assert mined["person-0001"]["What is Faebaix Dustmont's profession?"] == "pilot"
    assert mined["person-0004"]["When did Dynric join Trugredos Airways?"] == "2018"
