"""Assignments: roles on deals, requested by the owner or proposed to the owner."""

from __future__ import annotations

import pytest

from tests.helpers import Api, Person, assert_problem, make_deal


async def _assign(api: Api, caller: Person, deal: dict, member: Person, role: str = "coach"):  # type: ignore[no-untyped-def]
    return await api.as_(caller).post(
        f"/v1/deals/{deal['id']}/assignments", json={"member_id": member.id, "role": role, "purpose": "help"}
    )


async def test_owner_requests_and_the_assignee_accepts(api: Api, team) -> None:
    seller, outsider = team["seller"], team["outsider"]
    deal = await make_deal(api, seller)
    created = await _assign(api, seller, deal, outsider, "subject_matter_expert")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "requested" and body["requested_by"] == seller.id
    assert created.headers["location"] == f"/v1/assignments/{body['id']}"
    # A pending request does not yet open the deal to the assignee, but the request is theirs to see.
    assert_problem(await api.as_(outsider).get(f"/v1/deals/{deal['id']}"), 404, "not_found")
    mine = (await api.as_(outsider).get("/v1/assignments", params={"status": "requested"})).json()["items"]
    assert [a["id"] for a in mine] == [body["id"]]
    elsewhere = await _assign(api, seller, await make_deal(api, seller), outsider, "observer")
    for deal_id, expected in ((deal["id"], [body["id"]]), (elsewhere.json()["deal_id"], [elsewhere.json()["id"]])):
        on_deal = (await api.as_(outsider).get("/v1/assignments", params={"deal_id": deal_id})).json()["items"]
        assert [a["id"] for a in on_deal] == expected
    assert_problem(await api.as_(outsider).get("/v1/assignments", params={"deal": deal["id"]}), 422, "validation_error")
    assert_problem(await api.as_(seller).post(f"/v1/assignments/{body['id']}/accept"), 403, "forbidden")
    assert_problem(await api.as_(team["manager"]).post(f"/v1/assignments/{body['id']}/accept"), 403, "forbidden")
    accepted = await api.as_(outsider).post(f"/v1/assignments/{body['id']}/accept")
    assert accepted.status_code == 200 and accepted.json()["status"] == "active"
    assert accepted.json()["decided_at"] is not None
    assert (await api.as_(outsider).get(f"/v1/deals/{deal['id']}")).status_code == 200
    assert_problem(await api.as_(outsider).post(f"/v1/assignments/{body['id']}/accept"), 409, "assignment_not_pending")


