"""Sign-in with the organisation's identity provider (API.md, Front ends in the browser): a
bearer JWT whose `iss` is the organisation's `oidc_issuer` acts as its active member with the
token's email, on every operation (the hot reads and idempotent POSTs included); anything else
about the token is 401 `unauthenticated`.

The identity provider is a real HTTP server on loopback (tests/oidc_issuer.py) with an RSA and
an EC key; the service finds its keys through its discovery document. Tests that are about when
the keys are fetched again move the service's clock instead of waiting.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.db.reads import DealListing
from app.db.repositories import deal_writes
from app.db.repositories import reads as repository
from app.domain.oidc import SignedIn
from app.main import create_app
from app.settings import Settings
from tests.api.test_hot_reads import assert_one_statement, recording
from tests.conftest import bootstrap, settings_for
from tests.helpers import Api, Person, assert_problem, make_deal
from tests.oidc_issuer import AUDIENCE, LocalIssuer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait for what the service does in the background."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, oidc_allow_insecure=True)  # the local provider speaks http


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer().running() as running:
        yield running


@pytest.fixture
def clock(app) -> Clock:  # type: ignore[no-untyped-def]
    clock = Clock()
    app.state.identity_providers.clock = clock
    return clock


async def use_provider(api: Api, issuer: LocalIssuer | str, audience: str = AUDIENCE) -> httpx.Response:
    url = issuer.url if isinstance(issuer, LocalIssuer) else issuer
    return await api.patch("/v1/settings", json={"oidc_issuer": url, "oidc_audience": audience})


@pytest.fixture
async def seller(api: Api, issuer: LocalIssuer) -> Person:
    """A seller of an organisation that signs in with the local provider, with a manager."""
    assert (await use_provider(api, issuer)).status_code == 200
    manager = await api.make_member("manager", email="mia.manager@acme.test")
    return await api.make_member("seller", manager=manager, email="sam.seller@acme.test")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response, why: str = "") -> dict[str, Any]:
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert why in body["detail"], body
    return body


@pytest.mark.parametrize("key", ["rsa1", "ec1"])
async def test_a_token_acts_as_the_member_with_its_email(
    app, client: httpx.AsyncClient, api: Api, issuer: LocalIssuer, seller: Person, key: str, clock: Clock, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    deal = await make_deal(api, seller)
    token = Api(client, issuer.token("Sam.Seller@acme.test", key=key))  # emails match whatever their case

    me = await token.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == seller.id and me.json()["api_key_id"] is None
    # The keys are cached: the hot reads stay one statement, as with an API key.
    with recording(app, monkeypatch) as recorded:
        one = await token.get(f"/v1/deals/{deal['id']}")
    assert one.status_code == 200, one.text
    assert one.headers["etag"] == '"1"' and one.json() == deal
    assert_one_statement(recorded)
    with recording(app, monkeypatch) as recorded:
        page = await token.get("/v1/deals")
    assert [d["id"] for d in page.json()["items"]] == [deal["id"]]
    assert_one_statement(recorded)
    # An owner's change finds the token's member in the statement that reads the deal.
    changed = await token.patch(f"/v1/deals/{deal['id']}", json={"name": "Renamed"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.json()["name"] == "Renamed", changed.text
    deal = changed.json()

    # An idempotent POST claims its key for the token's member and replays to it.
    body = {"name": "Renewal", "account_name": "Initech", "owner_id": seller.id}
    created = await token.post("/v1/deals", json=body, headers={"Idempotency-Key": "renewal-1"})
    assert created.status_code == 201, created.text
    replayed = await token.post("/v1/deals", json=body, headers={"Idempotency-Key": "renewal-1"})
    assert replayed.status_code == 201 and replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json()["id"] == created.json()["id"]
    # ... the same member's API key shares the member's idempotency keys
    assert (await api.as_(seller).post("/v1/deals", json=body, headers={"Idempotency-Key": "renewal-1"})).headers[
        "idempotent-replayed"
    ] == "true"
    # Writes without one, and rules, apply to the member as to their key.
    assert (await token.post("/v1/deals", json={**body, "name": "Second"})).status_code == 201
    assert_problem(await token.patch("/v1/settings", json={"review_due_days": 3}), 403, "forbidden")
    history = (await token.get(f"/v1/deals/{created.json()['id']}/history")).json()["items"]
    assert history[0]["actor_id"] == seller.id
    assert issuer.jwks_fetches == 1


async def test_the_token_statements_take_the_driver_path_and_read_what_sqlalchemy_reads(
    app, api: Api, issuer: LocalIssuer, seller: Person, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL the hot statements go to asyncpg directly, the token's variants as the key's;
    SQLAlchemy's own execution of them gives the same rows, column for column."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    deal = await make_deal(api, seller)
    reads: Any = app.state.reads
    signed_in = SignedIn(issuer=issuer.url, audience=AUDIENCE, email="sam.seller@acme.test")
    listing = DealListing(after=None, limit=10)
    for by_token in (False, True):
        statements = (repository._DEAL[by_token], repository._deal_page(by_token, *[False] * 7))
        for stmt in (*statements, deal_writes._DEAL_OF_CALLER[by_token]):
            assert repository._driver_statement(app.state.engine.dialect, stmt) is not None

    writes = deal_writes.DealWrites(app.state.engine, None)

    async def read_all() -> list[list[tuple[tuple[str, ...], tuple[Any, ...]]]]:
        results = [
            [await reads.members.of(signed_in)],
            [await reads.deals.one(signed_in, uuid.UUID(deal["id"]))],
            [await writes.deal_of_caller(signed_in, uuid.UUID(deal["id"]))],
            (await reads.deals.page(signed_in, listing))[1],
        ]
        return [[(tuple(row._fields), tuple(row)) for row in rows] for rows in results]

    driver = await read_all()
    me, one, of_caller, page = ([dict(zip(*row, strict=True)) for row in rows] for rows in driver)
    assert me[0]["id"] == uuid.UUID(seller.id) and me[0]["api_key_id"] is None
    assert (of_caller[0]["actor_id"], of_caller[0]["actor_api_key_id"]) == (uuid.UUID(seller.id), None)
    assert [row["id"] for row in one + of_caller + page] == [uuid.UUID(deal["id"])] * 3
    with monkeypatch.context() as patched:
        patched.setattr(repository, "_driver_statement", lambda *_: None)
        assert await read_all() == driver


def _unsigned(token: str, alg: str) -> str:
    """The token's claims under a header naming ``alg``, with no signature."""
    _, payload, _ = token.split(".")
    header = base64.urlsafe_b64encode(json.dumps({"alg": alg, "typ": "JWT", "kid": "rsa1"}).encode())
    return f"{header.decode().rstrip('=')}.{payload}."


