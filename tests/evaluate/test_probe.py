"""The knowledge probe as lm-eval tasks: probe items only, few-shot from elsewhere, same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from instructpt.errors import InputError
from instructpt.evaluate.probe import (
    GEN_FEWSHOT_TASK,
    GEN_TASK,
    MC_TASK,
    PROBE_TAG,
    attribute_scores,
    normalise_answer,
    write_probe_tasks,
)
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig
from instructpt.world.phrasings import MC_OPTIONS_HEADER

SMALL = WorldConfig(
    seed=7, num_people=30, num_countries=3, num_cities=6, num_universities=3, num_companies=4
)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    write_world(build_world(SMALL), out)
    return out


@pytest.fixture(scope="module")
def task_dir(world_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tasks")
    assert write_probe_tasks(world_dir, out, seed=0) == [MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK]
    return out


@pytest.fixture(scope="module")
def qa(world_dir: Path) -> dict[str, dict]:
    return {row["id"]: row for row in read_jsonl(world_dir / "qa.jsonl")}


@pytest.fixture(scope="module")
def groups(world_dir: Path) -> dict[str, str]:
    return {e["id"]: e["group"] for e in read_jsonl(world_dir / "entities.jsonl")}


def qa_id(item: dict) -> str:
    """`<qa id>-mc` / `<qa id>-open` -> the world's QA id."""
    return item["id"].rsplit("-", 1)[0]


def test_task_yamls_point_at_absolute_local_files(task_dir: Path) -> None:
    for task in (MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK):
        config = yaml.safe_load((task_dir / f"{task}.yaml").read_text("utf-8"))
        assert config["task"] == task
        assert config["tag"] == [PROBE_TAG]
        assert config["dataset_path"] == "json"
        files = config["dataset_kwargs"]["data_files"]
        assert set(files) == {"test", "train"}
        for split, name in files.items():
            assert Path(name).is_absolute() and Path(name).is_file()
            assert Path(name) == task_dir.resolve() / f"{task}.{split}.jsonl"
        assert config["test_split"] == "test" and config["fewshot_split"] == "train"
        assert config["doc_to_text"] == "Question: {{question}}\nAnswer:"
        # chosen at evaluation time, but for the three-shot task's default
        assert config.get("num_fewshot") == (3 if task == GEN_FEWSHOT_TASK else None)
        assert config["metadata"]["version"] == (1.0 if task == MC_TASK else 2.0)


def test_mc_task_scores_options_by_loglikelihood(task_dir: Path) -> None:
    config = yaml.safe_load((task_dir / f"{MC_TASK}.yaml").read_text("utf-8"))
    assert config["output_type"] == "multiple_choice"
    assert config["doc_to_choice"] == "choices" and config["doc_to_target"] == "gold"
    assert config["target_delimiter"] == " "
    assert [m["metric"] for m in config["metric_list"]] == ["acc", "acc_norm"]


def test_gen_task_is_greedy_exact_match_on_one_line(task_dir: Path) -> None:
    config = yaml.safe_load((task_dir / f"{GEN_TASK}.yaml").read_text("utf-8"))
    assert config["output_type"] == "generate_until"
    assert config["generation_kwargs"] == {
        "until": ["\n"],
        "max_gen_toks": 16,
        "do_sample": False,
        "temperature": 0.0,
    }
    assert [f["function"] for f in config["filter_list"][0]["filter"]] == ["regex", "take_first"]
    (metric,) = config["metric_list"]
    assert metric["metric"] == "exact_match" and metric["ignore_case"] is True
    assert config["metadata"]["version"] == 2.0 and "num_fewshot" not in config


