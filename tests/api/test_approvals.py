"""Approvals: the owner asks their management line to sign off on explicit terms, the terms
never change, and a reversal after an offer went out needs the owner's consent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, Person, assert_problem, make_deal

GHOST = "01900000-0000-7000-8000-000000000000"
TERMS = [
    {
        "kind": "price_hold",
        "description": "Hold the 2026 list price for the renewal",
        "value": "EUR 48,000 / year",
        "applies_to": "The renewal only; expansion orders are priced at list",
        "valid_until": "2026-12-31",
    },
    {"kind": "discount", "description": "First-year discount", "value": "15%", "applies_to": "Year one licences"},
]


async def _request(  # type: ignore[no-untyped-def]
    api: Api, caller: Person, deal: dict, approver: Person | str, terms: Any = None
):
    approver_id = approver.id if isinstance(approver, Person) else approver
    return await api.as_(caller).post(
        f"/v1/deals/{deal['id']}/approvals", json={"approver_id": approver_id, "terms": terms or TERMS}
    )


async def _approved(api: Api, team: dict[str, Person], approver: str = "manager") -> tuple[dict, dict]:
    deal = await make_deal(api, team["seller"])
    created = await _request(api, team["seller"], deal, team[approver])
    assert created.status_code == 201, created.text
    approved = await api.as_(team[approver]).post(f"/v1/approvals/{created.json()['id']}/approve")
    assert approved.status_code == 200, approved.text
    return deal, approved.json()


async def _get(api: Api, who: Person, approval: dict) -> dict:
    response = await api.as_(who).get(f"/v1/approvals/{approval['id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def _types(api: Api, who: Person, deal: dict) -> list[str]:
    items = (await api.as_(who).get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    return [e["type"] for e in items]


# --- requesting ---------------------------------------------------------------


async def test_owner_requests_from_their_manager_who_approves(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, stage="negotiation")
    created = await _request(api, seller, deal, manager)
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == f"/v1/approvals/{body['id']}"
    assert body["status"] == "pending" and body["version"] == 1
    assert body["deal_id"] == deal["id"] and body["requested_by"] == seller.id and body["approver_id"] == manager.id
    assert body["terms"] == [TERMS[0], {**TERMS[1], "valid_until": None}]
    assert body["decided_at"] is body["relied_on_at"] is body["revoked_at"] is None
    fetched = await api.as_(manager).get(f"/v1/approvals/{body['id']}")
    assert fetched.headers["etag"] == '"1"'
    approved = await api.as_(manager).post(f"/v1/approvals/{body['id']}/approve", json={"note": "For the renewal only"})
    assert approved.status_code == 200, approved.text
    result = approved.json()
    assert result["status"] == "approved" and result["decision_note"] == "For the renewal only"
    assert result["decided_at"] is not None and result["version"] == 2
    assert result["terms"] == body["terms"]
    assert (await api.as_(seller).get(f"/v1/approvals/{body['id']}")).headers["etag"] == '"2"'


async def test_owner_requests_from_the_head_of_sales_above_their_manager(api: Api, team) -> None:
    deal, approved = await _approved(api, team, approver="hos")
    assert approved["approver_id"] == team["hos"].id and approved["status"] == "approved"


@pytest.mark.parametrize("who", ["other_manager", "peer", "outsider", "seller"])
async def test_an_approver_outside_the_owners_line_is_refused(api: Api, team, who: str) -> None:
    deal = await make_deal(api, team["seller"])
    assert_problem(await _request(api, team["seller"], deal, team[who]), 422, "approver_not_in_line")
    assert (await api.as_(team["seller"]).get(f"/v1/deals/{deal['id']}/approvals")).json()["items"] == []
    assert await _types(api, team["seller"], deal) == ["deal.created"]


async def test_unknown_and_admin_approvers_are_not_in_the_line(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    admin_id = (await api.get("/v1/me")).json()["id"]
    assert_problem(await _request(api, seller, deal, admin_id), 422, "approver_not_in_line")
    assert_problem(await _request(api, seller, deal, GHOST), 422, "approver_not_in_line")
    # (An inactive manager cannot stay in a line with active reports, so the domain tests cover it.)
    assert (await api.as_(seller).get(f"/v1/deals/{deal['id']}/approvals")).json()["items"] == []


@pytest.mark.parametrize("who", ["manager", "hos", "admin"])
async def test_only_the_owner_requests(api: Api, team, who: str) -> None:
    deal = await make_deal(api, team["seller"])
    caller = team[who] if who != "admin" else Person(id="", key=api.key or "", body={})
    assert_problem(await _request(api, caller, deal, team["manager"]), 403, "forbidden")
    assert (await api.as_(team["seller"]).get(f"/v1/deals/{deal['id']}/approvals")).json()["items"] == []


async def test_a_closed_deal_takes_no_new_approval(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"], stage="closed_won")
    assert_problem(await _request(api, team["seller"], deal, team["manager"]), 409, "deal_closed")
    assert await _types(api, team["seller"], deal) == ["deal.created"]


@pytest.mark.parametrize(
    "terms",
    [
        [],
        [TERMS[1]] * 21,
        [{**TERMS[1], "kind": "free_lunch"}],
        [{**TERMS[1], "value": 15}],
        [{**TERMS[1], "applies_to": "  "}],
        [{**TERMS[1], "valid_until": "next year"}],
        [{**TERMS[1], "status": "approved"}],
    ],
    ids=["none", "too_many", "unknown_kind", "value_not_string", "blank_applies_to", "bad_date", "unknown_field"],
)
async def test_terms_are_validated(api: Api, team, terms: list) -> None:
    deal = await make_deal(api, team["seller"])
    response = await api.as_(team["seller"]).post(
        f"/v1/deals/{deal['id']}/approvals", json={"approver_id": team["manager"].id, "terms": terms}
    )
    assert_problem(response, 422, "validation_error")


async def test_read_only_fields_are_refused_on_request(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    response = await api.as_(team["seller"]).post(
        f"/v1/deals/{deal['id']}/approvals",
        json={"approver_id": team["manager"].id, "terms": TERMS, "status": "approved"},
    )
    assert_problem(response, 422, "validation_error")


# --- deciding -----------------------------------------------------------------


@pytest.mark.parametrize("verb", ["approve", "reject"])
async def test_only_the_approver_decides(api: Api, team, verb: str) -> None:
    deal = await make_deal(api, team["seller"])
    created = (await _request(api, team["seller"], deal, team["manager"])).json()
    for who in ("seller", "hos"):
        assert_problem(await api.as_(team[who]).post(f"/v1/approvals/{created['id']}/{verb}"), 403, "forbidden")
    assert_problem(await api.post(f"/v1/approvals/{created['id']}/{verb}"), 403, "forbidden")
    assert await _get(api, team["seller"], created) == created


async def test_a_decision_is_taken_once(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    created = (await _request(api, team["seller"], deal, team["manager"])).json()
    rejected = await api.as_(team["manager"]).post(f"/v1/approvals/{created['id']}/reject", json={"note": "Too deep"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_note"] == "Too deep"
    for verb in ("approve", "reject"):
        decided = await api.as_(team["manager"]).post(f"/v1/approvals/{created['id']}/{verb}")
        assert_problem(decided, 409, "approval_not_pending")
    assert await _get(api, team["seller"], created) == rejected.json()
    assert await _types(api, team["seller"], deal) == ["deal.created", "approval.requested", "approval.rejected"]


async def test_outsiders_do_not_see_approvals(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    created = (await _request(api, team["seller"], deal, team["manager"])).json()
    for who in ("other_manager", "outsider", "peer"):
        assert_problem(await api.as_(team[who]).get(f"/v1/approvals/{created['id']}"), 404, "not_found")
        assert_problem(await api.as_(team[who]).post(f"/v1/approvals/{created['id']}/approve"), 404, "not_found")
        assert_problem(await api.as_(team[who]).get(f"/v1/deals/{deal['id']}/approvals"), 404, "not_found")
        assert_problem(await _request(api, team[who], deal, team["manager"]), 404, "not_found")
    assert_problem(await api.as_(team["seller"]).get(f"/v1/approvals/{GHOST}"), 404, "not_found")


async def test_the_approver_keeps_sight_of_their_approval_after_a_transfer(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    created = (await _request(api, team["seller"], deal, team["manager"])).json()
    moved = await api.patch(
        f"/v1/deals/{deal['id']}", json={"owner_id": team["outsider"].id, "transfer_reason": "Territory change"}
    )
    assert moved.status_code == 200, moved.text
    assert_problem(await api.as_(team["manager"]).get(f"/v1/deals/{deal['id']}"), 404, "not_found")
    assert (await api.as_(team["manager"]).get(f"/v1/approvals/{created['id']}")).status_code == 200
    assert_problem(await api.as_(team["seller"]).get(f"/v1/approvals/{created['id']}"), 404, "not_found")


async def test_list_filters_by_status_and_paginates(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal, approved = await _approved(api, team)
    pending = [(await _request(api, seller, deal, manager)).json() for _ in range(2)]
    listed = await api.as_(manager).get(f"/v1/deals/{deal['id']}/approvals", params={"limit": 2})
    assert [a["id"] for a in listed.json()["items"]] == [approved["id"], pending[0]["id"]]
    cursor = listed.json()["next_cursor"]
    rest = (await api.as_(manager).get(f"/v1/deals/{deal['id']}/approvals", params={"cursor": cursor})).json()
    assert [a["id"] for a in rest["items"]] == [pending[1]["id"]] and rest["next_cursor"] is None
    only = (await api.as_(seller).get(f"/v1/deals/{deal['id']}/approvals", params={"status": "pending"})).json()
    assert [a["id"] for a in only["items"]] == [p["id"] for p in pending]
    bad = await api.as_(seller).get(f"/v1/deals/{deal['id']}/approvals", params={"status": "maybe"})
    assert_problem(bad, 422, "validation_error")
    foreign = await api.as_(seller).get(f"/v1/deals/{deal['id']}/approvals", params={"cursor": "nonsense"})
    assert_problem(foreign, 422, "invalid_cursor")


# --- terms never change -------------------------------------------------------


async def test_approved_terms_are_immutable(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal, approved = await _approved(api, team)
    changed = [{**TERMS[0], "applies_to": "The renewal and every expansion order"}]
    for who in (seller, manager, team["hos"]):
        for body in ({"terms": changed}, {"approver_id": team["hos"].id}, {"note": "x"}, {}):
            response = await api.as_(who).patch(f"/v1/approvals/{approved['id']}", json=body)
            assert_problem(response, 409, "approved_terms_immutable")
    with_etag = await api.as_(seller).patch(
        f"/v1/approvals/{approved['id']}", json={"terms": changed}, headers={"If-Match": '"2"'}
    )
    assert_problem(with_etag, 409, "approved_terms_immutable")
    url = f"/v1/approvals/{approved['id']}"
    stale = await api.as_(seller).patch(url, json={"terms": changed}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "version_conflict")
    read_only = await api.as_(seller).patch(url, json={"terms": changed, "status": "pending"})
    assert_problem(read_only, 422, "validation_error")
    assert await _get(api, seller, approved) == approved
    assert await _types(api, seller, deal) == ["deal.created", "approval.requested", "approval.approved"]


async def test_pending_rejected_and_revoked_terms_are_not_edited_either(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    changed = {"terms": [{**TERMS[1], "value": "25%"}]}
    pending = (await _request(api, seller, deal, manager)).json()
    assert_problem(await api.as_(seller).patch(f"/v1/approvals/{pending['id']}", json=changed), 409, "conflict")
    assert await _get(api, seller, pending) == pending
    rejected = (await _request(api, seller, deal, manager)).json()
    rejected = (await api.as_(manager).post(f"/v1/approvals/{rejected['id']}/reject")).json()
    refused = await api.as_(seller).patch(f"/v1/approvals/{rejected['id']}", json=changed)
    assert_problem(refused, 409, "approval_not_pending")
    _, approved = await _approved(api, team)
    revoked = await api.as_(manager).post(f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Budget cut"})
    refused = await api.as_(seller).patch(f"/v1/approvals/{approved['id']}", json=changed)
    assert_problem(refused, 409, "approval_not_pending")
    assert await _get(api, seller, approved) == revoked.json()
    hidden = await api.as_(team["outsider"]).patch(f"/v1/approvals/{pending['id']}", json=changed)
    assert_problem(hidden, 404, "not_found")


# --- reliance -----------------------------------------------------------------


async def test_the_owner_records_reliance_once(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal, approved = await _approved(api, team)
    for who in (manager, team["hos"]):
        assert_problem(await api.as_(who).post(f"/v1/approvals/{approved['id']}/rely"), 403, "owner_decides")
    assert_problem(await api.post(f"/v1/approvals/{approved['id']}/rely"), 403, "owner_decides")
    assert await _get(api, seller, approved) == approved
    relied = await api.as_(seller).post(f"/v1/approvals/{approved['id']}/rely")
    assert relied.status_code == 200, relied.text
    assert relied.json()["relied_on_at"] is not None and relied.json()["version"] == 3
    again = await api.as_(seller).post(f"/v1/approvals/{approved['id']}/rely")
    assert again.status_code == 200 and again.json() == relied.json()
    assert (await _types(api, seller, deal)).count("approval.relied_upon") == 1


async def test_only_an_approved_approval_is_relied_upon(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    pending = (await _request(api, seller, deal, manager)).json()
    assert_problem(await api.as_(seller).post(f"/v1/approvals/{pending['id']}/rely"), 409, "approval_not_approved")
    rejected = (await api.as_(manager).post(f"/v1/approvals/{pending['id']}/reject")).json()
    assert_problem(await api.as_(seller).post(f"/v1/approvals/{pending['id']}/rely"), 409, "approval_not_approved")
    assert await _get(api, seller, pending) == rejected


# --- revocation ---------------------------------------------------------------


@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": None}])
async def test_revoking_needs_a_reason(api: Api, team, body: Any) -> None:
    _, approved = await _approved(api, team)
    response = await api.as_(team["manager"]).post(f"/v1/approvals/{approved['id']}/revoke", json=body)
    assert_problem(response, 422, "validation_error")
    assert await _get(api, team["seller"], approved) == approved


@pytest.mark.parametrize("who", ["manager", "hos"])
async def test_the_approver_or_a_head_of_sales_revokes_before_reliance(api: Api, team, who: str) -> None:
    deal, approved = await _approved(api, team)
    revoked = await api.as_(team[who]).post(f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Budget cut"})
    assert revoked.status_code == 200, revoked.text
    body = revoked.json()
    assert body["status"] == "revoked" and body["revoke_reason"] == "Budget cut"
    assert body["revoked_by"] == team[who].id and body["revoked_at"] is not None and body["version"] == 3
    assert body["terms"] == approved["terms"]
    again = await api.as_(team[who]).post(f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Again"})
    assert_problem(again, 409, "approval_not_approved")


async def test_nobody_else_revokes_before_reliance(api: Api, team) -> None:
    _, approved = await _approved(api, team)
    for who in (team["seller"], Person(id="", key=api.key or "", body={})):
        assert_problem(
            await api.as_(who).post(f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Changed my mind"}),
            403,
            "forbidden",
        )
    assert await _get(api, team["seller"], approved) == approved


async def test_only_an_approved_approval_is_revoked(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    pending = (await _request(api, team["seller"], deal, team["manager"])).json()
    response = await api.as_(team["manager"]).post(f"/v1/approvals/{pending['id']}/revoke", json={"reason": "x"})
    assert_problem(response, 409, "approval_not_approved")
    assert await _get(api, team["seller"], pending) == pending


async def test_once_relied_upon_only_the_owner_revokes(api: Api, team) -> None:
    seller = team["seller"]
    deal, approved = await _approved(api, team)
    relied = (await api.as_(seller).post(f"/v1/approvals/{approved['id']}/rely")).json()
    for who in ("manager", "hos"):
        response = await api.as_(team[who]).post(
            f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Budget cut"}
        )
        assert_problem(response, 409, "approval_relied_upon")
    assert await _get(api, seller, approved) == relied
    revoked = await api.as_(seller).post(
        f"/v1/approvals/{approved['id']}/revoke", json={"reason": "The customer accepted revised terms"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_by"] == seller.id
    assert revoked.json()["relied_on_at"] == relied["relied_on_at"]


# --- history ------------------------------------------------------------------


async def test_every_transition_is_in_the_deal_history(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal, approved = await _approved(api, team)
    await api.as_(seller).post(f"/v1/approvals/{approved['id']}/rely")
    await api.as_(seller).post(f"/v1/approvals/{approved['id']}/revoke", json={"reason": "Customer agreed"})
    rejected = (await _request(api, seller, deal, manager)).json()
    await api.as_(manager).post(f"/v1/approvals/{rejected['id']}/reject", json={"note": "No"})
    # Refusals write nothing.
    await api.as_(seller).patch(f"/v1/approvals/{approved['id']}", json={"terms": TERMS})
    await api.as_(manager).post(f"/v1/approvals/{rejected['id']}/approve")
    events = (await api.as_(seller).get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    approval_events = [e for e in events if e["type"].startswith("approval.")]
    assert [(e["type"], e["subject_id"]) for e in approval_events] == [
        ("approval.requested", approved["id"]),
        ("approval.approved", approved["id"]),
        ("approval.relied_upon", approved["id"]),
        ("approval.revoked", approved["id"]),
        ("approval.requested", rejected["id"]),
        ("approval.rejected", rejected["id"]),
    ]
    requested, decided, relied, revoked = approval_events[:4]
    assert requested["data"] == {"approver_id": manager.id, "terms": approved["terms"]}
    assert requested["actor_id"] == seller.id and requested["subject_type"] == "approval"
    assert requested["deal_id"] == deal["id"]
    assert decided["actor_id"] == manager.id
    assert relied["actor_id"] == seller.id
    assert revoked["data"] == {"reason": "Customer agreed", "relied_upon": True}
    assert approval_events[5]["data"]["note"] == "No"


async def test_a_retried_request_is_replayed_not_duplicated(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    body = {"approver_id": team["manager"].id, "terms": TERMS}
    headers = {"Idempotency-Key": "approval-1"}
    first = await api.as_(team["seller"]).post(f"/v1/deals/{deal['id']}/approvals", json=body, headers=headers)
    second = await api.as_(team["seller"]).post(f"/v1/deals/{deal['id']}/approvals", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("idempotent-replayed") == "true" and second.json() == first.json()
    assert len((await api.as_(team["seller"]).get(f"/v1/deals/{deal['id']}/approvals")).json()["items"]) == 1
