"""Rate limits (API.md, Limits): a budget per API key and per client address, 429 `rate_limited`
with Retry-After, and the IETF RateLimit fields on every response.

The budgets here are 2 a second with bursts of 20: 20 units per 10-second window. A budget's
window starts at its first hit, so a test that ends within 10 s sees no refill, and each test
sends from an address of its own (a random IPv6 /64), so no two tests share a budget, not even
through Redis.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from app.main import create_app
from app.settings import Settings
from tests.api.test_pipedrive import HOOK as PIPEDRIVE_HOOK
from tests.api.test_pipedrive import basic, crm  # noqa: F401  # crm: the fixture the webhooks need
from tests.api.test_pipedrive import event as pipedrive_event
from tests.conftest import bootstrap
from tests.helpers import Api, assert_problem

QUOTA, WINDOW = 20, 10
INBOUND_QUOTA = 30  # CRM webhooks in: 3 a second with bursts of 30, 30 units per 10 s
POLICY = {
    "key": f'"key";q={QUOTA};w={WINDOW}',
    "address": f'"address";q={QUOTA};w={WINDOW}',
    "inbound": f'"inbound";q={INBOUND_QUOTA};w={WINDOW}',
}
FIELD = re.compile(r'^"(key|address|inbound)";r=(\d+);t=(\d+)$')


def limited(database_url: str, **overrides: object) -> Settings:
    return Settings(
        database_url=database_url,
        access_log=False,
        log_level="WARNING",
        webhooks_dispatcher="off",
        **{  # type: ignore[arg-type]
            "rate_limit_per_second": 2,
            "rate_limit_burst": 20,
            "rate_limit_inbound_per_second": 3,
            "rate_limit_inbound_burst": 30,
            **overrides,
        },
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return limited(database_url)


def random_address() -> str:
    return f"2001:db8:{secrets.randbelow(0xFFFF):x}:{secrets.randbelow(0xFFFF):x}::1"


@pytest.fixture
def address() -> str:
    return random_address()


@asynccontextmanager
async def client_for(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def client(app, address: str) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    async with client_for(app, address) as http:
        yield http


def budget(response: httpx.Response) -> tuple[str, int, int]:
    """The policy name, what is left and the seconds until more, from the RateLimit field."""
    match = FIELD.match(response.headers["ratelimit"])
    assert match, response.headers["ratelimit"]
    name, remaining, reset = match[1], int(match[2]), int(match[3])
    assert response.headers["ratelimit-policy"] == POLICY[name]
    return name, remaining, reset


def assert_rate_limited(response: httpx.Response, name: str) -> None:
    assert_problem(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW + 1
    assert budget(response)[:2] == (name, 0)


async def test_a_burst_over_the_budget_is_refused_with_retry_after(api: Api) -> None:
    for n in range(QUOTA):
        response = await api.get("/v1/me")
        assert response.status_code == 200, response.text
        name, remaining, reset = budget(response)
        assert (name, remaining) == ("key", QUOTA - 1 - n)
        assert reset == 0 if remaining else 1 <= reset <= WINDOW + 1
    assert_rate_limited(await api.get("/v1/me"), "key")
    assert_rate_limited(await api.get("/v1/me"), "key")


async def test_each_key_has_its_own_budget(api: Api) -> None:
    seller = await api.make_member("seller")  # two requests of the admin's budget
    for _ in range(QUOTA - 2):
        assert (await api.get("/v1/me")).status_code == 200
    assert_rate_limited(await api.get("/v1/me"), "key")
    response = await api.as_(seller).get("/v1/me")
    assert response.status_code == 200
    assert budget(response) == ("key", QUOTA - 1, 0)


async def test_batch_upsert_and_analytics_cost_ten(api: Api) -> None:
    response = await api.post("/v1/deals/batch-upsert", json={"records": []})
    assert budget(response)[:2] == ("key", QUOTA - 10)  # whatever the answer
    response = await api.get("/v1/analytics/closed-lost")
    assert response.status_code != 429
    assert budget(response)[:2] == ("key", 0)
    assert_rate_limited(await api.get("/v1/me"), "key")


async def test_requests_without_a_key_spend_their_address_budget(app, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    for n in range(QUOTA):
        response = await client.get("/v1/me")
        assert_problem(response, 401, "unauthenticated")
        assert budget(response)[:2] == ("address", QUOTA - 1 - n)
    assert_rate_limited(await client.get("/v1/me"), "address")
    assert_rate_limited(await client.get("/v1/me", headers={"Authorization": "Bearer not-a-key"}), "address")
    async with client_for(app, random_address()) as elsewhere:
        assert budget(await elsewhere.get("/v1/me"))[:2] == ("address", QUOTA - 1)


async def test_invalid_keys_from_one_address_are_slowed(app, client: httpx.AsyncClient, api: Api) -> None:  # type: ignore[no-untyped-def]
    for n in range(QUOTA + 1):
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer dc_{secrets.token_hex(16)}"})
        assert_problem(response, 401, "unauthenticated")
        assert budget(response)[:2] == ("address", max(0, QUOTA - 1 - n))
    # Spent: every key from this address is refused before the app sees it, even a valid one.
    assert_rate_limited(
        await client.get("/v1/me", headers={"Authorization": f"Bearer dc_{secrets.token_hex(16)}"}), "address"
    )
    assert_rate_limited(await client.get("/v1/me", headers={"Authorization": f"Bearer {api.key}"}), "address")
    async with client_for(app, random_address()) as elsewhere:
        response = await elsewhere.get("/v1/me", headers={"Authorization": f"Bearer {api.key}"})
        assert response.status_code == 200
        assert budget(response) == ("key", QUOTA - 1, 0)


@pytest.mark.usefixtures("crm")
async def test_crm_webhooks_spend_a_budget_of_their_own(client: httpx.AsyncClient) -> None:
    # Pipedrive sends a request per changed deal: more than a client's budget, from one address.
    for n in range(INBOUND_QUOTA):
        response = await client.post(PIPEDRIVE_HOOK, json=pipedrive_event(n=n), headers=basic())
        assert response.status_code == 200, response.text
        assert budget(response)[:2] == ("inbound", INBOUND_QUOTA - 1 - n)
    assert_rate_limited(await client.post(PIPEDRIVE_HOOK, json=pipedrive_event(n=99), headers=basic()), "inbound")
    # The address's own budget is untouched.
    assert budget(await client.get("/v1/me"))[:2] == ("address", QUOTA - 1)


@pytest.mark.usefixtures("crm")
async def test_unsigned_crm_webhooks_spend_the_address_budget(app, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    for n in range(QUOTA + 1):
        response = await client.post(PIPEDRIVE_HOOK, json=pipedrive_event(n=n), headers=basic(password="guess"))
        assert_problem(response, 401, "invalid_signature")
        assert budget(response)[:2] == ("address", max(0, QUOTA - 1 - n))
    # Spent by forgeries: this address's webhooks are refused, even signed ones.
    assert_rate_limited(await client.post(PIPEDRIVE_HOOK, json=pipedrive_event(n=1), headers=basic()), "address")
    async with client_for(app, random_address()) as elsewhere:
        response = await elsewhere.post(PIPEDRIVE_HOOK, json=pipedrive_event(n=1), headers=basic())
        assert response.status_code == 200 and budget(response)[:2] == ("inbound", INBOUND_QUOTA - 1)


async def test_health_and_metrics_are_not_limited(client: httpx.AsyncClient) -> None:
    for _ in range(QUOTA):
        await client.get("/v1/me")
    assert_rate_limited(await client.get("/v1/me"), "address")
    for path in ("/healthz", "/readyz", "/metrics"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "ratelimit" not in response.headers


@asynccontextmanager
async def running(settings: Settings):  # type: ignore[no-untyped-def]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


async def test_zero_turns_limits_off(database_url: str) -> None:
    async with running(limited(database_url, rate_limit_per_second=0, rate_limit_burst=1)) as app:
        org = await bootstrap(app)
        async with client_for(app, random_address()) as http:
            api = Api(http, org.admin_key)
            for _ in range(QUOTA + 5):
                response = await api.get("/v1/me")
                assert response.status_code == 200
                assert "ratelimit" not in response.headers and "ratelimit-policy" not in response.headers


async def test_an_unreachable_store_lets_requests_through(database_url: str) -> None:
    async with running(limited(database_url, rate_limit_storage_url="redis://127.0.0.1:1/0")) as app:
        org = await bootstrap(app)
        async with client_for(app, random_address()) as http:
            response = await Api(http, org.admin_key).get("/v1/me")
    assert response.status_code == 200
    assert "ratelimit" not in response.headers


async def test_with_redis_two_instances_share_one_budget(database_url: str, redis_url: str) -> None:
    settings = limited(database_url, rate_limit_storage_url=redis_url)
    async with running(settings) as first, running(settings) as second:
        org = await bootstrap(first)
        address = random_address()
        async with client_for(first, address) as one, client_for(second, address) as other:
            apis = [Api(one, org.admin_key), Api(other, org.admin_key)]
            for n in range(QUOTA):
                response = await apis[n % 2].get("/v1/me")
                assert response.status_code == 200, response.text
                assert budget(response)[:2] == ("key", QUOTA - 1 - n)
            assert_rate_limited(await apis[0].get("/v1/me"), "key")
            assert_rate_limited(await apis[1].get("/v1/me"), "key")
            for n in range(QUOTA):
                assert budget(await one.get("/v1/me"))[:2] == ("address", QUOTA - 1 - n)
            assert_rate_limited(await other.get("/v1/me"), "address")
