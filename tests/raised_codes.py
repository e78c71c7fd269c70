"""Which domain errors each route can raise, read off the source.

A call graph over ``app/``: a function's calls are resolved through its module's imports (``from
app.domain.deals import ensure_can_change``, ``from app.services import deals as service``) and its
module's own functions, so a name means exactly one function; a ``raise X(...)`` (and a
``uow.flush(conflict=X())``) is a raise of ``X``. Method calls on objects (repositories, the unit of
work) are not followed: they raise no domain error but the flush conflicts, which are read as raises.
tests/test_problem_codes.py checks that every route declares what it can raise.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

from app.domain import errors as de

APP = Path(__file__).resolve().parent.parent / "app"
ROUTE_METHODS = {"get", "post", "put", "patch", "delete"}


def _domain_error(name: str) -> type[de.DomainError] | None:
    found = getattr(de, name, None)
    return found if isinstance(found, type) and issubclass(found, de.DomainError) else None


class _Source:
    def __init__(self) -> None:
        self.functions: dict[str, tuple[ast.AST, str]] = {}
        self.imports: dict[str, dict[str, str]] = {}
        for path in APP.rglob("*.py"):
            module = ".".join(path.relative_to(APP.parent).with_suffix("").parts).removesuffix(".__init__")
            tree = ast.parse(path.read_text())
            table: dict[str, str] = {}
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    table.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
                elif isinstance(node, ast.Import):
                    table.update({a.asname or a.name: a.name for a in node.names})
            self.imports[module] = table
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions[f"{module}.{node.name}"] = (node, module)

    def resolve(self, expr: ast.expr, module: str) -> str | None:
        if isinstance(expr, ast.Name):
            local = f"{module}.{expr.id}"
            return local if local in self.functions else self.imports[module].get(expr.id, expr.id)
        if isinstance(expr, ast.Attribute):
            base = self.resolve(expr.value, module)
            return f"{base}.{expr.attr}" if base else None
        return None

    def edges(self, name: str) -> tuple[set[str], set[str]]:
        """The domain errors a function raises itself, and the functions it calls (or passes on)."""
        node, module = self.functions[name]
        raised: set[str] = set()
        called: set[str] = set()
        for child in ast.walk(node):
            if isinstance(child, ast.Raise) and child.exc is not None:
                error = child.exc.func if isinstance(child.exc, ast.Call) else child.exc
                raised.add((self.resolve(error, module) or "").rsplit(".", 1)[-1])
            elif isinstance(child, ast.Call):
                for keyword in child.keywords:
                    if keyword.arg == "conflict" and isinstance(keyword.value, ast.Call):
                        raised.add((self.resolve(keyword.value.func, module) or "").rsplit(".", 1)[-1])
            if isinstance(child, (ast.Name, ast.Attribute)):
                target = self.resolve(child, module)
                if target in self.functions and target != name:
                    called.add(target)
        return raised, called


@cache
def raised_by_route() -> dict[str, frozenset[type[de.DomainError]]]:
    """Each route function's name (its operationId) and the domain errors it can raise."""
    source = _Source()
    edges = {name: source.edges(name) for name in source.functions}
    totals: dict[str, set[str]] = defaultdict(set)

    def total(name: str, seen: frozenset[str]) -> set[str]:
        if name in totals or name in seen:
            return totals.get(name, set())
        raised, called = edges[name]
        found = set(raised)
        for callee in called:
            found |= total(callee, seen | {name})
        totals[name] = found
        return found

    routes: dict[str, frozenset[type[de.DomainError]]] = {}
    for name, (node, module) in source.functions.items():
        if not module.startswith("app.routers."):
            continue
        decorators = getattr(node, "decorator_list", [])
        if any(isinstance(d, ast.Call) and getattr(d.func, "attr", None) in ROUTE_METHODS for d in decorators):
            errors = {_domain_error(raised) for raised in total(name, frozenset())}
            routes[name.rsplit(".", 1)[-1]] = frozenset(e for e in errors if e is not None)
    return routes
