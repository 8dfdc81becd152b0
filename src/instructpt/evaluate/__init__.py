"""Evaluation: lm-eval over model directories, and the world's knowledge probe as lm-eval tasks.

    tasks = write_probe_tasks(world_dir, run_dir / "eval" / "tasks")   # probe.py
    cfg = EvaluateConfig(model=str(model_dir), tasks=tasks, include_path=[str(task_dir)])
    results = evaluate(cfg, run_dir / "eval" / f"{variant}.json")    # harness.py

`probe` writes task YAMLs that lm-eval's own CLI runs unchanged; `harness`
runs any lm-eval tasks (and the `paper` preset) through lm-eval's Python API.
lm-eval itself is imported only when `evaluate` runs.
"""

from instructpt.evaluate.config import PRESETS, EvaluateConfig
from instructpt.evaluate.harness import evaluate, plan_runs, result_lines
from instructpt.evaluate.probe import (
    GEN_FEWSHOT_TASK,
    GEN_TASK,
    MC_TASK,
    PROBE_TAG,
    write_probe_tasks,
)

__all__ = [
    "GEN_FEWSHOT_TASK",
    "GEN_TASK",
    "MC_TASK",
    "PRESETS",
    "PROBE_TAG",
    "EvaluateConfig",
    "evaluate",
    "plan_runs",
    "result_lines",
    "write_probe_tasks",
]
