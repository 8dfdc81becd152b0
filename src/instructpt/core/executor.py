"""Where a stage's shards run: in this process (local) or on a Ray cluster.

The stages are the same either way (STYLE.md, principle 2): `synthesize`,
`mine`, `cook` and `tokenize` are plain functions over shards, and the
executor only decides where each shard is mapped. Local execution is the
default and is spelled `None` in the stage functions (their in-process or
spawn-pool path, unchanged); `--executor ray` passes a `RayExecutor`, which
maps the same shard function as one Ray task per shard and runs synthesis
engines as Ray actors. Shard files, done markers and the manifest are
written exactly as a local run writes them, so a stage can be started on one
executor and resumed on the other.

The executor is not part of any stage config: where work runs never changes
what it produces, so it must not change the config hash (which would refuse
to resume a run started locally).

Ray is an optional extra: this module never imports it; `make_executor("ray")`
does, and names the extra when it is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol, TypeVar

from instructpt.errors import ConfigError

if TYPE_CHECKING:
    from instructpt.core.ray_executor import RayExecutor

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")

#: Shown when `--executor ray` is asked for without Ray installed.
RAY_INSTALL_HINT = (
    "--executor ray needs Ray, which is not installed in this environment: "
    "pip install 'instructpt[ray]' (or run with --executor local)"
)


class Executor(Protocol):
    """What a stage needs to run its shards somewhere else than in this process."""

    name: str

    def map_ordered(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        num_workers: int,
        initializer: Callable[[], None] | None = None,
    ) -> Iterator[R]:
        """`fn` over `items`, results in input order (as `corpus.parallel.map_ordered`)."""
        ...

    def close(self) -> None: ...


def make_executor(
    name: str, address: str | None = None, replicas: int | None = None
) -> RayExecutor | None:
    """The executor called `name`: None for local, a connected `RayExecutor` for ray.

    `address`: a Ray cluster (`auto`, `ray://host:10001`, `host:6379`); None
    attaches to `RAY_ADDRESS` when set, else starts a Ray instance on this
    machine. `replicas`: synthesis engine actors (None: as many as fit).
    """
    if name == "local":
        if address is not None or replicas is not None:
            raise ConfigError("--ray-address and --ray-replicas need --executor ray")
        return None
    if name != "ray":
        raise ConfigError(f"unknown executor '{name}'; choose one of: {', '.join(EXECUTORS)}")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError(RAY_INSTALL_HINT) from None
    from instructpt.core.ray_executor import RayExecutor

    return RayExecutor(address=address, replicas=replicas)


@contextmanager
def open_executor(
    name: str, address: str | None = None, replicas: int | None = None
) -> Iterator[RayExecutor | None]:
    """`make_executor`, shutting down a Ray instance it started when the block ends."""
    executor = make_executor(name, address, replicas)
    try:
        yield executor
    finally:
        if executor is not None:
            executor.close()


__all__ = ["EXECUTORS", "RAY_INSTALL_HINT", "Executor", "make_executor", "open_executor"]