def test_fewshot_gen_task_is_the_same_task_three_shot(task_dir: Path) -> None:
    zero = yaml.safe_load((task_dir / f"{GEN_TASK}.yaml").read_text("utf-8"))
    few = yaml.safe_load((task_dir / f"{GEN_FEWSHOT_TASK}.yaml").read_text("utf-8"))
    assert few.pop("num_fewshot") == 3 and few.pop("task") == GEN_FEWSHOT_TASK
    zero.pop("task")
    files = {split: Path(f).name for split, f in few.pop("dataset_kwargs")["data_files"].items()}
    assert files == {
        "test": f"{GEN_FEWSHOT_TASK}.test.jsonl",
        "train": f"{GEN_FEWSHOT_TASK}.train.jsonl",
    }
    zero.pop("dataset_kwargs")
    assert few == zero
    for split in ("test", "train"):
        assert (task_dir / f"{GEN_TASK}.{split}.jsonl").read_bytes() == (
            task_dir / f"{GEN_FEWSHOT_TASK}.{split}.jsonl"
        ).read_bytes()


def test_test_items_come_only_from_probe_entities(task_dir, qa, groups) -> None:
    for task in (MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK):
        items = read_jsonl(task_dir / f"{task}.test.jsonl")
        assert items
        assert {groups[i["entity_id"]] for i in items} == {"probe"}
        assert {qa[qa_id(i) if task == MC_TASK else i["id"]]["group"] for i in items} == {"probe"}


def test_fewshot_examples_come_only_from_augment_entities(task_dir, groups) -> None:
    probe_entities = {e for e, g in groups.items() if g == "probe"}
    for task in (MC_TASK, GEN_TASK):
        shots = read_jsonl(task_dir / f"{task}.train.jsonl")
        assert shots
        assert {groups[s["entity_id"]] for s in shots} == {"augment"}
        assert not {s["entity_id"] for s in shots} & probe_entities
        questions = {i["question"] for i in read_jsonl(task_dir / f"{task}.test.jsonl")}
        shot_questions = {s["question"] for s in shots}
        # a probe question never appears as a few-shot example (names are unique per entity)
        assert not questions & shot_questions


def test_every_probe_open_question_is_asked_with_its_answer(task_dir, qa) -> None:
    items = read_jsonl(task_dir / f"{GEN_TASK}.test.jsonl")
    expected = [r for r in qa.values() if r["group"] == "probe" and r["kind"] == "open"]
    assert [i["id"] for i in items] == [r["id"] for r in expected]
    for item in items:
        assert item["question"] == qa[item["id"]]["question"]
        assert item["answer"] == qa[item["id"]]["answer"]


def test_mc_items_are_the_probe_mc_stems_then_open_questions(task_dir, qa) -> None:
    items = read_jsonl(task_dir / f"{MC_TASK}.test.jsonl")
    probe_mc = [r["id"] for r in qa.values() if r["group"] == "probe" and r["kind"] == "mc"]
    probe_open = [r["id"] for r in qa.values() if r["group"] == "probe" and r["kind"] == "open"]
    from_mc = [i for i in items if i["id"].endswith("-mc")]
    from_open = [i for i in items if i["id"].endswith("-open")]
    assert [qa_id(i) for i in from_mc] == probe_mc
    assert [qa_id(i) for i in from_open] == probe_open  # every attribute has > 1 value here
    for item in from_mc:
        row = qa[qa_id(item)]
        assert item["choices"] == row["options"]
        assert item["question"] == row["question"].split(MC_OPTIONS_HEADER)[0]
        assert "Options:" not in item["question"]


def test_gold_points_at_the_true_answer_among_distinct_choices(task_dir, qa) -> None:
    for split in ("test", "train"):
        for item in read_jsonl(task_dir / f"{MC_TASK}.{split}.jsonl"):
            row = qa[qa_id(item)]
            assert item["choices"][item["gold"]] == row["answer"]
            assert len(set(item["choices"])) == len(item["choices"])
            assert 2 <= len(item["choices"]) <= 4


def test_open_distractors_are_values_of_the_same_attribute(task_dir, qa, world_dir) -> None:
    values: dict[str, set[str]] = {}
    for row in qa.values():
        if row["kind"] == "open":
            values.setdefault(row["attribute"], set()).add(row["answer"])
    names = {e["id"]: e["name"] for e in read_jsonl(world_dir / "entities.jsonl")}
    gold_positions = set()
    for item in read_jsonl(task_dir / f"{MC_TASK}.test.jsonl"):
        if item["id"].endswith("-open"):
            assert set(item["choices"]) <= values[item["attribute"]]
            assert names[item["entity_id"]] not in item["choices"]
            gold_positions.add(item["gold"])
    assert len(gold_positions) > 1  # shuffled, not always first


