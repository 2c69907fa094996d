"""The package's shape: module sizes, one-line docstrings, and imports that flow one way.

The layers follow docs/architecture.md: a module may import only modules of a lower layer (or,
inside a subpackage, its siblings), and the import graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "universal_service"

#: Layer of each top-level module or subpackage; imports go from a higher layer to a lower one.
LAYERS = {
    "errors": 0,
    "forked": 0,
    "schema": 1,
    "milp": 1,
    "instances": 1,
    "gcj02": 1,
    "buildrules": 1,
    "nationalpack": 2,
    "io": 2,
    "outputs": 2,
    "appraisal": 2,
    "uploads": 3,
    "newregion": 3,
    "catalog": 3,
    "terrain": 3,
    "lcp": 3,
    "fibercost": 3,
    "steiner": 3,
    "los": 4,
    "viewshed": 5,
    "pathloss": 5,
    "radio": 6,
    "network": 6,
    "sites": 7,
    "costs": 8,
    "optimize": 9,
    "baseline": 9,
    "fiberplan": 10,
    "allocate": 10,
    "rollout": 10,
    "countybuild": 10,
    "scenarios": 11,
    "districts": 12,
    "report": 12,
    "synthetic": 12,
    "plot": 12,
    "studies": 13,
    "uncertainty": 13,
    "national": 13,
    "runcache": 14,
    "views": 14,
    "cli": 15,
    "__main__": 16,
    "__init__": 16,
}

MAX_LINES = 800


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Modules of the package imported by ``path`` (absolute dotted names)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("universal_service"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            if not mod.startswith("universal_service"):
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                is_package = (PACKAGE.parent / Path(*sub.split("."))).is_dir()
                found.add(sub if is_module or is_package else mod)
    found.discard(me)
    return found


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_module_is_small_and_says_its_job(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{_name(path)} has {lines} lines (limit {MAX_LINES}): split it"
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{_name(path)} has no module docstring"
    first = doc.splitlines()[0]
    assert first.endswith("."), f"{_name(path)}: the docstring's first line is not one sentence"


def test_every_module_has_a_layer() -> None:
    missing = sorted({_top(_name(p)) for p in _modules()} - set(LAYERS))
    assert not missing, f"add these modules to LAYERS (and docs/architecture.md): {missing}"


def test_imports_flow_one_way() -> None:
    graph = nx.DiGraph()
    wrong = []
    for path in _modules():
        me = _name(path)
        graph.add_node(me)
        for other in _imports(path):
            graph.add_edge(me, other)
            a, b = _top(me), _top(other)
            if a != b and LAYERS[b] >= LAYERS[a]:
                wrong.append(f"{me} (layer {LAYERS[a]}) imports {other} (layer {LAYERS[b]})")
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles}"


def test_the_library_never_imports_streamlit() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "streamlit" for n in names), _name(path)


def test_the_api_reference_lists_every_module() -> None:
    api = (PACKAGE.parent / "docs" / "api.md").read_text(encoding="utf-8")
    listed = {line.split()[1] for line in api.splitlines() if line.startswith("::: ")}
    wanted = {
        _name(p)
        for p in _modules()
        if p.name not in ("__init__.py", "__main__.py") or p.parent != PACKAGE
    }
    wanted = {m for m in wanted if not m.endswith("__main__")} - {"universal_service"}
    # a subpackage is documented by its modules
    wanted -= {m for m in wanted if (PACKAGE.parent / Path(*m.split("."))).is_dir()}
    missing = sorted(wanted - listed)
    assert not missing, f"add to docs/api.md: {missing}"
    for name in ("architecture.md", "methods.md", "index.md"):
        assert (PACKAGE.parent / "docs" / name).is_file(), name
