"""Decontamination against local files and a real (local) lm-eval task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from instructpt.errors import InputError
from instructpt.evaluate.probe import GEN_TASK, MC_TASK, write_probe_tasks
from instructpt.filter.config import FilterConfig
from instructpt.filter.decontam import EvalIndex, read_eval_file, task_docs
from instructpt.filter.normalize import WordHasher, words
from instructpt.filter.stage import filter_pairs
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig
from tests.filter.helpers import kept_questions, pair, read_dir, record, write_synth_dir

SMALL = WorldConfig(
    seed=7, num_people=30, num_countries=3, num_cities=6, num_universities=3, num_companies=4
)
LEAKED = (
    "The lighthouse keeper counted forty seven ships passing the northern cape during the "
    "long winter storm of that year"
)


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("probe")
    write_world(build_world(SMALL), root / "world")
    write_probe_tasks(root / "world", root / "tasks", seed=0)
    return root / "tasks"


def _contaminated(index: EvalIndex, text: str) -> bool:
    return index.contaminated(WordHasher()(words(text)))


def test_a_shared_13_gram_contaminates_and_a_12_gram_does_not():
    index = EvalIndex.build([LEAKED], ngram=13, min_ngram=8, hasher=WordHasher())
    leaked_13 = " ".join(LEAKED.split()[3:16])
    leaked_12 = " ".join(LEAKED.split()[3:15])
    assert _contaminated(index, f"Q: what happened? A: {leaked_13.upper()}!")
    assert not _contaminated(index, f"Q: what happened? A: {leaked_12} and then rain")


def test_short_eval_docs_match_whole_or_are_ignored():
    docs = ["one two three four five six seven eight", "too short to match"]
    index = EvalIndex.build(docs, ngram=13, min_ngram=8, hasher=WordHasher())
    assert index.stats["eval_docs_matched_whole"] == 1
    assert index.stats["eval_docs_too_short"] == 1
    assert _contaminated(index, "zero one two three four five six seven eight nine")
    assert not _contaminated(index, "one two three four five six seven")
    assert not _contaminated(index, "it is too short to match anything")


def test_eval_files_are_jsonl_with_a_text_field_or_txt_lines(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "x y"}) + "\n\n" + '{"text": "z"}\n')
    (tmp_path / "b.txt").write_text("first doc\n\nsecond doc\n")
    assert read_eval_file(tmp_path / "a.jsonl") == ["x y", "z"]
    assert read_eval_file(tmp_path / "b.txt") == ["first doc", "second doc"]
    with pytest.raises(InputError, match="no string field 'prompt'"):
        read_eval_file(tmp_path / "a.jsonl", "prompt")
    with pytest.raises(InputError, match="not found"):
        read_eval_file(tmp_path / "missing.txt")


def test_lm_eval_task_docs_are_prompt_plus_target(task_dir):
    gen = [json.loads(line) for line in (task_dir / f"{GEN_TASK}.test.jsonl").open()]
    docs = task_docs([GEN_TASK], [str(task_dir)], offline=True)
    assert docs == [f"Question: {d['question']}\nAnswer: {d['answer']}" for d in gen]
    mc_items = [json.loads(line) for line in (task_dir / f"{MC_TASK}.test.jsonl").open()]
    docs = task_docs([MC_TASK], [str(task_dir)], offline=True)
    assert docs[0] == (
        f"Question: {mc_items[0]['question']}\nAnswer: "
        f"{mc_items[0]['choices'][mc_items[0]['gold']]}"
    )


def test_stage_drops_pairs_leaked_from_a_file_and_from_an_lm_eval_task(task_dir, tmp_path):
    probe = json.loads((task_dir / f"{GEN_TASK}.test.jsonl").open().readline())
    (tmp_path / "eval.txt").write_text(LEAKED + "\n")
    text = f"{probe['question']} It is {probe['answer']}. {LEAKED}."
    records = [
        record(
            "t0",
            [
                pair(probe["question"], probe["answer"]),  # the probe question, verbatim
                pair("What did the keeper count?", " ".join(LEAKED.split()[:14])),
                pair("What is the capital of Elsewhere?", probe["answer"]),
                pair("How many ships passed?", "forty seven"),
            ],
            text=text,
        )
    ]
    synth = write_synth_dir(tmp_path / "synth", [records])
    cfg = FilterConfig(
        eval_files=[str(tmp_path / "eval.txt")],
        eval_tasks=[GEN_TASK],
        eval_include_path=[str(task_dir)],
        offline=True,
        ngram=6,
        min_ngram=6,
        progress=False,
    )
    result = filter_pairs(cfg, synth, tmp_path / "out")
    assert kept_questions(read_dir(tmp_path / "out")) == {
        "t0": ["What is the capital of Elsewhere?", "How many ships passed?"]
    }
    st = result.manifest.stats
    assert st["dropped_contaminated"] == 2 and st["pairs_kept"] == 2
    assert st["eval_docs"] == 1 + sum(1 for _ in (task_dir / f"{GEN_TASK}.test.jsonl").open())


def test_a_contaminated_text_loses_all_pairs_but_is_kept(tmp_path):
    (tmp_path / "eval.jsonl").write_text(json.dumps({"text": LEAKED}) + "\n")
    clean_text = "Mara Quill was born in Dunmore."
    records = [
        record("leaky", [pair("What did the keeper count?", "ships")], text=LEAKED),
        record("clean", [pair("Where was Mara Quill born?", "Dunmore")], text=clean_text),
    ]
    synth = write_synth_dir(tmp_path / "synth", [records])
    cfg = FilterConfig(
        eval_files=[str(tmp_path / "eval.jsonl")], decontaminate_texts=True, progress=False
    )
    result = filter_pairs(cfg, synth, tmp_path / "out")
    out = read_dir(tmp_path / "out")
    assert [r["text"] for r in out] == [LEAKED, clean_text]
    assert kept_questions(out) == {"leaky": [], "clean": ["Where was Mara Quill born?"]}
    assert out[0]["stats"]["filtered"] == {"contaminated_text": 1}
    assert result.manifest.stats["texts_contaminated"] == 1
    assert result.manifest.stats["dropped_contaminated_text"] == 1