async def test_manager_proposes_and_only_the_owner_accepts(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    proposed = await _assign(api, manager, deal, manager, "observer")
    assert proposed.status_code == 201 and proposed.json()["status"] == "proposed"
    aid = proposed.json()["id"]
    for who in ("manager", "hos"):
        assert_problem(await api.as_(team[who]).post(f"/v1/assignments/{aid}/accept"), 403, "owner_decides")
    assert_problem(await api.post(f"/v1/assignments/{aid}/accept"), 403, "owner_decides")
    accepted = await api.as_(seller).post(f"/v1/assignments/{aid}/accept")
    assert accepted.json()["status"] == "active"


async def test_owner_declines_a_proposal(api: Api, team) -> None:
    seller, hos = team["seller"], team["hos"]
    deal = await make_deal(api, seller)
    aid = (await _assign(api, hos, deal, hos, "executive_sponsor")).json()["id"]
    assert_problem(await api.as_(hos).post(f"/v1/assignments/{aid}/decline"), 403, "owner_decides")
    declined = await api.as_(seller).post(f"/v1/assignments/{aid}/decline")
    assert declined.json()["status"] == "declined"
    assert_problem(await api.as_(seller).post(f"/v1/assignments/{aid}/accept"), 409, "assignment_not_pending")


async def test_owner_is_not_an_assignable_role(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    assert_problem(await _assign(api, manager, deal, manager, "owner"), 422, "owner_not_assignable")
    assert_problem(await _assign(api, seller, deal, team["peer"], "owner"), 422, "owner_not_assignable")
    assert_problem(await _assign(api, manager, deal, seller, "coach"), 422, "owner_not_assignable")
    assert_problem(await _assign(api, manager, deal, manager, "boss"), 422, "validation_error")
    listed = (await api.as_(seller).get(f"/v1/deals/{deal['id']}/assignments")).json()["items"]
    assert listed == []


async def test_assignees_are_active_sales_people(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    admin_person = Person(id=(await api.get("/v1/me")).json()["id"], key=api.key or "", body={})
    assert_problem(await _assign(api, seller, deal, team["integration"]), 422, "invalid_assignee")
    assert_problem(await _assign(api, seller, deal, admin_person), 422, "invalid_assignee")
    ghost = Person(id="01900000-0000-7000-8000-000000000000", key="", body={})
    assert_problem(await _assign(api, seller, deal, ghost), 422, "invalid_assignee")


async def test_integrations_do_not_assign_roles(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    assert_problem(await _assign(api, team["integration"], deal, team["manager"]), 403, "forbidden")


async def test_duplicate_open_assignment_is_a_conflict(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    assert (await _assign(api, seller, deal, manager, "coach")).status_code == 201
    assert_problem(await _assign(api, manager, deal, manager, "coach"), 409, "assignment_exists")
    assert (await _assign(api, seller, deal, manager, "observer")).status_code == 201


async def test_outsiders_cannot_see_or_propose(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    assert_problem(await _assign(api, team["other_manager"], deal, team["other_manager"]), 404, "not_found")
    assert_problem(await _assign(api, team["outsider"], deal, team["outsider"]), 404, "not_found")
    aid = (await _assign(api, team["seller"], deal, team["manager"])).json()["id"]
    for who in ("other_manager", "outsider", "peer"):
        assert_problem(await api.as_(team[who]).get(f"/v1/assignments/{aid}"), 404, "not_found")
        assert_problem(await api.as_(team[who]).post(f"/v1/assignments/{aid}/accept"), 404, "not_found")
        assert_problem(await api.as_(team[who]).get(f"/v1/deals/{deal['id']}/assignments"), 404, "not_found")


async def test_end_by_owner_or_assignee_removes_visibility(api: Api, team) -> None:
    seller, peer, outsider = team["seller"], team["peer"], team["outsider"]
    deal = await make_deal(api, seller)
    aid = (await _assign(api, seller, deal, outsider, "sales_engineer")).json()["id"]
    await api.as_(outsider).post(f"/v1/assignments/{aid}/accept")
    assert (await api.as_(outsider).get(f"/v1/deals/{deal['id']}")).status_code == 200
    assert_problem(await api.as_(team["manager"]).post(f"/v1/assignments/{aid}/end"), 403, "forbidden")
    ended = await api.as_(outsider).post(f"/v1/assignments/{aid}/end")
    assert ended.json()["status"] == "ended" and ended.json()["ended_at"]
    assert_problem(await api.as_(outsider).get(f"/v1/deals/{deal['id']}"), 404, "not_found")
    assert_problem(await api.as_(seller).post(f"/v1/assignments/{aid}/end"), 409, "assignment_ended")
    # The owner may withdraw a pending request too.
    pending = (await _assign(api, seller, deal, peer, "coach")).json()["id"]
    assert (await api.as_(seller).post(f"/v1/assignments/{pending}/end")).json()["status"] == "ended"


@pytest.mark.parametrize(("stage", "late"), [("prospecting", False), ("negotiation", True)])
async def test_first_leadership_involvement_in_a_late_stage_is_marked(api: Api, team, stage: str, late: bool) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, stage=stage)
    first = await _assign(api, manager, deal, manager, "observer")
    assert first.json()["late_involvement"] is late
    event = [
        e
        for e in (await api.as_(seller).get(f"/v1/deals/{deal['id']}/history")).json()["items"]
        if e["type"] == "assignment.proposed"
    ]
    assert event[0]["data"]["late_involvement"] is late
    # Only the first involvement counts.
    await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "negotiation"})
    second = await _assign(api, manager, deal, manager, "coach")
    assert second.json()["late_involvement"] is False
    # Sellers' involvement is not measured.
    peer_assignment = await _assign(api, seller, deal, team["peer"], "coach")
    assert peer_assignment.json()["late_involvement"] is False


async def test_late_stages_follow_the_settings(api: Api, team) -> None:
    await api.patch("/v1/settings", json={"late_stages": ["proposal", "negotiation"]})
    deal = await make_deal(api, team["seller"], stage="proposal")
    response = await _assign(api, team["hos"], deal, team["hos"], "executive_sponsor")
    assert response.json()["late_involvement"] is True


async def test_assignment_events_are_in_the_deal_history(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    aid = (await _assign(api, manager, deal, manager)).json()["id"]
    await api.as_(seller).post(f"/v1/assignments/{aid}/accept")
    await api.as_(manager).post(f"/v1/assignments/{aid}/end")
    types = [e["type"] for e in (await api.as_(seller).get(f"/v1/deals/{deal['id']}/history")).json()["items"]]
    assert types == ["deal.created", "assignment.proposed", "assignment.accepted", "assignment.ended"]
