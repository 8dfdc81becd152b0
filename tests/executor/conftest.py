"""A real Ray instance on this machine (2 CPUs), started once per session, and a small corpus.

Ray is an optional extra: without it every test here is skipped, not failed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from instructpt.corpus.config import IngestConfig
from instructpt.corpus.ingest import ingest
from instructpt.world import build_world, write_world
from instructpt.world.config import WorldConfig

SMALL_WORLD = WorldConfig(
    seed=11, num_people=40, num_countries=3, num_cities=6, num_universities=3, num_companies=5
)


@pytest.fixture(scope="session")
def ray_executor():
    """A `RayExecutor` on a local 2-CPU Ray, shared by every test of the session."""
    ray = pytest.importorskip("ray")
    from instructpt.core.ray_executor import RayExecutor

    for attempt in range(3):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            # On a saturated machine the raylet can give up waiting for its metrics
            # agent (a fixed 15 s, ray-project/ray#65983); a second start succeeds.
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield RayExecutor()  # attaches to the running instance; closing it leaves Ray up
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def world_corpus(tmp_path_factory) -> Path:
    """The small demo world's documents, ingested into 4 shards."""
    tmp = tmp_path_factory.mktemp("executor-corpus")
    write_world(build_world(SMALL_WORLD), tmp / "world")
    docs = str(tmp / "world" / "documents.jsonl")
    ingest(IngestConfig(input=[docs], num_shards=4, progress=False), tmp / "corpus")
    return tmp / "corpus"
