"""Calls, interventions and observations (docs/rules.md: Calls, interventions, observations)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.helpers import Api, Person, assert_problem, assert_tagged_by_content, make_deal

WHEN = "2026-11-03T14:00:00Z"
HELD = "2026-11-03T15:00:00Z"
PART = "Observe discovery questions"
STRENGTHS = [
    {"skill_code": "discovery", "note": "Open questions uncovered the month-end pain"},
    {"skill_code": "communication", "note": "Summarised the customer's goals back to them"},
]
IMPROVEMENTS = [
    {"skill_code": "negotiation", "note": "Quoted before value was agreed", "suggestion": "Confirm value first"},
    {"skill_code": "closing", "note": "No next step was agreed"},
]


def lead(person: Person) -> dict[str, Any]:
    return {"member_id": person.id, "call_role": "lead"}


def attending(person: Person, role: str = "observer", part: str | None = PART) -> dict[str, Any]:
    return {"member_id": person.id, "call_role": role, "agreed_part": part}


async def plan(api: Api, who: Person, deal: dict[str, Any], attendees: list[dict[str, Any]], **fields: Any) -> Any:
    body = {"scheduled_at": WHEN, "purpose": "Discovery with the CFO", "attendees": attendees, **fields}
    return await api.as_(who).post(f"/v1/deals/{deal['id']}/calls", json=body)


async def held_call(api: Api, team: dict[str, Person], deal: dict[str, Any] | None = None) -> dict[str, Any]:
    """A held call on the seller's deal, the manager observing by agreement."""
    seller = team["seller"]
    deal = deal or await make_deal(api, seller)
    created = await plan(api, seller, deal, [lead(seller), attending(team["manager"])])
    assert created.status_code == 201, created.text
    held = await api.as_(seller).patch(f"/v1/calls/{created.json()['id']}", json={"held_at": HELD})
    assert held.status_code == 200, held.text
    return held.json()


async def observe(api: Api, who: Person, call: dict[str, Any], **body: Any) -> Any:
    payload = {"strengths": STRENGTHS, "improvements": IMPROVEMENTS, "summary": "A good first meeting", **body}
    return await api.as_(who).post(f"/v1/calls/{call['id']}/observations", json=payload)


async def history(api: Api, who: Person, deal_id: str) -> list[dict[str, Any]]:
    response = await api.as_(who).get(f"/v1/deals/{deal_id}/history", params={"limit": 200})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def deal_calls(api: Api, deal: dict[str, Any]) -> list[dict[str, Any]]:
    return (await api.get(f"/v1/deals/{deal['id']}/calls")).json()["items"]


