"""Evaluate model directories with lm-evaluation-harness, through its Python API.

    cfg = EvaluateConfig(model="runs/demo/models/instruct", tasks=["world_probe_mc"],
                         include_path=["runs/demo/eval/tasks"])
    results = evaluate(cfg, Path("runs/demo/eval/instruct.json"))

What runs is what lm-eval's own CLI runs for

    lm_eval --model hf --model_args pretrained=DIR,add_bos_token=True \\
        --include_path TASKS --tasks T --device cpu --batch_size 8

(the `hf` model built from the same arguments, the same task manager, the
same seeds): a test checks that the CLI reproduces these numbers. BOS is
added by default, as in the paper's evaluation protocol; `add_bos_token:
false` turns it off, and the results record whether BOS really came first.

The `paper` preset is the paper's general benchmark suite: zero-shot piqa,
hellaswag and winogrande, five-shot social_iqa, arc_easy, arc_challenge,
openbookqa, boolq and mmlu. lm-eval sets one `num_fewshot` per call, so each
shot count runs as its own lm-eval call over the one loaded model. Those tasks
download their datasets from the Hugging Face hub; on an air-gapped machine use
local task folders (`include_path`, e.g. the world probe of `probe.py`) and
`offline: true`.

The results file holds, per task: the metric values and their standard
errors, the number of shots and of samples, the task version; plus the exact
lm-eval, transformers and torch versions, the model path, the resolved
config, whether BOS was really prepended, and lm-eval's own output per call.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from instructpt.config import StageConfig
from instructpt.corpus.atomic import atomic_write_text
from instructpt.errors import InputError

log = logging.getLogger(__name__)

#: Named task lists with their own shots: (num_fewshot, tasks) per lm-eval call.
PRESETS: dict[str, tuple[tuple[int, tuple[str, ...]], ...]] = {
    # Cheng et al. 2024, "Instruction Pre-Training", general-model evaluation.
    "paper": (
        (0, ("piqa", "hellaswag", "winogrande")),
        (5, ("social_iqa", "arc_easy", "arc_challenge", "openbookqa", "boolq", "mmlu")),
    ),
}

#: Environment variables that keep the hub and datasets libraries off the network.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class EvaluateConfig(StageConfig):
    """One model, a list of lm-eval tasks (or presets), and how to run them."""

    runtime_fields: ClassVar[frozenset[str]] = frozenset({"offline"})

    model: str = Field(
        ..., description="Model to evaluate: a save_pretrained directory or a hub name."
    )
    tasks: list[str] = Field(
        ...,
        min_length=1,
        description="lm-eval task, group or tag names, task YAML paths, or the preset "
        f"{sorted(PRESETS)}; comma-separated strings are split.",
    )
    include_path: list[str] = Field(
        default_factory=list,
        description="Folders of local task YAMLs (e.g. the world probe's task folder).",
    )
    num_fewshot: int | None = Field(
        None,
        ge=0,
        description="Shots for every task; unset: each task's default (0 when it has none). "
        "Presets carry their own shots, so leave it unset with them.",
    )
    batch_size: int = Field(8, ge=1, description="Requests per forward pass.")
    device: str = Field("cpu", description="Torch device: cpu, cuda, cuda:N, mps.")
    limit: int | None = Field(
        None, ge=1, description="Evaluate only the first N items of each task (smoke runs)."
    )
    add_bos_token: bool = Field(
        True, description="Prepend BOS to every request, as the paper's protocol does."
    )
    apply_chat_template: bool = Field(
        False,
        description="Render each prompt through the model's chat template as a user turn "
        "(lm-eval's --apply_chat_template), for instruction-tuned models; the answer is "
        "scored right after the assistant header, with no space before it.",
    )
    trust_remote_code: bool = Field(False, description="Allow model code from the hub (off: safe).")
    seed: int = Field(
        1234,
        description="Seed of python, numpy, torch and the few-shot sampler "
        "(lm-eval's default few-shot seed is 1234 too).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype; auto: as saved in the model's config."
    )
    offline: bool = Field(
        False,
        description="Never touch the network: set HF_HUB_OFFLINE and HF_DATASETS_OFFLINE "
        "for this evaluation only (local models and local task data).",
    )

    @field_validator("tasks", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # `--tasks a,b` as lm-eval's CLI takes it; paths (include_path) are never split.
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return [p.strip() for v in value for p in str(v).split(",") if p.strip()]
        return value

    @field_validator("include_path", mode="before")
    @classmethod
    def _one_path_is_a_list(cls, value: object) -> object:
        if isinstance(value, str | Path):
            value = [value]
        if isinstance(value, list | tuple):
            return [str(v) if isinstance(v, Path) else v for v in value]
        return value

    @model_validator(mode="after")
    def _presets_carry_their_shots(self) -> EvaluateConfig:
        if self.num_fewshot is not None and any(t in PRESETS for t in self.tasks):
            raise ValueError(
                "num_fewshot must be unset when tasks holds a preset "
                f"({', '.join(t for t in self.tasks if t in PRESETS)}): the preset sets the "
                "shots of each of its tasks; list the tasks by name to choose the shots yourself"
            )
        return self


def plan_runs(tasks: Sequence[str], num_fewshot: int | None) -> list[tuple[int | None, list[str]]]:
    """Tasks grouped into lm-eval calls, one per shot count, presets expanded, in order.

    >>> plan_runs(["paper"], None)[0]
    (0, ['piqa', 'hellaswag', 'winogrande'])
    """
    groups: dict[int | None, list[str]] = {}
    for name in tasks:
        expanded = PRESETS.get(name, ((num_fewshot, (name,)),))
        for shots, names in expanded:
            group = groups.setdefault(shots, [])
            group.extend(n for n in names if n not in group)
    return list(groups.items())


# --------------------------------------------------------------------------- inputs


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a local path.
    return (
        name.startswith((".", "~", os.sep))
        or name.count("/") > 1
        or name.endswith("/")
        or (os.sep != "/" and os.sep in name)
    )


def resolve_model(model: str) -> tuple[str, bool]:
    """The model as lm-eval should load it, and whether it is a local directory.

    A path that exists must be a save_pretrained folder; one that looks like a
    path and does not exist fails here, not halfway through loading lm-eval.
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"model {model} is a file: give the folder that save_pretrained wrote")
        if not (path / "config.json").is_file():
            raise InputError(
                f"model directory {path} has no config.json: give a folder written by "
                "save_pretrained (e.g. runs/<name>/models/<variant>)"
            )
        return str(path.resolve()), True
    if _looks_like_path(model):
        raise InputError(f"model directory not found: {path}")
    return model, False


def _check_include_paths(paths: Sequence[str]) -> list[str]:
    resolved = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.is_dir():
            raise InputError(
                f"include_path {p} is not a folder: give folders holding task YAML files "
                "(write the world probe's with `write_probe_tasks`)"
            )
        resolved.append(str(path.resolve()))
    return resolved


def _missing_data_files(include_path: Sequence[str], names: Sequence[str]) -> list[str]:
    """Absolute local data files that requested local tasks point at but that are gone.

    Probe task YAMLs hold absolute paths, so a moved task folder would otherwise
    fail inside lm-eval after the model has loaded.
    """
    import yaml

    wanted = set(names)
    missing = []
    for folder in include_path:
        for path in sorted(Path(folder).rglob("*.yaml")):
            try:
                config = yaml.safe_load(path.read_text("utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError):
                continue  # lm-eval's own tags (!function): not ours to judge here
            if not isinstance(config, dict):
                continue
            tags = config.get("tag") or []
            tags = [tags] if isinstance(tags, str) else tags
            if config.get("task") not in wanted and not wanted.intersection(tags):
                continue
            files = (config.get("dataset_kwargs") or {}).get("data_files") or {}
            values = files.values() if isinstance(files, dict) else [files]
            for value in values:
                for name in [value] if isinstance(value, str) else value:
                    if (
                        isinstance(name, str)
                        and Path(name).is_absolute()
                        and not Path(name).exists()
                    ):
                        missing.append(f"  {path}: {name}")
    return missing


def _known(manager: Any, name: str) -> bool:
    return name in manager.task_index or (name.endswith((".yaml", ".yml")) and Path(name).is_file())


def build_task_manager(include_path: Sequence[str], names: Sequence[str], metadata: dict) -> Any:
    """An lm-eval TaskManager that knows every name in `names`, else an InputError.

    Indexing lm-eval's own ~15k task YAMLs takes ~12 s on a small CPU, so the
    include folders are indexed alone first and the full index is built only
    when a name is not local. Local tasks win over built-in ones of the same
    name either way, so the choice never changes which task runs.
    """
    import inspect

    from lm_eval.tasks import TaskManager

    # `include_defaults` and `metadata` are keywords of recent lm-eval releases only.
    accepted = inspect.signature(TaskManager).parameters
    extra = {"metadata": metadata} if "metadata" in accepted else {}
    paths = list(include_path) or None
    if paths and "include_defaults" in accepted:
        local = TaskManager(include_path=paths, include_defaults=False, **extra)
        if all(_known(local, n) for n in names):
            return local
    manager = TaskManager(include_path=paths, **extra)
    unknown = [n for n in names if not _known(manager, n)]
    if unknown:
        lines = []
        for name in unknown:
            close = difflib.get_close_matches(name, manager.all_tasks, n=3, cutoff=0.6)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            lines.append(f"  {name}{hint}")
        where = f" or in {', '.join(paths)}" if paths else ""
        raise InputError(
            f"unknown lm-eval task(s), not among lm-eval's {len(manager.all_tasks)} tasks"
            f"{where}:\n" + "\n".join(lines) + "\n(list them with `lm_eval ls tasks`; local "
            "task YAML folders go in include_path)"
        )
    return manager


@contextmanager
def offline_mode(enabled: bool) -> Iterator[None]:
    """Keep huggingface_hub, datasets and transformers off the network, then restore.

    The libraries read HF_HUB_OFFLINE / HF_DATASETS_OFFLINE once, at import, so
    setting the environment is not enough in a process that imported them: their
    module constants are switched too, and everything is put back afterwards.
    """
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants

    saved_env = {k: os.environ.get(k) for k in OFFLINE_ENV}
    patches = [
        (huggingface_hub.constants, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_HUB_OFFLINE"),
        (datasets.config, "HF_DATASETS_OFFLINE"),
    ]
    saved = [(mod, attr, getattr(mod, attr)) for mod, attr in patches if hasattr(mod, attr)]
    try:
        os.environ.update({k: "1" for k in OFFLINE_ENV})
        for mod, attr, _ in saved:
            setattr(mod, attr, True)
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for mod, attr, value in saved:
            setattr(mod, attr, value)


# --------------------------------------------------------------------------- results


def _number(value: Any) -> float | None:
    # lm-eval writes "N/A" where a standard error cannot be computed.
    return float(value) if isinstance(value, int | float) else None


def task_results(output: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per task (and group) from one lm-eval output: metrics, their stderr, shots, samples.

    Metric keys are lm-eval's metric names (`acc`, `acc_norm`, `exact_match`);
    a task scored under several filters gets `metric,filter` keys instead.
    """
    groups = set(output.get("groups", {}))
    out: dict[str, dict[str, Any]] = {}
    for name, entry in output["results"].items():
        keys = [k for k in entry if "," in k and not k.split(",", 1)[0].endswith("_stderr")]
        filters = sorted({k.split(",", 1)[1] for k in keys})
        metrics: dict[str, float | None] = {}
        stderr: dict[str, float | None] = {}
        for key in keys:
            metric, filt = key.split(",", 1)
            label = metric if len(filters) == 1 else key
            metrics[label] = _number(entry[key])
            stderr[label] = _number(entry.get(f"{metric}_stderr,{filt}"))
        samples = output.get("n-samples", {}).get(name, {})
        out[name] = {
            "metrics": metrics,
            "stderr": stderr,
            "filters": filters,
            "num_fewshot": output.get("n-shot", {}).get(name),
            "num_samples": samples.get("effective", entry.get("sample_len")),
            "num_items": samples.get("original"),
            "version": output.get("versions", {}).get(name),
            "higher_is_better": output.get("higher_is_better", {}).get(name, {}),
            "is_group": name in groups,
        }
    return out


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for dist in ("lm-eval", "transformers", "torch", "datasets"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _jsonable(value: Any) -> Any:
    # lm-eval's outputs hold numpy scalars, dtypes and callables here and there.
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)


def _bos_added(lm: Any) -> bool | None:
    """Whether the loaded model's requests really start with BOS (None: no BOS token)."""
    tokenizer = getattr(lm, "tokenizer", None)
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is None:
        return None
    ids = lm.tok_encode("Question:")
    return bool(ids) and ids[0] == bos


# --------------------------------------------------------------------------- the stage


def evaluate(cfg: EvaluateConfig, out_path: Path) -> dict[str, Any]:
    """Run lm-eval on `cfg.model` over `cfg.tasks`; write and return the results.

    Inputs (model folder, include folders, task names) are checked before the
    model is loaded. `out_path` is written atomically, as indented JSON.
    """
    import lm_eval
    from lm_eval.api.registry import get_model

    model, local = resolve_model(cfg.model)
    include_path = _check_include_paths(cfg.include_path)
    plan = plan_runs(cfg.tasks, cfg.num_fewshot)
    names = [n for _, group in plan for n in group]
    # The same model arguments as `--model_args pretrained=DIR,add_bos_token=True`; the
    # dtype and trust_remote_code values here are HFLM's defaults unless changed.
    model_args: dict[str, Any] = {
        "pretrained": model,
        "add_bos_token": cfg.add_bos_token,
        "dtype": cfg.dtype,
        "trust_remote_code": cfg.trust_remote_code,
    }
    started = time.time()
    runs = []
    results: dict[str, dict[str, Any]] = {}
    with offline_mode(cfg.offline):
        # lm-eval's CLI hands the model arguments to the task manager as metadata too.
        manager = build_task_manager(include_path, names, metadata=dict(model_args))
        missing = _missing_data_files(include_path, names)
        if missing:
            raise InputError(
                "local tasks point at data files that do not exist (task folders hold "
                "absolute paths: rewrite them where they now live, e.g. with "
                "write_probe_tasks):\n" + "\n".join(missing)
            )
        try:
            # What simple_evaluate does with model="hf"; built once so that every shot
            # group of a preset reuses the loaded weights.
            lm = get_model("hf").create_from_arg_obj(
                model_args, {"batch_size": cfg.batch_size, "device": cfg.device}
            )
        except OSError as exc:
            hint = " (offline is set: is it in the local cache?)" if cfg.offline else ""
            raise InputError(f"could not load model {cfg.model}{hint}: {exc}") from None
        bos_added = _bos_added(lm)
        if cfg.add_bos_token and bos_added is False:
            log.warning("add_bos_token is set but the tokenizer of %s adds no BOS", model)
        for shots, group in plan:
            t0 = time.time()
            output = lm_eval.simple_evaluate(
                model=lm,
                tasks=list(group),
                num_fewshot=shots,
                batch_size=cfg.batch_size,
                device=cfg.device,
                limit=cfg.limit,
                task_manager=manager,
                log_samples=False,
                random_seed=cfg.seed,
                numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed,
                fewshot_random_seed=cfg.seed,
                apply_chat_template=cfg.apply_chat_template,
            )
            assert output is not None  # None only on non-zero ranks of a distributed run
            output.pop("samples", None)
            results.update(task_results(output))
            runs.append(
                {
                    "num_fewshot": shots,
                    "tasks": list(group),
                    "seconds": round(time.time() - t0, 3),
                    "lm_eval": output,
                }
            )

    report = {
        "model": cfg.model,
        "model_path": model if local else None,
        "lm_eval_version": importlib.metadata.version("lm-eval"),
        "versions": _versions(),
        "bos_added": bos_added,
        # the template lm-eval rendered every prompt with (None: plain prompts)
        "chat_template": lm.chat_template(True) if cfg.apply_chat_template else None,
        "results": results,
        "config": cfg.model_dump(mode="json"),
        "model_args": model_args,
        "seconds": round(time.time() - started, 3),
        "runs": runs,
    }
    # Round-trip through JSON so the returned dict equals what the file holds.
    text = json.dumps(report, indent=2, ensure_ascii=False, default=_jsonable)
    atomic_write_text(Path(out_path), text + "\n")
    return json.loads(text)


def result_lines(result: dict[str, Any]) -> list[str]:
    """One line per task of an `evaluate` result: metrics with their stderr and the shots."""
    lines = []
    for task, res in sorted(result["results"].items()):
        shown = ", ".join(
            f"{k} {v:.3f} ± {res['stderr'].get(k) or 0:.3f}"
            for k, v in res["metrics"].items()
            if isinstance(v, float)
        )
        lines.append(f"{task}, {res.get('num_fewshot')}-shot: {shown}")
    return lines
