"""Synthesis on Ray: engine replicas as actors, one shard (all its rounds) at a time each.

The generic part (shard functions as tasks, retries, ordered results) is
`core/ray_executor.py`; this module holds what is specific to synthesis: the
actor that owns one engine and the resources each engine needs. See the
docstring of `core/ray_executor.py` for why whole shards, and how faults and
resume work.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from instructpt.core.manifest import Manifest
from instructpt.core.ray_executor import RayExecutor, get_result
from instructpt.synth.config import SynthesizeConfig
from instructpt.synth.engines.registry import engine_options
from instructpt.synth.runner import make_runner, synthesize_unit


def synthesize_shards(
    executor: RayExecutor,
    cfg: SynthesizeConfig,
    source: Manifest,
    corpus_dir: Path,
    work: Path,
    cache_path: Path | None,
    engine_factory: Callable[[SynthesizeConfig], Any],
    on_shard: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """Write every missing `_work/r{r}/<shard>` unit with engine actors of `executor`.

    Returns the requests sent and cache hits over all actors;
    `on_shard(records)` is called as each shard finishes all its rounds.
    """
    todo: list[tuple[int, str, int]] = []
    for index, shard in enumerate(source.shards):
        if all((work / f"r{r}" / shard.file).is_file() for r in range(cfg.num_rounds)):
            if on_shard is not None:
                on_shard(shard.records)
        else:
            todo.append((index, shard.file, shard.records))
    totals = {"sent": 0, "cache_hits": 0}
    if not todo:
        return totals
    resources = engine_resources(cfg, ray.cluster_resources())
    num = executor.replicas or default_replicas(cfg, resources, ray.cluster_resources())
    worker_cls = ray.remote(SynthWorker).options(
        max_restarts=executor.max_retries, max_task_retries=executor.max_retries, **resources
    )
    actors = [
        worker_cls.remote(cfg, engine_factory, cache_path) for _ in range(min(num, len(todo)))
    ]
    try:
        idle = list(actors)
        queue = deque(todo)
        running: dict[Any, tuple[Any, int]] = {}
        while queue or running:
            while queue and idle:
                index, shard_file, records = queue.popleft()
                actor = idle.pop()
                ref = actor.run_shard.remote(index, shard_file, corpus_dir, work)
                running[ref] = (actor, records)
            [ref], _ = ray.wait(list(running), num_returns=1)
            actor, records = running.pop(ref)
            counts = get_result(ref)
            idle.append(actor)
            for key in totals:
                totals[key] += counts[key]
            if on_shard is not None:
                on_shard(records)
        # Free engines (vLLM's GPU memory and engine process) before the actors go.
        ray.get([actor.close.remote() for actor in actors], timeout=120)
    finally:
        for actor in actors:
            ray.kill(actor)
    return totals


class SynthWorker:
    """One engine replica (a Ray actor): synthesizes whole shards, round by round."""

    def __init__(
        self,
        cfg: SynthesizeConfig,
        engine_factory: Callable[[SynthesizeConfig], Any],
        cache_path: Path | None,
    ) -> None:
        self.cfg = cfg
        self.runner = make_runner(cfg, engine_factory, cache_path)

    def run_shard(
        self, index: int, shard_file: str, corpus_dir: Path, work: Path
    ) -> dict[str, int]:
        sent = self.runner.sent
        hits = self.runner.cache.hits if self.runner.cache is not None else 0
        for r in range(self.cfg.num_rounds):
            if not (work / f"r{r}" / shard_file).is_file():  # finished before a restart
                synthesize_unit(self.runner, r, index, shard_file, corpus_dir, work)
        hits_now = self.runner.cache.hits if self.runner.cache is not None else 0
        return {"sent": self.runner.sent - sent, "cache_hits": hits_now - hits}

    def close(self) -> None:
        self.runner.close()


def engine_resources(cfg: SynthesizeConfig, cluster: dict[str, float]) -> dict[str, float]:
    """Ray resources of one engine replica: one CPU, plus the GPUs its options ask for
    (`replica_gpus`: vllm `tensor_parallel_size`; hf one when its device is CUDA, or
    auto on a cluster with GPUs; openai none, the servers do the work)."""
    gpus = engine_options(cfg).replica_gpus(cluster_has_gpu=cluster.get("GPU", 0) >= 1)
    return {"num_cpus": 1, "num_gpus": gpus} if gpus else {"num_cpus": 1}


def default_replicas(
    cfg: SynthesizeConfig, resources: dict[str, float], cluster: dict[str, float]
) -> int:
    """As many replicas as the cluster holds at once; one for an engine whose servers do
    the work (more replicas would multiply `openai.concurrency`, not the servers)."""
    if engine_options(cfg).serves_remotely:
        return 1
    if resources.get("num_gpus"):
        return max(1, int(cluster.get("GPU", 0) // resources["num_gpus"]))
    return max(1, int(cluster.get("CPU", 1) // resources["num_cpus"]))
