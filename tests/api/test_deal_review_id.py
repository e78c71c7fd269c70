"""A lost deal names its closed-lost review (`review_id`) wherever the deal is read or written;
any other deal says null."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api, make_deal

LOSS = {"stage": "closed_lost", "loss": {"reason_code": "price"}}


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


async def test_a_lost_deal_names_its_review_wherever_it_is_read(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, external_refs=[{"source": "hubspot", "external_id": "HS-7"}])
    assert deal["review_id"] is None
    url = f"/v1/deals/{deal['id']}"
    lost = await ok(await api.as_(seller).patch(url, json=LOSS))
    review_id = lost["review_id"]
    review = await ok(await api.as_(manager).get(f"/v1/closed-lost-reviews/{review_id}"))
    assert review["deal_id"] == deal["id"]
    assert (await ok(await api.as_(seller).get(url)))["review_id"] == review_id
    listed = (await ok(await api.as_(manager).get("/v1/deals", params={"limit": 200})))["items"]
    assert {d["id"]: d["review_id"] for d in listed} == {deal["id"]: review_id}
    unchanged = await api.as_(seller).patch(url, json={"stage": "closed_lost"})
    assert (await ok(unchanged))["review_id"] == review_id
    synced = await api.put("/v1/deals/by-external-ref/hubspot/HS-7", json={"name": deal["name"]})
    assert (await ok(synced))["review_id"] == review_id

    reopened = await ok(await api.as_(seller).patch(url, json={"stage": "negotiation"}))
    assert reopened["review_id"] is None
    assert (await ok(await api.as_(seller).get(url)))["review_id"] is None
    again = await ok(await api.as_(seller).patch(url, json=LOSS))
    assert again["review_id"] == review_id  # the one review of the deal, reused


async def test_deals_created_lost_or_won_say_so(api: Api, team) -> None:
    seller = team["seller"]
    lost = await make_deal(api, seller, stage="closed_lost", loss={"reason_code": "timing"})
    assert lost["review_id"] is not None
    assert (await ok(await api.as_(seller).get(f"/v1/deals/{lost['id']}")))["review_id"] == lost["review_id"]
    won = await make_deal(api, seller, stage="closed_won")
    assert won["review_id"] is None
