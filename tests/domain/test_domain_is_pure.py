"""app/domain imports only the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

DOMAIN_DIR = Path(__file__).resolve().parents[2] / "app" / "domain"
DOMAIN_PACKAGE = "app.domain"
DYNAMIC_IMPORTERS = {"__import__", "import_module"}


def _allowed(module: str) -> bool:
    top = module.partition(".")[0]
    return top in sys.stdlib_module_names or module == DOMAIN_PACKAGE or module.startswith(DOMAIN_PACKAGE + ".")


def _package_of(path: Path) -> str:
    """The package a file in app/domain belongs to, e.g. ``app.domain`` or ``app.domain.sub``."""
    relative = path.resolve().relative_to(DOMAIN_DIR).parent.parts
    return ".".join([DOMAIN_PACKAGE, *relative])


def foreign_imports(source: str, package: str = DOMAIN_PACKAGE) -> list[str]:
    """Every module ``source`` imports that is neither standard library nor app.domain."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)] if node.level - 1 < len(parts) else []
                base = ".".join(base_parts)
                module = ".".join(p for p in (base, node.module or "") if p)
                if not base:
                    found.append("." * node.level + (node.module or ""))
                    continue
            else:
                module = node.module or ""
            if node.module is None or module in ("app",):
                # `from . import x` / `from app import domain`: each name may be a module.
                found += [f"{module}.{alias.name}" for alias in node.names]
            else:
                found.append(module)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name in DYNAMIC_IMPORTERS and node.args:
                arg = node.args[0]
                found.append(arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "<dynamic>")
    return sorted({m for m in found if not _allowed(m)})


DOMAIN_FILES = sorted(DOMAIN_DIR.rglob("*.py"))


def test_domain_has_modules() -> None:
    names = {p.name for p in DOMAIN_FILES}
    assert {"__init__.py", "errors.py", "members.py"} <= names


@pytest.mark.parametrize("path", DOMAIN_FILES, ids=lambda p: str(p.relative_to(DOMAIN_DIR)))
def test_domain_module_imports_only_stdlib(path: Path) -> None:
    assert foreign_imports(path.read_text(encoding="utf-8"), _package_of(path)) == []


# --- the checker itself can fail ---------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import fastapi", ["fastapi"]),
        ("from fastapi import HTTPException", ["fastapi"]),
        ("import sqlalchemy.orm", ["sqlalchemy.orm"]),
        ("from sqlmodel import Field", ["sqlmodel"]),
        ("from pydantic import BaseModel", ["pydantic"]),
        ("import os, pydantic", ["pydantic"]),
        ("def f():\n    import structlog\n", ["structlog"]),
        ("try:\n    import orjson as json\nexcept ImportError:\n    import json\n", ["orjson"]),
        ("from app.db import models", ["app.db"]),
        ("from app import settings", ["app.settings"]),
        ("import app", ["app"]),
        ("from .. import settings", ["app.settings"]),
        ("from ..services import x", ["app.services"]),
        ("import importlib\nimportlib.import_module('fastapi')", ["fastapi"]),
        ("__import__('sqlalchemy')", ["sqlalchemy"]),
        ("import importlib\nimportlib.import_module(name)", ["<dynamic>"]),
    ],
)
def test_checker_flags_foreign_imports(source: str, expected: list[str]) -> None:
    assert foreign_imports(source) == expected


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import os\nimport json\nimport hashlib",
        "import collections.abc\nfrom typing import Protocol",
        "from app.domain.errors import NotFound",
        "import app.domain.ids",
        "from app.domain import errors",
        "from app import domain",
        "from . import errors",
        "from .errors import NotFound",
        "import importlib\nimportlib.import_module('json')",
    ],
)
def test_checker_allows_stdlib_and_domain(source: str) -> None:
    assert foreign_imports(source) == []