async def observation_ids(api: Api, who: Person, **params: Any) -> list[str]:
    response = await api.as_(who).get("/v1/observations", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return [o["id"] for o in response.json()["items"]]


# --- the whole story ---------------------------------------------------------------


async def test_a_call_observed_shared_and_acknowledged(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, stage="discovery")

    planned = await plan(api, seller, deal, [lead(seller)])
    assert planned.status_code == 201, planned.text
    call = planned.json()
    assert planned.headers["location"] == f"/v1/calls/{call['id']}"
    assert call["lead_id"] == seller.id and call["held_at"] is None
    assert call["attendees"] == [{"member_id": seller.id, "call_role": "lead", "agreed_part": None}]

    # The manager agrees to observe; the agreement is recorded on the call.
    agreed = await api.as_(seller).patch(
        f"/v1/calls/{call['id']}",
        json={"attendees": [lead(seller), attending(manager)]},
        headers={"If-Match": planned.headers["etag"]},
    )
    assert agreed.status_code == 200, agreed.text
    assert agreed.json()["attendees"][1] == {"member_id": manager.id, "call_role": "observer", "agreed_part": PART}
    assert agreed.json()["version"] == 2

    held = await api.as_(seller).patch(
        f"/v1/calls/{call['id']}", json={"held_at": HELD, "outcome": "CFO agreed to a pilot"}
    )
    assert held.status_code == 200, held.text
    assert held.json()["held_at"] == HELD and held.json()["outcome"] == "CFO agreed to a pilot"

    drafted = await observe(api, manager, call)
    assert drafted.status_code == 201, drafted.text
    observation = drafted.json()
    assert drafted.headers["location"] == f"/v1/observations/{observation['id']}"
    assert observation["status"] == "draft"
    assert observation["seller_id"] == seller.id and observation["observer_id"] == manager.id
    assert observation["call_id"] == call["id"] and observation["deal_id"] == deal["id"]
    assert [s["skill_code"] for s in observation["strengths"]] == ["discovery", "communication"]
    assert observation["improvements"][1]["suggestion"] is None
    url = f"/v1/observations/{observation['id']}"

    # The seller cannot see the draft, neither by id nor in a list, nor acknowledge it.
    assert_problem(await api.as_(seller).get(url), 404, "not_found")
    assert await observation_ids(api, seller) == []
    assert_problem(
        await api.as_(seller).post(f"{url}/acknowledge", json={"reflection": "x", "commitments": []}), 404, "not_found"
    )

    shared = await api.as_(manager).post(f"{url}/share")
    assert shared.status_code == 200, shared.text
    assert shared.json()["status"] == "shared" and shared.json()["shared_at"]
    seen = await api.as_(seller).get(url)
    assert seen.status_code == 200 and seen.json()["summary"] == "A good first meeting"
    assert await observation_ids(api, seller) == [observation["id"]]

    acknowledged = await api.as_(seller).post(
        f"{url}/acknowledge",
        json={"reflection": "I quoted too early", "commitments": ["Confirm value before pricing", "Agree a next step"]},
    )
    assert acknowledged.status_code == 200, acknowledged.text
    body = acknowledged.json()
    assert body["status"] == "acknowledged" and body["acknowledged_at"]
    assert body["reflection"] == "I quoted too early"
    assert body["commitments"] == ["Confirm value before pricing", "Agree a next step"]
    assert body["version"] == 3

    events = await history(api, seller, deal["id"])
    assert [e["type"] for e in events] == [
        "deal.created",
        "call.created",
        "call.updated",
        "call.updated",
        "call.held",
        "observation.created",
        "observation.shared",
        "observation.acknowledged",
        "commitment.created",  # each commitment is tracked until done
        "commitment.created",
    ]
    assert all(e["deal_id"] == deal["id"] for e in events)
    assert events[3]["data"]["changes"] == {"outcome": [None, "CFO agreed to a pilot"]}
    assert events[4]["data"] == {"held_at": "2026-11-03T15:00:00+00:00"}
    created = events[5]["data"]
    assert created["strengths_count"] == 2 and created["improvements_count"] == 2
    assert "strengths" not in created and "summary" not in created  # the draft's content stays private


# --- planning ----------------------------------------------------------------------


async def test_only_the_owner_plans_a_call(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    attendees = [lead(seller), attending(team["manager"])]
    for who in ("manager", "hos", "admin", "integration"):
        assert_problem(await plan(api, team[who], deal, attendees), 403, "forbidden")
    for who in ("peer", "other_manager", "outsider"):
        assert_problem(await plan(api, team[who], deal, attendees), 404, "not_found")
    assert await deal_calls(api, deal) == []
    assert (await plan(api, seller, deal, attendees)).status_code == 201


async def test_the_owner_leads_the_call(api: Api, team) -> None:
    seller, manager, peer = team["seller"], team["manager"], team["peer"]
    deal = await make_deal(api, seller)
    for attendees in (
        [],
        [attending(manager)],
        [lead(peer), attending(seller, "contributor", "Demo")],
        [lead(seller), lead(peer)],
        [attending(seller, "observer", None)],
        [lead(seller), {"member_id": manager.id, "call_role": "lead", "agreed_part": PART}],
    ):
        assert_problem(await plan(api, seller, deal, attendees), 422, "call_lead_must_be_owner")
    # The owner twice (as lead and in another role) is a duplicate entry.
    problem = assert_problem(
        await plan(api, seller, deal, [lead(seller), attending(seller, "contributor", "x")]), 422, "validation_error"
    )
    assert problem["errors"][0]["loc"][:2] == ["body", "attendees"]
    assert await deal_calls(api, deal) == []


@pytest.mark.parametrize("boss", ["manager", "hos"])
async def test_a_managers_part_is_agreed_before_the_call(api: Api, team, boss: str) -> None:
    seller, person = team["seller"], team[boss]
    deal = await make_deal(api, seller)
    for attendee in (
        attending(person, "observer", None),
        attending(person, "contributor", "   "),
        {"member_id": person.id, "call_role": "observer"},
    ):
        assert_problem(await plan(api, seller, deal, [lead(seller), attendee]), 422, "manager_role_not_agreed")
    assert await deal_calls(api, deal) == []
    for role in ("observer", "contributor"):
        created = await plan(api, seller, deal, [lead(seller), attending(person, role, "Answer pricing questions")])
        assert created.status_code == 201, created.text
    # A seller attends without an agreed part.
    assert (await plan(api, seller, deal, [lead(seller), attending(team["peer"], "observer", None)])).status_code == 201


async def test_attendees_are_active_sales_people_of_the_organisation(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    ghost = {"member_id": "01900000-0000-7000-8000-000000000000", "call_role": "observer"}
    assert_problem(await plan(api, seller, deal, [lead(seller), ghost]), 422, "unknown_member")
    leaver = await api.make_member("seller", manager=team["manager"], key=False)
    assert (await api.patch(f"/v1/members/{leaver.id}", json={"active": False})).status_code == 200
    assert_problem(await plan(api, seller, deal, [lead(seller), attending(leaver)]), 422, "unknown_member")
    for who in ("admin", "integration"):
        assert_problem(await plan(api, seller, deal, [lead(seller), attending(team[who])]), 422, "invalid_assignee")
    assert_problem(
        await plan(api, seller, deal, [lead(seller), attending(team["peer"]), attending(team["peer"], "contributor")]),
        422,
        "validation_error",
    )
    for when in ("2026-11-03T14:00:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"):
        assert_problem(await plan(api, seller, deal, [lead(seller)], scheduled_at=when), 422, "validation_error")
    assert_problem(await plan(api, seller, deal, [lead(seller)], held_at=HELD), 422, "validation_error")
    assert await deal_calls(api, deal) == []


async def test_scheduled_times_are_answered_in_utc(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    created = await plan(api, seller, deal, [lead(seller)], scheduled_at="2026-11-03T16:00:00+02:00")
    assert created.status_code == 201, created.text
    fetched = (await api.as_(seller).get(f"/v1/calls/{created.json()['id']}")).json()
    assert fetched["scheduled_at"] in ("2026-11-03T14:00:00Z", "2026-11-03T14:00:00+00:00")


async def test_a_closed_deal_takes_no_new_calls(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller)])).json()
    await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_won"})
    assert_problem(await plan(api, seller, deal, [lead(seller)]), 409, "deal_closed")
    url = f"/v1/calls/{call['id']}"
    assert_problem(await api.as_(seller).patch(url, json={"scheduled_at": HELD}), 409, "deal_closed")
    assert_problem(
        await api.as_(seller).patch(url, json={"attendees": [lead(seller), attending(team["peer"])]}),
        409,
        "deal_closed",
    )
    assert (await api.as_(seller).get(url)).json()["version"] == 1
    # What happened is still recorded.
    recorded = await api.as_(seller).patch(url, json={"held_at": HELD, "outcome": "Signed"})
    assert recorded.status_code == 200 and recorded.json()["outcome"] == "Signed"
    assert len(await deal_calls(api, deal)) == 1


# --- changing a call -------------------------------------------------------------------


async def test_only_the_lead_changes_a_call_and_if_match_is_honoured(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(manager)])).json()
    url = f"/v1/calls/{call['id']}"
    for who in ("manager", "hos", "admin"):
        assert_problem(await api.as_(team[who]).patch(url, json={"purpose": "Mine now"}), 403, "forbidden")
    assert_problem(await api.as_(team["peer"]).patch(url, json={"purpose": "x"}), 404, "not_found")
    fetched = await api.as_(seller).get(url)
    assert fetched.headers["etag"] == '"1"' and fetched.json()["purpose"] == "Discovery with the CFO"

    stale = await api.as_(seller).patch(url, json={"purpose": "Pricing"}, headers={"If-Match": '"7"'})
    assert_problem(stale, 412, "version_conflict")
    changed = await api.as_(seller).patch(url, json={"purpose": "Pricing"}, headers={"If-Match": '"1"'})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    assert changed.json()["purpose"] == "Pricing"
    stale_again = await api.as_(seller).patch(url, json={"purpose": "x"}, headers={"If-Match": '"1"'})
    assert_problem(stale_again, 412, "version_conflict")
    # Nothing to change: same version, no event.
    same = await api.as_(seller).patch(url, json={"purpose": "Pricing"})
    assert same.status_code == 200 and same.json()["version"] == 2
    assert_problem(await api.as_(seller).patch(url, json={"scheduled_at": None}), 422, "validation_error")
    assert_problem(await api.as_(seller).patch(url, json={"lead_id": manager.id}), 422, "validation_error")
    updated = [e for e in await history(api, seller, deal["id"]) if e["type"] == "call.updated"]
    assert [e["data"]["changes"] for e in updated] == [{"purpose": ["Discovery with the CFO", "Pricing"]}]


