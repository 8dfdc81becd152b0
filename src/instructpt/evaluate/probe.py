"""The knowledge probe: lm-eval tasks over world entities whose questions no model saw.

`write_probe_tasks(world_dir, out_dir)` turns a world directory (`instructpt
world`: qa.jsonl, entities.jsonl) into an lm-eval include folder, usable by
`instructpt evaluate` and by lm-eval's own CLI alike:

    lm_eval --model hf --model_args pretrained=DIR,add_bos_token=True \\
        --include_path OUT_DIR --tasks world_probe_mc,world_probe_gen

Tasks (each a YAML file beside its JSON-lines data, paths absolute, tag
`world_probe` selects them all):
- `world_probe_mc`: multiple choice by log-likelihood. Items are the probe
  group's `mc` questions (the stem only: the options are scored, not listed)
  and every probe `open` question turned into multiple choice, its distractors
  drawn from the values the same attribute takes across the world, seeded by
  `seed` and the question id. Prompt `Question: {question}\\nAnswer:`, choices
  ` {option}`: the cloze form of ARC and OpenBookQA, fair to a model that never
  saw a question-answer format (the paper's point is that vanilla models did not).
- `world_probe_gen`: greedy generation on the probe `open` questions, up to a
  newline or 16 tokens, scored by exact match on the first line of the reply
  after SQuAD's answer normalisation (case, punctuation, the articles a/an/the,
  whitespace), on both the reply and the answer. All of it is lm-eval's
  own machinery configured in the YAML: the `regex` filter keeps the first line
  and `exact_match` with `regexes_to_ignore` and `ignore_case` normalises, so
  lm-eval's CLI scores exactly as `instructpt evaluate` does.
- `world_probe_gen_3shot`: the same, three-shot (its YAML sets `num_fewshot`,
  which an explicit `num_fewshot` at evaluation time overrides).

Every item carries its `attribute` (birth_city, employer, ...), from which
`attribute_scores` breaks a task's per-item scores down.

Test items come only from `probe` entities (never trained on, never shown as
QA). Few-shot examples come from the `train` split, built the same way from
`augment` entities, so `num_fewshot` at evaluation time picks zero- or
few-shot without any probe answer leaking into a prompt. The same world and
seed give byte-identical files (the YAMLs embed `out_dir`'s absolute path).
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

from instructpt.core.atomic import atomic_write_bytes
from instructpt.core.resume import CONFIG_NAME
from instructpt.errors import InputError
from instructpt.world.phrasings import MC_OPTIONS_HEADER
from instructpt.world.qa import NUM_DISTRACTORS
from instructpt.world.write import ENTITIES_FILE, QA_FILE

MC_TASK = "world_probe_mc"
GEN_TASK = "world_probe_gen"
GEN_FEWSHOT_TASK = "world_probe_gen_3shot"
PROBE_TAG = "world_probe"
#: Bump when items, prompts or metrics change; lm-eval reports it per task.
PROBE_VERSION = 1.0
#: The generative tasks' version: 2.0 normalises answers as SQuAD does.
GEN_VERSION = 2.0
GEN_FEWSHOT = 3

TEST_GROUP = "probe"
FEWSHOT_GROUP = "augment"
PROMPT = "Question: {{question}}\nAnswer:"
MAX_GEN_TOKENS = 16

_HEADER = (
    "# Written by instructpt.evaluate.probe from {world}; do not edit by hand.\n"
    "# Test items: probe entities only; few-shot examples (split `train`): augment entities.\n"
)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(
            f"{path} not found: point at a folder written by `instructpt world` "
            f"(it holds {QA_FILE} and {ENTITIES_FILE})"
        )
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
    return records


def _stem(question: str) -> str:
    """An `mc` question without its listed options (they become the scored choices)."""
    return question.split(MC_OPTIONS_HEADER, 1)[0]


def _value_pools(qa: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Every value each attribute takes across the world (all groups), sorted."""
    pools: dict[str, set[str]] = defaultdict(set)
    for row in qa:
        if row["kind"] == "open":
            pools[row["attribute"]].add(row["answer"])
    return {attribute: sorted(values) for attribute, values in pools.items()}


def _open_as_mc(
    row: dict[str, Any], pools: dict[str, list[str]], names: dict[str, str], seed: int
) -> dict[str, Any] | None:
    """An `open` question as multiple choice; None when its attribute has one value only."""
    answer = row["answer"]
    # Never offer the entity itself (a person as their own sibling).
    excluded = {answer, names.get(row["entity_id"], "")}
    candidates = [v for v in pools[row["attribute"]] if v not in excluded]
    if not candidates:
        return None
    rng = random.Random(f"{seed}:{row['id']}")  # str seeds are stable across processes
    choices = [answer, *rng.sample(candidates, min(NUM_DISTRACTORS, len(candidates)))]
    rng.shuffle(choices)
    return _mc_item(row, "open", row["question"], choices)


