"""Numbers are not dates (API.md: Limits): every date and timestamp, in bodies and in query
strings, is ISO 8601 text; anything else is 422 validation_error naming the field, and the
request changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_calls import HELD, attending, lead, plan
from tests.api.test_reviews import REVIEWS, lost_review
from tests.helpers import Api, Person, assert_problem, make_deal

# Pydantic's lax mode read each of these as seconds since 1970 (or a bool as 0/1).
NOT_A_DATE = [0, 0.5, 1, True, "0", "0.5", "1700000000", "20261231", "2026-12-31T00:00:00", "", "31/12/2026"]
NOT_A_TIMESTAMP = [0, 0.5, 1700000000, True, "0", "0.5", "1700000000", "2026-11-03", "", "tomorrow"]


def refused(response: Any, *loc: str | int) -> None:
    body = assert_problem(response, 422, "validation_error")
    assert list(loc) in [e["loc"] for e in body["errors"]], body["errors"]


# --- query strings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("/v1/closed-lost-reviews", "closed_to"),
        ("/v1/closed-lost-reviews", "closed_from"),
        ("/v1/deals", "closed_from"),
        ("/v1/deals", "closed_to"),
        ("/v1/analytics/closed-lost?group_by=reason", "from"),
        ("/v1/analytics/closed-lost?group_by=reason", "to"),
        ("/v1/analytics/coaching", "from"),
        ("/v1/analytics/coaching", "to"),
    ],
)
async def test_a_query_date_is_iso_text_only(api: Api, team, url: str, name: str) -> None:
    hos = api.as_(team["hos"])
    sep = "&" if "?" in url else "?"
    for value in ("0", "0.5", "1700000000", "20261231", "2026-12-31T00:00:00Z"):
        refused(await hos.get(f"{url}{sep}{name}={value}"), "query", name)
    assert (await hos.get(f"{url}{sep}{name}=2026-12-31")).status_code == 200


async def test_a_query_timestamp_is_rfc3339_text_only(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    for value in ("0", "0.5", "1700000000", "2026-01-01", "2026-01-01T00:00:00"):
        refused(await api.get("/v1/deals", params={"updated_since": value}), "query", "updated_since")
    since = await api.get("/v1/deals", params={"updated_since": deal["created_at"]})
    assert since.status_code == 200 and deal["id"] in [d["id"] for d in since.json()["items"]]
    later = await api.get("/v1/deals", params={"updated_since": "2999-01-01T00:00:00+02:00"})
    assert later.status_code == 200 and later.json()["items"] == []


# --- bodies ------------------------------------------------------------------------------


async def test_deal_dates_in_bodies(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    for value in NOT_A_DATE:
        body = {"name": "Zebra", "account_name": "Zulu", "owner_id": seller.id, "expected_close_date": value}
        refused(await api.post("/v1/deals", json=body), "body", "expected_close_date")
        refused(await api.patch(url, json={"expected_close_date": value}), "body", "expected_close_date")
        refused(await api.put("/v1/deals/by-external-ref/hubspot/HS-1", json=body), "body", "expected_close_date")
    after = (await api.get(url)).json()
    assert after["version"] == deal["version"] and after["expected_close_date"] == deal["expected_close_date"]
    assert (await api.get("/v1/deals", params={"q": "Zebra"})).json()["items"] == []


async def test_deal_dates_accept_iso_text(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"], expected_close_date="2027-01-31")
    assert deal["expected_close_date"] == "2027-01-31"
    patched = await api.patch(f"/v1/deals/{deal['id']}", json={"expected_close_date": "2027-02-28"})
    assert patched.status_code == 200 and patched.json()["expected_close_date"] == "2027-02-28"
    body = {"name": "N", "account_name": "A", "owner_id": team["seller"].id, "expected_close_date": "2027-03-31"}
    upserted = await api.put("/v1/deals/by-external-ref/hubspot/HS-1", json=body)
    assert upserted.status_code == 201 and upserted.json()["expected_close_date"] == "2027-03-31"


async def test_a_next_step_due_date(api: Api, team) -> None:
    seller: Person = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}/strategy"
    step = {"description": "Call the CFO"}
    for value in NOT_A_DATE:
        response = await api.as_(seller).put(
            url, json={"next_steps": [{**step, "due_date": value}]}, headers={"If-Match": '"0"'}
        )
        refused(response, "body", "next_steps", 0, "due_date")
    assert (await api.as_(seller).get(url)).json()["version"] == 0
    good = await api.as_(seller).put(
        url, json={"next_steps": [{**step, "due_date": "2026-11-30"}]}, headers={"If-Match": '"0"'}
    )
    assert good.status_code == 200 and good.json()["next_steps"][0]["due_date"] == "2026-11-30"


async def test_call_timestamps(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    created = await plan(api, seller, deal, [lead(seller), attending(team["manager"])])
    assert created.status_code == 201, created.text
    url = f"/v1/calls/{created.json()['id']}"
    for value in NOT_A_TIMESTAMP:
        refused(await plan(api, seller, deal, [lead(seller)], scheduled_at=value), "body", "scheduled_at")
        refused(await api.as_(seller).patch(url, json={"held_at": value}), "body", "held_at")
        refused(await api.as_(seller).patch(url, json={"scheduled_at": value}), "body", "scheduled_at")
    assert len((await api.get(f"/v1/deals/{deal['id']}/calls")).json()["items"]) == 1
    call = (await api.as_(seller).get(url)).json()
    assert call["held_at"] is None and call["version"] == 1
    held = await api.as_(seller).patch(url, json={"held_at": HELD.replace("Z", "+01:00")})
    assert held.status_code == 200 and held.json()["held_at"].startswith("2026-11-03T14:00:00")


async def test_approval_and_review_dates(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    term = {"kind": "discount", "description": "Year one", "value": "10%", "applies_to": "Licences"}
    url = f"/v1/deals/{deal['id']}/approvals"
    for value in NOT_A_DATE:
        body = {"approver_id": manager.id, "terms": [{**term, "valid_until": value}]}
        refused(await api.as_(seller).post(url, json=body), "body", "terms", 0, "valid_until")
    assert (await api.as_(seller).get(url)).json()["items"] == []
    good = {"approver_id": manager.id, "terms": [{**term, "valid_until": "2026-12-31"}]}
    assert (await api.as_(seller).post(url, json=good)).status_code == 201

    review = await lost_review(api, team)
    item = {"description": "Rehearse pricing"}
    review_url = f"{REVIEWS}/{review['id']}"
    for value in NOT_A_DATE:
        response = await api.as_(manager).patch(review_url, json={"action_items": [{**item, "due_date": value}]})
        refused(response, "body", "action_items", 0, "due_date")
    assert (await api.as_(manager).get(review_url)).json()["version"] == review["version"]
    patched = await api.as_(manager).patch(review_url, json={"action_items": [{**item, "due_date": "2026-12-15"}]})
    assert patched.status_code == 200 and patched.json()["action_items"][0]["due_date"] == "2026-12-15"


def test_the_spec_keeps_the_date_formats() -> None:
    from app.main import create_app

    spec = create_app().openapi()
    params = {p["name"]: p["schema"] for p in spec["paths"]["/v1/deals"]["get"]["parameters"]}
    assert {"type": "string", "format": "date"} in params["closed_from"]["anyOf"]
    assert {"type": "string", "format": "date-time"} in params["updated_since"]["anyOf"]
    schemas = spec["components"]["schemas"]
    assert {"type": "string", "format": "date"} in schemas["DealCreate"]["properties"]["expected_close_date"]["anyOf"]
    assert schemas["CallCreate"]["properties"]["scheduled_at"]["format"] == "date-time"