async def test_a_call_is_not_recorded_as_held_in_the_future(api: Api, team) -> None:
    seller = team["seller"]
    call = (await plan(api, seller, await make_deal(api, seller), [lead(seller)])).json()
    url = f"/v1/calls/{call['id']}"
    now = dt.datetime.now(dt.UTC)
    tomorrow = await api.as_(seller).patch(url, json={"held_at": (now + dt.timedelta(days=1)).isoformat()})
    assert [e["loc"] for e in assert_problem(tomorrow, 422, "held_in_future")["errors"]] == [["body", "held_at"]]
    assert (await api.as_(seller).get(url)).json()["version"] == 1
    # A client clock a little ahead of ours is "just now".
    skewed = await api.as_(seller).patch(url, json={"held_at": (now + dt.timedelta(minutes=2)).isoformat()})
    assert skewed.status_code == 200 and skewed.json()["held_at"] is not None


async def test_attendees_are_fixed_once_the_call_was_held(api: Api, team) -> None:
    seller, manager, peer = team["seller"], team["manager"], team["peer"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller)])).json()
    url = f"/v1/calls/{call['id']}"
    # The request that records the call may still say who was there.
    held = await api.as_(seller).patch(url, json={"attendees": [lead(seller), attending(manager)], "held_at": HELD})
    assert held.status_code == 200, held.text
    assert len(held.json()["attendees"]) == 2 and held.json()["version"] == 2

    more = [lead(seller), attending(manager), attending(peer, "contributor", None)]
    assert_problem(await api.as_(seller).patch(url, json={"attendees": more}), 409, "call_already_held")
    assert_problem(await api.as_(seller).patch(url, json={"held_at": "2026-11-04T10:00:00Z"}), 409, "call_already_held")
    assert_problem(await api.as_(seller).patch(url, json={"held_at": None}), 409, "call_already_held")
    after = (await api.as_(seller).get(url)).json()
    assert after["version"] == 2 and len(after["attendees"]) == 2
    # Resending what is already there changes nothing; the outcome is still recorded.
    same = await api.as_(seller).patch(url, json={"attendees": [lead(seller), attending(manager)], "held_at": HELD})
    assert same.status_code == 200 and same.json()["version"] == 2
    reordered = await api.as_(seller).patch(url, json={"attendees": [attending(manager), lead(seller)]})
    assert reordered.status_code == 200 and reordered.json()["version"] == 2
    outcome = await api.as_(seller).patch(url, json={"outcome": "Pilot agreed"})
    assert outcome.json()["outcome"] == "Pilot agreed" and outcome.json()["version"] == 3
    types = [e["type"] for e in await history(api, seller, deal["id"])]
    assert types == ["deal.created", "call.created", "call.updated", "call.held", "call.updated"]


