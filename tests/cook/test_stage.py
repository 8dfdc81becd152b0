"""The cook stage: chain grouping, every text exactly once, and the contract with synthesize."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.stage import chain_groups, cook, cook_shard
from instructpt.core.shards import read_shard
from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.format import TAGS, escape_tags
from instructpt.synth.stage import synthesize
from instructpt.synth.tiny import build_tiny_model
from tests.conftest import tree_bytes
from tests.synth.scripted_engine import ScriptedEngine

CFG = CookConfig(progress=False)
PAIR = {"question": "What is it?", "answer": "A test."}


def _rec(rid: str, chain: list[str] | None = None, pairs: list | None = None) -> dict:
    return {
        "id": rid,
        "text": f"Text {rid}.",
        "pairs": [PAIR] if pairs is None else pairs,
        "linked": bool(chain),
        "chain": chain or [],
    }


def _ids(groups) -> list[list[str]]:
    return [[r["id"] for r in g] for g in groups]


def test_linked_runs_become_one_group_each_in_order_of_their_last_record():
    records = [
        _rec("a0"),
        _rec("b0"),
        _rec("a1", ["a0"]),
        _rec("a2", ["a0", "a1"]),
        _rec("b1", ["b0"]),
        _rec("c0"),
    ]
    stats: Counter[str] = Counter()
    assert _ids(chain_groups(records, stats)) == [["a0", "a1", "a2"], ["b0", "b1"], ["c0"]]
    assert not stats


def test_a_chain_truncated_to_fit_the_context_still_keeps_every_text_once():
    # a3 was shown only a2 (older examples did not fit): the slot is still one run.
    records = [_rec("a0"), _rec("a1", ["a0"]), _rec("a2", ["a0", "a1"]), _rec("a3", ["a2"])]
    assert _ids(chain_groups(records, Counter())) == [["a0", "a1", "a2", "a3"]]


def test_malformed_links_are_counted_and_lose_no_text():
    records = [
        _rec("x", ["missing"]),
        _rec("p"),
        _rec("q", ["p"]),
        _rec("r", ["p"]),  # p claimed twice: q (first in input order) wins
        _rec("c1", ["c2"]),
        _rec("c2", ["c1"]),  # a cycle
    ]
    stats: Counter[str] = Counter()
    groups = _ids(chain_groups(records, stats))
    assert sorted(i for g in groups for i in g) == sorted(r["id"] for r in records)
    assert ["p", "q"] in groups and ["r"] in groups and ["x"] in groups
    assert stats == {"chain_missing_link": 1, "chain_conflict": 1, "chain_cycle": 2}


def test_cook_shard_writes_every_text_exactly_once_and_counts():
    records = [
        _rec("a0"),
        _rec("a1", ["a0"]),
        _rec("e", pairs=[]),
        _rec("bad", pairs=[{"question": "Q?\nOptions:\n- x\n- y", "answer": "z"}]),
    ]
    stats: Counter[str] = Counter()
    out = list(cook_shard(iter(records), stats, CFG))
    lineage = [i for o in out for i in o["lineage"]]
    assert sorted(lineage) == sorted(r["id"] for r in records)
    assert [o["id"] for o in out] == ["a1", "e", "bad"]
    assert [o["source"] for o in out] == ["instruct", "raw", "raw"]
    assert out[0]["lineage"] == ["a0", "a1"]
    assert stats["chains"] == 1 and stats["chained_texts"] == 2
    assert stats["outputs_instruct"] == 1 and stats["outputs_raw"] == 2
    assert stats["dropped_mc_answer_not_in_options"] == 1


def test_skip_leaves_out_texts_without_pairs_and_counts_them():
    cfg = CookConfig(progress=False, texts_without_pairs="skip")
    stats: Counter[str] = Counter()
    out = list(cook_shard(iter([_rec("a"), _rec("e", pairs=[])]), stats, cfg))
    assert [o["id"] for o in out] == ["a"] and stats["skipped_without_pairs"] == 1


def test_chains_off_cooks_every_record_alone():
    cfg = CookConfig(progress=False, chains=False)
    out = list(cook_shard(iter([_rec("a0"), _rec("a1", ["a0"])]), Counter(), cfg))
    assert [o["lineage"] for o in out] == [["a0"], ["a1"]]


def test_duplicate_ids_fail_loudly():
    with pytest.raises(ValueError, match="duplicate"):
        list(cook_shard(iter([_rec("a"), _rec("a")]), Counter(), CFG))


def test_config_rejects_unknown_template_set_and_families():
    with pytest.raises(ValueError, match="template set"):
        CookConfig(template_set="other/9")
    with pytest.raises(ValueError):
        CookConfig(families=["qa", "qa"])
    with pytest.raises(ValueError):
        CookConfig(layouts=["poems"])


# --------------------------------------------------------------------------- with synthesize

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    """Real synthesize output (3 rounds; 'Barren' texts yield no pairs and break chains)."""
    tmp = tmp_path_factory.mktemp("synth")
    texts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(12)) + "." for i in range(200)]
    model = build_tiny_model(tmp / "tiny", texts)
    docs = [f"{w.capitalize()} is word number {i}." for i, w in enumerate(WORDS * 2)]
    docs += ["Barren text one.", "Barren text two, <s>struck</s>.", "Fertile <CON> text."]
    path = tmp / "docs.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs))
    )
    ingest(IngestConfig(input=[str(path)], num_shards=2, progress=False), tmp / "corpus")
    cfg = SynthesizeConfig(model=str(model), progress=False, num_rounds=3)
    engine = ScriptedEngine()
    synthesize(
        cfg, tmp / "corpus", tmp / "synth", tmp / "c.sqlite", engine_factory=lambda c: engine
    )
    return tmp / "synth"


def _shards(folder: Path) -> list[dict]:
    return [r for s in sorted(folder.glob("shard-*")) for r in read_shard(s)]


def test_cook_on_synthesize_output(synth_dir, tmp_path):
    inputs = {r["id"]: r for r in _shards(synth_dir)}
    result = cook(CFG, synth_dir, tmp_path / "cooked")
    outputs = _shards(tmp_path / "cooked")
    # every input text appears in exactly one output record
    lineage = [i for o in outputs for i in o["lineage"]]
    assert sorted(lineage) == sorted(inputs)
    assert any(len(o["lineage"]) == 3 for o in outputs)  # a full 3-round chain
    for o in outputs:
        members = [inputs[i] for i in o["lineage"]]
        assert o["id"] == o["lineage"][-1]
        assert [m["round"] for m in members] == sorted(m["round"] for m in members)
        assert len({m["slot"] for m in members}) == 1
        for later in members[1:]:
            assert later["linked"] and set(later["chain"]) <= set(o["lineage"])
        assert not any(tag in o["text"] for tag in TAGS)
        assert o["source"] == ("instruct" if any(m["pairs"] for m in members) else "raw")
        for m in members:
            assert escape_tags(m["text"]) in o["text"]
            for p in m["pairs"]:
                assert p["answer"] in o["text"]
    st = result.manifest.stats
    assert st["read"] == len(inputs) and st["written"] == len(outputs)
    assert st["pairs_rendered"] == sum(len(r["pairs"]) for r in inputs.values())
    assert st["outputs_raw"] == sum(o["source"] == "raw" for o in outputs) >= 1
    assert st["texts_with_tags"] == 2
    assert (tmp_path / "cooked/stats.json").is_file()
    assert result.summary_lines()[0].startswith(f"cook: {len(outputs)} texts")
    assert cook(CFG, synth_dir, tmp_path / "cooked").already_done


def test_cooking_is_byte_identical_for_a_seed_and_differs_for_another(synth_dir, tmp_path):
    cook(CFG, synth_dir, tmp_path / "a")
    cook(CFG, synth_dir, tmp_path / "b")
    cook(CookConfig(progress=False, seed=7), synth_dir, tmp_path / "c")
    assert tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert tree_bytes(tmp_path / "a") != tree_bytes(tmp_path / "c")
