"""Shared fixtures: small real corpora written in every supported format; the CI skip policy."""

from __future__ import annotations

import json
import os
import re
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


# CI runs every test this machine can run: `make test` installs Chromium (as root) and
# the vLLM venv, so in CI a skip may only be for what no CI machine has, a GPU. Any
# other skip there is an install step gone missing and fails the run; -ra (pyproject)
# prints every skip reason, in CI or not.
CI_MAY_SKIP = re.compile(r"\b(GPU|CUDA)\b")


class CISkipPolicy:
    """Turns a CI run with a skip for anything but a GPU into a failed run."""

    def __init__(self) -> None:
        self.refused: list[tuple[str, str]] = []

    def _note(self, report: pytest.CollectReport | pytest.TestReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if not CI_MAY_SKIP.search(reason):
            self.refused.append((report.nodeid or str(report.fspath), reason))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._note(report)  # a module-level importorskip skips at collection

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._note(report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # NO_TESTS_COLLECTED: every test of the run sat in a module skipped at import
        ok = (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
        if self.refused and session.exitstatus in ok:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.refused:
            return
        terminalreporter.section("skips CI does not allow (only a missing GPU may skip)", red=True)
        for nodeid, reason in self.refused:
            terminalreporter.line(f"{nodeid}: {reason}")
        terminalreporter.line("install what the reason names in `make test`, or fix the skip")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        config.pluginmanager.register(CISkipPolicy(), "ci-skip-policy")