async def test_attending_a_call_is_involvement(api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    deal = await make_deal(api, seller, stage="negotiation")
    attendees = [lead(seller), attending(manager), attending(team["peer"], "observer", None)]
    call = (await plan(api, seller, deal, attendees)).json()
    created = [e for e in await history(api, seller, deal["id"]) if e["type"] == "call.created"][0]
    assert created["data"]["late_involvement"] == [manager.id]
    assert created["data"]["attendees"][1] == {"member_id": manager.id, "call_role": "observer", "agreed_part": PART}
    # Someone added later counts too; someone already involved does not count again.
    patched = await api.as_(seller).patch(
        f"/v1/calls/{call['id']}",
        json={"attendees": [lead(seller), attending(manager), attending(hos, "contributor", "Sponsor intro")]},
    )
    assert patched.status_code == 200, patched.text
    updated = [e for e in await history(api, seller, deal["id"]) if e["type"] == "call.updated"][0]
    assert updated["data"]["late_involvement"] == [hos.id]
    assert len(updated["data"]["changes"]["attendees"][1]) == 3
    second = (await plan(api, seller, deal, [lead(seller), attending(manager)])).json()
    assert second["id"]
    again = [e for e in await history(api, seller, deal["id"]) if e["type"] == "call.created"][1]
    assert again["data"]["late_involvement"] == []
    # The manager's first involvement was the call, so a later assignment is not first.
    proposed = await api.as_(manager).post(
        f"/v1/deals/{deal['id']}/assignments", json={"member_id": manager.id, "role": "coach"}
    )
    assert proposed.json()["late_involvement"] is False


async def test_early_attendance_is_not_late(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, stage="prospecting")
    await plan(api, seller, deal, [lead(seller), attending(manager)])
    created = [e for e in await history(api, seller, deal["id"]) if e["type"] == "call.created"][0]
    assert created["data"]["late_involvement"] == []


# --- reading calls -------------------------------------------------------------------


async def test_who_sees_a_call(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    # A manager from another team contributes by agreement: they see the call, not the deal.
    contributor = attending(team["other_manager"], "contributor", "Security")
    call = (await plan(api, seller, deal, [lead(seller), contributor])).json()
    url = f"/v1/calls/{call['id']}"
    for who in ("seller", "manager", "hos", "admin", "integration", "other_manager"):
        assert (await api.as_(team[who]).get(url)).status_code == 200, who
    assert_problem(await api.as_(team["other_manager"]).get(f"/v1/deals/{deal['id']}/calls"), 404, "not_found")
    for who in ("peer", "outsider"):
        assert_problem(await api.as_(team[who]).get(url), 404, "not_found")
        assert_problem(await api.as_(team[who]).get(f"/v1/deals/{deal['id']}/calls"), 404, "not_found")
        assert_problem(await api.as_(team[who]).get(f"{url}/interventions"), 404, "not_found")
    assert_problem(await api.get("/v1/calls/01900000-0000-7000-8000-000000000000"), 404, "not_found")
    assert_problem(await api.get("/v1/calls/not-a-uuid"), 404, "not_found")


async def test_a_deals_calls_by_scheduled_time(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    other = await make_deal(api, seller)
    times = ["2026-11-05T09:00:00Z", "2026-11-03T09:00:00Z", "2026-11-04T09:00:00Z", "2026-11-04T09:00:00Z"]
    made = [(await plan(api, seller, deal, [lead(seller)], scheduled_at=t)).json() for t in times]
    await plan(api, seller, other, [lead(seller)])
    expected = [c["id"] for c in sorted(made, key=lambda c: (c["scheduled_at"], c["id"]))]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.as_(seller).get(f"/v1/deals/{deal['id']}/calls", params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    bad = await api.as_(seller).get(f"/v1/deals/{deal['id']}/calls", params={"cursor": "nope"})
    assert_problem(bad, 422, "invalid_cursor")


# --- interventions ----------------------------------------------------------------


async def test_interventions_are_recorded_by_attendees_of_a_held_call(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(manager, "contributor", "Pricing")])).json()
    url = f"/v1/calls/{call['id']}/interventions"
    answered = {"member_id": manager.id, "kind": "answered_question", "note": "Explained the price list"}
    assert_problem(await api.as_(seller).post(url, json=answered), 409, "call_not_held")
    await api.as_(seller).patch(f"/v1/calls/{call['id']}", json={"held_at": HELD})
    for who in ("hos", "admin"):  # they see the call but did not attend
        assert_problem(await api.as_(team[who]).post(url, json=answered), 403, "forbidden")
    assert_problem(await api.as_(team["peer"]).post(url, json=answered), 404, "not_found")
    absent = {**answered, "member_id": team["peer"].id}
    assert_problem(await api.as_(seller).post(url, json=absent), 422, "unknown_member")
    assert_problem(await api.as_(seller).post(url, json={**answered, "kind": "rescued"}), 422, "validation_error")
    assert (await api.as_(seller).get(url)).json()["items"] == []

    recorded = await api.as_(seller).post(url, json=answered)
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert recorded.headers["location"] == f"{url}/{body['id']}"
    assert body["is_takeover"] is False and body["recorded_by"] == seller.id and body["deal_id"] == deal["id"]
    own = await api.as_(manager).post(url, json={"member_id": manager.id, "kind": "corrected_fact"})
    assert own.status_code == 201 and own.json()["note"] is None
    by_lead = await api.as_(seller).post(url, json={"member_id": seller.id, "kind": "took_over"})
    assert by_lead.json()["is_takeover"] is False
    listed = (await api.as_(manager).get(url)).json()["items"]
    assert [i["id"] for i in listed] == [body["id"], own.json()["id"], by_lead.json()["id"]]
    types = [e["type"] for e in await history(api, seller, deal["id"])]
    assert types.count("intervention.recorded") == 3 and "call.takeover" not in types


async def test_an_intervention_is_read_where_its_location_says(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    contributor = attending(team["other_manager"], "contributor", "Security")
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(manager), contributor])).json()
    await api.as_(seller).patch(f"/v1/calls/{call['id']}", json={"held_at": HELD})
    answered = {"member_id": manager.id, "kind": "answered_question", "note": "Explained the price list"}
    recorded = await api.as_(seller).post(f"/v1/calls/{call['id']}/interventions", json=answered)
    assert recorded.status_code == 201, recorded.text
    location = recorded.headers["location"]
    # Whoever sees the call sees its interventions, the contributor from another team included.
    for who in ("seller", "manager", "hos", "admin", "integration", "other_manager"):
        read = await api.as_(team[who]).get(location)
        assert read.status_code == 200, who
        assert read.json() == recorded.json()
    for who in ("peer", "outsider"):
        assert_problem(await api.as_(team[who]).get(location), 404, "not_found")
    await assert_tagged_by_content(api.as_(seller), location)  # no version: tagged by its content
    # Only under its own call, and only an id that exists.
    other = (await plan(api, seller, deal, [lead(seller)])).json()
    intervention_id = recorded.json()["id"]
    assert_problem(await api.get(f"/v1/calls/{other['id']}/interventions/{intervention_id}"), 404, "not_found")
    ghost = "01900000-0000-7000-8000-000000000000"
    assert_problem(await api.get(f"/v1/calls/{call['id']}/interventions/{ghost}"), 404, "not_found")
    assert_problem(await api.get(f"/v1/calls/{call['id']}/interventions/not-a-uuid"), 404, "not_found")


