"""Code hygiene the issue asks for, checked on the source: no process-wide warning filter
(every ``warnings.simplefilter`` / ``filterwarnings`` call sits inside a
``with warnings.catch_warnings()`` block, so it is undone on exit)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "volcal"


def _unscoped_filters(tree: ast.AST) -> list[int]:
    bad: list[int] = []

    def visit(node: ast.AST, scoped: bool) -> None:
        if isinstance(node, ast.With):
            here = scoped or any(
                isinstance(item.context_expr, ast.Call)
                and isinstance(item.context_expr.func, ast.Attribute)
                and item.context_expr.func.attr == "catch_warnings"
                for item in node.items
            )
            for child in node.body:
                visit(child, here)
            return
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("simplefilter", "filterwarnings")
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "warnings"
            and not scoped
        ):
            bad.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, scoped)

    visit(tree, False)
    return bad


def test_no_process_wide_warning_filters() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        for line in _unscoped_filters(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(SRC)}:{line}")
    assert offenders == []


def test_the_check_finds_an_unscoped_filter() -> None:
    code = "import warnings\nwarnings.simplefilter('ignore')\n"
    assert _unscoped_filters(ast.parse(code)) == [2]
    scoped = (
        "import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n"
    )
    assert _unscoped_filters(ast.parse(scoped)) == []
