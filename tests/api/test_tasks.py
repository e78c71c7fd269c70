"""My tasks (GET /v1/me/tasks): everything waiting on the caller, across deals, newest first. Each
kind appears for the member it waits on and for no one else, leaves once done, links to an object
the member can read, and the whole list costs one statement however many rows there are."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from app.db.reads import TaskListing
from app.db.repositories import reads as repository
from app.domain.api_keys import hash_key
from tests.api.test_development import held_call
from tests.api.test_hot_reads import assert_one_statement, recording
from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem, make_deal

TASKS = "/v1/me/tasks"
TERMS = [{"kind": "discount", "description": "First-year discount", "value": "15%", "applies_to": "Year one"}]


async def tasks_of(api: Api, who: Person, **params: Any) -> list[dict[str, Any]]:
    response = await api.as_(who).get(TASKS, params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    return body["items"]


async def kinds_of(api: Api, who: Person) -> list[tuple[str, str]]:
    """(kind, id) of the member's tasks, newest first."""
    return [(t["kind"], t["id"]) for t in await tasks_of(api, who)]


async def put_strategy(api: Api, owner: Person, deal: dict[str, Any], steps: list[dict[str, Any]]) -> dict[str, Any]:
    url = f"/v1/deals/{deal['id']}/strategy"
    current = await api.as_(owner).get(url)
    response = await api.as_(owner).put(url, json={"next_steps": steps}, headers={"If-Match": current.headers["ETag"]})
    assert response.status_code == 200, response.text
    return response.json()


def at(moment: str) -> dt.datetime:
    return dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


async def assert_links_readable(api: Api, who: Person) -> None:
    """Every task links to something its member may read."""
    for task in await tasks_of(api, who):
        response = await api.as_(who).get(task["link"])
        assert response.status_code == 200, (task, response.text)


# --- each kind, for the right member, until done ------------------------------------------