async def test_a_managers_takeover_is_recorded(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, team)
    url = f"/v1/calls/{call['id']}/interventions"
    took = await api.as_(seller).post(url, json={"member_id": manager.id, "kind": "took_over", "note": "Ran pricing"})
    assert took.status_code == 201, took.text
    assert took.json()["is_takeover"] is True
    events = await history(api, seller, call["deal_id"])
    assert [e["type"] for e in events][-2:] == ["intervention.recorded", "call.takeover"]
    takeover = events[-1]
    assert takeover["subject_type"] == "call" and takeover["subject_id"] == call["id"]
    assert takeover["data"] == {"member_id": manager.id, "intervention_id": took.json()["id"]}
    assert events[-2]["data"]["is_takeover"] is True


# --- observations ---------------------------------------------------------------------


async def test_only_a_non_lead_attendee_observes_a_held_call(api: Api, team) -> None:
    seller, manager, peer = team["seller"], team["manager"], team["peer"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(peer, "contributor", None)])).json()
    assert_problem(await observe(api, peer, call), 409, "call_not_held")
    await api.as_(seller).patch(f"/v1/calls/{call['id']}", json={"held_at": HELD})
    for who in ("seller", "manager", "hos"):  # the lead; the seller's managers, who see the call but did not attend
        assert_problem(await observe(api, team[who], call), 403, "not_an_observer")
    assert_problem(await observe(api, team["outsider"], call), 404, "not_found")
    assert await observation_ids(api, team["hos"]) == []
    peer_notes = await observe(api, peer, call)  # a contributing peer observes too
    assert peer_notes.status_code == 201 and peer_notes.json()["seller_id"] == seller.id
    assert manager.id not in {peer_notes.json()["observer_id"]}


