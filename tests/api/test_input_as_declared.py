"""What the OpenAPI document declares about an input is what the API does with it: a value the
schema refuses is refused (422 validation_error naming it), one it allows is not refused for
its shape. Found by schemathesis' positive_data_acceptance and negative_data_rejection checks."""

from __future__ import annotations

import base64

import pytest

from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, assert_problem, make_deal


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Webhook endpoints on loopback (nothing is delivered: no dispatcher runs).
    return settings_for(database_url, webhooks_allow_private=True)


def refused(response, *loc: str | int) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(response, 422, "validation_error")
    assert list(loc) in [e["loc"] for e in body["errors"]], body["errors"]


async def test_text_is_bounded_as_sent_and_emails_are_taken_as_sent(api: Api) -> None:
    # A label is trimmed, and its bounds hold for the text as sent: 200 characters, not blank.
    for n, label in enumerate([" " + "a" * 200, "\u3000 \t", "\x85"]):
        refused(await api.post("/v1/skills", json={"code": f"refused_{n}", "label": label}), "body", "label")
    for n, (label, stored) in enumerate([("a" * 200, "a" * 200), (" Deal reviews ", "Deal reviews")]):
        response = await api.post("/v1/skills", json={"code": f"taken_{n}", "label": label})
        assert response.status_code == 201, response.text
        assert response.json()["label"] == stored
    # An email has no whitespace or control character anywhere: it is taken as sent, never trimmed.
    for email in [" sam@example.com", "sam\x85@example.com", "sam\ufeff@example.com"]:
        refused(await api.post("/v1/members", json={"name": "Sam", "email": email, "role": "seller"}), "body", "email")
    response = await api.post("/v1/members", json={"name": "Sam", "email": "Sam.Seller@Example.com", "role": "seller"})
    assert response.status_code == 201, response.text
    assert response.json()["email"] == "sam.seller@example.com"


async def test_booleans_and_integers_are_strict(api: Api) -> None:
    """JSON booleans and integers only: no `0` for false, no "7" or 7.0 for 7."""
    for url, field, bad, good in [
        ("/v1/skills/negotiation", "active", 0, False),
        ("/v1/skills/negotiation", "active", "false", True),
        ("/v1/settings", "review_due_days", "7", 8),
        ("/v1/settings", "review_due_days", 7.0, 9),
    ]:
        refused(await api.patch(url, json={field: bad}), "body", field)
        response = await api.patch(url, json={field: good})
        assert response.status_code == 200, response.text
        assert response.json()[field] == good


async def test_an_amount_is_a_plain_decimal(api: Api, team) -> None:  # type: ignore[no-untyped-def]
    deal = await make_deal(api, team["seller"])
    url = f"/v1/deals/{deal['id']}"
    for amount in ["1e3", "+5", "1_000", " 5", "007", "1.2345", "1" * 16]:
        refused(
            await api.patch(url, json={"amount": {"amount": amount, "currency": "EUR"}}), "body", "amount", "amount"
        )
    ok = await api.patch(url, json={"amount": {"amount": "999999999999999.99", "currency": "EUR"}})
    assert ok.status_code == 200, ok.text


async def test_a_webhook_secret_is_the_base64_of_24_to_64_bytes(api: Api) -> None:
    endpoint = {"url": "http://127.0.0.1:9/hooks", "event_types": ["*"]}
    for secret in ["whsec_" + base64.b64encode(b"k" * 23).decode(), "whsec_" + "A" * 33]:
        refused(await api.post("/v1/webhook-endpoints", json={**endpoint, "secret": secret}), "body", "secret")
    for size in (24, 64):
        secret = "whsec_" + base64.b64encode(b"k" * size).decode()
        response = await api.post("/v1/webhook-endpoints", json={**endpoint, "secret": secret})
        assert response.status_code == 201, response.text


async def test_a_week_is_an_iso_week(api: Api) -> None:
    for week in ["0000-W01", "2026-W00", "2026-W54", "2025-W53"]:  # 2025 has 52 weeks
        refused(await api.get("/v1/closed-lost-reviews/weekly", params={"week": week}), "query", "week")
    assert (await api.get("/v1/closed-lost-reviews/weekly", params={"week": "2026-W53"})).status_code == 200


async def test_an_empty_idempotency_key_is_refused(api: Api) -> None:
    body = {"code": "closing_calls", "label": "Closing calls"}
    response = await api.post("/v1/skills", json=body, headers={"Idempotency-Key": ""})
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"] == [
        {"loc": ["header", "Idempotency-Key"], "msg": "must be 1 to 255 characters", "type": "string_too_short"}
    ]
    assert (await api.post("/v1/skills", json=body, headers={"Idempotency-Key": "k"})).status_code == 201


async def test_if_none_match_is_bounded_as_declared(api: Api, team) -> None:  # type: ignore[no-untyped-def]
    deal = await make_deal(api, team["seller"])
    tags = ", ".join(['"1"'] * 205)  # 1,023 characters
    assert (await api.get(f"/v1/deals/{deal['id']}", headers={"If-None-Match": tags})).status_code == 304
    refused(await api.get(f"/v1/deals/{deal['id']}", headers={"If-None-Match": tags + ", "}), "header", "If-None-Match")
    # A path that names nothing still answers 404 first, as with any other invalid input.
    assert_problem(await api.get("/v1/deals/not-a-deal", headers={"If-None-Match": tags + ", "}), 404, "not_found")
