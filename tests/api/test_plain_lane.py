"""The plain lane (app/middleware/lane.py) answers what the normal stack answers, byte for byte,
and takes only the requests it may: no query string, no If-None-Match, no body, UUID paths."""

from __future__ import annotations

import uuid
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter, Header, Response

from app.http.routes import ApiRoute, served_plain
from app.middleware import request_context
from app.middleware.lane import PlainLane, plain_routes
from tests.helpers import Api, Person, make_deal

# Fields that differ between any two responses.
_VARYING = {"x-request-id", "date"}


def _solved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths FastAPI binds parameters for from now on (the normal stack's work)."""
    seen: list[str] = []
    solve = fastapi.routing.solve_dependencies

    async def counting(*, request: Any, **kwargs: Any) -> Any:
        seen.append(request.url.path)
        return await solve(request=request, **kwargs)

    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)
    return seen


async def _both_ways(api: Api, monkeypatch: pytest.MonkeyPatch, url: str) -> tuple[Any, Any]:
    """The answer to a GET of ``url`` by the lane, and by the normal stack (the lane turned off)."""
    solved = _solved(monkeypatch)
    plain = await api.get(url)
    assert solved == [], f"{url} was not served by the lane"
    with monkeypatch.context() as off:
        off.setattr(PlainLane, "_match", lambda self, scope: None)
        normal = await api.get(url)
    assert solved == [url]
    monkeypatch.undo()
    return plain, normal


def _same(plain: Any, normal: Any) -> None:
    assert plain.status_code == normal.status_code, (plain.text, normal.text)
    assert plain.content == normal.content
    headers = {k: v for k, v in plain.headers.items() if k not in _VARYING}
    assert headers == {k: v for k, v in normal.headers.items() if k not in _VARYING}


async def test_the_lane_answers_as_the_normal_stack(
    api: Api, team: dict[str, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller, manager, outsider = team["seller"], team["manager"], team["outsider"]
    deal = await make_deal(api, seller)
    unseen = await make_deal(api, outsider)
    cases: list[tuple[Person | str | None, str, int]] = [
        (seller, "/v1/me", 200),
        (manager, "/v1/me", 200),
        (None, "/v1/me", 401),
        ("dc_00000000_not-a-key", "/v1/me", 401),
        (seller, f"/v1/deals/{deal['id']}", 200),
        (seller, f"/v1/deals/{deal['id'].upper()}", 200),
        (manager, f"/v1/deals/{deal['id']}", 200),
        (team["hos"], f"/v1/deals/{unseen['id']}", 200),
        (seller, f"/v1/deals/{unseen['id']}", 404),
        (seller, f"/v1/deals/{uuid.uuid4()}", 404),
        (None, f"/v1/deals/{deal['id']}", 401),
        (seller, "/v1/deals", 200),
        (manager, "/v1/deals", 200),
        (None, "/v1/deals", 401),
        (seller, "/v1/me/tasks", 200),
        (None, "/v1/me/tasks", 401),
    ]
    for who, url, status in cases:
        plain, normal = await _both_ways(api.as_(who), monkeypatch, url)
        assert plain.status_code == status, (who, url, plain.text)
        _same(plain, normal)


async def test_the_lane_leaves_every_other_request_to_the_normal_stack(
    api: Api, team: dict[str, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller = api.as_(team["seller"])
    deal = await make_deal(api, team["seller"])
    url = f"/v1/deals/{deal['id']}"
    solved = _solved(monkeypatch)
    etag = (await seller.get(url)).headers["etag"]
    assert solved == []
    # A query string, a conditional GET, a body, an id that is no UUID: FastAPI's to bind or refuse.
    assert (await seller.get(f"{url}?expand=members")).status_code == 200
    assert (await seller.get(url, headers={"If-None-Match": etag})).status_code == 304
    assert (await seller.client.request("GET", url, content=b"{}", headers=seller._headers(None))).status_code == 200
    assert (await seller.get("/v1/deals/not-a-uuid")).status_code == 404
    assert solved == [url, url, url, "/v1/deals/not-a-uuid"]
    # The route class refuses an unknown query parameter before binding (the lane would answer 200).
    assert (await seller.get("/v1/deals?stagee=x")).status_code == 422


async def test_a_plain_request_is_counted_under_its_route(
    api: Api, team: dict[str, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    deal = await make_deal(api, team["seller"])
    recorded: list[tuple[str, str, int]] = []
    monkeypatch.setattr(
        request_context,
        "record_request",
        lambda method, route, status, _elapsed: recorded.append((method, route, status)),
    )
    await api.as_(team["seller"]).get(f"/v1/deals/{deal['id']}")
    await api.as_(team["seller"]).get("/v1/me")
    assert recorded == [("GET", "/v1/deals/{deal_id}", 200), ("GET", "/v1/me", 200)]


def _router(*endpoints: tuple[str, Any, str]) -> list[Any]:
    router = APIRouter(route_class=ApiRoute)
    for path, endpoint, method in endpoints:
        router.add_api_route(path, endpoint, methods=[method])
    return router.routes


@served_plain
async def _header_reader(thing_id: uuid.UUID, x_thing: str = Header()) -> Response:
    return Response()


@served_plain
async def _writer(thing_id: uuid.UUID) -> Response:
    return Response()


@served_plain
async def _named(name: str) -> Response:
    return Response()


@served_plain
async def _thing(thing_id: uuid.UUID) -> Response:
    return Response()


async def _other(kind: str) -> Response:
    return Response()


def test_only_a_route_that_qualifies_is_served_plain() -> None:
    assert [r.route.path for r in plain_routes(_router(("/things/{thing_id}", _thing, "GET")))] == [
        "/things/{thing_id}"
    ]
    refused = {
        "reads headers": _router(("/things/{thing_id}", _header_reader, "GET")),
        "not a GET": _router(("/things/{thing_id}", _writer, "POST")),
        "not a UUID": _router(("/names/{name}", _named, "GET")),
        "also": _router(("/things/{kind}", _other, "GET"), ("/things/{thing_id}", _thing, "GET")),
    }
    for reason, routes in refused.items():
        with pytest.raises(ValueError, match=reason):
            plain_routes(routes)
