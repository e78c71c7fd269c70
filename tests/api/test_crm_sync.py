"""CRM sync: idempotent upsert by external reference and batch upsert."""

from __future__ import annotations

import pytest

from tests.helpers import Api, Person, assert_problem


@pytest.fixture
async def people(api: Api) -> dict[str, Person]:
    manager = await api.make_member("manager")
    seller = await api.make_member("seller", manager=manager)
    other = await api.make_member("seller", manager=manager)
    crm = await api.make_member("integration")
    return {"manager": manager, "seller": seller, "other": other, "crm": crm}


def _deal(owner: Person, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {
        "name": "Initech expansion",
        "account_name": "Initech",
        "owner_id": owner.id,
        "amount": {"amount": "5000.00", "currency": "USD"},
        "stage": "qualification",
        **extra,
    }


async def test_upsert_creates_then_updates_then_is_unchanged(api: Api, people) -> None:
    crm = api.as_(people["crm"])
    url = "/v1/deals/by-external-ref/hubspot/HS-1"
    created = await crm.put(url, json=_deal(people["seller"]))
    assert created.status_code == 201, created.text
    deal = created.json()
    assert created.headers["location"] == f"/v1/deals/{deal['id']}"
    assert deal["external_refs"] == [{"source": "hubspot", "external_id": "HS-1"}]

    events_before = (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    same = await crm.put(url, json=_deal(people["seller"]))
    assert same.status_code == 200
    assert same.json()["version"] == deal["version"]
    assert (await api.get(f"/v1/deals/{deal['id']}/history")).json()["items"] == events_before

    updated = await crm.put(url, json=_deal(people["seller"], stage="proposal"))
    assert updated.status_code == 200 and updated.json()["version"] == deal["version"] + 1
    assert updated.json()["stage"] == "proposal"
    partial = await crm.put(url, json={"amount": {"amount": "6000", "currency": "USD"}})
    assert partial.json()["amount"] == {"amount": "6000.00", "currency": "USD"}
    assert partial.json()["name"] == "Initech expansion"


async def test_upsert_applies_the_deal_rules(api: Api, people) -> None:
    crm = api.as_(people["crm"])
    url = "/v1/deals/by-external-ref/hubspot/HS-2"
    assert_problem(await crm.put(url, json=_deal(people["manager"])), 422, "owner_must_be_seller")
    assert_problem(await crm.put(url, json={"name": "No owner"}), 422, "validation_error")
    await crm.put(url, json=_deal(people["seller"]))
    assert_problem(await crm.put(url, json={"owner_id": people["other"].id}), 422, "transfer_reason_required")
    moved = await crm.put(url, json={"owner_id": people["other"].id, "transfer_reason": "CRM reassignment"})
    assert moved.json()["owner_id"] == people["other"].id
    assert_problem(await crm.put(url, json={"stage": "closed_lost"}), 422, "loss_reason_required")
    lost = await crm.put(url, json={"stage": "closed_lost", "loss": {"reason_code": "no_budget"}})
    assert lost.json()["status"] == "lost"
    again = await crm.put(url, json={"stage": "closed_lost", "loss": {"reason_code": "no_budget"}})
    assert again.status_code == 200 and again.json()["version"] == lost.json()["version"]
    assert_problem(await crm.put(url, json={"name": "Renamed after loss"}), 409, "deal_closed")


async def test_upsert_honours_if_match(api: Api, people) -> None:
    crm = api.as_(people["crm"])
    url = "/v1/deals/by-external-ref/sf/006A"
    assert_problem(
        await crm.put(url, json=_deal(people["seller"]), headers={"If-Match": '"1"'}), 412, "version_conflict"
    )
    created = await crm.put(url, json=_deal(people["seller"]))
    assert created.headers["etag"] == '"1"'
    assert (await crm.put(url, json={"name": "A"}, headers={"If-Match": '"1"'})).status_code == 200
    assert_problem(await crm.put(url, json={"name": "B"}, headers={"If-Match": '"1"'}), 412, "version_conflict")


async def test_upsert_of_a_hidden_deal_is_not_found(api: Api, people) -> None:
    await api.as_(people["crm"]).put("/v1/deals/by-external-ref/hubspot/HS-3", json=_deal(people["seller"]))
    response = await api.as_(people["other"]).put("/v1/deals/by-external-ref/hubspot/HS-3", json={"name": "Mine now"})
    assert_problem(response, 404, "not_found")


async def test_external_refs_are_unique_per_organisation(api: Api, people) -> None:
    body = _deal(people["seller"], external_refs=[{"source": "hubspot", "external_id": "X"}])
    assert (await api.post("/v1/deals", json=body)).status_code == 201
    assert_problem(await api.post("/v1/deals", json=body), 409, "external_ref_taken")


@pytest.mark.parametrize(
    "path", ["/v1/deals/by-external-ref/Bad Source/1", "/v1/deals/by-external-ref/hubspot/" + "x" * 201]
)
async def test_bad_refs_are_refused(api: Api, people, path: str) -> None:
    response = await api.as_(people["crm"]).put(path, json=_deal(people["seller"]))
    assert response.status_code in (404, 422)
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_batch_upsert_reports_each_record_and_isolates_bad_ones(api: Api, people) -> None:
    crm = api.as_(people["crm"])
    seller, manager = people["seller"], people["manager"]
    await crm.put("/v1/deals/by-external-ref/hubspot/B-2", json=_deal(seller))
    records = [
        {"source": "hubspot", "external_id": "B-1", **_deal(seller)},
        {"source": "hubspot", "external_id": "B-2", **_deal(seller)},
        {"source": "hubspot", "external_id": "B-3", **_deal(manager)},
        {"source": "hubspot", "external_id": "B-2", **_deal(seller, stage="proposal")},
        {"source": "hubspot", "external_id": "B-4", "name": "x", "unknown_field": 1, "version": 2},
        {"external_id": "B-5", **_deal(seller)},
        {"source": "hubspot", "external_id": "B-6", **_deal(seller, stage="closed_lost")},
        {"source": "hubspot", "external_id": "B-7", **_deal(seller, amount={"amount": "1.001", "currency": "USD"})},
        {
            "source": "hubspot",
            "external_id": "B-8",
            **_deal(seller, stage="closed_lost", loss={"reason_code": "price"}),
        },
    ]
    response = await crm.post("/v1/deals/batch-upsert", json={"records": records})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(records)))
    assert [r["outcome"] for r in results] == [
        "created",
        "unchanged",
        "error",
        "updated",
        "error",
        "error",
        "error",
        "error",
        "created",
    ]
    assert results[2]["problem"]["code"] == "owner_must_be_seller" and results[2]["problem"]["status"] == 422
    assert results[4]["problem"]["code"] == "validation_error"
    assert {
        "unknown_field": "Extra inputs are not permitted",
        "version": "`version` is read-only: send it as `If-Match`",
    }.items() <= {e["loc"][-1]: e["msg"] for e in results[4]["problem"]["errors"]}.items()
    assert results[5]["problem"]["code"] == "validation_error" and results[5]["source"] is None
    assert results[6]["problem"]["code"] == "loss_reason_required"
    assert results[1]["deal_id"] == results[3]["deal_id"]
    assert results[2]["deal_id"] is None
    # The good records were stored, the bad ones left nothing behind.
    listed = (await api.get("/v1/deals", params={"limit": 200})).json()["items"]
    refs = sorted(r["external_id"] for d in listed for r in d["external_refs"])
    assert refs == ["B-1", "B-2", "B-8"]
    b2 = next(d for d in listed if d["external_refs"][0]["external_id"] == "B-2")
    assert b2["stage"] == "proposal"


async def test_batch_is_bounded(api: Api, people) -> None:
    crm = api.as_(people["crm"])
    assert_problem(await crm.post("/v1/deals/batch-upsert", json={"records": []}), 422, "validation_error")
    many = [{"source": "s", "external_id": str(i)} for i in range(501)]
    assert_problem(await crm.post("/v1/deals/batch-upsert", json={"records": many}), 422, "validation_error")
    assert_problem(await crm.post("/v1/deals/batch-upsert", json={"records": [1, "x"]}), 422, "validation_error")


async def test_batch_permissions_are_per_record(api: Api, people) -> None:
    other = people["other"]
    records = [
        {"source": "crm", "external_id": "own", **_deal(other)},
        {"source": "crm", "external_id": "not-own", **_deal(people["seller"])},
    ]
    results = (await api.as_(other).post("/v1/deals/batch-upsert", json={"records": records})).json()["results"]
    assert [r["outcome"] for r in results] == ["created", "error"]
    assert results[1]["problem"] == {
        "status": 403,
        "code": "forbidden",
        "detail": results[1]["problem"]["detail"],
        "errors": None,
    }
