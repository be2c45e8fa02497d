"""Imports go one way along the data flow, and ``import neurofm`` stays light (STYLE rule 1)."""

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


def test_imports_follow_the_data_flow():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
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
