"""The plain lane (app/middleware/lane.py) answers what the normal stack answers, byte for byte,
and takes only the requests it may: no query string, no If-None-Match, no body, UUID paths."""

from __future__ import annotations

import uuid
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter, Header, Query, Response

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
    assert solved == [url.partition("?")[0]]
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
    await make_deal(api, seller, stage="proposal")
    unseen = await make_deal(api, outsider)
    cursor = (await api.as_(seller).get("/v1/deals?limit=1")).json()["next_cursor"]
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
        # Query strings, bound by FastAPI's validators.
        (seller, "/v1/me?expand=members", 200),
        (seller, f"/v1/deals/{deal['id']}?expand=members", 200),
        (seller, "/v1/deals?limit=1", 200),
        (seller, f"/v1/deals?limit=1&cursor={cursor}", 200),
        (seller, "/v1/deals?stage=proposal&expand=members", 200),
        (manager, f"/v1/deals?owner_id={seller.id}&limit=50", 200),
        (seller, "/v1/deals?cursor=not-ours", 422),
        (seller, "/v1/me/tasks?limit=1", 200),
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
    # A conditional GET, a body, an id that is no UUID, a query parameter that does not bind:
    # FastAPI's to bind or refuse.
    assert (await seller.get(url, headers={"If-None-Match": etag})).status_code == 304
    assert (await seller.client.request("GET", url, content=b"{}", headers=seller._headers(None))).status_code == 200
    assert (await seller.get("/v1/deals/not-a-uuid")).status_code == 404
    assert (await seller.get("/v1/deals?limit=0")).status_code == 422
    assert (await seller.get(f"{url}?expand=everything")).status_code == 422
    assert solved == [url, url, "/v1/deals/not-a-uuid", "/v1/deals", url]
    # The route class refuses an unknown query parameter before binding (the lane would answer 200).
    unknown = await seller.get("/v1/deals?stagee=x")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["loc"] == ["query", "stagee"]
    assert solved == [url, url, "/v1/deals/not-a-uuid", "/v1/deals", url]


def _deal_body(owner: Person, name: str) -> dict[str, Any]:
    return {"name": name, "account_name": "Acme", "owner_id": owner.id, "stage": "discovery"}


