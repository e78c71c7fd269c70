"""Deals: ownership, stages, transfers, closing and reopening (docs/rules.md: Deals)."""

from __future__ import annotations

import pytest

from tests.helpers import Api, assert_problem, make_deal


async def test_seller_creates_own_deal(api: Api, team) -> None:
    seller = team["seller"]
    response = await api.as_(seller).post(
        "/v1/deals",
        json={
            "name": "Globex renewal",
            "account_name": "Globex",
            "owner_id": seller.id,
            "amount": {"amount": "12500.5", "currency": "EUR"},
            "expected_close_date": "2026-12-31",
            "external_refs": [{"source": "hubspot", "external_id": "981"}],
        },
    )
    assert response.status_code == 201, response.text
    deal = response.json()
    assert response.headers["location"] == f"/v1/deals/{deal['id']}"
    assert deal["amount"] == {"amount": "12500.50", "currency": "EUR"}
    assert deal["stage"] == "prospecting" and deal["status"] == "open"
    assert deal["closed_at"] is None and deal["loss"] is None
    assert deal["external_refs"] == [{"source": "hubspot", "external_id": "981"}]
    fetched = await api.as_(seller).get(f"/v1/deals/{deal['id']}")
    assert fetched.json() == deal and fetched.headers["etag"] == '"1"'


@pytest.mark.parametrize("owner_role", ["manager", "head_of_sales", "admin", "integration"])
async def test_owner_must_be_a_seller(api: Api, team, owner_role: str) -> None:
    not_seller = await api.make_member(owner_role, key=False)
    for caller in (api, api.as_(team["manager"]), api.as_(team["integration"])):
        response = await caller.post("/v1/deals", json={"name": "D", "account_name": "A", "owner_id": not_seller.id})
        assert_problem(response, 422, "owner_must_be_seller")


async def test_a_manager_cannot_own_a_deal_they_create(api: Api, team) -> None:
    manager = team["manager"]
    response = await api.as_(manager).post("/v1/deals", json={"name": "D", "account_name": "A", "owner_id": manager.id})
    assert_problem(response, 422, "owner_must_be_seller")


async def test_inactive_or_unknown_owner_is_refused(api: Api, team) -> None:
    gone = await api.make_member("seller", key=False)
    await api.patch(f"/v1/members/{gone.id}", json={"active": False})
    for owner_id in (gone.id, "01900000-0000-7000-8000-000000000000"):
        assert_problem(
            await api.post("/v1/deals", json={"name": "D", "account_name": "A", "owner_id": owner_id}),
            422,
            "owner_must_be_seller",
        )


async def test_who_may_create_for_whom(api: Api, team) -> None:
    seller, outsider = team["seller"], team["outsider"]
    body = {"name": "D", "account_name": "A", "owner_id": seller.id}
    assert_problem(await api.as_(team["peer"]).post("/v1/deals", json=body), 403, "forbidden")
    assert_problem(await api.as_(team["other_manager"]).post("/v1/deals", json=body), 403, "forbidden")
    for caller in ("manager", "hos", "integration"):
        assert (await api.as_(team[caller]).post("/v1/deals", json=body)).status_code == 201
    assert (await api.post("/v1/deals", json={**body, "owner_id": outsider.id})).status_code == 201


async def test_money_is_validated(api: Api, team) -> None:
    seller = team["seller"]
    for amount in (
        {"amount": "12.345", "currency": "EUR"},
        {"amount": "-1", "currency": "EUR"},
        {"amount": "abc", "currency": "EUR"},
        {"amount": "10", "currency": "XXX"},
        {"amount": "10", "currency": "eur"},
        {"amount": "1.5", "currency": "JPY"},
        {"amount": "NaN", "currency": "EUR"},
        {"amount": "1e30", "currency": "EUR"},
    ):
        response = await api.post(
            "/v1/deals", json={"name": "D", "account_name": "A", "owner_id": seller.id, "amount": amount}
        )
        assert_problem(response, 422, "validation_error")
    ok = await api.post(
        "/v1/deals",
        json={
            "name": "D",
            "account_name": "A",
            "owner_id": seller.id,
            "amount": {"amount": "1.234", "currency": "KWD"},
        },
    )
    assert ok.json()["amount"] == {"amount": "1.234", "currency": "KWD"}


async def test_stage_moves_and_closing_won(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    moved = await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "negotiation"})
    assert moved.json()["stage"] == "negotiation" and moved.json()["version"] == 2
    won = await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_won"})
    assert won.json()["status"] == "won" and won.json()["closed_at"] is not None
    assert_problem(await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"name": "New"}), 409, "deal_closed")
    assert_problem(
        await api.as_(seller).patch(
            f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}}
        ),
        409,
        "deal_closed",
    )


async def test_closing_lost_needs_a_catalog_loss_reason(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller, stage="negotiation")
    url = f"/v1/deals/{deal['id']}"
    assert_problem(await api.as_(seller).patch(url, json={"stage": "closed_lost"}), 422, "loss_reason_required")
    assert_problem(
        await api.as_(seller).patch(url, json={"stage": "closed_lost", "loss": {"reason_code": "aliens"}}),
        422,
        "unknown_loss_reason",
    )
    assert_problem(
        await api.as_(seller).patch(url, json={"loss": {"reason_code": "price"}}), 422, "loss_requires_closed_lost"
    )
    assert (await api.as_(seller).get(url)).json()["stage"] == "negotiation"
    lost = await api.as_(seller).patch(
        url,
        json={
            "stage": "closed_lost",
            "loss": {"reason_code": "competitor", "competitor": "Initech", "detail": "Better demo"},
        },
    )
    body = lost.json()
    assert body["status"] == "lost" and body["closed_at"]
    assert body["loss"] == {"reason_code": "competitor", "competitor": "Initech", "detail": "Better demo"}
    history = (await api.as_(seller).get(f"{url}/history")).json()["items"]
    changed = [e for e in history if e["type"] == "deal.stage_changed"][-1]
    assert changed["data"]["to"] == "closed_lost" and changed["data"]["loss"]["reason_code"] == "competitor"