def _hs256_with_public_key(issuer: LocalIssuer, email: str) -> str:
    """Algorithm confusion: HS256 keyed with the provider's published RSA key."""
    good = issuer.token(email)
    header, payload, _ = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    public = json.dumps(issuer.published[0].jwk()).encode()
    head = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "rsa1"}).encode()).decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    signature = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


async def test_tokens_that_do_not_hold_are_refused(
    client: httpx.AsyncClient, api: Api, issuer: LocalIssuer, seller: Person
) -> None:
    email = "sam.seller@acme.test"
    deal = await make_deal(api, seller)
    forged = issuer.token(email).rsplit(".", 1)[0] + "." + issuer.token("mia.manager@acme.test").rsplit(".", 1)[1]
    cases = {
        "expired": (issuer.token(email, expires_in=-120), "expired"),
        "wrong audience": (issuer.token(email, audience="another-app"), "audience"),
        "wrong issuer": (issuer.token(email, issuer="http://127.0.0.1:9/realms/acme"), "issuer"),
        "alg none": (_unsigned(issuer.token(email), "none"), "algorithm"),
        "HS256 keyed with the public key": (_hs256_with_public_key(issuer, email), "algorithm"),
        "bad signature": (forged, "signature"),
        "signed by a key never published": (issuer.token(email, key="rsa9", kid="rsa1"), "signature"),
        "no exp": (issuer.token(email, omit=("exp",)), "exp"),
        "no aud": (issuer.token(email, audience=None), "aud"),
        "no email": (issuer.token(None), "email"),
        "email of no member": (issuer.token("nobody@acme.test"), "no active member"),
        "email not verified": (issuer.token(email, email_verified=False), "not verified"),
        "email not verified (as text)": (issuer.token(email, email_verified="false"), "not verified"),
        "not a token": ("eyJhbGciOi.eyJpc3Mi.c2ln", "well-formed"),
    }
    for case, (token, why) in cases.items():
        for method, path in (("GET", "/v1/me"), ("GET", f"/v1/deals/{deal['id']}"), ("GET", "/v1/deals")):
            response = await client.request(method, path, headers=bearer(token))
            assert response.status_code == 401, (case, path, response.text)
            assert_refused(response, why)
        changed = await client.patch(f"/v1/deals/{deal['id']}", json={"name": case[:50]}, headers=bearer(token))
        assert changed.status_code == 401, (case, changed.text)
        assert_refused(changed, why)
        posted = await client.post(
            "/v1/deals",
            json={"name": "X", "account_name": "Y", "owner_id": seller.id},
            headers={**bearer(token), "Idempotency-Key": f"try-{case}"},
        )
        assert_refused(posted, why)
    assert (await client.get("/v1/me", headers=bearer(issuer.token(email)))).status_code == 200
    assert (await api.as_(seller).get(f"/v1/deals/{deal['id']}")).json()["version"] == 1