async def test_writes_through_the_lane_answer_as_the_normal_stack(
    api: Api, team: dict[str, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller = api.as_(team["seller"])
    solved = _solved(monkeypatch)
    plain = await seller.post("/v1/deals", json=_deal_body(team["seller"], "Plain"))
    edited = await seller.patch(
        plain.headers["location"], json={"name": "Plainer"}, headers={"If-Match": plain.headers["etag"]}
    )
    stale = await seller.patch(plain.headers["location"], json={"name": "Stale"}, headers={"If-Match": '"1"'})
    keyed = await seller.post(
        "/v1/deals", json=_deal_body(team["seller"], "Keyed"), headers={"Idempotency-Key": "plain-1"}
    )
    replayed = await seller.post(
        "/v1/deals", json=_deal_body(team["seller"], "Keyed"), headers={"Idempotency-Key": "plain-1"}
    )
    assert solved == [], "the writes were not served by the lane"
    with monkeypatch.context() as off:
        off.setattr(PlainLane, "_match", lambda self, scope: None)
        normal = await seller.post("/v1/deals", json=_deal_body(team["seller"], "Normal"))
        normal_edit = await seller.patch(
            normal.headers["location"], json={"name": "Plainer"}, headers={"If-Match": normal.headers["etag"]}
        )
        normal_stale = await seller.patch(
            normal.headers["location"], json={"name": "Stale"}, headers={"If-Match": '"1"'}
        )
    assert len(solved) == 3
    for ours, theirs in ((plain, normal), (edited, normal_edit)):
        assert (ours.status_code, ours.headers["etag"]) == (theirs.status_code, theirs.headers["etag"])
        mine, other = ours.json(), theirs.json()
        varying = {"id", "name", "created_at", "updated_at"}
        assert {k: v for k, v in mine.items() if k not in varying} == {
            k: v for k, v in other.items() if k not in varying
        }
    assert plain.headers["location"] == f"/v1/deals/{plain.json()['id']}"
    assert edited.json()["name"] == "Plainer" and edited.headers["etag"] == '"2"'
    assert (
        (stale.status_code, stale.json()["code"])
        == (normal_stale.status_code, normal_stale.json()["code"])
        == (
            412,
            "version_conflict",
        )
    )
    assert keyed.status_code == 201 and replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == keyed.json()


async def test_a_write_that_does_not_bind_is_answered_by_the_normal_stack(
    api: Api, team: dict[str, Person], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lane read the body, found it wrong, and handed it on: the normal stack sees all of it."""
    seller = api.as_(team["seller"])
    deal = await make_deal(api, team["seller"])
    solved = _solved(monkeypatch)
    extra = await seller.post("/v1/deals", json={**_deal_body(team["seller"], "X"), "colour": "red"})
    assert extra.status_code == 422 and extra.json()["errors"][0]["loc"] == ["body", "colour"]
    broken = await seller.client.post(
        "/v1/deals", content=b'{"name": ', headers={**seller._headers(None), "Content-Type": "application/json"}
    )
    assert (broken.status_code, broken.json()["code"]) == (400, "malformed_json")
    untyped = await seller.client.post("/v1/deals", content=b"{}", headers=seller._headers(None))
    assert (untyped.status_code, untyped.json()["code"]) == (415, "unsupported_media_type")
    long_tag = await seller.patch(f"/v1/deals/{deal['id']}", json={"name": "Y"}, headers={"If-Match": "x" * 2000})
    assert (long_tag.status_code, long_tag.json()["errors"][0]["loc"]) == (422, ["header", "If-Match"])
    # Bound by FastAPI (the JSON that does not parse is refused before binding).
    assert solved == ["/v1/deals", "/v1/deals", f"/v1/deals/{deal['id']}"]


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
async def _thing(thing_id: uuid.UUID, x_thing: str | None = Header(default=None)) -> Response:
    return Response()


@served_plain
def _sync(thing_id: uuid.UUID) -> Response:
    return Response()


@served_plain
async def _named(name: str) -> Response:
    return Response()


@served_plain
async def _modelled(thing_id: uuid.UUID) -> dict[str, str]:
    return {}


async def _other(kind: str) -> Response:
    return Response()


@served_plain
async def _required_header(thing_id: uuid.UUID, x_thing: str = Header()) -> Response:
    return Response()


@served_plain
async def _validated_default(thing_id: uuid.UUID, size: int = Query(default=5, validate_default=True)) -> Response:
    return Response()


def test_only_a_route_that_qualifies_is_served_plain() -> None:
    served = plain_routes(_router(("/things/{thing_id}", _thing, "GET"), ("/things/{thing_id}", _thing, "POST")))
    assert [(r.method, r.route.path) for r in served] == [("GET", "/things/{thing_id}"), ("POST", "/things/{thing_id}")]
    refused = {
        "is not async": _router(("/things/{thing_id}", _sync, "GET")),
        "not a UUID": _router(("/names/{name}", _named, "GET")),
        "does not return its own Response": _router(("/things/{thing_id}", _modelled, "GET")),
        "also": _router(("/things/{kind}", _other, "GET"), ("/things/{thing_id}", _thing, "GET")),
        # The lane validates only the parameters a request sends; the others take their defaults.
        "header or query parameter is required": _router(("/things/{thing_id}", _required_header, "GET")),
        "validated": _router(("/things/{thing_id}", _validated_default, "GET")),
    }
    for reason, routes in refused.items():
        with pytest.raises(ValueError, match=reason):
            plain_routes(routes)
