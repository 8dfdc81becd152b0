"""lm-eval task lookup and offline mode, shared by `evaluate` and decontamination (`filter`).

Both need to find lm-eval tasks by name (local YAML folders first, the
built-in index only when a name is not local) and to keep the hub and
datasets libraries off the network while doing so.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from instructpt.errors import InputError

#: Environment variables that keep the hub and datasets libraries off the network.
OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


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
