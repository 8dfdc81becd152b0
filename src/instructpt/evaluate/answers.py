"""Per-question replies of a generative task, kept so a report can say which answers flipped.

A score says how many questions a continued model answers; only the replies say
*which*: the questions it learned from the corpus, the ones it forgot, and what
it wrote instead. lm-eval's logged samples hold them; `generated_answers` keeps
the few fields that matter (a few hundred bytes per question) and `flips`
compares two models' replies on the same task.
"""

from __future__ import annotations

from typing import Any

#: Examples kept per direction (gained, lost) by `flips`.
MAX_FLIP_EXAMPLES = 8


def _score(sample: dict[str, Any]) -> float | None:
    """The sample's first numeric metric (exact_match for the generative probes)."""
    for metric in sample.get("metrics") or []:
        value = sample.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def generated_answers(samples: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """One row per question of a generative task: its question, gold, reply and score.

    `samples` are lm-eval's logged samples of one task. Returns None for a task
    that is not generative (a log-likelihood task's replies are numbers) or has
    no numeric metric; with several filters only the first (sorted) is kept, so
    a question is one row. Rows are in `doc_id` order.
    """
    if not samples:
        return None
    first = min(str(s.get("filter")) for s in samples)
    rows = []
    for sample in samples:
        if str(sample.get("filter")) != first:
            continue
        replies = sample.get("filtered_resps")
        score = _score(sample)
        if not (isinstance(replies, list) and len(replies) == 1 and isinstance(replies[0], str)):
            return None
        if score is None:
            return None
        doc = sample.get("doc") or {}
        rows.append(
            {
                "doc_id": sample.get("doc_id"),
                "question": doc.get("question") if isinstance(doc, dict) else None,
                "target": sample.get("target"),
                "reply": replies[0].strip(),
                "score": score,
            }
        )
    return sorted(rows, key=lambda r: (r["doc_id"] is None, r["doc_id"] or 0))


def flips(
    before: list[dict[str, Any]], after: list[dict[str, Any]], limit: int = MAX_FLIP_EXAMPLES
) -> dict[str, Any]:
    """Which questions `after` answers that `before` did not (gained), and the reverse (lost).

    Rows are matched by `doc_id` and question text, so two evaluations of
    different task files never pair up by position; unmatched rows are counted.
    """
    index = {(r.get("doc_id"), r.get("question")): r for r in before}
    gained, lost, both, neither, unmatched = [], [], 0, 0, 0
    for row in after:
        old = index.get((row.get("doc_id"), row.get("question")))
        if old is None:
            unmatched += 1
            continue
        was, now = old["score"] > 0, row["score"] > 0
        pair = {
            "question": row.get("question"),
            "target": row.get("target"),
            "before": old.get("reply"),
            "after": row.get("reply"),
        }
        if now and not was:
            gained.append(pair)
        elif was and not now:
            lost.append(pair)
        elif was:
            both += 1
        else:
            neither += 1
    return {
        "gained": len(gained),
        "lost": len(lost),
        "kept": both,
        "never": neither,
        "unmatched": unmatched,
        "gained_examples": gained[:limit],
        "lost_examples": lost[:limit],
    }
