"""In CI a skip is allowed only for a GPU; any other skip fails the run (tests/conftest.py).

Each case runs a real pytest in a subprocess on a tiny test file, with the policy of
tests/conftest.py loaded as a plugin, once with CI=true and once without CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

TESTS = """
import pytest

def test_runs():
    pass

@pytest.mark.skipif(True, reason="needs a CUDA GPU")
def test_on_a_gpu():
    pass
"""


# the policy of tests/conftest.py as a plugin; -ra as in pyproject
PYTEST = ("-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-ra", "-q")


def run_pytest(folder: Path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = str(REPO)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, *PYTEST, str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_skip_for_a_missing_gpu_passes_in_ci(tmp_path):
    (tmp_path / "test_gpu.py").write_text(TESTS)
    proc = run_pytest(tmp_path, ci=True)
    assert proc.returncode == 0, proc.stdout
    assert "1 passed, 1 skipped" in proc.stdout


def test_a_skip_for_a_missing_install_step_fails_in_ci_and_names_the_reason(tmp_path):
    (tmp_path / "test_install.py").write_text(
        TESTS + '\n\ndef test_browser():\n    pytest.skip("no Chromium on PATH")\n'
    )
    proc = run_pytest(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout
    assert "skips CI does not allow" in proc.stdout
    assert "test_install.py::test_browser: no Chromium on PATH" in proc.stdout
    section = proc.stdout.split("skips CI does not allow")[1].split("install what")[0]
    assert "no Chromium" in section and "needs a CUDA GPU" not in section

    assert run_pytest(tmp_path, ci=False).returncode == 0  # outside CI it is a printed skip


def test_a_module_skipped_at_import_fails_in_ci(tmp_path):
    module = 'import pytest\n\npytest.importorskip("no_such_mod")\n'
    (tmp_path / "test_module.py").write_text(module)
    proc = run_pytest(tmp_path, ci=True)
    assert proc.returncode == 1, proc.stdout
    assert "could not import 'no_such_mod'" in proc.stdout
