"""Rules of the layout that import-linter cannot see: services reach the database only
through the repositories bound to their unit of work."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICES = sorted((Path(__file__).resolve().parents[1] / "app" / "services").glob("*.py"))


def _session_uses(source: str) -> list[int]:
    """Lines where code reads ``<something>.session``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute) and node.attr == "session"
    ]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_services_never_touch_the_session(path: Path) -> None:
    assert _session_uses(path.read_text()) == [], f"{path.name}: use uow.<repository> instead of uow.session"


def test_the_check_sees_a_session_use() -> None:
    assert _session_uses("async def f(uow):\n    await uow.session.execute(x)\n") == [2]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_services_import_no_repository_module(path: Path) -> None:
    imports = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app.db.repositories"):
            if node.module == "app.db.repositories":
                imports += [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                imports.append(node.module or "")
    allowed = {"app.db.repositories.analytics", "app.db.repositories.auth"}  # row-kind constants; the key lookup
    assert set(imports) <= allowed, f"{path.name} imports {imports}: go through uow.<repository>"
