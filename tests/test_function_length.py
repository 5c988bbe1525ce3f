"""House rule: no function in oso_gateway/ is longer than 100 lines (split it into named steps)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "oso_gateway"
MAX_LINES = 100


def _long_functions(source: str, path: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_LINES:
                found.append(f"{path}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_function_in_the_package_is_longer_than_100_lines() -> None:
    long = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        for hit in _long_functions(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE)))
    ]
    assert long == []


def test_the_check_counts_a_function_from_its_def_to_its_last_line() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES))
    assert _long_functions(f"def f():\n{body}", "m.py") == ["m.py:1 f (101 lines)"]
    assert _long_functions(f"def f():\n{body[: body.rindex('    x')]}", "m.py") == []
