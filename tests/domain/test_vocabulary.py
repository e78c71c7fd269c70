"""One verb for a rule that raises when broken: ``ensure_*``, never ``check_*``."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "app" / "domain"


def test_no_rule_is_named_check() -> None:
    names = [
        f"{path.name}:{node.name}"
        for path in sorted(DOMAIN_DIR.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.lstrip("_").startswith("check_")
    ]
    assert names == []