def test_same_world_and_seed_give_identical_bytes(world_dir, task_dir, tmp_path) -> None:
    write_probe_tasks(world_dir, task_dir, seed=0)  # rewrite in place
    again = tmp_path / "again"
    write_probe_tasks(world_dir, again, seed=0)
    for path in sorted(task_dir.iterdir()):
        twin = again / path.name
        if path.suffix == ".yaml":
            # the YAMLs embed their folder's absolute path
            assert path.read_text() == twin.read_text().replace(str(again), str(task_dir))
        else:
            assert path.read_bytes() == twin.read_bytes()
    assert not list(task_dir.glob(".*.tmp"))


def test_seed_changes_only_the_open_question_distractors(world_dir, task_dir, tmp_path) -> None:
    write_probe_tasks(world_dir, tmp_path, seed=1)
    base = read_jsonl(task_dir / f"{MC_TASK}.test.jsonl")
    other = read_jsonl(tmp_path / f"{MC_TASK}.test.jsonl")
    assert [i["id"] for i in base] == [i["id"] for i in other]
    assert [i for i in base if i["id"].endswith("-mc")] == [
        i for i in other if i["id"].endswith("-mc")
    ]
    assert [i for i in base if i["id"].endswith("-open")] != [
        i for i in other if i["id"].endswith("-open")
    ]
    gen = f"{GEN_TASK}.test.jsonl"
    assert (task_dir / gen).read_bytes() == (tmp_path / gen).read_bytes()


def test_a_folder_without_a_world_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match=r"qa\.jsonl not found.*instructpt world"):
        write_probe_tasks(tmp_path, tmp_path / "tasks")
    assert not (tmp_path / "tasks").exists()


def test_lm_eval_loads_the_tasks_and_renders_the_prompts(task_dir) -> None:
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    assert {MC_TASK, GEN_TASK, GEN_FEWSHOT_TASK, PROBE_TAG} <= set(manager.all_tasks)
    tasks = manager.load([PROBE_TAG])["tasks"]
    mc, gen = tasks[MC_TASK], tasks[GEN_TASK]
    assert len(mc.test_docs()) == len(read_jsonl(task_dir / f"{MC_TASK}.test.jsonl"))
    doc = mc.test_docs()[0]
    assert mc.doc_to_text(doc) == f"Question: {doc['question']}\nAnswer:"
    assert mc.doc_to_choice(doc) == doc["choices"]
    assert mc.doc_to_target(doc) == doc["gold"]
    gen_doc = gen.test_docs()[0]
    assert gen.doc_to_target(gen_doc) == gen_doc["answer"]
    # few-shot examples are drawn from the augment split
    shots = {d["question"] for d in gen.fewshot_docs()}
    assert shots == {i["question"] for i in read_jsonl(task_dir / f"{GEN_TASK}.train.jsonl")}


def load_task(task_dir: Path, name: str, num_fewshot: int):
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    task = manager.load([name])["tasks"][name]
    task.set_config(key="num_fewshot", value=num_fewshot)
    task.set_fewshot_seed(seed=1234)
    return task


def test_mc_requests_score_each_option_after_a_space_with_augment_shots(task_dir) -> None:
    task = load_task(task_dir, MC_TASK, num_fewshot=2)
    task.build_all_requests(limit=1)
    doc = task.instances[0].doc
    contexts = {inst.args[0] for inst in task.instances}
    assert [inst.args[1] for inst in task.instances] == [f" {c}" for c in doc["choices"]]
    (context,) = contexts
    *shots, asked = context.split("\n\n")
    assert asked == f"Question: {doc['question']}\nAnswer:"
    assert len(shots) == 2
    train = read_jsonl(task_dir / f"{MC_TASK}.train.jsonl")
    rendered = {f"Question: {s['question']}\nAnswer: {s['choices'][s['gold']]}" for s in train}
    assert set(shots) <= rendered