async def test_an_inactive_member_and_another_organisation_are_refused(
    app, client: httpx.AsyncClient, api: Api, issuer: LocalIssuer, seller: Person
) -> None:  # type: ignore[no-untyped-def]
    token = issuer.token("sam.seller@acme.test")
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    assert (await api.patch(f"/v1/members/{seller.id}", json={"active": False})).status_code == 200
    assert_refused(await client.get("/v1/me", headers=bearer(token)), "no active member")
    # A member with the same email in another organisation is not who the provider signs in.
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    await Api(client, other.admin_key).make_member("seller", email="sam.seller@acme.test")
    assert_refused(await client.get("/v1/me", headers=bearer(token)), "no active member")


async def test_rotated_keys_are_fetched_again_but_not_more_than_every_five_seconds(
    client: httpx.AsyncClient, issuer: LocalIssuer, seller: Person, clock: Clock
) -> None:
    email = "sam.seller@acme.test"

    async def status(key: str, kid: str | None = None) -> int:
        return (await client.get("/v1/me", headers=bearer(issuer.token(email, key=key, kid=kid)))).status_code

    assert await status("rsa1") == 200 and await status("ec1") == 200
    assert issuer.jwks_fetches == 1
    issuer.rotate("rsa2", "ec1")  # rsa1 withdrawn, rsa2 new
    clock.now += 5
    assert await status("rsa2") == 200  # an unknown kid: the keys are fetched again
    assert issuer.jwks_fetches == 2
    assert await status("rsa1") == 401  # withdrawn
    assert await status("ec1") == 200
    # A key that was never published: refused, and the provider is not asked again within 5 s.
    for _ in range(5):
        assert await status("rsa9") == 401
    clock.now += 4.9
    assert await status("rsa9") == 401
    assert issuer.jwks_fetches == 2
    clock.now += 0.1
    assert await status("rsa9") == 401 and await status("rsa9") == 401
    assert issuer.jwks_fetches == 3
    # Keys are fetched again after five minutes even when every token's key is known: in the
    # background, while the old set verifies the token at hand.
    issuer.rotate("ec1")  # rsa2 withdrawn
    clock.now += 300
    assert await status("rsa2") == 200
    await until(lambda: issuer.jwks_fetches == 4)
    # The provider has answered; the service stores the new set once it has read the answer.
    deadline = asyncio.get_running_loop().time() + 5
    while await status("rsa2") == 200:
        assert asyncio.get_running_loop().time() < deadline, "the fresh keys were never used"
        await asyncio.sleep(0.01)
    assert await status("rsa2") == 401 and await status("ec1") == 200
    assert issuer.jwks_fetches == 4  # while the refresh ran, no token asked for another


async def test_a_provider_that_cannot_be_reached_refuses_its_tokens_until_it_answers(
    client: httpx.AsyncClient, issuer: LocalIssuer, seller: Person, clock: Clock
) -> None:
    token = issuer.token("sam.seller@acme.test")
    issuer.failing = True
    assert_refused(await client.get("/v1/me", headers=bearer(token)), "could not be fetched")
    asked = len(issuer.fetches)
    assert_refused(await client.get("/v1/me", headers=bearer(token)), "could not be fetched")
    assert len(issuer.fetches) == asked  # not again within 5 s
    issuer.failing = False
    clock.now += 5
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    # Once fetched, keys outlive an outage: the provider is down, its tokens still verify, and no
    # request waits for it.
    issuer.failing = True
    asked = len(issuer.fetches)
    clock.now += 300
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    await until(lambda: len(issuer.fetches) > asked)  # tried in the background
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200


