"""`--executor ray` runs mine, cook and tokenize to the same bytes as a local run.

Each stage is run twice on the same input, once in this process and once as
Ray tasks on a local 2-CPU Ray, and every output file is compared byte for
byte (shards, done stats, manifest). Then the fault cases: a run stopped by an
error resumes by manifest (started locally, finished on Ray), and a task
whose worker process dies mid-shard is retried without losing or duplicating
a record.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instructpt.cook.config import CookConfig
from instructpt.cook.stage import cook
from instructpt.core.manifest import read_manifest
from instructpt.core.runner import run_map_stage
from instructpt.core.shards import read_shard
from instructpt.errors import InputError
from instructpt.mine import MineConfig, mine
from instructpt.mine.stage import mine_shard
from instructpt.mix.config import MixConfig
from instructpt.mix.stage import mix
from instructpt.pack.config import TokenizeConfig, TokenizerTrainConfig
from instructpt.pack.tokenize import tokenize
from instructpt.pack.tokenizer import train_tokenizer_stage
from tests.conftest import tree_bytes

MINE = MineConfig(progress=False)
COOK = CookConfig(progress=False)


def _all_files(folder: Path) -> dict[str, bytes]:
    """Every file of a finished stage directory (config, shards, stats, manifest)."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _ids(folder: Path) -> list[str]:
    return [r["id"] for s in sorted(folder.glob("shard-*")) for r in read_shard(s)]


@pytest.fixture(scope="module")
def local_mined(tmp_path_factory, world_corpus) -> Path:
    out = tmp_path_factory.mktemp("local") / "synth"
    mine(MINE, world_corpus, out)
    return out


def test_mine_on_ray_writes_the_local_files_byte_for_byte(
    tmp_path, world_corpus, local_mined, ray_executor
):
    result = mine(MINE, world_corpus, tmp_path / "synth", executor=ray_executor)
    assert result.manifest.num_records == 57
    assert _all_files(tmp_path / "synth") == _all_files(local_mined)


def test_cook_on_ray_writes_the_local_files_byte_for_byte(tmp_path, local_mined, ray_executor):
    cook(COOK, local_mined, tmp_path / "local")
    result = cook(COOK, local_mined, tmp_path / "ray", executor=ray_executor)
    assert result.manifest.stats["written"] > 0
    assert _all_files(tmp_path / "ray") == _all_files(tmp_path / "local")


def test_tokenize_on_ray_writes_the_local_files_byte_for_byte(tmp_path, world_corpus, ray_executor):
    tok = tmp_path / "tokenizer"
    train_tokenizer_stage(TokenizerTrainConfig(input=[str(world_corpus)], vocab_size=300), tok)
    mix(
        MixConfig(tokenizer=str(tok), corpus=str(world_corpus), recipe="vanilla", num_shards=3),
        tmp_path / "mix",
    )
    # use_mix_cache off: encode the text in the workers, the path that does real work
    cfg = TokenizeConfig(tokenizer=str(tok), seq_len=32, use_mix_cache=False, progress=False)
    tokenize(cfg, tmp_path / "mix", tmp_path / "local")
    manifest = tokenize(cfg, tmp_path / "mix", tmp_path / "ray", executor=ray_executor)
    assert len(manifest.shards) == 3
    assert manifest.stats["shards_encoded"] == 3
    assert _all_files(tmp_path / "ray") == _all_files(tmp_path / "local")


def _fail_on_shard(
    records: Iterator[dict[str, Any]], stats: Counter[str], *, bad_id: str
) -> Iterator[dict[str, Any]]:
    """Mine, but stop with an error at one document (a crash in the middle of a run)."""
    for rec in mine_shard(records, stats, MINE):
        if rec["id"] == bad_id:
            raise InputError(f"stopped at {bad_id}")
        yield rec


def test_a_run_stopped_locally_resumes_on_ray_by_manifest(
    tmp_path, world_corpus, local_mined, ray_executor
):
    source = read_manifest(world_corpus)
    bad_id = next(read_shard(world_corpus / source.shards[2].file))["id"]
    out = tmp_path / "synth"
    stopped = functools.partial(_fail_on_shard, bad_id=bad_id)
    with pytest.raises(InputError, match="stopped at"):
        run_map_stage("synthesize", world_corpus, out, stopped, MINE, input_stage="ingest")
    first = {name: (out / name).stat().st_mtime_ns for name in ("shard-00000.jsonl.zst",)}
    assert not (out / "shard-00002.jsonl.zst").exists()

    mine(MINE, world_corpus, out, executor=ray_executor)

    assert _all_files(out) == _all_files(local_mined)
    # shards marked done by the local run were kept, not recomputed
    assert (out / "shard-00000.jsonl.zst").stat().st_mtime_ns == first["shard-00000.jsonl.zst"]


def _die_once(
    records: Iterator[dict[str, Any]], stats: Counter[str], *, marker: str
) -> Iterator[dict[str, Any]]:
    """Mine; the first attempt to reach a shard's 4th record kills its worker process."""
    for n, rec in enumerate(mine_shard(records, stats, MINE)):
        if n == 3 and not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)  # the worker dies mid-shard, with a temp file half written
        yield rec


def test_a_killed_worker_loses_and_duplicates_nothing(
    tmp_path, world_corpus, local_mined, ray_executor
):
    marker = tmp_path / "killed-once"
    out = tmp_path / "synth"
    fn = functools.partial(_die_once, marker=str(marker))
    manifest, _ = run_map_stage(
        "synthesize", world_corpus, out, fn, MINE, input_stage="ingest", executor=ray_executor
    )
    assert marker.exists()  # a worker really died
    ids = _ids(out)
    assert len(ids) == len(set(ids)) == manifest.num_records == 57
    assert ids == _ids(local_mined)
    assert tree_bytes(out) == tree_bytes(local_mined)
    assert not list(out.glob(".*.tmp"))  # the dead attempt's temp file is cleaned up