async def test_strengths_first_and_only_a_few_improvements(api: Api, team) -> None:
    manager = team["manager"]
    call = await held_call(api, team)
    assert_problem(await observe(api, manager, call, strengths=[]), 422, "observation_needs_strength")
    assert_problem(await observe(api, manager, call, strengths=None), 422, "validation_error")
    four = IMPROVEMENTS + IMPROVEMENTS
    problem = assert_problem(await observe(api, manager, call, improvements=four), 422, "too_many_improvements")
    assert problem["max_improvements_per_observation"] == 3
    unknown = [{"skill_code": "charisma", "note": "Great energy"}]
    assert_problem(await observe(api, manager, call, strengths=unknown), 422, "unknown_skill")
    blank = [{"skill_code": "discovery", "note": ""}]
    assert_problem(await observe(api, manager, call, strengths=blank), 422, "validation_error")
    assert await observation_ids(api, manager) == []
    # The limit is the organisation's setting.
    await api.patch("/v1/settings", json={"max_improvements_per_observation": 1})
    assert_problem(await observe(api, manager, call), 422, "too_many_improvements")
    made = await observe(api, manager, call, improvements=IMPROVEMENTS[:1])
    assert made.status_code == 201, made.text
    minimal = await api.as_(manager).post(f"/v1/calls/{call['id']}/observations", json={"strengths": STRENGTHS[:1]})
    assert minimal.status_code == 201 and minimal.json()["improvements"] == [] and minimal.json()["summary"] is None


