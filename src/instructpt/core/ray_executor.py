"""`--executor ray`: the same shard functions as Ray tasks, synthesis engines as Ray actors.

Why Ray tasks per shard (and not a Ray Data pipeline of records): a stage's
unit of output, resume and proof is the shard (one output shard per input
shard, a done marker per shard, the manifest last; `core/runner.py`).
Mapping whole shards keeps every one of those files byte-identical to a
local run, and resume stays what it is locally: the driver skips shards
whose done marker exists, so a run can be started on one executor and
finished on the other. Re-partitioning records through Ray Data blocks would
change shard boundaries and need a second resume mechanism. What Ray adds is
the cluster: scheduling on every node's cores and GPUs, and retries.

Faults. A task (or actor) whose worker dies is retried by Ray
(`max_retries`, `max_restarts`, `max_task_retries`). Retrying is safe
because every unit is idempotent: a shard is computed from its input alone
and published by an atomic rename (`core/atomic.py`), so a retry writes the
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
from typing import Any, TypeVar

import ray
from ray.exceptions import RayTaskError

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


def get_result(ref: Any) -> Any:
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
                result = get_result(in_flight[0])
                in_flight.popleft()
                submit()
                yield result
        finally:
            for ref in in_flight:  # an error or an abandoned generator: stop the rest
                ray.cancel(ref)
