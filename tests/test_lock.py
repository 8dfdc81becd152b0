"""The locks `make demo` and `make test` install from agree with what they were compiled from.

requirements/lock.py holds the rules; these tests are the check a contributor meets
when a dependency changed in pyproject.toml (or requirements/vllm.in) and `make lock`
was not run, plus the properties the locks must keep: every pin inside pyproject's
ranges, torch the CPU build.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

# requirements/lock.py is a script, not part of the package: load it from its file.
_spec = importlib.util.spec_from_file_location("requirements_lock", REPO / "requirements/lock.py")
lock = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = lock  # dataclasses look their module up there
_spec.loader.exec_module(lock)


def pins(path: Path) -> dict[str, str]:
    found = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", path.read_text("utf-8"), re.MULTILINE)
    return {canonicalize_name(name): version for name, version in found}


def copy_inputs(tmp: Path) -> Path:
    for rel in ("pyproject.toml", "requirements/vllm.in", *(lk.path for lk in lock.LOCKS)):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / rel, tmp / rel)
    return tmp


def test_every_lock_was_compiled_from_the_current_inputs():
    assert lock.stale() == [], "\n".join(lock.stale())


def test_a_changed_dependency_range_without_make_lock_is_caught_and_names_make_lock(tmp_path):
    root = copy_inputs(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    assert '"click>=8.1"' in text
    pyproject.write_text(text.replace('"click>=8.1"', '"click>=8.2"'), "utf-8")

    problems = lock.stale(root)
    assert len(problems) == 1
    assert "requirements/lock.txt" in problems[0] and "`make lock`" in problems[0]


def test_a_new_optional_dependency_or_vllm_pin_is_caught_too(tmp_path):
    root = copy_inputs(tmp_path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    assert "\n[project.scripts]" in text  # the table after optional-dependencies
    extra = 'x = ["gguf>=0.10"]\n\n[project.scripts]'
    pyproject.write_text(text.replace("[project.scripts]", extra), "utf-8")
    vllm_in = root / "requirements" / "vllm.in"
    vllm_in.write_text(vllm_in.read_text("utf-8") + "numpy<3\n", "utf-8")

    problems = lock.stale(root)
    assert [p.split()[0] for p in problems] == [lk.path for lk in lock.LOCKS]


def test_comments_and_formatting_of_pyproject_do_not_make_the_lock_stale(tmp_path):
    root = copy_inputs(tmp_path)
    main = lock.LOCKS[0]
    before = lock.inputs_digest(main, root)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text("utf-8")
    text = "# a comment\n" + text.replace('"click>=8.1",', '"click>=8.1",  # cli')
    pyproject.write_text(text, "utf-8")

    assert lock.inputs_digest(main, root) == before


def test_every_pin_of_the_main_lock_is_inside_pyprojects_ranges():
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    locked = pins(REPO / "requirements" / "lock.txt")
    env = {**default_environment(), "extra": "dev"}
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is not in requirements/lock.txt: run `make lock`"
        assert req.specifier.contains(locked[name], prereleases=True), (
            f"lock pins {req.name}=={locked[name]}, pyproject asks {req}: run `make lock`"
        )


def test_both_locks_pin_the_cpu_build_of_torch_and_no_cuda_wheels():
    for lk in lock.LOCKS:
        locked = pins(REPO / lk.path)
        assert locked["torch"] == "2.13.0+cpu", lk.path
        assert not [name for name in locked if name.startswith("nvidia-")], lk.path
        assert not set(lk.no_emit) & set(locked), lk.path
