"""docs/reliability.md names only tests that exist, and lists every bad-input case of the CLI tests."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"


def _cli_cases() -> set[str]:
    """Names registered with @case(...) in tests/test_cli_errors.py (read from its syntax tree)."""
    tree = ast.parse((ROOT / "tests" / "test_cli_errors.py").read_text())
    return {d.args[0].value for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
            for d in node.decorator_list
            if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "case" and isinstance(d.args[0], ast.Constant)}


def test_every_test_named_in_the_doc_exists():
    text = DOC.read_text()
    refs = re.findall(r"(tests/[\w/]+\.py)(?:::(\w+)(?:\[(\w+)\])?)?", text)
    assert len(refs) > 30
    cases = _cli_cases()
    for path, name, param in refs:
        source = (ROOT / path).read_text()
        if name:
            assert re.search(rf"^def {name}\(", source, re.M), f"{path}::{name} does not exist"
        if param:
            assert param in cases, f"{path}::{name}[{param}]: no such case"


def test_the_doc_lists_every_cli_case():
    text = DOC.read_text()
    missing = sorted(c for c in _cli_cases() if f"`{c}`" not in text and f"[{c}]" not in text)
    assert missing == []
