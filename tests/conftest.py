"""Shared fixtures: small real corpora written in every supported format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, records: list[dict], newline: str = "\n") -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + newline for r in records), "utf-8")
    return path


def sample_records(n: int, prefix: str = "doc") -> list[dict]:
    return [
        {"id": f"{prefix}-{i}", "text": f"Text number {i}. " + "word " * (i % 7 + 1), "lang": "en"}
        for i in range(n)
    ]


def run_cli(
    *args: str, cwd: Path, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "instructpt.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"instructpt {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def tree_bytes(folder: Path, pattern: str = "shard-*") -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(pattern))}


@pytest.fixture
def records() -> list[dict]:
    return sample_records(40)
