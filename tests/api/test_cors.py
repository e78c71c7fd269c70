"""CORS (API.md, Front ends in the browser): the origins in DEALCOACH_CORS_ORIGINS get their
preflights answered, before rate limits or authentication, and every response they get (problem
documents included) names them and exposes the fields a front end reads. Other origins, and
every origin when the setting is empty, get no cross-origin access."""

from __future__ import annotations

import httpx
import pydantic
import pytest

from app.main import CORS_EXPOSED_HEADERS, create_app
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, assert_problem

ORIGIN = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A budget of 10 requests, so that a 429 is a few requests away.
    return settings_for(
        database_url,
        cors_origins=f"{ORIGIN}, http://127.0.0.1:5173",
        rate_limit_per_second=1,
        rate_limit_burst=10,
    )


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, if-match",
    }


def exposed(response: httpx.Response) -> set[str]:
    return {name.strip().lower() for name in response.headers["access-control-expose-headers"].split(",")}


async def test_a_preflight_from_an_allowed_origin_is_answered_before_any_other_work(client: httpx.AsyncClient) -> None:
    for _ in range(5):  # more than the rate limit's budget: preflights spend none
        response = await client.options("/v1/deals", headers=preflight(ORIGIN))
        assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= set(
        response.headers["access-control-allow-methods"].split(", ")
    )
    allowed = {h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")}
    expected = {"authorization", "content-type", "if-match", "if-none-match", "idempotency-key", "x-request-id"}
    assert expected <= allowed
    assert "access-control-allow-credentials" not in response.headers  # bearer tokens, never cookies
    assert "origin" in response.headers["vary"].lower()
    assert "ratelimit" not in response.headers
    patch = await client.options("/v1/deals/0190c8a4-6f1e-7000-8000-000000000000", headers=preflight(ORIGIN, "PATCH"))
    assert patch.status_code == 200 and patch.headers["access-control-allow-origin"] == ORIGIN


async def test_a_preflight_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.options("/v1/deals", headers=preflight(OTHER))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    # An allowed origin asking to send a header the API does not take is refused as well.
    unknown_header = {**preflight(ORIGIN), "Access-Control-Request-Headers": "x-forwarded-for"}
    refused = await client.options("/v1/deals", headers=unknown_header)
    assert refused.status_code == 400
    assert "x-forwarded-for" not in refused.headers.get("access-control-allow-headers", "").lower()


async def test_responses_to_an_allowed_origin_expose_what_a_front_end_reads(
    client: httpx.AsyncClient, api: Api
) -> None:
    headers = {"Origin": ORIGIN}
    seller = await api.make_member("seller")
    created = await api.post(
        "/v1/deals",
        json={"name": "Renewal", "account_name": "Initech", "owner_id": seller.id},
        headers={**headers, "Idempotency-Key": "cors-1"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == ORIGIN
    assert {name.lower() for name in CORS_EXPOSED_HEADERS} == exposed(created)
    assert {
        "etag",
        "location",
        "idempotent-replayed",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "x-request-id",
    } <= (exposed(created))
    assert created.headers["location"] and created.headers["etag"] and created.headers["x-request-id"]

    # Problem documents carry them too, so the front end can read the code: 401, 422, 429.
    unauthenticated = await api.as_(None).get("/v1/me", headers=headers)
    assert_problem(unauthenticated, 401, "unauthenticated")
    assert unauthenticated.headers["access-control-allow-origin"] == ORIGIN
    invalid = await api.patch("/v1/settings", json={"review_due_days": 0}, headers=headers)
    assert_problem(invalid, 422, "validation_error")
    assert invalid.headers["access-control-allow-origin"] == ORIGIN
    for _ in range(10):
        limited = await api.get("/v1/me", headers=headers)
        if limited.status_code == 429:
            break
    assert_problem(limited, 429, "rate_limited")
    assert limited.headers["access-control-allow-origin"] == ORIGIN and "retry-after" in exposed(limited)


async def test_another_origin_gets_no_cross_origin_access(client: httpx.AsyncClient, api: Api) -> None:
    response = await api.get("/v1/me", headers={"Origin": OTHER})
    assert response.status_code == 200  # the browser, not the server, keeps the page from reading it
    assert "access-control-allow-origin" not in response.headers


async def test_without_origins_there_is_no_cross_origin_access(database_url: str) -> None:
    app = create_app(settings_for(database_url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.options("/v1/deals", headers=preflight(ORIGIN))
            assert_problem(response, 405, "method_not_allowed")
            assert "access-control-allow-origin" not in response.headers
            assert (
                "access-control-allow-origin" not in (await client.get("/healthz", headers={"Origin": ORIGIN})).headers
            )


@pytest.mark.parametrize(
    "origins", ["https://app.example.com/", "https://app.example.com/app", "app.example.com", "ftp://x.example"]
)
def test_origins_are_checked_when_the_service_starts(origins: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="is not an origin"):
        Settings(cors_origins=origins)


def test_origins_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALCOACH_CORS_ORIGINS", " https://a.example , http://127.0.0.1:5173,")
    assert Settings().cors_origins == ["https://a.example", "http://127.0.0.1:5173"]
    monkeypatch.setenv("DEALCOACH_CORS_ORIGINS", "")
    assert Settings().cors_origins == []
