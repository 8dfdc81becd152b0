"""The filter stage: exact kept lists, stats by reason, resume to the same bytes, cook reads it."""

from __future__ import annotations

from pathlib import Path

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.stage import cook
from instructpt.core.shards import read_shard
from instructpt.filter import stage as filter_stage
from instructpt.filter.config import FilterConfig
from instructpt.filter.stage import filter_pairs
from tests.conftest import tree_bytes
from tests.filter.helpers import TEXT, kept_questions, mc, pair, read_dir, record, write_synth_dir

CFG = FilterConfig(progress=False, batch_records=2)
LONG_Q = "Which university did Mara Quill attend before she founded the Quill Glass Works company?"
OTHER_TEXT = "Harlow University is in Dunmore. Mara Quill attended Harlow University."


def shards() -> list[list[dict]]:
    """Three shards with planted bad pairs and duplicates within and across texts and shards."""
    return [
        [
            record(
                "a",
                [
                    pair("Where was Mara Quill born?", "Dunmore"),
                    pair("Where was Mara Quill born?", "Sunnyvale Beach"),  # ungrounded
                    pair("where was mara quill born", "Dunmore."),  # duplicate in text
                    pair(LONG_Q, "Harlow University"),
                    pair(LONG_Q, "Harlow University indeed"),  # near duplicate in text
                    mc("What did she study?", ["Chemistry", "Law"], "Physics"),
                ],
            ),
            record("b", [pair(LONG_Q, "Harlow University")], text=OTHER_TEXT),  # corpus dup
            record("empty", []),
        ],
        [
            record(
                "c",
                [
                    pair("In which year was Mara Quill born?", "1962"),
                    pair("Q?", "x"),  # too short
                    pair(3, "malformed"),
                ],
            ),
        ],
        [
            record(
                "d",
                [
                    pair(LONG_Q, "Harlow University, indeed"),  # near dup (J 14/15) of shard 0
                    pair("Where was Mara Quill born?", "Dunmore"),  # exact dup of shard 0
                    pair("What does the Quill Glass Works make?", "Lenses for cameras"),
                ],
            ),
        ],
    ]


EXPECTED = {
    "a": ["Where was Mara Quill born?", LONG_Q],
    "b": [],
    "empty": [],
    "c": ["In which year was Mara Quill born?"],
    "d": ["What does the Quill Glass Works make?"],
}


@pytest.fixture
def synth(tmp_path: Path) -> Path:
    return write_synth_dir(tmp_path / "synth", shards())


def test_bad_and_duplicate_pairs_are_dropped_and_counted_by_reason(synth, tmp_path):
    result = filter_pairs(CFG, synth, tmp_path / "out")
    out = read_dir(tmp_path / "out")
    assert kept_questions(out) == EXPECTED
    st = result.manifest.stats
    assert st["pairs_in"] == 13 and st["pairs_kept"] == 4
    assert {k: v for k, v in st.items() if k.startswith("dropped_")} == {
        "dropped_duplicate_in_text": 1,
        "dropped_malformed": 1,
        "dropped_mc_answer_not_option": 1,
        "dropped_near_duplicate_in_corpus": 3,
        "dropped_near_duplicate_in_text": 1,
        "dropped_too_short": 1,
        "dropped_ungrounded": 1,
    }
    assert st["read"] == st["written"] == 5 and st["texts_emptied"] == 1
    assert result.manifest.stage == "filter"
    assert (tmp_path / "out" / "stats.json").is_file()
    assert any("dropped pairs" in line for line in result.summary_lines())


