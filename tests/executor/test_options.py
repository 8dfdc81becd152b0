"""`--executor` on the command line: optional Ray, clear errors, no config-hash change."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from instructpt.cli import main
from instructpt.core.executor import make_executor
from instructpt.errors import ConfigError
from tests.conftest import tree_bytes


def test_importing_instructpt_never_imports_ray():
    code = (
        "import sys, instructpt, instructpt.cli, instructpt.core.executor, instructpt.synth.stage\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'instructpt\[ray\]'"):
        make_executor("ray")


def test_cli_without_ray_exits_with_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    result = CliRunner().invoke(main, ["mine", "--run-dir", str(tmp_path), "--executor", "ray"])
    assert result.exit_code == 2
    assert "instructpt[ray]" in result.output


def test_ray_flags_need_the_ray_executor():
    with pytest.raises(ConfigError, match="need --executor ray"):
        make_executor("local", address="auto")


def test_cli_mine_and_cook_on_ray_equal_local_and_resume_across_executors(
    tmp_path, world_corpus, ray_executor
):
    """The same run directory finished on either executor: the config hash ignores it."""
    runner = CliRunner()
    for name in ("local", "ray"):
        run = tmp_path / name
        shutil.copytree(world_corpus, run / "corpus")
        for stage in ("mine", "cook"):
            args = [stage, "--run-dir", str(run), "--no-progress", "--executor", name]
            result = runner.invoke(main, args)
            assert result.exit_code == 0, result.output
    for stage in ("synth", "cooked"):
        assert tree_bytes(tmp_path / "ray" / stage) == tree_bytes(tmp_path / "local" / stage)
    # a finished local stage is complete for the Ray executor too
    args = ["cook", "--run-dir", str(tmp_path / "local"), "--no-progress", "--executor", "ray"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0 and "already complete" in result.output