def _mc_item(row: dict[str, Any], source: str, question: str, choices: list[str]) -> dict[str, Any]:
    return {
        "id": f"{row['id']}-{source}",
        "entity_id": row["entity_id"],
        "attribute": row["attribute"],
        "question": question,
        "choices": choices,
        "gold": choices.index(row["answer"]),
    }


def _mc_items(
    qa: list[dict[str, Any]],
    group: str,
    pools: dict[str, list[str]],
    names: dict[str, str],
    seed: int,
) -> list[dict[str, Any]]:
    """The group's `mc` questions, then its `open` questions as multiple choice."""
    items = []
    for row in qa:
        if row["group"] == group and row["kind"] == "mc":
            choices = list(row["options"])
            if row["answer"] not in choices:
                raise InputError(f"{QA_FILE}: {row['id']} has an answer outside its options")
            items.append(_mc_item(row, "mc", _stem(row["question"]), choices))
    for row in qa:
        if row["group"] == group and row["kind"] == "open":
            item = _open_as_mc(row, pools, names, seed)
            if item is not None:
                items.append(item)
    return items


def _gen_items(qa: list[dict[str, Any]], group: str) -> list[dict[str, Any]]:
    return [
        {
            "id": row["id"],
            "entity_id": row["entity_id"],
            "attribute": row["attribute"],
            "question": row["question"],
            "answer": row["answer"],
        }
        for row in qa
        if row["group"] == group and row["kind"] == "open"
    ]


def _jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