def test_records_keep_every_field_and_gain_per_record_filter_stats(synth, tmp_path):
    filter_pairs(CFG, synth, tmp_path / "out")
    inputs = [r for s in shards() for r in s]
    out = read_dir(tmp_path / "out")
    assert [r["id"] for r in out] == [r["id"] for r in inputs]
    for before, after in zip(inputs, out, strict=True):
        assert set(after) == set(before)
        for key in ("text", "slot", "round", "linked", "chain", "engine", "meta"):
            assert after[key] == before[key]
        assert {k: v for k, v in after["stats"].items() if k != "filtered"} == before["stats"]
        assert all(p in before["pairs"] for p in after["pairs"])
    assert out[0]["stats"]["filtered"] == {
        "duplicate_in_text": 1,
        "mc_answer_not_option": 1,
        "near_duplicate_in_text": 1,
        "ungrounded": 1,
    }
    assert out[2]["stats"]["filtered"] == {}


def test_output_is_deterministic_and_independent_of_batch_size(synth, tmp_path):
    filter_pairs(CFG, synth, tmp_path / "one")
    filter_pairs(CFG, synth, tmp_path / "two")
    filter_pairs(CFG.model_copy(update={"batch_records": 1000}), synth, tmp_path / "big")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "big")


def _interrupted_run(synth: Path, out: Path, monkeypatch, fail_at_call: int) -> None:
    real = filter_stage.filter_records
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == fail_at_call:
            raise KeyboardInterrupt("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(filter_stage, "filter_records", failing)
    with pytest.raises(KeyboardInterrupt):
        filter_pairs(CFG, synth, out)
    monkeypatch.setattr(filter_stage, "filter_records", real)


def test_a_kill_before_the_last_shard_resumes_to_the_same_bytes(synth, tmp_path, monkeypatch):
    filter_pairs(CFG, synth, tmp_path / "clean")
    out = tmp_path / "out"
    _interrupted_run(synth, out, monkeypatch, fail_at_call=3)
    assert not (out / "_manifest.json").exists()
    assert sorted(p.name for p in out.glob("shard-*")) == [
        "shard-00000.jsonl.zst",
        "shard-00001.jsonl.zst",
    ]
    result = filter_pairs(CFG, synth, out)
    assert tree_bytes(out) == tree_bytes(tmp_path / "clean")
    # the cross-shard duplicates of the last shard were caught from the replayed index
    assert result.manifest.stats["dropped_near_duplicate_in_corpus"] == 3


def test_a_missing_middle_shard_redoes_every_shard_after_it(synth, tmp_path, monkeypatch):
    filter_pairs(CFG, synth, tmp_path / "clean")
    out = tmp_path / "out"
    _interrupted_run(synth, out, monkeypatch, fail_at_call=3)
    (out / "shard-00000.jsonl.zst").unlink()  # the first shard's output is lost
    filter_pairs(CFG, synth, out)
    assert tree_bytes(out) == tree_bytes(tmp_path / "clean")


def test_a_finished_run_is_not_redone_and_a_changed_eval_set_refuses_resume(synth, tmp_path):
    from instructpt.errors import ResumeError

    (tmp_path / "eval.txt").write_text("nothing like the pairs at all in this file\n")
    cfg = CFG.model_copy(update={"eval_files": [str(tmp_path / "eval.txt")]})
    filter_pairs(cfg, synth, tmp_path / "out")
    assert filter_pairs(cfg, synth, tmp_path / "out").already_done
    (tmp_path / "eval.txt").write_text("a different evaluation set with other words in it\n")
    with pytest.raises(ResumeError, match="input of stage 'filter' changed"):
        filter_pairs(cfg, synth, tmp_path / "out")


def test_cook_reads_the_filtered_stage(synth, tmp_path):
    filter_pairs(CFG, synth, tmp_path / "filtered")
    result = cook(CookConfig(progress=False), tmp_path / "filtered", tmp_path / "cooked")
    assert result.manifest.stats["read"] == 5
    assert result.manifest.stats["pairs_in"] == 4
    cooked = [r for p in sorted((tmp_path / "cooked").glob("shard-*")) for r in read_shard(p)]
    assert "Dunmore" in cooked[0]["text"] and TEXT[:20] in cooked[0]["text"]
