"""The house keeps its shape: each package imports only from the layers before it, and nothing cycles.

Every ``import`` in ``src/harvit`` counts, at module level and inside functions alike. Only the
CLI (and ``__main__``) may import inside functions, to start fast.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: The layers, first to last. A module may import from earlier layers and from its own package.
LAYERS: list[tuple[str, ...]] = [
    ("harvit", "harvit.utils"),
    ("harvit.config",),
    ("harvit.data",),
    ("harvit.imaging", "harvit.features"),
    ("harvit.models",),
    ("harvit.evaluation",),
    ("harvit.training",),
    ("harvit.reporting", "harvit.deploy"),
    ("harvit.visualize", "harvit.cli"),
    ("harvit.__main__",),
]
LAZY_ALLOWED = ("harvit.cli", "harvit.__main__")
"""The CLI (the ``harvit.cli`` package and its modules) and ``__main__``: the only modules that import inside
functions."""


def lazy_allowed(module: str) -> bool:
    """Whether ``module`` is the CLI, one of its modules, or ``__main__``."""
    return any(module == m or module.startswith(m + ".") for m in LAZY_ALLOWED)


def module_names(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file of the ``harvit`` package under ``src``."""
    out = {}
    for path in (src / "harvit").rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: the longest name in :data:`LAYERS` that it is or lies in."""
    best = ""
    for layer in LAYERS:
        for unit in layer:
            if (module == unit or module.startswith(unit + ".")) and len(unit) > len(best):
                best = unit
    if not best:
        raise AssertionError(f"{module} belongs to no layer; add its package to LAYERS")
    return best


def layer_index(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def imports_of(path: Path, module: str, known: dict[str, Path]) -> list[tuple[str, int, bool]]:
    """(imported harvit module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_package = path.name == "__init__.py"
    nested_ids = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".") if is_package else module.split(".")[:-1]
                pkg = pkg[: len(pkg) - (node.level - 1)]
                base = ".".join(pkg + ([node.module] if node.module else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                out.append((name, node.lineno, id(node) in nested_ids))
    return out


def violations(src: Path) -> list[str]:
    """Every import that points to a later layer, crosses to a sibling of the same layer, hides inside a
    function outside the CLI, or closes a cycle."""
    known = module_names(src)
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in known}
    for module, path in known.items():
        unit = unit_of(module)
        for target, line, nested in imports_of(path, module, known):
            where = f"{path.relative_to(src)}:{line}"
            if nested and not lazy_allowed(module):
                problems.append(f"{where}: {module} imports {target} inside a function (only the CLI may)")
            if module == "harvit" and target.startswith("harvit.utils"):
                continue  # the package's own __init__ re-exports the error type
            graph[module].add(target)
            t_unit = unit_of(target)
            if t_unit == unit or target == "harvit":
                continue
            if layer_index(t_unit) >= layer_index(unit):
                problems.append(f"{where}: {module} ({unit}) imports {target} ({t_unit}), a later or sibling layer")
    problems += [f"cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_is_layered_without_cycles() -> None:
    assert violations(SRC) == []


@pytest.mark.parametrize("file, line, expect", [
    # a model that reaches up into training: a later layer (and with trainer -> models, a cycle)
    ("harvit/models/classifier.py", "from harvit.training import loop\n", "later or sibling layer"),
    # a lazy import to dodge the cycle is still caught
    ("harvit/evaluation/metrics.py", "def _f():\n    from harvit.training import loop\n", "inside a function"),
    # a CLI module may import inside a function, but not from a later layer
    ("harvit/cli/data.py", "def _f():\n    from harvit import __main__\n", "later or sibling layer"),
    # two modules of one package importing each other
    ("harvit/imaging/views.py", "from harvit.imaging import imager\n", "cycle"),
])
def test_the_check_fails_on_a_reintroduced_cycle(tmp_path: Path, file: str, line: str, expect: str) -> None:
    shutil.copytree(SRC / "harvit", tmp_path / "harvit", ignore=shutil.ignore_patterns("__pycache__"))
    path = tmp_path / file
    path.write_text(path.read_text(encoding="utf-8") + "\n" + line, encoding="utf-8")
    found = violations(tmp_path)
    assert any(expect in p for p in found), found
