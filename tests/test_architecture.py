"""Rules of the layout that import-linter cannot see: services reach the database only
through the repositories bound to their unit of work; they return plain values and raise
domain errors, while routers build the response models and app/errors.py renders problems."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from app.schemas.common import ResponseModel

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


def response_models_imported(source: str) -> list[str]:
    """Names imported from app.schemas that are response models (or whole schema modules)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("app.schemas"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                value = getattr(module, alias.name, None)
                if value is None or not isinstance(value, type):
                    found.append(f"{node.module}.{alias.name}")  # a module or an alias hides what is used
                elif issubclass(value, ResponseModel):
                    found.append(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("app.schemas")]
    return found


def problem_bodies(source: str) -> list[int]:
    """Lines building a problem's ``errors`` item (a dict with a "loc" key) or a FieldProblem:
    which input field broke which rule is the domain's to say."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if (isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "loc" for k in node.keys))
        or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "FieldProblem")
    ]


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_services_import_no_response_model(path: Path) -> None:
    assert response_models_imported(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: p.name)
def test_services_build_no_problem_body(path: Path) -> None:
    assert problem_bodies(path.read_text(encoding="utf-8")) == []


def test_the_response_model_and_problem_checks_can_fail() -> None:
    assert response_models_imported("from app.schemas.deals import DealCreate, DealPublic") == [
        "app.schemas.deals.DealPublic"
    ]
    assert response_models_imported("from app.schemas import deals") == ["app.schemas.deals"]
    assert response_models_imported("import app.schemas.deals") == ["app.schemas.deals"]
    assert problem_bodies('x = 1\nerrors = [{"loc": ["body"], "msg": "m", "type": "t"}]') == [2]
    assert problem_bodies('raise MissingFields(fields=[FieldProblem(("name",), "m", "t")])') == [1]
