"""Imports go one way along the data flow, no module imports itself through others, and
``import neurofm`` stays light (STYLE rule 1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "neurofm"

# Rank of each subpackage along the data flow; a module may import only equal or lower ranks.
ORDER = {
    "io": 1,
    "preprocessing": 2,
    "data": 3,
    "layers": 4,
    "tokenizers": 5,
    "generation": 6,
    "models": 7,
    "objectives": 8,
    "training": 9,
    "evaluation": 10,
    "workflows": 11,
    "cli": 12,
}
# Contract modules every layer may use: errors, config, registry, shared types, the Recording.
BASE = {
    "neurofm",
    "neurofm._version",
    "neurofm.errors",
    "neurofm.logging",
    "neurofm.registry",
    "neurofm.config",
    "neurofm.checks",
    "neurofm.types",
    "neurofm.fileio",
    "neurofm.data.recording",
}


# Import cycles still present on purpose. Each pair is one known circle; nothing else may appear.
KNOWN_CYCLES: set[frozenset[str]] = set()  # none: every module's imports form a tree


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package is named by its ``__init__``)."""
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        modules[".".join(rel.parts).removesuffix(".__init__")] = path
    return modules


def _rank(module: str) -> int:
    if module in BASE:
        return 0
    parts = module.split(".")
    return ORDER.get(parts[1], 0) if len(parts) > 1 else 0


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("neurofm")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("neurofm"):
            found.append(node.module)
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the neurofm modules it imports anywhere in its file (functions included).

    ``from neurofm.pkg import name`` imports the submodule ``neurofm.pkg.name`` when there is one,
    else the package ``neurofm.pkg``.
    """
    modules = _modules()
    graph = {}
    for module, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name.startswith("neurofm"))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neurofm"):
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    targets.add(submodule if submodule in modules else node.module)
        graph[module] = {t for t in targets if t in modules and t != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return "{" + ", ".join(component) + "}: " + "; ".join(edges)


def test_cycle_finder_reports_every_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d", "a"}, "f": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"], ["d", "e"]]


def test_no_import_cycles():
    graph = _import_graph()
    cycles = [c for c in _cycles(graph) if frozenset(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_imports_follow_the_data_flow():
    violations = []
    for module, path in _modules().items():
        own = _rank(module) if module not in BASE else 0
        for imported in _imports(path):
            if module in BASE and imported not in BASE and _rank(imported) > 0:
                violations.append(f"{module} (contract module) imports {imported}")
            elif _rank(imported) > own:
                violations.append(f"{module} imports {imported} (against the data flow)")
    assert not violations, "\n".join(violations)


def test_import_neurofm_is_light():
    code = (
        "import sys, neurofm, neurofm.registry, neurofm.config; "
        "heavy = [m for m in ('torch', 'mne', 'lightning', 'transformers', 'matplotlib') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import neurofm pulled in heavy modules: {out.stdout}"


def test_reading_a_run_imports_no_lightning():
    """``load_run`` and the run-folder format stay usable without the training stack."""
    code = (
        "import neurofm.training.run, sys; "
        "print([m for m in sys.modules if m.startswith(('lightning', 'pytorch_lightning'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", f"import neurofm.training.run pulled in {out.stdout}"