async def test_turning_sign_in_off_or_changing_the_audience_takes_effect_at_once(
    client: httpx.AsyncClient, api: Api, issuer: LocalIssuer, seller: Person
) -> None:
    token = issuer.token("sam.seller@acme.test")
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200
    assert (await use_provider(api, issuer, audience="dealcoach-v2")).status_code == 200
    # This worker still has the old audience cached; the statement that authenticates reads the new.
    assert_refused(await client.get("/v1/me", headers=bearer(token)))
    assert (await api.patch("/v1/settings", json={"oidc_issuer": None})).status_code == 200
    settings = (await api.get("/v1/settings")).json()
    assert settings["oidc_issuer"] is None and settings["oidc_audience"] == "dealcoach-v2"
    assert_refused(await client.get("/v1/me", headers=bearer(issuer.token("sam.seller@acme.test"))))


async def test_issuer_settings_are_checked(app, client: httpx.AsyncClient, api: Api, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    hos = await api.make_member("head_of_sales")
    assert_problem(await use_provider(api.as_(hos), issuer), 403, "forbidden")
    for url in ("ftp://idp.example.com", "https://user:pw@idp.example.com", "https://idp.example.com/?a=b", "idp"):
        body = assert_problem(await use_provider(api, url), 422, "oidc_issuer_not_allowed")
        assert body["errors"][0]["loc"] == ["body", "oidc_issuer"]
    missing = await api.patch("/v1/settings", json={"oidc_issuer": issuer.url})
    assert assert_problem(missing, 422, "validation_error")["errors"][0]["loc"] == ["body", "oidc_audience"]
    for body in ({"oidc_issuer": ""}, {"oidc_audience": " "}, {"oidc_issuer": "https://x.example", "oidc_audience": 7}):
        assert_problem(await api.patch("/v1/settings", json=body), 422, "validation_error")
    assert (await api.get("/v1/settings")).json()["version"] == 1

    saved = await use_provider(api, issuer)
    assert saved.status_code == 200, saved.text
    assert saved.json()["oidc_issuer"] == issuer.url and saved.json()["oidc_audience"] == AUDIENCE
    assert (await use_provider(api, issuer)).json()["version"] == saved.json()["version"]  # unchanged
    assert_problem(await api.patch("/v1/settings", json={"oidc_audience": None}), 422, "validation_error")

    # One organisation per provider.
    globex = Api(client, (await bootstrap(app, name="Globex", email="root@globex.test")).admin_key)
    assert_problem(await use_provider(globex, issuer), 409, "oidc_issuer_taken")
    assert (await use_provider(globex, issuer.url + "/")).status_code == 200  # another issuer, to the letter
    assert (await api.patch("/v1/settings", json={"oidc_issuer": None})).status_code == 200
    assert (await use_provider(globex, issuer)).status_code == 200
    events = (await api.get("/v1/events", params={"type": "settings.updated"})).json()["items"]
    assert events[0]["data"]["changes"]["oidc_issuer"] == [None, issuer.url]


async def test_https_only_unless_the_service_allows_otherwise(database_url: str, org, issuer: LocalIssuer) -> None:  # type: ignore[no-untyped-def]
    strict = create_app(settings_for(database_url))
    async with strict.router.lifespan_context(strict), _client(strict) as client:
        admin = Api(client, org.admin_key)
        body = assert_problem(await use_provider(admin, issuer), 422, "oidc_issuer_not_allowed")
        assert "https" in body["detail"]
        saved = await use_provider(admin, "https://login.example.com/realms/acme")
        assert saved.status_code == 200, saved.text  # nothing is fetched until a token arrives


async def test_a_token_spends_its_own_rate_limit_budget(
    database_url: str, org, issuer: LocalIssuer, seller: Person
) -> None:  # type: ignore[no-untyped-def]
    limited = create_app(
        settings_for(database_url, oidc_allow_insecure=True, rate_limit_per_second=1, rate_limit_burst=3)
    )
    async with limited.router.lifespan_context(limited), _client(limited) as client:
        token = bearer(issuer.token("sam.seller@acme.test"))
        answered = [await client.get("/v1/me", headers=token) for _ in range(4)]
        assert [r.status_code for r in answered] == [200, 200, 200, 429]
        assert answered[0].headers["ratelimit-policy"] == '"token";q=3;w=3'
        assert_problem(answered[3], 429, "rate_limited")
        # Another token (of the same member) and the address have budgets of their own.
        assert (
            await client.get("/v1/me", headers=bearer(issuer.token("sam.seller@acme.test", jti="2")))
        ).status_code == 200
        assert (await client.get("/v1/me")).headers["ratelimit"].startswith('"address"')


def _client(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