async def test_the_observer_edits_a_draft(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, team)
    created = await observe(api, manager, call)
    assert created.headers["etag"] == '"1"'
    url = f"/v1/observations/{created.json()['id']}"
    assert_problem(await api.as_(team["hos"]).patch(url, json={"summary": "Mine"}), 403, "forbidden")
    assert_problem(await api.as_(seller).patch(url, json={"summary": "Mine"}), 404, "not_found")
    assert_problem(await api.as_(manager).patch(url, json={"strengths": []}), 422, "observation_needs_strength")
    too_many = await api.as_(manager).patch(url, json={"improvements": IMPROVEMENTS * 2})
    assert_problem(too_many, 422, "too_many_improvements")
    assert_problem(
        await api.as_(manager).patch(url, json={"improvements": [{"skill_code": "juggling", "note": "x"}]}),
        422,
        "unknown_skill",
    )
    assert_problem(
        await api.as_(manager).patch(url, json={"summary": "x"}, headers={"If-Match": '"5"'}), 412, "version_conflict"
    )
    assert_problem(await api.as_(manager).patch(url, json={"status": "shared"}), 422, "validation_error")
    unchanged = (await api.as_(manager).get(url)).json()
    assert unchanged["version"] == 1 and unchanged["summary"] == "A good first meeting"

    edited = await api.as_(manager).patch(
        url, json={"improvements": IMPROVEMENTS[:1], "summary": "Strong discovery"}, headers={"If-Match": '"1"'}
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] == '"2"'
    assert edited.json()["summary"] == "Strong discovery" and len(edited.json()["improvements"]) == 1
    updated = [e for e in await history(api, seller, call["deal_id"]) if e["type"] == "observation.updated"]
    assert updated[0]["data"]["fields"] == ["improvements", "summary"]
    assert updated[0]["data"]["improvements_count"] == 1

    # A lower limit set later does not block editing the summary of a draft written under the old one.
    both = await api.as_(manager).patch(url, json={"improvements": IMPROVEMENTS})
    assert both.status_code == 200 and both.json()["improvements"][1]["suggestion"] is None
    await api.patch("/v1/settings", json={"max_improvements_per_observation": 1})
    assert (await api.as_(manager).patch(url, json={"summary": "Strong discovery!"})).status_code == 200
    reordered = await api.as_(manager).patch(url, json={"improvements": IMPROVEMENTS[::-1]})
    assert_problem(reordered, 422, "too_many_improvements")

    await api.as_(manager).post(f"{url}/share")
    assert_problem(await api.as_(manager).patch(url, json={"summary": "Later"}), 409, "observation_not_draft")
    assert (await api.as_(manager).get(url)).json()["summary"] == "Strong discovery!"


async def test_only_the_observer_shares_once(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, team)
    url = f"/v1/observations/{(await observe(api, manager, call)).json()['id']}"
    assert_problem(await api.as_(team["hos"]).post(f"{url}/share"), 403, "forbidden")
    assert_problem(await api.as_(seller).post(f"{url}/share"), 404, "not_found")
    assert (await api.as_(manager).get(url)).json()["status"] == "draft"
    assert (await api.as_(manager).post(f"{url}/share")).json()["status"] == "shared"
    assert_problem(await api.as_(manager).post(f"{url}/share"), 409, "observation_not_draft")