async def test_next_steps_wait_on_their_assignee_once_they_see_the_deal(api: Api, team) -> None:
    seller, peer, manager = team["seller"], team["peer"], team["manager"]
    deal = await make_deal(api, seller, stage="discovery")
    steps = [
        {"description": "Book the CFO meeting", "assignee_id": seller.id, "due_date": "2026-12-01"},
        {"description": "Demo the integration", "assignee_id": peer.id},
        {"description": "Nobody's step"},
    ]
    strategy = await put_strategy(api, seller, deal, steps)
    own, helped, _ = strategy["next_steps"]

    (task,) = await tasks_of(api, seller)
    assert task == {
        "kind": "next_step",
        "id": own["id"],
        "deal_id": deal["id"],
        "deal_name": deal["name"],
        "title": "Book the CFO meeting",
        "due_on": "2026-12-01",
        "created_at": task["created_at"],
        "link": f"/v1/deals/{deal['id']}/strategy",
    }
    # The peer was asked for help: until they accept, the deal (and its step) is out of their sight.
    (request,) = await tasks_of(api, peer)
    assert request["kind"] == "assignment_request" and request["title"].startswith("Asked to join as ")
    assert request["link"] == f"/v1/assignments/{request['id']}"
    await assert_links_readable(api, peer)
    await ok(await api.as_(peer).post(f"/v1/assignments/{request['id']}/accept"))
    assert await kinds_of(api, peer) == [("next_step", helped["id"])]
    assert await kinds_of(api, manager) == []  # the manager sees the deal; nothing is assigned to them

    # Done steps, and steps of a closed deal, wait on no one.
    own["status"] = "done"
    await put_strategy(api, seller, deal, [own, helped])
    assert await kinds_of(api, seller) == []
    await ok(await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_won"}))
    assert await kinds_of(api, peer) == []


async def test_a_step_keeps_its_time_until_it_changes_hands(api: Api, team) -> None:
    seller, peer = team["seller"], team["peer"]
    deal = await make_deal(api, seller)
    (step,) = (await put_strategy(api, seller, deal, [{"description": "Call the CFO", "assignee_id": seller.id}]))[
        "next_steps"
    ]
    (first,) = await tasks_of(api, seller)
    step["description"] = "Call the CFO and the CIO"
    await put_strategy(api, seller, deal, [step])
    (edited,) = await tasks_of(api, seller)
    assert edited["title"] == "Call the CFO and the CIO" and edited["created_at"] == first["created_at"]
    await put_strategy(api, seller, deal, [{**step, "assignee_id": peer.id}])
    assert await tasks_of(api, seller) == []
    await put_strategy(api, seller, deal, [step])
    (back,) = await tasks_of(api, seller)
    assert at(back["created_at"]) > at(first["created_at"])


async def test_proposals_and_suggestions_wait_on_the_owner(api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    deal = await make_deal(api, seller)
    proposal = await ok(
        await api.as_(manager).post(
            f"/v1/deals/{deal['id']}/assignments", json={"member_id": manager.id, "role": "coach", "purpose": "Pricing"}
        ),
        201,
    )
    suggestion = await ok(
        await api.as_(hos).post(
            f"/v1/deals/{deal['id']}/strategy/suggestions", json={"section": "risks", "body": "Procurement joins late"}
        ),
        201,
    )
    tasks = await tasks_of(api, seller)
    assert [(t["kind"], t["id"], t["title"]) for t in tasks] == [
        ("suggestion", suggestion["id"], "Suggestion on risks: Procurement joins late"),
        ("assignment_proposal", proposal["id"], "Proposed to join as coach: Pricing"),
    ]
    assert tasks[0]["link"] == f"/v1/deals/{deal['id']}/strategy/suggestions/{suggestion['id']}"
    await assert_links_readable(api, seller)
    assert await kinds_of(api, manager) == [] and await kinds_of(api, hos) == []

    await ok(await api.as_(seller).post(f"/v1/deals/{deal['id']}/strategy/suggestions/{suggestion['id']}/decline"))
    await ok(await api.as_(seller).post(f"/v1/assignments/{proposal['id']}/accept"))
    assert await kinds_of(api, seller) == []


async def test_what_waits_on_owners_pages_among_other_owners_tasks(api: Api, team) -> None:
    """Proposals and suggestions are merged newest first before their deals are read: the
    seller's, interleaved in time with a peer's on the peer's deals, page exactly, and the peer's
    never show."""
    seller, peer, manager = team["seller"], team["peer"], team["manager"]
    ours, theirs = await make_deal(api, seller), await make_deal(api, peer)
    expected: list[tuple[str, str]] = []
    roles = ["coach", "observer", "executive_sponsor", "subject_matter_expert"]
    for i in range(4):
        for deal in (ours, theirs):
            suggested = await api.as_(manager).post(
                f"/v1/deals/{deal['id']}/strategy/suggestions", json={"section": "risks", "body": f"Risk {i}"}
            )
            proposed = await api.as_(manager).post(
                f"/v1/deals/{deal['id']}/assignments",
                json={"member_id": manager.id, "role": roles[i], "purpose": f"Help {i}"},
            )
            if deal is ours:
                expected += [("suggestion", (await ok(suggested, 201))["id"])]
                expected += [("assignment_proposal", (await ok(proposed, 201))["id"])]
    expected.reverse()  # newest first: each was made after the one before it
    assert await kinds_of(api, seller) == expected
    assert len(await kinds_of(api, peer)) == len(expected)
    for limit in (1, 3, 5):
        seen: list[tuple[str, str]] = []
        params: dict[str, Any] = {"limit": limit}
        while True:
            page = await ok(await api.as_(seller).get(TASKS, params=params))
            assert len(page["items"]) <= limit
            seen += [(t["kind"], t["id"]) for t in page["items"]]
            if page["next_cursor"] is None:
                break
            params["cursor"] = page["next_cursor"]
        assert seen == expected, limit
    only = await tasks_of(api, seller, kind="assignment_proposal")
    assert [(t["kind"], t["id"]) for t in only] == [k for k in expected if k[0] == "assignment_proposal"]


async def test_approvals_wait_on_their_approver(api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}/approvals"
    first = await ok(await api.as_(seller).post(url, json={"approver_id": manager.id, "terms": TERMS}), 201)
    second = await ok(await api.as_(seller).post(url, json={"approver_id": hos.id, "terms": TERMS}), 201)
    (task,) = await tasks_of(api, manager)
    assert (task["kind"], task["id"], task["link"]) == ("approval", first["id"], f"/v1/approvals/{first['id']}")
    assert await kinds_of(api, hos) == [("approval", second["id"])]
    assert await kinds_of(api, seller) == []
    await assert_links_readable(api, manager)
    await ok(await api.as_(manager).post(f"/v1/approvals/{first['id']}/approve"))
    await ok(await api.as_(hos).post(f"/v1/approvals/{second['id']}/reject"))
    assert await kinds_of(api, manager) == [] and await kinds_of(api, hos) == []


async def test_an_observation_waits_on_its_observer_then_the_seller_then_commitments(api: Api, team) -> None:
    seller, manager, peer = team["seller"], team["manager"], team["peer"]
    call = await held_call(api, seller, manager, await make_deal(api, seller))
    body = {"strengths": [{"skill_code": "discovery", "note": "Good questions"}], "summary": "Strong discovery"}
    draft = await ok(await api.as_(manager).post(f"/v1/calls/{call['id']}/observations", json=body), 201)
    (task,) = await tasks_of(api, manager)
    assert (task["kind"], task["id"]) == ("observation_to_share", draft["id"])
    assert task["title"] == "Share your observation of the call: Strong discovery"
    assert await kinds_of(api, seller) == []  # a draft is the observer's alone

    await ok(await api.as_(manager).post(f"/v1/observations/{draft['id']}/share"))
    assert await kinds_of(api, manager) == []
    assert await kinds_of(api, seller) == [("observation_to_acknowledge", draft["id"])]
    await assert_links_readable(api, seller)

    commitments = ["Agree a next step", "Confirm value first"]
    acknowledged = await api.as_(seller).post(
        f"/v1/observations/{draft['id']}/acknowledge", json={"reflection": "Yes", "commitments": commitments}
    )
    await ok(acknowledged)
    tasks = await tasks_of(api, seller)
    assert {t["kind"] for t in tasks} == {"commitment"} and {t["title"] for t in tasks} == set(commitments)
    await assert_links_readable(api, seller)
    assert await kinds_of(api, peer) == [] and await kinds_of(api, manager) == []
    for task in tasks:
        await ok(await api.as_(seller).post(f"/v1/commitments/{task['id']}/complete"))
    assert await kinds_of(api, seller) == []


async def test_a_review_waits_on_the_reviewer_and_on_the_sellers_reflection(api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    deal = await make_deal(api, seller)
    lost = await ok(
        await api.as_(seller).patch(
            f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}}
        )
    )
    review_id = lost["review_id"]
    (complete,) = await tasks_of(api, manager)
    assert (complete["kind"], complete["id"]) == ("review_to_complete", review_id)
    assert complete["title"] == "Complete the closed-lost review (loss reason: price)"
    assert complete["due_on"] is not None and complete["link"] == f"/v1/closed-lost-reviews/{review_id}"
    assert await kinds_of(api, seller) == [("review_to_reflect", review_id)]
    assert await kinds_of(api, hos) == []
    await assert_links_readable(api, seller)
    await assert_links_readable(api, manager)

    url = f"/v1/closed-lost-reviews/{review_id}"
    await ok(await api.as_(seller).patch(url, json={"seller_reflection": "I discounted too early."}))
    assert await kinds_of(api, seller) == []
    await ok(await api.as_(manager).patch(url, json={"loss_reason_confirmed": True, "lessons": ["Value first"]}))
    await ok(await api.as_(manager).post(f"{url}/complete"))
    assert await kinds_of(api, manager) == []


async def test_a_reopened_deals_review_waits_on_no_one(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    await ok(await api.as_(seller).patch(url, json={"stage": "closed_lost", "loss": {"reason_code": "price"}}))
    await ok(await api.as_(seller).patch(url, json={"stage": "negotiation"}))
    assert await kinds_of(api, seller) == [] and await kinds_of(api, manager) == []


# --- the listing ------------------------------------------------------------------------------


@pytest.fixture
async def busy(api: Api, team) -> dict[str, Any]:
    """A seller with tasks of five kinds, several made in the same instant (one debrief's commitments)."""
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    await put_strategy(api, seller, deal, [{"description": f"Step {i}", "assignee_id": seller.id} for i in range(3)])
    await api.as_(manager).post(f"/v1/deals/{deal['id']}/strategy/suggestions", json={"section": "risks", "body": "x"})
    call = await held_call(api, seller, manager, deal)
    body = {"strengths": [{"skill_code": "discovery", "note": "Good"}]}
    draft = await ok(await api.as_(manager).post(f"/v1/calls/{call['id']}/observations", json=body), 201)
    await ok(await api.as_(manager).post(f"/v1/observations/{draft['id']}/share"))
    second = await ok(await api.as_(manager).post(f"/v1/calls/{call['id']}/observations", json=body), 201)
    await ok(await api.as_(manager).post(f"/v1/observations/{second['id']}/share"))
    commitments = [f"Commitment {i}" for i in range(5)]
    await ok(
        await api.as_(seller).post(
            f"/v1/observations/{second['id']}/acknowledge", json={"reflection": "Yes", "commitments": commitments}
        )
    )
    lost = await make_deal(api, seller)
    await ok(
        await api.as_(seller).patch(
            f"/v1/deals/{lost['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "timing"}}
        )
    )
    return {"seller": seller, "tasks": await tasks_of(api, seller)}


async def test_newest_first_with_ties_broken_by_id(busy) -> None:
    tasks = busy["tasks"]
    assert len(tasks) == 3 + 1 + 1 + 5 + 1
    keys = [(at(t["created_at"]), t["id"]) for t in tasks]
    assert keys == sorted(keys, reverse=True)
    assert len({t["created_at"] for t in tasks if t["kind"] == "commitment"}) == 1  # made in one instant


async def test_pages_cover_the_list_without_duplicates_or_gaps(api: Api, busy) -> None:
    for limit in (1, 2, 4):
        seen: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            page = await ok(await api.as_(busy["seller"]).get(TASKS, params=params))
            assert len(page["items"]) <= limit
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == busy["tasks"], limit


async def test_the_kind_filter_repeats(api: Api, busy) -> None:
    seller = busy["seller"]
    commitments = await tasks_of(api, seller, kind="commitment")
    assert commitments == [t for t in busy["tasks"] if t["kind"] == "commitment"]
    mixed = await tasks_of(api, seller, kind=["next_step", "review_to_reflect"])
    assert mixed == [t for t in busy["tasks"] if t["kind"] in ("next_step", "review_to_reflect")]
    # A filtered listing pages like the whole one.
    first = await ok(await api.as_(seller).get(TASKS, params={"kind": "commitment", "limit": 3}))
    rest = await ok(
        await api.as_(seller).get(TASKS, params={"kind": "commitment", "limit": 3, "cursor": first["next_cursor"]})
    )
    assert first["items"] + rest["items"] == commitments and rest["next_cursor"] is None


async def test_refused_input(api: Api, busy) -> None:
    seller = busy["seller"]
    body = assert_problem(await api.as_(seller).get(TASKS, params={"kind": "chores"}), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "kind", 0]
    assert_problem(await api.as_(seller).get(TASKS, params={"kinds": "commitment"}), 422, "validation_error")
    assert_problem(await api.as_(seller).get(TASKS, params={"cursor": "nope"}), 422, "invalid_cursor")
    deals_cursor = (await api.as_(seller).get("/v1/deals", params={"limit": 1})).json()["next_cursor"]
    assert_problem(await api.as_(seller).get(TASKS, params={"cursor": deals_cursor}), 422, "invalid_cursor")
    assert_problem(await api.as_(None).get(TASKS), 401, "unauthenticated")
    assert_problem(
        await api.as_("dc_00000000_" + "x" * 43).get(TASKS, params={"cursor": "nope"}), 401, "unauthenticated"
    )


async def test_another_organisation_sees_none_of_it_and_its_cursors_do_not_open_ours(
    app, client, api: Api, busy
) -> None:
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    theirs = Api(client, other.admin_key)
    their_manager = await theirs.make_member("manager")
    their_seller = await theirs.make_member("seller", manager=their_manager)
    deal = await make_deal(theirs, their_seller)
    await put_strategy(theirs, their_seller, deal, [{"description": "Theirs", "assignee_id": their_seller.id}])
    (their_task,) = await tasks_of(theirs, their_seller)
    assert their_task["deal_id"] == deal["id"]
    ours = {t["id"] for t in busy["tasks"]}
    assert their_task["id"] not in ours
    first = await ok(await theirs.as_(their_seller).get(TASKS, params={"limit": 1}))
    assert first["next_cursor"] is None
    our_cursor = (await ok(await api.as_(busy["seller"]).get(TASKS, params={"limit": 1})))["next_cursor"]
    response = await theirs.as_(their_seller).get(TASKS, params={"cursor": our_cursor})
    assert_problem(response, 422, "invalid_cursor")


async def test_one_statement_whatever_the_number_of_rows(app, api: Api, team, monkeypatch) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)

    async def measured(**params: Any) -> dict[str, Any]:
        with recording(app, monkeypatch) as recorded:
            page = await ok(await api.as_(seller).get(TASKS, params=params))
        assert_one_statement(recorded)
        return page

    await put_strategy(api, seller, deal, [{"description": "One", "assignee_id": seller.id}])
    assert len((await measured())["items"]) == 1
    steps = [{"description": f"Step {i}", "assignee_id": seller.id} for i in range(30)]
    await put_strategy(api, seller, deal, steps)
    for i in range(5):
        body = {"section": "risks", "body": f"Risk {i}"}
        await ok(await api.as_(manager).post(f"/v1/deals/{deal['id']}/strategy/suggestions", json=body), 201)
    page = await measured(limit=10)
    assert len(page["items"]) == 10
    following = await measured(limit=50, cursor=page["next_cursor"])
    assert len(following["items"]) == 25
    assert len((await measured(kind=["suggestion", "commitment"]))["items"]) == 5


async def test_the_driver_path_reads_what_sqlalchemy_reads(app, busy, monkeypatch) -> None:
    """On PostgreSQL the first page goes to asyncpg directly (tests/api/test_hot_reads.py)."""
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the driver path is PostgreSQL's")
    key_hash = hash_key(busy["seller"].key)

    async def read() -> list[tuple[Any, ...]]:
        found = await app.state.reads.tasks.page(key_hash, TaskListing(kinds=None, after=None, limit=50))
        return [tuple(row) for row in found[1]]

    driver = await read()
    assert len(driver) == len(busy["tasks"])
    with monkeypatch.context() as patched:
        patched.setattr(repository, "_driver_statement", lambda *_: None)
        assert await read() == driver
