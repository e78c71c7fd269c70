"""Strategy: owned by the deal's seller, versioned, open to suggestions (docs/rules.md: Strategy)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, Person, assert_problem, assert_tagged_by_content, make_deal

DOCUMENT: dict[str, Any] = {
    "customer_objectives": "Close the books in 4 days",
    "decision_process": "CFO signs after an IT security review",
    "stakeholders": [{"name": "Dana Whitfield", "title": "CFO", "role": "economic_buyer", "stance": "supportive"}],
    "competition": "Initech",
    "value_hypothesis": "Two FTEs saved at month end",
    "risks": ["Budget freeze in Q4"],
    "next_steps": [{"description": "Send the business case", "due_date": "2026-11-30"}],
}


# If-Match for the first write (version 0 is the empty document), and for "whatever is there".
FIRST = {"If-Match": '"0"'}
ANY = {"If-Match": "*"}


def strategy_url(deal: dict[str, Any]) -> str:
    return f"/v1/deals/{deal['id']}/strategy"


async def assign(api: Api, deal: dict[str, Any], owner: Person, member: Person, role: str) -> None:
    """The owner asks ``member`` to take ``role`` and the member accepts: an active assignment."""
    url = f"/v1/deals/{deal['id']}/assignments"
    asked = await api.as_(owner).post(url, json={"member_id": member.id, "role": role})
    assert asked.status_code == 201, asked.text
    accepted = await api.as_(member).post(f"/v1/assignments/{asked.json()['id']}/accept")
    assert accepted.json()["status"] == "active", accepted.text


async def history(api: Api, deal: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    items = (await api.get(f"/v1/deals/{deal['id']}/history", params={"limit": 200})).json()["items"]
    return [e for e in items if e["type"] == type_]


async def suggest(api: Api, deal: dict[str, Any], section: str = "risks", body: str = "Add procurement") -> Any:
    return await api.post(f"{strategy_url(deal)}/suggestions", json={"section": section, "body": body})


# --- the document ------------------------------------------------------------


async def test_strategy_is_empty_before_the_first_write(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    for caller in (team["seller"], team["manager"], team["hos"], team["integration"]):
        response = await api.as_(caller).get(strategy_url(deal))
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"0"'
        assert response.json() == {
            "deal_id": deal["id"],
            "version": 0,
            "author_id": None,
            "updated_at": None,
            "customer_objectives": None,
            "decision_process": None,
            "stakeholders": [],
            "competition": None,
            "value_hypothesis": None,
            "risks": [],
            "next_steps": [],
        }
    versions = await api.as_(team["seller"]).get(f"{strategy_url(deal)}/versions")
    assert versions.json() == {"items": [], "next_cursor": None}


async def test_owner_writes_and_every_version_is_listed(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = strategy_url(deal)
    first = await api.as_(seller).put(url, json=DOCUMENT, headers={"If-Match": '"0"'})
    assert first.status_code == 200, first.text
    body = first.json()
    assert first.headers["etag"] == '"1"'
    assert body["version"] == 1 and body["author_id"] == seller.id and body["updated_at"]
    assert body["stakeholders"] == DOCUMENT["stakeholders"] and body["risks"] == DOCUMENT["risks"]
    [step] = body["next_steps"]
    assert step["id"] and step["status"] == "open" and step["assignee_id"] is None

    done = {**DOCUMENT, "risks": [], "next_steps": [{**step, "status": "done"}]}
    second = await api.as_(seller).put(url, json=done, headers={"If-Match": first.headers["etag"]})
    assert second.json()["version"] == 2 and second.json()["next_steps"][0]["id"] == step["id"]
    assert (await api.as_(team["manager"]).get(url)).json() == second.json()

    versions = (await api.as_(team["manager"]).get(f"{url}/versions")).json()
    assert [v["version"] for v in versions["items"]] == [1, 2]
    assert {v["author_id"] for v in versions["items"]} == {seller.id}
    assert versions["items"][0]["document"]["risks"] == ["Budget freeze in Q4"]
    assert versions["items"][1]["document"]["next_steps"][0]["status"] == "done"
    updated = await history(api, deal, "strategy.updated")
    assert [e["data"] for e in updated] == [
        {
            "version": 1,
            "sections": [
                "customer_objectives",
                "decision_process",
                "stakeholders",
                "competition",
                "value_hypothesis",
                "risks",
                "next_steps",
            ],
        },
        {"version": 2, "sections": ["risks", "next_steps"]},
    ]
    assert {e["actor_id"] for e in updated} == {seller.id} and updated[0]["deal_id"] == deal["id"]


async def test_versions_are_paginated_oldest_first(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    for n in range(3):
        await api.as_(seller).put(strategy_url(deal), json={"risks": [f"risk {n}"]}, headers={"If-Match": f'"{n}"'})
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.as_(seller).get(f"{strategy_url(deal)}/versions", params=params)).json()
        seen += [v["version"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [1, 2, 3]
    bad = await api.as_(seller).get(f"{strategy_url(deal)}/versions", params={"cursor": "nonsense"})
    assert_problem(bad, 422, "invalid_cursor")


async def test_only_the_owner_writes_the_strategy(api: Api, team) -> None:
    seller, peer = team["seller"], team["peer"]
    deal = await make_deal(api, seller)
    await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers=FIRST)
    await assign(api, deal, seller, peer, "coach")
    for caller in (team["manager"], team["hos"], api, team["integration"], peer):
        caller_api = caller if isinstance(caller, Api) else api.as_(caller)
        for headers in (None, {"If-Match": '"1"'}):  # permission comes before the missing If-Match (428)
            response = await caller_api.put(
                strategy_url(deal), json={**DOCUMENT, "competition": "Hooli"}, headers=headers
            )
            assert_problem(response, 403, "strategy_owned_by_seller")
    current = (await api.get(strategy_url(deal))).json()
    assert current["version"] == 1 and current["competition"] == "Initech"
    assert len(await history(api, deal, "strategy.updated")) == 1


async def test_stale_if_match_is_refused(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers=FIRST)
    stale = await api.as_(seller).put(strategy_url(deal), json={"risks": ["x"]}, headers={"If-Match": '"0"'})
    assert_problem(stale, 412, "version_conflict")
    assert (await api.get(strategy_url(deal))).json()["risks"] == DOCUMENT["risks"]


async def test_a_put_without_if_match_is_refused_and_erases_nothing(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = strategy_url(deal)
    assert_problem(await api.as_(seller).put(url, json=DOCUMENT), 428, "precondition_required")
    assert (await api.as_(seller).put(url, json=DOCUMENT, headers=FIRST)).status_code == 200
    blind = await api.as_(seller).put(url, json={"customer_objectives": "oops"})
    assert '"1"' in assert_problem(blind, 428, "precondition_required")["detail"]
    assert (await api.get(url)).json()["stakeholders"] == DOCUMENT["stakeholders"]
    assert len(await history(api, deal, "strategy.updated")) == 1
    # Body validation comes first (422), then the precondition; `*` knowingly replaces any version.
    assert_problem(await api.as_(seller).put(url, json={"risks": "one"}), 422, "validation_error")
    replaced = await api.as_(seller).put(url, json={"customer_objectives": "Meant it"}, headers=ANY)
    assert replaced.status_code == 200 and replaced.json()["version"] == 2 and replaced.json()["risks"] == []


async def test_sending_back_what_get_returned_says_what_to_do_with_each_read_only_field(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = strategy_url(deal)
    read = await api.as_(seller).get(url)
    refused = assert_problem(await api.as_(seller).put(url, json=read.json(), headers=FIRST), 422, "validation_error")
    assert {e["loc"][-1]: (e["msg"], e["type"]) for e in refused["errors"]} == {
        "deal_id": ("`deal_id` is read-only: it is in the path", "read_only"),
        "version": ("`version` is read-only: send it as `If-Match`", "read_only"),
        "author_id": ("`author_id` is read-only: the author is the caller", "read_only"),
        "updated_at": ("`updated_at` is read-only: the server sets it", "read_only"),
    }
    writable = {k: v for k, v in read.json().items() if k not in ("deal_id", "version", "author_id", "updated_at")}
    written = await api.as_(seller).put(
        url, json={**writable, "risks": ["Budget"]}, headers={"If-Match": read.headers["etag"]}
    )
    assert written.status_code == 200 and written.json()["version"] == 1


async def test_a_closed_deal_takes_no_strategy_or_suggestion(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_won"})
    assert_problem(await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers=FIRST), 409, "deal_closed")
    assert_problem(await suggest(api.as_(team["manager"]), deal), 409, "deal_closed")
    assert (await api.get(strategy_url(deal))).json()["version"] == 0


async def test_identical_put_writes_no_version(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    first = (await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers=FIRST)).json()
    again = await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers={"If-Match": '"1"'})  # ids omitted
    assert again.status_code == 200 and again.headers["etag"] == '"1"'
    assert again.json() == first
    with_ids = {**DOCUMENT, "next_steps": first["next_steps"]}
    assert (await api.as_(seller).put(strategy_url(deal), json=with_ids, headers=ANY)).json()["version"] == 1
    assert len(await history(api, deal, "strategy.updated")) == 1
    assert len((await api.get(f"{strategy_url(deal)}/versions")).json()["items"]) == 1
    empty = await make_deal(api, seller)
    assert (await api.as_(seller).put(strategy_url(empty), json={}, headers=FIRST)).json()["version"] == 0


async def test_next_step_assignees_are_asked_for_help(api: Api, team) -> None:
    seller, peer, manager = team["seller"], team["peer"], team["manager"]
    deal = await make_deal(api, seller)
    steps = [
        {"description": "Security review with their IT", "assignee_id": peer.id},
        {"description": "Pricing rehearsal", "assignee_id": manager.id},
        {"description": "Second ask of the same person", "assignee_id": peer.id},
        {"description": "Send the business case", "assignee_id": seller.id},
    ]
    written = await api.as_(seller).put(strategy_url(deal), json={"next_steps": steps}, headers=FIRST)
    assert written.status_code == 200, written.text
    assignments = (await api.as_(seller).get(f"/v1/deals/{deal['id']}/assignments")).json()["items"]
    by_member = {a["member_id"]: a for a in assignments}
    assert set(by_member) == {peer.id, manager.id}
    assert all(a["status"] == "requested" and a["requested_by"] == seller.id for a in assignments)
    assert by_member[peer.id]["role"] == "subject_matter_expert"
    assert by_member[peer.id]["purpose"] == "Security review with their IT"
    assert by_member[manager.id]["role"] == "coach"

    # Saving again, or naming someone with an open assignment on a new step, asks nobody twice.
    more = [*written.json()["next_steps"], {"description": "Reference call", "assignee_id": peer.id}]
    again = await api.as_(seller).put(strategy_url(deal), json={"next_steps": more}, headers={"If-Match": '"1"'})
    assert again.json()["version"] == 2
    assert len((await api.get(f"/v1/deals/{deal['id']}/assignments")).json()["items"]) == 2


async def test_next_step_assignee_must_be_an_active_member(api: Api, team) -> None:
    seller = team["seller"]
    gone = await api.make_member("seller", manager=team["manager"], key=False)
    await api.patch(f"/v1/members/{gone.id}", json={"active": False})
    deal = await make_deal(api, seller)
    for assignee in ("01900000-0000-7000-8000-000000000000", gone.id):
        steps = [{"description": "Ok", "assignee_id": seller.id}, {"description": "Help", "assignee_id": assignee}]
        body = {"next_steps": steps}
        written = await api.as_(seller).put(strategy_url(deal), json=body, headers=FIRST)
        problem = assert_problem(written, 422, "unknown_member")
        assert problem["errors"][0]["loc"] == ["body", "next_steps", 1, "assignee_id"]
    assert (await api.get(strategy_url(deal))).json()["version"] == 0
    assert (await api.get(f"/v1/deals/{deal['id']}/assignments")).json()["items"] == []


async def test_strategy_body_is_validated(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    step_id = "01900000-0000-7000-8000-000000000001"
    for body in (
        {"version": 3},
        {"author_id": seller.id},
        {"competition": "x" * 5001},
        {"risks": ["r"] * 51},
        {"stakeholders": [{"name": "Dana", "role": "boss"}]},
        {"next_steps": [{"id": step_id, "description": "a"}, {"id": step_id, "description": "b"}]},
        {"next_steps": [{"description": "a", "status": "later"}]},
    ):
        assert_problem(await api.as_(seller).put(strategy_url(deal), json=body), 422, "validation_error")
    assert (await api.get(strategy_url(deal))).json()["version"] == 0


# --- suggestions ---------------------------------------------------------------


async def test_who_may_suggest(api: Api, team) -> None:
    seller, peer = team["seller"], team["peer"]
    deal = await make_deal(api, seller)
    for caller in ("manager", "hos"):
        created = await suggest(api.as_(team[caller]), deal)
        assert created.status_code == 201, created.text
        body = created.json()
        assert created.headers["location"] == f"{strategy_url(deal)}/suggestions/{body['id']}"
        assert body["author_id"] == team[caller].id and body["status"] == "open" and body["deal_id"] == deal["id"]
        assert (await api.as_(seller).get(created.headers["location"])).json() == body

    await assign(api, deal, seller, peer, "observer")
    assert_problem(await suggest(api.as_(peer), deal), 403, "forbidden")
    await assign(api, deal, seller, peer, "coach")
    assert (await suggest(api.as_(peer), deal)).status_code == 201

    assert_problem(await suggest(api.as_(team["other_manager"]), deal), 404, "not_found")
    assert_problem(await suggest(api.as_(team["integration"]), deal), 403, "forbidden")
    assert_problem(await suggest(api, deal), 403, "forbidden")  # admin
    assert_problem(await suggest(api.as_(seller), deal), 403, "forbidden")  # the owner edits directly
    listed = (await api.as_(seller).get(f"{strategy_url(deal)}/suggestions")).json()
    assert [s["author_id"] for s in listed["items"]] == [team["manager"].id, team["hos"].id, peer.id]
    assert len(await history(api, deal, "suggestion.created")) == 3


async def test_suggestion_body_is_validated(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    manager = api.as_(team["manager"])
    for body in (
        {"section": "pricing", "body": "x"},
        {"section": "risks", "body": ""},
        {"section": "risks", "body": "x" * 5001},
        {"section": "risks", "body": "x", "status": "accepted"},
    ):
        assert_problem(await manager.post(f"{strategy_url(deal)}/suggestions", json=body), 422, "validation_error")


async def test_only_the_owner_decides_and_accepting_leaves_the_strategy(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    await api.as_(seller).put(strategy_url(deal), json=DOCUMENT, headers=FIRST)
    first = (await suggest(api.as_(manager), deal, "competition", "Hooli is in too")).json()
    second = (await suggest(api.as_(team["hos"]), deal)).json()
    accept = f"{strategy_url(deal)}/suggestions/{first['id']}/accept"
    for caller in (manager, team["hos"]):  # the author, the manager, leadership: still not theirs to decide
        assert_problem(await api.as_(caller).post(accept, json={"note": "me"}), 403, "owner_decides")
        assert_problem(await api.as_(caller).post(accept.replace("accept", "decline")), 403, "owner_decides")

    suggestion_url = accept.removesuffix("/accept")
    pending = await assert_tagged_by_content(api.as_(seller), suggestion_url)
    accepted = await api.as_(seller).post(accept, json={"note": "Adding them"})
    assert accepted.status_code == 200, accepted.text
    # Decided, it reads differently: the tag it had no longer holds.
    decided = await api.as_(seller).get(suggestion_url, headers={"If-None-Match": pending})
    assert decided.status_code == 200 and decided.headers["etag"] != pending
    assert accepted.json()["status"] == "accepted" and accepted.json()["note"] == "Adding them"
    assert accepted.json()["decided_at"]
    current = await api.get(strategy_url(deal))
    assert current.json()["version"] == 1 and current.json()["competition"] == "Initech"
    assert current.headers["etag"] == '"1"'

    decline = f"{strategy_url(deal)}/suggestions/{second['id']}/decline"
    declined = await api.as_(seller).post(decline)
    assert declined.json()["status"] == "declined" and declined.json()["note"] is None
    for url in (accept, accept.replace("accept", "decline"), decline, decline.replace("decline", "accept")):
        assert_problem(await api.as_(seller).post(url), 409, "suggestion_already_decided")

    listed = await api.as_(manager).get(f"{strategy_url(deal)}/suggestions", params={"status": "accepted"})
    assert [s["id"] for s in listed.json()["items"]] == [first["id"]]
    assert [e["subject_id"] for e in await history(api, deal, "suggestion.accepted")] == [first["id"]]
    assert [e["subject_id"] for e in await history(api, deal, "suggestion.declined")] == [second["id"]]
    assert (await api.get(strategy_url(deal))).json()["version"] == 1


async def test_a_suggestion_on_another_deal_is_not_found(api: Api, team) -> None:
    seller = team["seller"]
    deal, other = await make_deal(api, seller), await make_deal(api, seller)
    made = (await suggest(api.as_(team["manager"]), deal)).json()
    for path in ("", "/accept", "/decline"):
        url = f"{strategy_url(other)}/suggestions/{made['id']}{path}"
        response = await (api.as_(seller).get(url) if not path else api.as_(seller).post(url))
        assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(("stage", "late"), [("negotiation", True), ("prospecting", False)])
async def test_a_managers_first_involvement_by_suggestion_may_be_late(api: Api, team, stage: str, late: bool) -> None:
    deal = await make_deal(api, team["seller"], stage=stage)
    made = await suggest(api.as_(team["manager"]), deal)
    assert made.json()["late_involvement"] is late
    [event] = await history(api, deal, "suggestion.created")
    assert event["data"] == {"section": "risks", "late_involvement": late}
    again = await suggest(api.as_(team["manager"]), deal)
    assert again.json()["late_involvement"] is False  # only a first involvement counts


async def test_a_seller_not_on_the_deal_sees_no_strategy(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    made = (await suggest(api.as_(team["manager"]), deal)).json()
    url = strategy_url(deal)
    for caller in (team["peer"], team["outsider"]):
        as_ = api.as_(caller)
        for response in (
            await as_.get(url),
            await as_.put(url, json=DOCUMENT),
            await as_.get(f"{url}/versions"),
            await as_.post(f"{url}/suggestions", json={"section": "risks", "body": "x"}),
            await as_.get(f"{url}/suggestions"),
            await as_.get(f"{url}/suggestions/{made['id']}"),
            await as_.post(f"{url}/suggestions/{made['id']}/accept"),
            await as_.post(f"{url}/suggestions/{made['id']}/decline"),
        ):
            assert_problem(response, 404, "not_found")