async def test_retired_loss_reason_cannot_be_used(api: Api, team) -> None:
    await api.patch("/v1/loss-reasons/timing", json={"active": False})
    deal = await make_deal(api, team["seller"])
    response = await api.patch(
        f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "timing"}}
    )
    assert_problem(response, 422, "unknown_loss_reason")


async def test_reopen_by_owner_or_line_clears_close(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    await api.as_(seller).patch(url, json={"stage": "closed_lost", "loss": {"reason_code": "price"}})
    assert_problem(await api.as_(team["integration"]).patch(url, json={"stage": "proposal"}), 403, "forbidden")
    assert_problem(await api.patch(url, json={"stage": "proposal"}), 403, "forbidden")  # admin is not in the line
    reopened = await api.as_(team["manager"]).patch(url, json={"stage": "proposal", "name": "Second try"})
    assert reopened.status_code == 200, reopened.text
    body = reopened.json()
    assert body["stage"] == "proposal" and body["closed_at"] is None and body["loss"] is None
    assert body["name"] == "Second try"
    event = [e for e in (await api.get(f"{url}/history")).json()["items"] if e["type"] == "deal.stage_changed"][-1]
    assert event["data"]["reopened"] is True


async def test_transfer_needs_a_seller_and_a_reason(api: Api, team) -> None:
    seller, peer = team["seller"], team["peer"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    assert_problem(await api.as_(seller).patch(url, json={"owner_id": peer.id}), 422, "transfer_reason_required")
    assert_problem(
        await api.as_(seller).patch(url, json={"owner_id": peer.id, "transfer_reason": "  "}),
        422,
        "transfer_reason_required",
    )
    assert_problem(
        await api.as_(seller).patch(url, json={"owner_id": team["manager"].id, "transfer_reason": "cover"}),
        422,
        "owner_must_be_seller",
    )
    assert_problem(
        await api.as_(team["other_manager"]).patch(url, json={"owner_id": peer.id, "transfer_reason": "x"}),
        404,
        "not_found",
    )
    moved = await api.as_(team["manager"]).patch(url, json={"owner_id": peer.id, "transfer_reason": "Territory change"})
    assert moved.status_code == 200 and moved.json()["owner_id"] == peer.id
    transfer = [e for e in (await api.get(f"{url}/history")).json()["items"] if e["type"] == "deal.owner_transferred"]
    assert transfer[0]["data"] == {"from": seller.id, "to": peer.id, "reason": "Territory change"}
    # The previous owner no longer sees it.
    assert_problem(await api.as_(seller).get(url), 404, "not_found")
    assert (await api.as_(peer).get(url)).status_code == 200


async def test_edits_by_viewers_without_the_right_are_forbidden(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    for who in ("manager", "hos", "integration"):
        assert (await api.as_(team[who]).patch(url, json={"name": f"by {who}"})).status_code == 200
    assert (await api.patch(url, json={"name": "by admin"})).status_code == 200


async def test_if_match_on_deals(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    url = f"/v1/deals/{deal['id']}"
    ok = await api.patch(url, json={"name": "One"}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200
    assert_problem(await api.patch(url, json={"name": "Two"}, headers={"If-Match": '"1"'}), 412, "version_conflict")
    assert (await api.get(url)).json()["name"] == "One"


async def test_list_filters(api: Api, team) -> None:
    seller, peer = team["seller"], team["peer"]
    a = await make_deal(api, seller, name="Alpha Rocket", account_name="Acme 100%")
    b = await make_deal(api, peer, name="Beta", account_name="Bolt_Co", stage="negotiation")
    c = await make_deal(api, seller, name="Gamma")
    await api.patch(f"/v1/deals/{c['id']}", json={"stage": "closed_won"})
    d = await make_deal(api, seller, name="Delta")
    await api.patch(f"/v1/deals/{d['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}})

    async def ids(**params) -> list[str]:
        response = await api.get("/v1/deals", params=params)
        assert response.status_code == 200, response.text
        return [x["id"] for x in response.json()["items"]]

    assert await ids(owner_id=seller.id) == [a["id"], c["id"], d["id"]]
    assert await ids(stage="negotiation") == [b["id"]]
    assert await ids(status="open") == [a["id"], b["id"]]
    assert await ids(status="won") == [c["id"]]
    assert await ids(status="lost") == [d["id"]]
    assert await ids(status="open", stage="closed_won") == []
    assert await ids(q="rocket") == [a["id"]]
    assert await ids(q="100%") == [a["id"]]
    assert await ids(q="a_r") == []  # "_" is no wildcard ("Alpha Rocket" has "a r")
    assert await ids(q="bolt_") == [b["id"]]
    today = (await api.get(f"/v1/deals/{c['id']}")).json()["closed_at"][:10]
    assert await ids(closed_from=today, closed_to=today) == [c["id"], d["id"]]
    assert await ids(closed_to="2000-01-01") == []
    assert set(await ids(updated_since=c["created_at"])) >= {c["id"], d["id"]}
    assert_problem(await api.get("/v1/deals", params={"status": "pending"}), 422, "validation_error")
    assert_problem(await api.get("/v1/deals", params={"closed_from": "yesterday"}), 422, "validation_error")
