"""Decontamination: drop pairs (and optionally empty texts) that repeat evaluation data.

Pre-training on a benchmark's questions inflates its score; the Instruction
Pre-Training paper evaluates on held-out tasks, so pairs written from a
text that quotes a benchmark (or a synthesizer that memorized one) must not
reach training. The test is word n-gram overlap, as in GPT-3 (Brown et al.
2020, app. C) and lm-eval's decontamination: an item is contaminated when it
shares one word `ngram`-gram (13 by default) with any evaluation document,
words normalized as everywhere in this package (normalize.words).

Evaluation documents come from local files (`.jsonl`: one JSON object per
line, its `text_field`; `.txt`: one document per line) and from lm-eval
tasks (each eval doc rendered as `doc_to_text(doc) + " " + target`, where the
target of a multiple-choice task is its correct choice's text). A document
shorter than `ngram` words cannot share an `ngram`-gram; it is matched whole
(its entire word sequence must occur in the item) when it has at least
`min_ngram` words, and ignored otherwise (counted as `eval_docs_too_short`),
since a very short sequence ("the answer is yes") would match everything.
Short-question tasks rendered through a prompt template ("Question: ...
Answer:") carry the template's words, which a pair does not: lower `ngram`
for them (8 is common; the tests use 5).

N-grams are stored as 64-bit hashes in one sorted numpy array (8 bytes per
n-gram); a false match needs a 64-bit collision. The index fingerprint (a
hash of the array) is folded into the stage's input fingerprint, so a
resumed run refuses a changed evaluation set.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructpt.core.jsonl import read_jsonl_objects
from instructpt.core.lm_eval_tasks import build_task_manager, offline_mode
from instructpt.errors import InputError
from instructpt.filter.normalize import WordHasher, ngram_hashes, sequence_hash, words


@dataclass
class EvalIndex:
    """Hashed n-grams of evaluation documents, and whole short documents by length."""

    ngram: int
    grams: np.ndarray  # sorted unique uint64
    short: dict[int, np.ndarray] = field(default_factory=dict)  # length -> sorted hashes
    stats: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(
        cls, docs: Iterable[str], ngram: int, min_ngram: int, hasher: WordHasher
    ) -> EvalIndex:
        chunks: list[np.ndarray] = []
        short: dict[int, set[int]] = {}
        stats: Counter[str] = Counter()
        for doc in docs:
            stats["eval_docs"] += 1
            hashes = hasher(words(doc))
            if len(hashes) >= ngram:
                chunks.append(ngram_hashes(hashes, ngram))
            elif len(hashes) >= min_ngram:
                short.setdefault(len(hashes), set()).add(sequence_hash(hashes))
                stats["eval_docs_matched_whole"] += 1
            else:
                stats["eval_docs_too_short"] += 1
        grams = np.unique(np.concatenate(chunks)) if chunks else np.empty(0, np.uint64)
        stats["eval_ngrams"] = len(grams)
        by_length = {n: np.array(sorted(s), dtype=np.uint64) for n, s in sorted(short.items())}
        return cls(ngram, grams, by_length, stats)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.ngram}".encode())
        h.update(self.grams.tobytes())
        for length, hashes in self.short.items():
            h.update(f"|{length}|".encode())
            h.update(hashes.tobytes())
        return h.hexdigest()[:16]

    def __bool__(self) -> bool:
        return bool(len(self.grams) or self.short)

    def contaminated(self, word_hashes: np.ndarray) -> bool:
        """Whether an item (its word hashes) shares an n-gram or a whole short doc."""
        if _any_in(ngram_hashes(word_hashes, self.ngram), self.grams):
            return True
        return any(
            _any_in(ngram_hashes(word_hashes, length), hashes)
            for length, hashes in self.short.items()
        )


def _any_in(values: np.ndarray, sorted_set: np.ndarray) -> bool:
    if not len(values) or not len(sorted_set):
        return False
    pos = np.searchsorted(sorted_set, values)
    pos[pos == len(sorted_set)] = 0
    return bool((sorted_set[pos] == values).any())


def read_eval_file(path: Path, text_field: str = "text") -> list[str]:
    """Documents of a local eval file: .jsonl (field `text_field`) or .txt (one per line)."""
    if not path.is_file():
        raise InputError(f"eval file {path} not found (filter.eval_files)")
    if path.suffix == ".txt":
        with path.open(encoding="utf-8") as fh:
            return [line.rstrip("\n") for line in fh if line.strip()]
    if path.suffix != ".jsonl":
        raise InputError(f"eval file {path}: use .jsonl (field '{text_field}') or .txt")
    docs: list[str] = []
    for lineno, row in read_jsonl_objects(path, "eval file"):
        value = row.get(text_field)
        if not isinstance(value, str):
            raise InputError(
                f"{path}:{lineno}: no string field '{text_field}' "
                f"(set filter.eval_text_field to the field holding the text)"
            )
        docs.append(value)
    return docs


def _target_text(task: Any, doc: Any) -> str:
    target = task.doc_to_target(doc)
    if task.OUTPUT_TYPE == "multiple_choice":
        choices = task.doc_to_choice(doc)
        if isinstance(target, int) and 0 <= target < len(choices):
            return str(choices[target])
        if isinstance(target, list):
            return " ".join(str(choices[t]) if isinstance(t, int) else str(t) for t in target)
    if isinstance(target, list):
        return " ".join(str(t) for t in target)
    return str(target)


def task_docs(
    names: Sequence[str], include_path: Sequence[str], offline: bool = False
) -> list[str]:
    """Every eval doc of the lm-eval tasks `names`, as `doc_to_text + " " + target`.

    Tasks are resolved as `instructpt evaluate` resolves them (local include
    folders first, lm-eval's own index only when a name is not local); groups
    and tags expand to their tasks, taken in sorted name order.
    """
    with offline_mode(offline):
        manager = build_task_manager(list(include_path), list(names), metadata={})
        tasks = manager.load(list(names))["tasks"]
        docs: list[str] = []
        for name in sorted(tasks):
            task = tasks[name]
            for doc in task.eval_docs:
                docs.append(f"{task.doc_to_text(doc)} {_target_text(task, doc)}")
    return docs