def planted_scores(task_dir: Path, answers: list[str], replies: list[str]) -> list[float]:
    """Exact match of `replies` to `answers` through the task's own filters and metric."""
    task = load_task(task_dir, GEN_TASK, num_fewshot=0)
    task.build_all_requests(limit=len(answers))
    for inst, answer, reply in zip(task.instances, answers, replies, strict=True):
        assert inst.args[0] == f"Question: {inst.doc['question']}\nAnswer:"
        inst.doc = {**inst.doc, "answer": answer}
        inst.resps = [reply]
    task.apply_filters()
    return [
        task.process_results(inst.doc, [inst.filtered_resps["first_line"]])["exact_match"]
        for inst in task.instances
    ]


#: (answer, reply, exact match): SQuAD's normalisation on both sides, the first line only.
PLANTED = [
    ("Drefistead", "Drefistead", 1.0),
    ("Drefistead", "  DREFISTEAD ", 1.0),  # case, surrounding whitespace
    ("Drefistead", " Drefistead.", 1.0),  # trailing punctuation
    ("Drefistead", '"Drefistead"!', 1.0),  # surrounding punctuation
    ("Drefistead", " the Drefistead", 1.0),  # an article
    ("Drefistead", " Drefistead\nQuestion: Where is Mouwick?", 1.0),  # text after a newline
    ("Kathouvam Institute of Technology", " Kathouvam  Institute of\tTechnology", 1.0),
    ("Kathouvam Institute of Technology", "kathouvam institute of technology.", 1.0),
    ("The Ironworks Guild", "Ironworks Guild", 1.0),  # an article in the answer
    ("12 March 1987", " 12 March, 1987", 1.0),  # punctuation inside a multi-token answer
    ("Kathouvam Institute of Technology", " Kathouvam Institute", 0.0),  # a prefix only
    ("Kathouvam Institute of Technology", " Kathouvam Institute of Technology and Arts", 0.0),
    ("Drefistead", " Drefistead and Mouwick", 0.0),
    ("Drefistead", "Drefisteads", 0.0),
    ("Drefistead", "\nDrefistead", 0.0),  # the first line is empty
    ("Drefistead", "", 0.0),
    ("Anna", "an Anna", 1.0),
    ("Anna", "Ann", 0.0),  # articles go as whole words only
]


def test_gen_task_scores_planted_replies_with_squad_normalisation(task_dir) -> None:
    answers, replies, expected = zip(*PLANTED, strict=True)
    assert planted_scores(task_dir, list(answers), list(replies)) == list(expected)


def test_normalise_answer_is_what_the_task_compares() -> None:
    for answer, reply, expected in PLANTED:
        first_line = reply.split("\n", 1)[0]
        assert (normalise_answer(first_line) == normalise_answer(answer)) == bool(expected)
    assert normalise_answer("  An  Apple, the PIE. ") == "applepie"


def test_attribute_scores_are_item_means_per_attribute() -> None:
    def sample(doc_id: int, attribute: str, em: float, filt: str = "first_line") -> dict:
        doc = {"attribute": attribute}
        return {"doc_id": doc_id, "doc": doc, "filter": filt, "metrics": ["exact_match"],
                "exact_match": em}  # fmt: skip

    samples = [sample(0, "city", 1.0), sample(1, "city", 0.0), sample(2, "year", 1.0)]
    assert attribute_scores(samples) == {
        "city": {"metrics": {"exact_match": 0.5}, "num_samples": 2},
        "year": {"metrics": {"exact_match": 1.0}, "num_samples": 1},
    }
    # several filters: metrics keyed `metric,filter`, as harness.task_results keys them
    two = [sample(0, "city", 1.0, "a"), sample(0, "city", 0.0, "b")]
    assert attribute_scores(two) == {
        "city": {"metrics": {"exact_match,a": 1.0, "exact_match,b": 0.0}, "num_samples": 1}
    }
    # a task without attributes, or whose per-item metric is not a number: no breakdown
    assert attribute_scores([{**samples[0], "doc": {"question": "?"}}]) is None
    assert attribute_scores([{**samples[0], "exact_match": [1, 2]}]) is None
    assert attribute_scores([]) is None
