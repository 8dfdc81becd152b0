"""The closed-book probe: which questions a corpus answers, its corpus, split and tasks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from instructpt.errors import InputError
from instructpt.evaluate.closed_book import (
    CORPUS_FILE,
    HELDOUT_TASK,
    RECORD_FILE,
    TUNE_TASK,
    build_wiki_probe,
    heldout_split,
    normalise,
)


def lead(title: str, text: str) -> dict:
    return {"id": f"wiki/{title}", "text": text, "meta": {"title": title, "source": "test"}}


LEADS = [
    lead("Madrid", "Madrid is the capital of Spain. The Manzanares river runs through the city."),
    lead("Spain", "Spain is a country in south-western Europe; its capital is Madrid."),
    lead(
        "Ada Lovelace",
        "Ada Lovelace was an English mathematician, the only legitimate child of the poet "
        "George Gordon Byron.",
    ),
    lead("Planet", "A planet is a large body orbiting a star; Jupiter is the largest planet."),
    lead("Mercury (planet)", "Mercury is the smallest planet of the Solar System."),
    lead("The Who", "The Who are an English rock band; Pete Townshend wrote most of their songs."),
    lead("Zebra", "Zebras are African equines."),
    lead("Piano", "The piano is played by pressing its black and white keys."),
    lead(
        "Charles Babbage",
        "Charles Babbage designed the Analytical Engine. A quiz once asked: what machine did "
        "Charles Babbage design in the year 1837?",
    ),
    lead(
        "Pub quiz",
        "A pub quiz once asked which river runs through the Spanish capital city of Madrid, "
        "and nobody knew.",
    ),
    *(lead(f"Distractor {i}", f"Distractor number {i} is about nothing at all.") for i in range(6)),
]


def question(qid: str, source: str, text: str, answers: list[str]) -> dict:
    return {
        "id": qid,
        "source": source,
        "question": text,
        "answers": answers,
        "split": "validation",
    }


QUESTIONS = [
    # kept: the answer is in the lead about Madrid, which the question names
    question("t1", "trivia_qa", "Which river runs through the Spanish capital city of Madrid?",
             ["Manzanares", "River Manzanares"]),
    # kept: NQ-open's second answer is the one the lead states
    question("n1", "nq_open", "who was the father of ada lovelace",
             ["Lord Byron", "George Gordon Byron"]),
    # dropped: TriviaQA's aliases after the first are not looked for
    question("t2", "trivia_qa", "Who was Ada Lovelace's father?",
             ["The Poet Byron", "George Gordon Byron"]),
    # kept: case and punctuation are normalised on both sides ("south-western")
    question("t3", "trivia_qa", "WHAT IS THE CAPITAL OF SPAIN?", ["MADRID."]),
    question("n2", "nq_open", "where in europe is spain", ["South Western", "iberia"]),
    # dropped: "Planet" is a common noun in most leads here, too general to be a subject
    question("t4", "trivia_qa", "Which planet is the largest?", ["Jupiter"]),
    # dropped: the answer is only in an unrelated lead (Piano), not in the Zebra lead
    question("t5", "trivia_qa", "What colour are the stripes of a zebra?", ["Black and white"]),
    # dropped: the question gives its answer away
    question("t6", "trivia_qa", "Is Madrid or Lisbon the capital of Spain, Madrid?", ["Madrid"]),
    # dropped: "The Who" is all stopwords after normalisation, never a subject
    question("n3", "nq_open", "who wrote the songs of the who", ["Pete Townshend"]),
    # dropped: a repeat of t1 once normalised
    question("t7", "trivia_qa", "which river runs through the spanish capital city of madrid",
             ["Manzanares"]),
    # dropped: a one-character answer matches too much by chance
    question("n4", "nq_open", "how many moons has mercury", ["0"]),
    # dropped: its only support lead quotes it, so it cannot be in the corpus
    question("t8", "trivia_qa", "What machine did Charles Babbage design in the year 1837?",
             ["Analytical Engine"]),
]  # fmt: skip


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


#: A tiny corpus makes every title frequent: "Planet" is in 2 of 16 leads, "Piano" in 1.
SETTINGS = {"seed": 0, "num_distractors": 3, "heldout_fraction": 0.5, "max_subject_share": 0.1}


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_jsonl(tmp_path / "questions.jsonl", QUESTIONS),
        write_jsonl(tmp_path / "leads.jsonl", LEADS),
    )


@pytest.fixture
def probe_dir(inputs, tmp_path: Path) -> Path:
    out = tmp_path / "probe"
    build_wiki_probe(*inputs, out, **SETTINGS)
    return out


def slices(out: Path) -> dict[str, list[dict]]:
    return {task: read_jsonl(out / f"{task}.jsonl") for task in (TUNE_TASK, HELDOUT_TASK)}


def test_normalise_is_squad_answer_normalisation_over_unicode() -> None:
    assert normalise("  The Beatles’ 1962–1970 run, in U.K.!") == "beatles 1962 1970 run in uk"
    assert normalise("An apple-pie") == "apple pie"
    assert normalise("Who was Ada Lovelace's father?") == "who was ada lovelace father"


def test_questions_whose_answer_is_in_their_subjects_lead_are_kept(probe_dir) -> None:
    items = {i["id"]: i for items in slices(probe_dir).values() for i in items}
    assert sorted(items) == ["n1", "n2", "t1", "t3"]
    assert items["t1"]["title"] == "Madrid" and items["t1"]["support"] == ["wiki/Madrid"]
    assert items["n1"]["title"] == "Ada Lovelace"
    assert items["t3"]["title"] == "Spain" and items["n2"]["title"] == "Spain"
    # every gold alias is kept for scoring, even those not looked for in leads
    assert items["t1"]["answers"] == ["Manzanares", "River Manzanares"]


def test_probe_json_counts_what_each_rule_removed(probe_dir) -> None:
    counts = json.loads((probe_dir / RECORD_FILE).read_text())
    assert counts["questions"]["read"] == {"nq_open": 4, "trivia_qa": 8}
    assert counts["questions"]["removed"] == {
        "duplicate_question": {"trivia_qa": 1},
        "answer_too_short": {"nq_open": 1},
        "answer_in_question": {"trivia_qa": 1},
        "no_subject": {"nq_open": 1, "trivia_qa": 1},
        "answer_not_in_subject_lead": {"trivia_qa": 2},
        "support_decontaminated": {"trivia_qa": 1},
    }
    assert counts["questions"]["selected"] == {"nq_open": 2, "trivia_qa": 2}
    assert counts["titles"] == {
        "stopwords_only": 1,  # The Who
        "subject_titles": len(LEADS) - 2,
        "too_general": 1,  # Planet
        "too_short": 0,
    }


def test_a_lead_quoting_a_probe_question_is_dropped_and_counted(probe_dir) -> None:
    counts = json.loads((probe_dir / RECORD_FILE).read_text())
    # "Pub quiz" quotes t1 (a 10-word question, matched whole); Charles Babbage quotes t8
    assert counts["decontamination"]["leads_contaminated"] == 2
    assert counts["decontamination"]["support_leads_contaminated"] == 1
    ids = {d["id"] for d in read_jsonl(probe_dir / CORPUS_FILE)}
    assert "wiki/Pub quiz" not in ids and "wiki/Charles Babbage" not in ids
    questions = [i["question"] for items in slices(probe_dir).values() for i in items]
    for doc in read_jsonl(probe_dir / CORPUS_FILE):
        assert not any(normalise(q) in normalise(doc["text"]) for q in questions)


def test_corpus_is_the_support_leads_plus_seeded_distractors(inputs, probe_dir, tmp_path) -> None:
    docs = read_jsonl(probe_dir / CORPUS_FILE)
    roles = {d["id"]: d["meta"]["probe_role"] for d in docs}
    support = {i for items in slices(probe_dir).values() for x in items for i in x["support"]}
    assert {i for i, r in roles.items() if r == "support"} == support
    distractors = {i for i, r in roles.items() if r == "distractor"}
    assert len(distractors) == 3 and not distractors & support
    assert all(d["meta"]["title"] and d["text"] for d in docs)  # Documents `ingest` reads
    other = tmp_path / "other"
    build_wiki_probe(*inputs, other, **{**SETTINGS, "seed": 1})
    others = {d["id"] for d in read_jsonl(other / CORPUS_FILE)} - support
    assert len(others) == 3 and others != distractors  # 3 drawn of 11 clean, unused leads


def test_heldout_and_tune_are_disjoint_and_cover_the_selection(probe_dir) -> None:
    tune, heldout = (set(i["id"] for i in items) for items in slices(probe_dir).values())
    assert tune and heldout and not tune & heldout
    assert tune | heldout == {"n1", "n2", "t1", "t3"}
    assert len(heldout) == 2


def test_heldout_split_is_seeded_exact_in_size_and_order_free() -> None:
    ids = [f"q{i}" for i in range(200)]
    tune, heldout = heldout_split(ids, 0.25, seed=3)
    assert len(heldout) == 50 and tune | heldout == set(ids) and not tune & heldout
    assert heldout_split(ids, 0.25, seed=3) == (tune, heldout)
    assert heldout_split(list(reversed(ids)), 0.25, seed=3) == (tune, heldout)  # order-free
    assert heldout_split(ids, 0.25, seed=4)[1] != heldout


def test_same_inputs_and_seed_give_identical_bytes(inputs, probe_dir, tmp_path) -> None:
    build_wiki_probe(*inputs, probe_dir, **SETTINGS)
    again = tmp_path / "again"
    build_wiki_probe(*inputs, again, **SETTINGS)
    for path in sorted(probe_dir.iterdir()):
        twin = (again / path.name).read_bytes()
        if path.suffix in (".yaml", ".json"):  # they name their folder's absolute path
            twin = twin.replace(str(again).encode(), str(probe_dir).encode())
        assert path.read_bytes() == twin, path.name
    assert not list(probe_dir.glob(".*.tmp"))


def test_malformed_input_names_the_file_and_line(inputs, tmp_path) -> None:
    questions, leads = inputs
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(QUESTIONS[0]) + "\n{not json\n")
    with pytest.raises(InputError, match=r"bad\.jsonl:2: not valid JSON"):
        build_wiki_probe(bad, leads, tmp_path / "out")
    write_jsonl(bad, [{"id": "x", "text": "no title", "meta": {}}])
    with pytest.raises(InputError, match=r"bad\.jsonl:1: expected a Document .*meta\.title"):
        build_wiki_probe(questions, bad, tmp_path / "out")
    with pytest.raises(InputError, match="heldout_fraction"):
        build_wiki_probe(questions, leads, tmp_path / "out", heldout_fraction=1.0)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ lm-eval


def load_task(out: Path, name: str):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(out), include_defaults=False)
    task = manager.load([name])["tasks"][name]
    task.set_config(key="num_fewshot", value=0)
    return task


def test_task_yamls_are_the_world_probes_generative_exact_match(probe_dir) -> None:
    world = {"output_type", "generation_kwargs", "filter_list", "metric_list", "doc_to_text"}
    heldout = yaml.safe_load((probe_dir / f"{HELDOUT_TASK}.yaml").read_text())
    tune = yaml.safe_load((probe_dir / f"{TUNE_TASK}.yaml").read_text())
    assert heldout["doc_to_text"] == "Question: {{question}}\nAnswer:"
    assert heldout["doc_to_target"] == "answers" and heldout["generation_kwargs"]["until"] == ["\n"]
    assert {k: heldout[k] for k in world} == {k: tune[k] for k in world}
    # held-out questions never serve as shots: both tasks draw them from the tune slice
    assert heldout["dataset_kwargs"]["data_files"]["train"].endswith(f"{TUNE_TASK}.jsonl")
    assert tune["fewshot_split"] == tune["test_split"] == "test"


def test_lm_eval_scores_a_planted_right_and_wrong_reply(probe_dir) -> None:
    task = load_task(probe_dir, HELDOUT_TASK)
    docs = read_jsonl(probe_dir / f"{HELDOUT_TASK}.jsonl")
    assert [d["question"] for d in task.test_docs()] == [d["question"] for d in docs]
    assert {d["question"] for d in task.fewshot_docs()} == {
        d["question"] for d in read_jsonl(probe_dir / f"{TUNE_TASK}.jsonl")
    }
    task.build_all_requests(limit=len(docs))

    def scores(reply_for) -> list[float]:
        for inst in task.instances:
            assert inst.args[0] == f"Question: {inst.doc['question']}\nAnswer:"
            inst.resps = [reply_for(inst.doc)]
        task.apply_filters()
        return [
            task.process_results(inst.doc, [inst.filtered_resps["first_line"]])["exact_match"]
            for inst in task.instances
        ]

    # any alias, after SQuAD's normalisation, up to the first newline
    assert scores(lambda d: f" the {d['answers'][-1].upper()}.\nQuestion: x") == [1.0, 1.0]
    assert scores(lambda d: f" {d['answers'][0]}") == [1.0, 1.0]
    assert scores(lambda d: " Lisbon") == [0.0, 0.0]
    assert scores(lambda d: f" {d['answers'][0]} and more") == [0.0, 0.0]


def test_tasks_default_to_the_shots_asked_for(inputs, probe_dir, tmp_path) -> None:
    for task in (TUNE_TASK, HELDOUT_TASK):
        assert yaml.safe_load((probe_dir / f"{task}.yaml").read_text())["num_fewshot"] == 3
    build_wiki_probe(*inputs, tmp_path / "zero", **SETTINGS, num_fewshot=0)
    assert yaml.safe_load((tmp_path / "zero" / f"{TUNE_TASK}.yaml").read_text())["num_fewshot"] == 0
    assert json.loads((tmp_path / "zero" / RECORD_FILE).read_text())["settings"]["num_fewshot"] == 0
    with pytest.raises(InputError, match="num_fewshot"):
        build_wiki_probe(*inputs, tmp_path / "bad", **SETTINGS, num_fewshot=-1)


def test_the_wiki_probe_command_builds_the_same_probe(inputs, probe_dir, tmp_path) -> None:
    from tests.conftest import run_cli

    questions, leads = inputs
    out = tmp_path / "cli"
    proc = run_cli(
        "wiki-probe", "--questions", str(questions), "--leads", str(leads), "--out", str(out),
        "--distractors", "3", "--seed", "0", "--max-subject-share", "0.1", cwd=tmp_path,
    )  # fmt: skip
    assert "4 questions kept of 12" in proc.stdout and "--tasks wiki_probe_tune" in proc.stdout
    for name in (CORPUS_FILE, f"{TUNE_TASK}.jsonl", f"{HELDOUT_TASK}.jsonl"):
        assert (out / name).read_bytes() == (probe_dir / name).read_bytes()
    bad = run_cli("wiki-probe", "--out", str(out), "--leads", "nope.jsonl", cwd=tmp_path,
                  check=False)  # fmt: skip
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr
