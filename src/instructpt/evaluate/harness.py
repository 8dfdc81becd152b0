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
A task whose items carry an `attribute` (the world probe) also gets its
metrics per attribute (`by_attribute`), from lm-eval's per-item scores.

It also records what every stage's manifest records: the config hash and the
input fingerprint (the bytes of the local model folder and of the task
folders). A rerun whose config and inputs match returns that file without
loading anything; a changed config, model or task folder runs again.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from instructpt.assets import asset_path, is_present
from instructpt.core.atomic import atomic_write_text
from instructpt.core.lm_eval_tasks import build_task_manager, offline_mode
from instructpt.core.resume import content_fingerprint, current_result, stamp
from instructpt.errors import InputError
from instructpt.evaluate.answers import generated_answers
from instructpt.evaluate.config import PRESETS, EvaluateConfig
from instructpt.evaluate.probe import attribute_scores

log = logging.getLogger(__name__)


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
            task = config.get("task")
            name = task if isinstance(task, str) else config.get("group")  # a group: task list
            if name not in wanted and not wanted.intersection(tags):
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


#: Request length the logits check assumes: long few-shot prompts (boolq, mmlu) reach it.
LOGITS_CHECK_TOKENS = 2048


def available_memory_bytes(device: str) -> int | None:
    """Free memory where the logits will live: the GPU's, else the host's MemAvailable.

    Read from /proc/meminfo (no dependency for one number): on a host without it
    (macOS) this is None and `evaluate` skips the check rather than guess.
    """
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def logits_memory_warning(
    batch_size: int, max_tokens: int, vocab_size: int, available: int | None
) -> str | None:
    """A warning when one batch's logits may not fit, with a batch size that would.

    lm-eval scores a batch by taking log_softmax over the full logits (batch x
    tokens x vocabulary), so the output layer, not the weights, sets the peak: with
    Gemma's 262k vocabulary a batch of 16 five-shot BoolQ prompts needs tens of GB,
    and on a CPU the kernel kills the process with no message. Counted at 8 bytes per
    logit (fp32 logits and their log_softmax).
    """
    if available is None:
        return None
    per_request = max_tokens * vocab_size * 8
    if batch_size * per_request <= available:
        return None
    fits = max(1, available // per_request)
    return (
        f"batch_size {batch_size} may run out of memory: one batch of {max_tokens}-token "
        f"requests has {batch_size * per_request / 2**30:.0f} GiB of logits "
        f"({vocab_size:,}-token vocabulary) and {available / 2**30:.0f} GiB is free; "
        f"use --batch-size {fits} or less for long few-shot tasks"
    )


# --------------------------------------------------------------------------- the stage


def input_fingerprint(model: str, local: bool, include_path: Sequence[str]) -> str:
    """The bytes evaluated: a local model folder's files and the task folders'.

    A hub model is its name alone, which the config holds.
    """
    return content_fingerprint([Path(p) for p in ([model] if local else []) + list(include_path)])


def evaluate(cfg: EvaluateConfig, out_path: Path, overwrite: bool = False) -> dict[str, Any]:
    """Run lm-eval on `cfg.model` over `cfg.tasks`; write and return the results.

    Inputs (model folder, include folders, task names) are checked before the
    model is loaded. `out_path` is written atomically, as indented JSON. When it
    already holds the results of this config on these inputs they are returned
    as they are, unless `overwrite`.
    """
    model, local = resolve_model(cfg.model)
    paper_eval = paper_eval_folder(cfg.tasks)
    include_path = _check_include_paths(
        [*cfg.include_path, *([str(paper_eval)] if paper_eval else [])]
    )
    fingerprint = input_fingerprint(model, local, include_path)
    done = None if overwrite else current_result(Path(out_path), cfg, fingerprint)
    if done is not None:
        return done

    import lm_eval
    from lm_eval.api.registry import get_model

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
    # With the paper-eval asset every task of the preset reads local files: no hub at all.
    all_local = paper_eval is not None and set(cfg.tasks) <= set(PRESETS)
    with offline_mode(cfg.offline or all_local):
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
        warning = logits_memory_warning(
            cfg.batch_size,
            min(int(lm.max_length), LOGITS_CHECK_TOKENS),
            int(lm.model.get_output_embeddings().weight.shape[0]),
            available_memory_bytes(cfg.device),
        )
        if warning:
            log.warning(warning)
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
                # per-item scores, for the per-attribute breakdown of the world probe
                log_samples=True,
                random_seed=cfg.seed,
                numpy_random_seed=cfg.seed,
                torch_random_seed=cfg.seed,
                fewshot_random_seed=cfg.seed,
                apply_chat_template=cfg.apply_chat_template,
            )
            assert output is not None  # None only on non-zero ranks of a distributed run
            samples = output.pop("samples", None) or {}
            results.update(task_results(output))
            for task, logged in samples.items():
                by_attribute = attribute_scores(logged)
                if by_attribute is not None and task in results:
                    results[task]["by_attribute"] = by_attribute
                answers = generated_answers(logged)
                if answers is not None and task in results:
                    results[task]["answers"] = answers  # which questions flipped, in the report
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
        # where the paper's tasks came from, and every split that differs from lm-eval's
        "paper_eval": str(paper_eval) if paper_eval else None,
        "split_substitutions": split_substitutions(paper_eval),
        "config": cfg.model_dump(mode="json"),
        **stamp(cfg, fingerprint),
        "model_args": model_args,
        "seconds": round(time.time() - started, 3),
        "runs": runs,
    }
    # Round-trip through JSON so the returned dict equals what the file holds.
    text = json.dumps(report, indent=2, ensure_ascii=False, default=_jsonable)
    atomic_write_text(Path(out_path), text + "\n")
    return json.loads(text)


def paper_eval_folder(tasks: Sequence[str]) -> Path | None:
    """The `paper-eval` asset's task folder when the paper preset is asked for and it is fetched.

    The asset's YAMLs carry lm-eval's own task names over local copies of the data
    (`instructpt assets get paper-eval`), so adding the folder to the include path
    is all it takes; without it the preset reads lm-eval's hub datasets as before.
    """
    if not any(t in PRESETS for t in tasks) or not is_present("paper-eval"):
        return None
    return asset_path("paper-eval")


def split_substitutions(paper_eval: Path | None) -> list[Any]:
    """The asset's record of splits scored instead of lm-eval's (e.g. ARC on validation)."""
    if paper_eval is None:
        return []
    return json.loads((paper_eval / "splits.json").read_text(encoding="utf-8"))["substitutions"]


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