class _Dumper(yaml.SafeDumper):
    """Strings holding a newline are written double-quoted with `\\n`, as lm-eval's own YAMLs."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def _task_yaml(
    task: str,
    test_file: Path,
    fewshot_file: Path,
    body: dict[str, Any],
    world: Path,
    version: float = PROBE_VERSION,
) -> bytes:
    config: dict[str, Any] = {
        "task": task,
        "tag": [PROBE_TAG],
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(test_file), "train": str(fewshot_file)}},
        "test_split": "test",
        "fewshot_split": "train",
        "doc_to_text": PROMPT,
        **body,
        "metadata": {"version": version},
    }
    text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000)
    return (_HEADER.format(world=world) + text).encode("utf-8")


_MC_BODY: dict[str, Any] = {
    "output_type": "multiple_choice",
    "doc_to_choice": "choices",
    "doc_to_target": "gold",
    "target_delimiter": " ",
    "metric_list": [
        {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
    ],
}

#: SQuAD's answer normalisation (Rajpurkar et al. 2016, `normalize_answer`) as lm-eval's
#: `exact_match` arguments: these regexes are deleted, in order, from reply and answer
#: alike (punctuation, the articles a/an/the as words, then all whitespace), then
#: `ignore_case` lowercases both. Deleting is all lm-eval offers, so where SQuAD turns
#: runs of whitespace into one space this ignores whitespace altogether: a reply that
#: differs from the answer only in where its spaces fall also matches.
NORMALISE_REGEXES = (
    "[" + re.escape(string.punctuation) + "]",
    r"(?i)\b(?:a|an|the)\b",
    r"\s+",
)

_GEN_BODY: dict[str, Any] = {
    "output_type": "generate_until",
    "doc_to_target": "answer",
    "target_delimiter": " ",
    "generation_kwargs": {
        "until": ["\n"],
        "max_gen_toks": MAX_GEN_TOKENS,
        "do_sample": False,
        "temperature": 0.0,
    },
    "filter_list": [
        {
            # the reply's first line, stripped (`until` ends it there already; a
            # backend that ignores `until` is cut here too)
            "name": "first_line",
            "filter": [
                {"function": "regex", "regex_pattern": "^[^\n]*"},
                {"function": "take_first"},
            ],
        }
    ],
    "metric_list": [
        {
            "metric": "exact_match",
            "aggregation": "mean",
            "higher_is_better": True,
            "regexes_to_ignore": list(NORMALISE_REGEXES),
            "ignore_case": True,
            "ignore_punctuation": False,
        }
    ],
}


def normalise_answer(text: str) -> str:
    """What `world_probe_gen` compares: `text` normalised as its `exact_match` does.

    >>> normalise_answer("  The  Kathouvam Institute, of Technology. ")
    'kathouvaminstituteoftechnology'
    """
    for pattern in NORMALISE_REGEXES:
        text = re.sub(pattern, "", text)
    return text.lower()


def attribute_scores(samples: list[dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """Per-item scores of one task (lm-eval's logged samples) as means per `attribute`.

    Returns `{attribute: {"metrics": {metric: mean}, "num_samples": n}}`, metrics named
    as `harness.task_results` names them (`metric,filter` when a task has several
    filters), sorted by attribute; None when some item has no `attribute` (a task
    that is not the world probe) or a metric is not a number per item.
    """
    if not samples:
        return None
    filters = {s.get("filter") for s in samples}
    sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    docs: dict[str, set[Any]] = defaultdict(set)
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for sample in samples:
        attribute = (sample.get("doc") or {}).get("attribute")
        if not isinstance(attribute, str):
            return None
        docs[attribute].add(sample.get("doc_id"))
        for metric in sample.get("metrics", []):
            value = sample.get(metric)
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            label = metric if len(filters) == 1 else f"{metric},{sample.get('filter')}"
            sums[attribute][label] += value
            counts[attribute][label] += 1
    return {
        attribute: {
            "metrics": {
                m: total / counts[attribute][m] for m, total in sorted(sums[attribute].items())
            },
            "num_samples": len(docs[attribute]),
        }
        for attribute in sorted(docs)
    }


def world_seed(world_dir: Path) -> int:
    """The seed the world was built with (its resolved config.yaml), which `run` draws with.

    `instructpt run` writes the probe tasks with the world's seed; `instructpt evaluate`
    reads it here, so both write the same distractors into the same folder.
    """
    config = Path(world_dir) / CONFIG_NAME
    try:
        seed = (yaml.safe_load(config.read_text("utf-8")) or {}).get("seed")
    except (OSError, yaml.YAMLError, AttributeError) as exc:
        raise InputError(f"{config}: cannot read the world's seed ({exc})") from None
    if not isinstance(seed, int):
        raise InputError(f"{config} has no integer `seed`: write the world with `instructpt world`")
    return seed


def write_probe_tasks(world_dir: Path, out_dir: Path, seed: int = 0) -> list[str]:
    """Write the probe's lm-eval tasks (YAML + JSON lines) into `out_dir`; returns task names.

    `seed` draws the distractors of open questions turned into multiple choice.
    Every file is written atomically; rewriting with the same inputs gives the same bytes.
    """
    world_dir = Path(world_dir).resolve()
    out_dir = Path(out_dir).resolve()
    qa = _read_jsonl(world_dir / QA_FILE)
    names = {e["id"]: e["name"] for e in _read_jsonl(world_dir / ENTITIES_FILE)}
    pools = _value_pools(qa)

    splits = {
        MC_TASK: (
            _mc_items(qa, TEST_GROUP, pools, names, seed),
            _mc_items(qa, FEWSHOT_GROUP, pools, names, seed),
            _MC_BODY,
        ),
        GEN_TASK: (_gen_items(qa, TEST_GROUP), _gen_items(qa, FEWSHOT_GROUP), _GEN_BODY),
        GEN_FEWSHOT_TASK: (
            _gen_items(qa, TEST_GROUP),
            _gen_items(qa, FEWSHOT_GROUP),
            {**_GEN_BODY, "num_fewshot": GEN_FEWSHOT},
        ),
    }
    versions = {MC_TASK: PROBE_VERSION, GEN_TASK: GEN_VERSION, GEN_FEWSHOT_TASK: GEN_VERSION}
    for task, (test, fewshot, _) in splits.items():
        for group, items in ((TEST_GROUP, test), (FEWSHOT_GROUP, fewshot)):
            if not items:
                raise InputError(
                    f"{world_dir / QA_FILE} has no {group} questions for {task}: "
                    f"build the world with more entities (instructpt world --num-people ...)"
                )

    out_dir.mkdir(parents=True, exist_ok=True)
    for task, (test, fewshot, body) in splits.items():
        test_file = out_dir / f"{task}.test.jsonl"
        fewshot_file = out_dir / f"{task}.train.jsonl"
        atomic_write_bytes(test_file, _jsonl_bytes(test))
        atomic_write_bytes(fewshot_file, _jsonl_bytes(fewshot))
        # The YAML last: a reader that finds the task finds its data complete.
        atomic_write_bytes(
            out_dir / f"{task}.yaml",
            _task_yaml(task, test_file, fewshot_file, body, world_dir, versions[task]),
        )
    return list(splits)
