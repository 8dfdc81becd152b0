"""Stage directories that resume exactly, and refuse to mix two configs.

Layout of a stage directory while it runs:
    config.yaml        resolved config, written before any work
    _work/state.json   config hash + input fingerprint of the run in progress
    _work/...          finished units (renamed into place when complete)
    shard-*.jsonl.zst  final shards, renamed into place when complete
    stats.json         the manifest's stats, indented, written just before it
    _manifest.json     written last: its presence means the stage is done

On rerun with the same config and input, finished units are kept and
everything else is redone, so the output equals an uninterrupted run's.
With a different config or input the run is refused (naming what changed)
unless `--overwrite` is given, which clears the directory first.

A result that is one file (an evaluation's JSON) carries the same identity,
config hash + input fingerprint, inside itself (`stamp`); `current_result`
reuses it only when both match. A file is replaced whole, so there is nothing
to mix: a changed config or input redoes it instead of refusing.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from instructpt.core.atomic import atomic_write_bytes, remove_stale_temps
from instructpt.core.config import StageConfig, dump_config
from instructpt.core.manifest import (
    MANIFEST_NAME,
    Manifest,
    ShardInfo,
    read_manifest,
    write_manifest,
    write_stats,
)
from instructpt.core.shards import file_sha256
from instructpt.errors import ResumeError

WORK_DIR = "_work"
STATE_NAME = "state.json"
CONFIG_NAME = "config.yaml"


@dataclass
class StageDir:
    """An opened stage directory: where to write, and whether work is left."""

    path: Path
    done: Manifest | None  # set when the stage already finished with this config
    stage: str
    config_hash: str
    input_fingerprint: str

    @property
    def work(self) -> Path:
        return self.path / WORK_DIR

    def manifest(
        self, shards: list[ShardInfo], stats: dict[str, Any], format: str = "jsonl.zst"
    ) -> Manifest:
        """The manifest of this run: the stage, config and input it was opened with."""
        return Manifest(
            stage=self.stage,
            config_hash=self.config_hash,
            input_fingerprint=self.input_fingerprint,
            format=format,
            shards=shards,
            stats=stats,
        )

    def finish(self, manifest: Manifest) -> Manifest:
        """Publish `stats.json`, then the manifest (the stage is done from here on).

        The work dir goes last; the manifest is returned for the caller's result.
        """
        # Temp files of writers killed mid-shard (a retried Ray task, a dead pool
        # worker) would otherwise stay until a rerun; every writer has finished here.
        remove_stale_temps(self.path)
        write_stats(self.path, manifest.stats)
        write_manifest(self.path, manifest)
        shutil.rmtree(self.work, ignore_errors=True)
        return manifest


def _changed_keys(old: dict[str, Any], new: dict[str, Any], ignore: frozenset[str]) -> list[str]:
    keys = sorted((set(old) | set(new)) - ignore)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def _looks_like_stage_dir(path: Path) -> bool:
    return (
        (path / MANIFEST_NAME).exists()
        or (path / WORK_DIR).exists()
        or (path / CONFIG_NAME).exists()
    )


def open_stage_dir(
    path: Path,
    stage: str,
    config: StageConfig,
    input_fingerprint: str,
    overwrite: bool = False,
) -> StageDir:
    """Prepare `path` for `stage`: resume, skip (already done), or refuse."""
    new_hash = config.config_hash()
    if path.exists() and any(path.iterdir()):
        if not _looks_like_stage_dir(path):
            raise ResumeError(
                f"{path} is not empty and was not written by instructpt; "
                f"choose another run directory or empty it"
            )
        if overwrite:
            shutil.rmtree(path)
        else:
            previous = _previous_state(path)
            if previous is not None:
                old_hash, old_fp = previous
                if old_hash != new_hash:
                    raise ResumeError(_config_changed_message(path, stage, config))
                if old_fp != input_fingerprint:
                    raise ResumeError(
                        f"the input of stage '{stage}' changed since {path} was started "
                        f"(files, sizes or modification times differ). Resuming would mix "
                        f"two inputs; rerun with --overwrite to start over."
                    )
            done = read_manifest(path)
            if done is not None:
                return StageDir(path, done, stage, new_hash, input_fingerprint)
    path.mkdir(parents=True, exist_ok=True)
    work = path / WORK_DIR
    work.mkdir(exist_ok=True)
    remove_stale_temps(path)
    dump_config(config, path / CONFIG_NAME)
    state = {"stage": stage, "config_hash": new_hash, "input_fingerprint": input_fingerprint}
    atomic_write_bytes(work / STATE_NAME, orjson.dumps(state))
    return StageDir(path, None, stage, new_hash, input_fingerprint)


def _previous_state(path: Path) -> tuple[str, str] | None:
    manifest = read_manifest(path)
    if manifest is not None:
        return manifest.config_hash, manifest.input_fingerprint
    state_file = path / WORK_DIR / STATE_NAME
    if state_file.is_file():
        state = orjson.loads(state_file.read_bytes())
        return state["config_hash"], state["input_fingerprint"]
    return None


def _config_changed_message(path: Path, stage: str, config: StageConfig) -> str:
    changed: list[str] = []
    old_file = path / CONFIG_NAME
    if old_file.is_file():
        old = yaml.safe_load(old_file.read_text(encoding="utf-8")) or {}
        new = config.model_dump(mode="json")
        changed = _changed_keys(old, new, config.runtime_fields)
    what = "; ".join(changed) if changed else "config hash differs"
    return (
        f"stage '{stage}' in {path} was started with a different config ({what}). "
        f"Resuming would mix outputs of two configs. Use the original config to resume, "
        f"or rerun with --overwrite to start over."
    )


# --------------------------------------------------------------------------- single-file results


def stamp(config: StageConfig, input_fingerprint: str) -> dict[str, str]:
    """The identity a single-file result records: what a stage directory's manifest holds."""
    return {"config_hash": config.config_hash(), "input_fingerprint": input_fingerprint}


def current_result(
    path: Path, config: StageConfig, input_fingerprint: str
) -> dict[str, Any] | None:
    """The JSON result in `path` when it was made with this config and input, else None."""
    if not path.is_file():
        return None
    try:
        done = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return None  # cut short by hand or by a foreign writer: redo it
    if not isinstance(done, dict):
        return None
    wanted = stamp(config, input_fingerprint)
    return done if all(done.get(k) == v for k, v in wanted.items()) else None


def content_fingerprint(paths: Iterable[Path]) -> str:
    """Digest of the names and bytes of `paths` (every file inside a folder, in order).

    For inputs that are rewritten with the same bytes on every run (task folders),
    where sizes and modification times would report a change that is not there.
    """
    digest = hashlib.sha256()
    for i, root in enumerate(paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files:
            name = f.relative_to(root).as_posix() if root.is_dir() else f.name
            digest.update(orjson.dumps([i, name, file_sha256(f)]))
    return digest.hexdigest()[:16]
