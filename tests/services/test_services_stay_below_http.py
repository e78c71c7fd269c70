"""Services return plain values and raise domain errors: routers build the response models,
app/errors.py renders problems. Checked on the source, so a new service cannot drift."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from app.schemas.common import ResponseModel

SERVICES_DIR = Path(__file__).resolve().parents[2] / "app" / "services"
SERVICE_FILES = sorted(SERVICES_DIR.rglob("*.py"))


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
    """Lines building a problem's ``errors`` item (a dict with a "loc" key)."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == "loc" for k in node.keys)
    ]


@pytest.mark.parametrize("path", SERVICE_FILES, ids=lambda p: p.name)
def test_services_import_no_response_model(path: Path) -> None:
    assert response_models_imported(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", SERVICE_FILES, ids=lambda p: p.name)
def test_services_build_no_problem_body(path: Path) -> None:
    assert problem_bodies(path.read_text(encoding="utf-8")) == []


def test_the_checks_can_fail() -> None:
    assert response_models_imported("from app.schemas.deals import DealCreate, DealPublic") == [
        "app.schemas.deals.DealPublic"
    ]
    assert response_models_imported("from app.schemas import deals") == ["app.schemas.deals"]
    assert response_models_imported("import app.schemas.deals") == ["app.schemas.deals"]
    assert problem_bodies('x = 1\nerrors = [{"loc": ["body"], "msg": "m", "type": "t"}]') == [2]
