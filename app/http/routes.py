"""The route class of every operation: what the API checks on every request, built once per route."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import params
from fastapi.dependencies.utils import get_flat_params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def declared_query_parameters(route: APIRoute) -> frozenset[str]:
    """The query parameters an operation declares, by the names clients send (aliases)."""
    return frozenset(f.alias for f in get_flat_params(route.dependant) if isinstance(f.field_info, params.Query))


def _unknown_query_error(name: str, value: str, declared: frozenset[str]) -> dict[str, Any]:
    takes = ", ".join(f"`{p}`" for p in sorted(declared)) if declared else "none"
    return {
        "type": "extra_forbidden",
        "loc": ("query", name),
        "msg": f"Unknown query parameter `{name}`; this operation takes {takes}",
        "input": value,
    }


class ApiRoute(APIRoute):
    """Every operation's route. A query parameter the operation does not declare is refused (422
    validation_error naming it, as Stripe does): a typo (`?stagee=`) or a filter the operation does
    not have would otherwise answer everything, unfiltered. The declared names are read once, when
    the route is built; a request without a query string pays one truthiness test."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        declared = declared_query_parameters(self)

        async def strict_handler(request: Request) -> Response:
            if request.scope["query_string"]:
                query = request.query_params
                unknown = [_unknown_query_error(k, query[k], declared) for k in query.keys() if k not in declared]
                if unknown:
                    raise RequestValidationError(unknown)
            return await handler(request)

        return strict_handler