async def test_only_the_seller_acknowledges_a_shared_observation(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, team)
    url = f"/v1/observations/{(await observe(api, manager, call)).json()['id']}"
    ack = {"reflection": "I rushed the pricing", "commitments": ["Slow down"]}
    assert_problem(await api.as_(manager).post(f"{url}/acknowledge", json=ack), 403, "owner_decides")
    await api.as_(manager).post(f"{url}/share")
    for who in ("manager", "hos"):
        assert_problem(await api.as_(team[who]).post(f"{url}/acknowledge", json=ack), 403, "owner_decides")
    for who in ("peer", "admin"):
        assert_problem(await api.as_(team[who]).post(f"{url}/acknowledge", json=ack), 404, "not_found")
    assert_problem(await api.as_(seller).post(f"{url}/acknowledge", json={"reflection": "  "}), 422, "validation_error")
    assert_problem(await api.as_(seller).post(f"{url}/acknowledge", json={"commitments": []}), 422, "validation_error")
    assert (await api.as_(seller).get(url)).json()["status"] == "shared"
    done = await api.as_(seller).post(f"{url}/acknowledge", json={"reflection": "I rushed the pricing"})
    assert done.status_code == 200 and done.json()["commitments"] == []
    assert_problem(await api.as_(seller).post(f"{url}/acknowledge", json=ack), 409, "observation_not_shared")
    assert (await api.as_(seller).get(url)).json()["reflection"] == "I rushed the pricing"


async def test_who_sees_an_observation(api: Api, team) -> None:
    hos = team["hos"]
    director = await api.make_member("manager", manager=hos)
    manager = await api.make_member("manager", manager=director)
    seller = await api.make_member("seller", manager=manager)
    peer = await api.make_member("seller", manager=manager)
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(manager)])).json()
    await api.as_(seller).patch(f"/v1/calls/{call['id']}", json={"held_at": HELD})
    obs = (await observe(api, manager, call)).json()
    url = f"/v1/observations/{obs['id']}"

    for who in (manager, director, hos):  # the observer, the seller's line (transitively), head of sales
        assert (await api.as_(who).get(url)).status_code == 200
        assert await observation_ids(api, who) == [obs["id"]]
    nobody = [peer, team["other_manager"], team["manager"], team["admin"], team["integration"], seller]
    for who in nobody:  # the seller too, until it is shared
        assert_problem(await api.as_(who).get(url), 404, "not_found")
        assert await observation_ids(api, who) == []

    await api.as_(manager).post(f"{url}/share")
    assert (await api.as_(seller).get(url)).status_code == 200
    assert await observation_ids(api, seller) == [obs["id"]]
    for who in nobody[:-1]:
        assert_problem(await api.as_(who).get(url), 404, "not_found")
        assert await observation_ids(api, who) == []


async def test_observations_are_listed_newest_first_with_filters(api: Api, team) -> None:
    seller, manager, peer, hos = team["seller"], team["manager"], team["peer"], team["hos"]
    deal = await make_deal(api, seller)
    call = (await plan(api, seller, deal, [lead(seller), attending(manager), attending(peer, "observer", None)])).json()
    await api.as_(seller).patch(f"/v1/calls/{call['id']}", json={"held_at": HELD})
    made = [(await observe(api, who, call)).json()["id"] for who in (manager, peer, manager)]
    await api.as_(manager).post(f"/v1/observations/{made[0]}/share")

    assert await observation_ids(api, hos) == made[::-1]
    assert await observation_ids(api, hos, observer_id=manager.id) == [made[2], made[0]]
    assert await observation_ids(api, hos, status="shared") == [made[0]]
    assert await observation_ids(api, hos, seller_id=peer.id) == []
    assert await observation_ids(api, peer) == [made[1]]  # their own notes only
    assert await observation_ids(api, seller) == [made[0]]  # the shared one only
    assert await observation_ids(api, manager, seller_id=seller.id) == made[::-1]

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.as_(hos).get("/v1/observations", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [o["id"] for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == made[::-1]
    assert_problem(await api.as_(hos).get("/v1/observations", params={"cursor": "x"}), 422, "invalid_cursor")
    assert_problem(await api.as_(hos).get("/v1/observations", params={"status": "lost"}), 422, "validation_error")
