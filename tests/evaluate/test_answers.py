"""Per-question replies and the flips between two models (pure functions; the harness test
checks them on real lm-eval output)."""

from __future__ import annotations

from instructpt.evaluate.answers import flips, generated_answers


def sample(doc_id: int, question: str, reply, score, filt: str = "first_line") -> dict:
    return {
        "doc_id": doc_id,
        "doc": {"question": question, "answers": ["x"]},
        "target": ["x"],
        "filter": filt,
        "filtered_resps": [reply],
        "metrics": ["exact_match"],
        "exact_match": score,
    }


def test_rows_keep_question_reply_and_score_in_doc_order() -> None:
    rows = generated_answers([sample(1, "b?", " B \n", 0.0), sample(0, "a?", "x", 1.0)])
    assert rows == [
        {"doc_id": 0, "question": "a?", "target": ["x"], "reply": "x", "score": 1.0},
        {"doc_id": 1, "question": "b?", "target": ["x"], "reply": "B", "score": 0.0},
    ]


def test_one_row_per_question_with_several_filters() -> None:
    rows = generated_answers([sample(0, "a?", "x", 1.0, "b"), sample(0, "a?", "y", 0.0, "a")])
    assert rows is not None and [r["reply"] for r in rows] == ["y"]


def test_loglikelihood_tasks_and_tasks_without_a_number_have_no_rows() -> None:
    loglik = sample(0, "a?", 0, 1.0)
    loglik["filtered_resps"] = [(-1.2, False), (-0.3, True)]
    assert generated_answers([loglik]) is None
    assert generated_answers([sample(0, "a?", "x", "1")]) is None
    assert generated_answers([]) is None


def test_flips_count_gained_lost_kept_never_and_unmatched() -> None:
    def row(i: int, q: str, score: float, reply: str = "r") -> dict:
        return {"doc_id": i, "question": q, "target": "t", "reply": reply, "score": score}

    before = [row(0, "a", 0, "no"), row(1, "b", 1), row(2, "c", 1), row(3, "d", 0)]
    after = [row(0, "a", 1, "yes"), row(1, "b", 0), row(2, "c", 1), row(3, "d", 0),
             row(4, "e", 1), row(2, "other question", 1)]  # fmt: skip
    out = flips(before, after)
    assert (out["gained"], out["lost"], out["kept"], out["never"], out["unmatched"]) == (
        1, 1, 1, 1, 2,
    )  # fmt: skip
    assert out["gained_examples"] == [
        {"question": "a", "target": "t", "before": "no", "after": "yes"}
    ]
    assert len(flips(before, [row(0, "a", 1)] * 20, limit=3)["gained_examples"]) == 3
