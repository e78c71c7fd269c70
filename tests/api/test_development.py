"""Seller development, the learning loop: commitments tracked until done, the skill profile, the
call brief, the team's skills and the feedback digest (docs/rules.md: Seller development)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.models import ClosedLostReview, Observation, ObservationSkill
from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem, make_deal

WHEN = "2026-11-03T14:00:00Z"
HELD = "2026-11-03T15:00:00Z"
PART = "Observe the pricing conversation"
REVIEWS = "/v1/closed-lost-reviews"


def skill(code: str, note: str = "Seen in the call") -> dict[str, Any]:
    return {"skill_code": code, "note": note}


async def held_call(api: Api, seller: Person, observer: Person, deal: dict[str, Any]) -> dict[str, Any]:
    """A held call on the seller's deal with ``observer`` observing by agreement."""
    attendees = [
        {"member_id": seller.id, "call_role": "lead"},
        {"member_id": observer.id, "call_role": "observer", "agreed_part": PART},
    ]
    planned = await api.as_(seller).post(
        f"/v1/deals/{deal['id']}/calls", json={"scheduled_at": WHEN, "attendees": attendees}
    )
    assert planned.status_code == 201, planned.text
    held = await api.as_(seller).patch(f"/v1/calls/{planned.json()['id']}", json={"held_at": HELD})
    assert held.status_code == 200, held.text
    return held.json()


async def shared_observation(
    api: Api,
    observer: Person,
    call: dict[str, Any],
    *,
    strengths: list[str],
    improvements: list[str] = (),  # type: ignore[assignment]
    summary: str = "A good meeting",
) -> dict[str, Any]:
    body = {
        "strengths": [skill(code) for code in strengths],
        "improvements": [skill(code, "Could go better") for code in improvements],
        "summary": summary,
    }
    drafted = await api.as_(observer).post(f"/v1/calls/{call['id']}/observations", json=body)
    assert drafted.status_code == 201, drafted.text
    shared = await api.as_(observer).post(f"/v1/observations/{drafted.json()['id']}/share")
    assert shared.status_code == 200, shared.text
    return shared.json()


async def acknowledge(api: Api, seller: Person, observation: dict[str, Any], commitments: list[Any]) -> Any:
    return await api.as_(seller).post(
        f"/v1/observations/{observation['id']}/acknowledge",
        json={"reflection": "I see it now", "commitments": commitments},
    )


async def shared_on(app, observation_id: str, when: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    """Move when an observation was shared (tests only: time does not pass in a test)."""
    observation, skills = Observation.__table__, ObservationSkill.__table__
    oid = uuid.UUID(observation_id)
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.update(observation).where(observation.c.id == oid).values(shared_at=when))
        await conn.execute(sa.update(skills).where(skills.c.observation_id == oid).values(shared_at=when))


async def set_review(app, review_id: str, **values: Any) -> None:  # type: ignore[no-untyped-def]
    table = ClosedLostReview.__table__
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.update(table).where(table.c.id == uuid.UUID(review_id)).values(**values))


async def lost_review(api: Api, seller: Person, reason: str = "price") -> dict[str, Any]:
    """A deal of the seller, lost; its (pending) review."""
    deal = await make_deal(api, seller)
    lost = await api.as_(seller).patch(
        f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": {"reason_code": reason}}
    )
    assert lost.status_code == 200, lost.text
    opened = (await api.get("/v1/events", params={"type": "review.opened", "deal_id": deal["id"]})).json()["items"]
    response = await api.get(f"{REVIEWS}/{opened[-1]['subject_id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def complete_review(api: Api, reviewer: Person, seller: Person, review: dict[str, Any], **findings: Any) -> Any:
    url = f"{REVIEWS}/{review['id']}"
    body = {"loss_reason_confirmed": True, "lessons": ["Anchor on value before price"], **findings}
    found = await api.as_(reviewer).patch(url, json=body)
    assert found.status_code == 200, found.text
    reflected = await api.as_(seller).patch(url, json={"seller_reflection": "I discounted too early."})
    assert reflected.status_code == 200, reflected.text
    completed = await api.as_(reviewer).post(f"{url}/complete")
    assert completed.status_code == 200, completed.text
    return completed.json()


async def commitments_of(api: Api, who: Person | None = None, **params: Any) -> list[dict[str, Any]]:
    caller = api if who is None else api.as_(who)
    response = await caller.get("/v1/commitments", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def at(moment: str | None) -> dt.datetime | None:
    return None if moment is None else dt.datetime.fromisoformat(moment.replace("Z", "+00:00"))


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- the story ---------------------------------------------------------------------------


async def test_a_seller_gets_better_and_everyone_sees_the_same_figures(app, api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    today = now.date()
    deal = await make_deal(api, seller, stage="discovery")

    # The manager observes three calls: negotiation to improve twice, then recognised as a strength.
    first = await shared_observation(
        api, manager, await held_call(api, seller, manager, deal), strengths=["discovery"], improvements=["negotiation"]
    )
    second = await shared_observation(
        api,
        manager,
        await held_call(api, seller, manager, deal),
        strengths=["discovery"],
        improvements=["negotiation", "closing"],
    )
    third = await shared_observation(
        api,
        manager,
        await held_call(api, seller, manager, deal),
        strengths=["negotiation", "communication"],
        summary="Held the price and traded value for it",
    )
    # The default window is the 90 days ending today; its second half starts 44 days before today.
    await shared_on(app, first["id"], now - dt.timedelta(days=60))
    await shared_on(app, second["id"], now - dt.timedelta(days=50))
    await shared_on(app, third["id"], now - dt.timedelta(days=10))

    # The seller acknowledges the second with two commitments, one answering its negotiation improvement.
    acknowledged = await acknowledge(
        api,
        seller,
        second,
        [
            "Agree a next step before the call ends",
            {"text": "Confirm value before quoting", "skill_code": "negotiation"},
        ],
    )
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["commitments"] == [
        "Agree a next step before the call ends",
        "Confirm value before quoting",
    ]
    assert (await acknowledge(api, seller, third, [])).status_code == 200
    made = await commitments_of(api, seller)
    assert [(c["text"], c["skill_code"], c["source"], c["status"]) for c in reversed(made)] == [
        ("Agree a next step before the call ends", None, "observation", "open"),
        ("Confirm value before quoting", "negotiation", "observation", "open"),
    ]
    assert all(c["source_id"] == second["id"] and c["deal_id"] == deal["id"] for c in made)
    next_step = made[1]
    done = await api.as_(seller).post(f"/v1/commitments/{next_step['id']}/complete", json={"note": "Did it twice"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done" and done.json()["note"] == "Did it twice" and done.json()["closed_at"]
    assert done.headers["etag"] == '"2"'

    # A deal lost on price; its review names the gaps and gives the seller an action item, due yesterday.
    review = await lost_review(api, seller)
    await set_review(app, review["id"], closed_at=now - dt.timedelta(days=30))
    yesterday = today - dt.timedelta(days=1)
    action = {"description": "Role-play the price conversation", "assignee_id": seller.id, "due_date": str(yesterday)}
    await complete_review(
        api,
        manager,
        seller,
        review,
        skill_gaps=["negotiation", "closing"],
        action_items=[action, {"description": "Nobody's item"}],
        product_feedback="A smaller tier would have kept the deal",
    )
    from_review = [c for c in await commitments_of(api, manager) if c["source"] == "closed_lost_review"]
    assert [(c["member_id"], c["text"], c["due_on"], c["overdue"]) for c in from_review] == [
        (seller.id, "Role-play the price conversation", str(yesterday), True)
    ]
    assert from_review[0]["source_id"] == review["id"] and from_review[0]["deal_id"] == review["deal_id"]

    # The profile, as the seller, the manager and the head of sales see it.
    url = f"/v1/members/{seller.id}/development"
    profile = (await api.as_(seller).get(url)).json()
    assert profile["member_id"] == seller.id
    assert profile["from"] == str(today - dt.timedelta(days=89)) and profile["to"] == str(today)
    by_skill = {s["skill_code"]: s for s in profile["skills"]}
    assert list(by_skill) == ["closing", "communication", "discovery", "negotiation"]
    third_at, second_at, first_at = (now - dt.timedelta(days=d) for d in (10, 50, 60))
    negotiation = by_skill["negotiation"]
    assert (negotiation["strengths"], negotiation["improvements"], negotiation["loss_gaps"]) == (1, 2, 1)
    assert at(negotiation["last_recognised_at"]) == third_at and at(negotiation["last_improvement_at"]) == second_at
    assert negotiation["trend"] == "improving"  # recognised after its latest need (the loss, 30 days ago)
    closing = by_skill["closing"]
    assert (closing["strengths"], closing["improvements"], closing["loss_gaps"], closing["trend"]) == (
        0,
        1,
        1,
        "steady",
    )
    assert closing["last_recognised_at"] is None and at(closing["last_improvement_at"]) == second_at
    discovery = by_skill["discovery"]
    assert (discovery["strengths"], discovery["improvements"], discovery["trend"]) == (2, 0, "steady")
    assert at(discovery["last_recognised_at"]) == second_at
    assert by_skill["communication"]["trend"] == "new"
    assert profile["commitments"] == {"open": 2, "done": 1, "dropped": 0, "overdue": 1}
    assert profile["debriefs"] == {"shared": 3, "acknowledged": 2, "pending": 1}
    assert profile["reviews"] == {"lost": 1, "completed": 1}
    assert (await api.as_(manager).get(url)).json() == profile
    assert (await api.as_(hos).get(url)).json() == profile

    # A narrower window, the last 30 days, holds only the third observation (in its second half):
    # communication is new there, negotiation was mentioned before and recognised after its latest need.
    recent = (await api.as_(seller).get(url, params={"from": str(today - dt.timedelta(days=29))})).json()
    assert [(s["skill_code"], s["strengths"], s["trend"]) for s in recent["skills"]] == [
        ("communication", 1, "new"),
        ("negotiation", 1, "improving"),
    ]
    assert recent["debriefs"] == {"shared": 1, "acknowledged": 1, "pending": 0}

    # The observer's brief for the next call.
    upcoming = await api.as_(seller).post(
        f"/v1/deals/{deal['id']}/calls",
        json={
            "scheduled_at": WHEN,
            "attendees": [
                {"member_id": seller.id, "call_role": "lead"},
                {"member_id": manager.id, "call_role": "observer", "agreed_part": PART},
            ],
        },
    )
    brief = await api.as_(manager).get(f"/v1/calls/{upcoming.json()['id']}/brief")
    assert brief.status_code == 200, brief.text
    brief = brief.json()
    assert brief["call_id"] == upcoming.json()["id"] and brief["seller_id"] == seller.id
    assert [c["text"] for c in brief["open_commitments"]] == [
        "Role-play the price conversation",  # due first
        "Confirm value before quoting",
    ]
    assert [(f["skill_code"], f["improvements"], at(f["last_improvement_at"])) for f in brief["focus_skills"]] == [
        ("negotiation", 2, second_at),
        ("closing", 1, second_at),
    ]
    last = brief["last_observation"]
    assert last["id"] == third["id"] and last["summary"] == "Held the price and traded value for it"
    assert last["acknowledged_at"]

    # The team's skills agree with the profile, for the manager and for the head of sales.
    expected = [
        {
            "skill_code": s["skill_code"],
            "strengths": s["strengths"],
            "improvements": s["improvements"],
            "loss_gaps": s["loss_gaps"],
        }
        for s in profile["skills"]
    ]
    for who in (manager, hos):
        view = await api.as_(who).get("/v1/analytics/skills")
        assert view.status_code == 200, view.text
        body = view.json()
        assert body["sellers"] == [{"member_id": seller.id, "skills": expected}]
        assert sorted(body["totals"], key=lambda t: t["skill_code"]) == expected
        assert [t["skill_code"] for t in body["totals"]][:2] == ["negotiation", "closing"]  # the most needed first

    # Leadership reads the product feedback the loss left.
    feedback = await api.as_(hos).get(f"{REVIEWS}/feedback", params={"kind": "product"})
    assert feedback.status_code == 200, feedback.text
    items = feedback.json()["items"]
    assert [(i["review_id"], i["loss_reason_code"], i["feedback"]) for i in items] == [
        (review["id"], "price", "A smaller tier would have kept the deal")
    ]
    assert (await api.as_(hos).get(f"{REVIEWS}/feedback", params={"kind": "enablement"})).json()["items"] == []

    # Every commitment change is an event on its deal, carrying no text.
    events = (await api.get("/v1/events", params={"type": ["commitment.created", "commitment.completed"]})).json()
    types = [(e["type"], e["subject_id"]) for e in events["items"]]
    assert types == [
        ("commitment.created", made[1]["id"]),
        ("commitment.created", made[0]["id"]),
        ("commitment.completed", next_step["id"]),
        ("commitment.created", from_review[0]["id"]),
    ]
    assert all("text" not in e["data"] and e["data"]["member_id"] == seller.id for e in events["items"])


# --- visibility -----------------------------------------------------------------------------


@pytest.fixture
async def line(app, api: Api, team) -> dict[str, Any]:
    """A seller deep in a line, hos > senior > junior > owner (and teammate), with a debrief commitment,
    on a call the junior manager observed and the teammate attended; the outsider (other_manager's)
    has a debrief too; and another organisation."""
    senior = await api.make_member("manager", manager=team["hos"])
    junior = await api.make_member("manager", manager=senior)
    owner = await api.make_member("seller", manager=junior)
    teammate = await api.make_member("seller", manager=junior)
    deal = await make_deal(api, owner)
    attendees = [
        {"member_id": owner.id, "call_role": "lead"},
        {"member_id": junior.id, "call_role": "observer", "agreed_part": PART},
        {"member_id": teammate.id, "call_role": "contributor", "agreed_part": "Answers security questions"},
    ]
    planned = await api.as_(owner).post(
        f"/v1/deals/{deal['id']}/calls", json={"scheduled_at": WHEN, "attendees": attendees}
    )
    call = (await api.as_(owner).patch(f"/v1/calls/{planned.json()['id']}", json={"held_at": HELD})).json()
    observation = await shared_observation(api, junior, call, strengths=["discovery"], improvements=["negotiation"])
    assert (await acknowledge(api, owner, observation, ["Ask for the budget owner"])).status_code == 200
    (commitment,) = await commitments_of(api, owner)

    outsider_call = await held_call(
        api, team["outsider"], team["other_manager"], await make_deal(api, team["outsider"])
    )
    await shared_observation(api, team["other_manager"], outsider_call, strengths=["closing"])

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    return {
        "senior": senior,
        "junior": junior,
        "owner": owner,
        "teammate": teammate,
        "deal": deal,
        "call": call,
        "commitment": commitment,
        "foreign": Person(id=other.admin_id, key=other.admin_key, body={}),
    }


def caller(api: Api, team: dict[str, Person], line: dict[str, Any], who: str) -> Api:
    return api if who == "admin" else api.as_({**team, **line}[who])


# Who is who in ``line``: the member, their line, and everyone else of the visibility matrix.
MEMBER_AND_LINE = ["owner", "junior", "senior", "hos"]
EVERYONE_ELSE = ["teammate", "manager", "other_manager", "outsider", "admin", "integration", "foreign"]


async def test_a_commitment_is_seen_by_the_member_and_their_line_only(api: Api, team, line) -> None:
    commitment = line["commitment"]
    url = f"/v1/commitments/{commitment['id']}"
    for who in MEMBER_AND_LINE:
        client = caller(api, team, line, who)
        response = await client.get(url)
        assert response.status_code == 200, (who, response.text)
        assert response.json() == commitment and response.headers["etag"] == '"1"'
        listed = (await client.get("/v1/commitments", params={"member_id": line["owner"].id})).json()["items"]
        assert [c["id"] for c in listed] == [commitment["id"]], who
    for who in EVERYONE_ELSE:
        client = caller(api, team, line, who)
        assert_problem(await client.get(url), 404, "not_found")
        assert_problem(await client.post(f"{url}/complete"), 404, "not_found")
        assert_problem(await client.post(f"{url}/drop", json={"note": "x"}), 404, "not_found")
        listed = await client.get("/v1/commitments", params={"member_id": line["owner"].id})
        assert listed.status_code == 200 and listed.json()["items"] == [], who


async def test_only_the_member_who_committed_closes_it(api: Api, team, line) -> None:
    url = f"/v1/commitments/{line['commitment']['id']}"
    line_and_leadership = ["junior", "senior", "hos"]
    for who in line_and_leadership:
        assert_problem(await caller(api, team, line, who).post(f"{url}/complete"), 403, "owner_decides")
        assert_problem(await caller(api, team, line, who).post(f"{url}/drop"), 403, "owner_decides")
    owner = api.as_(line["owner"])
    dropped = await owner.post(f"{url}/drop", json={"note": "The customer went silent"})
    assert dropped.status_code == 200, dropped.text
    assert (dropped.json()["status"], dropped.json()["note"], dropped.json()["version"]) == (
        "dropped",
        "The customer went silent",
        2,
    )
    assert dropped.json()["closed_at"] and dropped.headers["etag"] == '"2"'
    assert_problem(await owner.post(f"{url}/complete"), 409, "commitment_closed")
    assert_problem(await owner.post(f"{url}/drop"), 409, "commitment_closed")
    for who in line_and_leadership:
        assert_problem(await caller(api, team, line, who).post(f"{url}/complete"), 403, "owner_decides")
    events = (await api.get("/v1/events", params={"type": "commitment.dropped"})).json()["items"]
    assert [(e["subject_id"], e["actor_id"], e["deal_id"]) for e in events] == [
        (line["commitment"]["id"], line["owner"].id, line["deal"]["id"])
    ]


async def test_a_profile_is_seen_by_the_member_and_their_line_only(api: Api, team, line) -> None:
    url = f"/v1/members/{line['owner'].id}/development"
    for who in MEMBER_AND_LINE:
        response = await caller(api, team, line, who).get(url)
        assert response.status_code == 200, (who, response.text)
        body = response.json()
        assert [(s["skill_code"], s["strengths"], s["improvements"], s["trend"]) for s in body["skills"]] == [
            ("discovery", 1, 0, "new"),
            ("negotiation", 0, 1, "new"),
        ]
        assert body["commitments"] == {"open": 1, "done": 0, "dropped": 0, "overdue": 0}
        assert body["debriefs"] == {"shared": 1, "acknowledged": 1, "pending": 0}
        assert body["reviews"] == {"lost": 0, "completed": 0}
    for who in EVERYONE_ELSE:
        assert_problem(await caller(api, team, line, who).get(url), 404, "not_found")
    junior = api.as_(line["junior"])
    own = await junior.get(f"/v1/members/{line['junior'].id}/development")
    assert own.status_code == 200 and own.json()["skills"] == []
    assert_problem(await junior.get(f"/v1/members/{uuid.uuid4()}/development"), 404, "not_found")
    assert_problem(await junior.get("/v1/members/not-a-uuid/development"), 404, "not_found")
    assert_problem(await api.as_(team["hos"]).get(f"/v1/members/{line['foreign'].id}/development"), 404, "not_found")


async def test_the_brief_is_for_attendees_and_whoever_sees_the_call(api: Api, team, line) -> None:
    url = f"/v1/calls/{line['call']['id']}/brief"
    for who in ["owner", "junior", "teammate", "senior", "hos", "admin", "integration"]:
        response = await caller(api, team, line, who).get(url)
        assert response.status_code == 200, (who, response.text)
        brief = response.json()
        assert brief["seller_id"] == line["owner"].id
        assert [c["id"] for c in brief["open_commitments"]] == [line["commitment"]["id"]]
        assert [(f["skill_code"], f["improvements"]) for f in brief["focus_skills"]] == [("negotiation", 1)]
        assert brief["last_observation"]["summary"] == "A good meeting"
    for who in ["manager", "other_manager", "outsider", "peer", "foreign"]:
        assert_problem(await caller(api, team, line, who).get(url), 404, "not_found")
    assert_problem(await api.get(f"/v1/calls/{uuid.uuid4()}/brief"), 404, "not_found")


async def test_a_brief_before_anything_was_learned_is_empty(api: Api, team) -> None:
    planned = await api.as_(team["seller"]).post(
        f"/v1/deals/{(await make_deal(api, team['seller']))['id']}/calls",
        json={"scheduled_at": WHEN, "attendees": [{"member_id": team["seller"].id, "call_role": "lead"}]},
    )
    brief = (await api.as_(team["seller"]).get(f"/v1/calls/{planned.json()['id']}/brief")).json()
    assert (brief["open_commitments"], brief["focus_skills"], brief["last_observation"]) == ([], [], None)


async def test_team_skills_cover_the_caller_s_line(api: Api, team, line) -> None:
    people = {**team, **line}
    for who, params, sellers in [
        ("junior", {}, ["owner"]),
        ("senior", {}, ["owner"]),
        ("senior", {"manager_id": "junior"}, ["owner"]),
        ("other_manager", {}, ["outsider"]),
        ("manager", {}, []),
        ("hos", {}, ["owner", "outsider"]),
        ("hos", {"manager_id": "other_manager"}, ["outsider"]),
        ("hos", {"manager_id": "owner"}, []),  # a seller's line is nobody
    ]:
        query = {k: people[v].id for k, v in params.items()}
        response = await caller(api, team, line, who).get("/v1/analytics/skills", params=query)
        assert response.status_code == 200, (who, response.text)
        body = response.json()
        assert [s["member_id"] for s in body["sellers"]] == sorted(people[s].id for s in sellers), (who, params)
        assert sum(t["strengths"] for t in body["totals"]) == sum(
            f["strengths"] for s in body["sellers"] for f in s["skills"]
        )
    for who in ["owner", "teammate", "admin", "integration", "foreign"]:
        assert_problem(await caller(api, team, line, who).get("/v1/analytics/skills"), 403, "forbidden")
    junior = api.as_(line["junior"])
    for other in (line["senior"], team["other_manager"], team["hos"]):  # above or beside the junior
        assert_problem(await junior.get("/v1/analytics/skills", params={"manager_id": other.id}), 403, "forbidden")
    assert_problem(await junior.get("/v1/analytics/skills", params={"manager_id": str(uuid.uuid4())}), 403, "forbidden")


async def test_the_feedback_digest_is_for_leadership(api: Api, team, line) -> None:
    review = await lost_review(api, team["seller"])
    await complete_review(api, team["manager"], team["seller"], review, enablement_feedback="A pricing playbook")
    for who, expected in (("hos", ["A pricing playbook"]), ("admin", ["A pricing playbook"]), ("foreign", [])):
        response = await caller(api, team, line, who).get(f"{REVIEWS}/feedback", params={"kind": "enablement"})
        assert response.status_code == 200, (who, response.text)
        assert [i["feedback"] for i in response.json()["items"]] == expected
    for who in ("manager", "junior", "owner", "seller", "integration"):
        response = await caller(api, team, line, who).get(f"{REVIEWS}/feedback", params={"kind": "enablement"})
        assert_problem(response, 403, "forbidden")


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-05-06", "to": "2026-05-05"},
        {"from": "2025-01-01", "to": "2026-01-02"},  # 367 days
        {"to": "9999-12-31"},
        {"from": "3000-01-01"},  # after today
        {"from": "yesterday"},
        {"to": "20260101"},
        {"to": 20260101},
    ],
)
async def test_windows_are_checked(api: Api, team, params: dict) -> None:
    for who, url in (
        (team["seller"], f"/v1/members/{team['seller'].id}/development"),
        (team["hos"], "/v1/analytics/skills"),
    ):
        assert_problem(await api.as_(who).get(url, params=params), 422, "validation_error")


async def test_the_longest_window_is_366_days(api: Api, team) -> None:
    params = {"from": "2025-01-01", "to": "2026-01-01"}
    response = await api.as_(team["seller"]).get(f"/v1/members/{team['seller'].id}/development", params=params)
    assert response.status_code == 200 and (response.json()["from"], response.json()["to"]) == (
        "2025-01-01",
        "2026-01-01",
    )
    assert (await api.as_(team["hos"]).get("/v1/analytics/skills", params=params)).status_code == 200


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"kind": "sales"},
        {"kind": "product", "from": "2026-05-06", "to": "2026-05-05"},
        {"kind": "product", "to": "soon"},
        {"kind": "product", "limit": 0},
    ],
)
async def test_the_feedback_digest_needs_a_kind_and_an_ordered_range(api: Api, team, params: dict) -> None:
    assert_problem(await api.as_(team["hos"]).get(f"{REVIEWS}/feedback", params=params), 422, "validation_error")


async def test_foreign_cursors_and_unknown_filters_are_refused(api: Api, team) -> None:
    foreign = (await api.get("/v1/members", params={"limit": 1})).json()["next_cursor"]
    assert foreign
    assert_problem(await api.get("/v1/commitments", params={"cursor": foreign}), 422, "invalid_cursor")
    assert_problem(
        await api.get(f"{REVIEWS}/feedback", params={"kind": "product", "cursor": foreign}), 422, "invalid_cursor"
    )
    for params in ({"status": "closed"}, {"member_id": "nope"}, {"deal_id": "1"}, {"limit": 201}):
        assert_problem(await api.get("/v1/commitments", params=params), 422, "validation_error")


async def test_a_commitment_names_only_an_improvement_of_the_observation(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    call = await held_call(api, seller, manager, await make_deal(api, seller))
    observation = await shared_observation(api, manager, call, strengths=["discovery"], improvements=["closing"])
    refused = await acknowledge(
        api, seller, observation, ["Fine", {"text": "Negotiate better", "skill_code": "negotiation"}]
    )
    body = assert_problem(refused, 422, "validation_error")
    assert [e["loc"] for e in body["errors"]] == [["body", "commitments", 1, "skill_code"]]
    assert (await api.as_(seller).get(f"/v1/observations/{observation['id']}")).json()["status"] == "shared"
    assert await commitments_of(api, seller) == []
    for bad in (
        [{"text": ""}],
        [{"text": "x", "skill_code": "closing", "due_on": "2026-01-01"}],
        [{"skill_code": "closing"}],
        [1],
    ):
        assert_problem(await acknowledge(api, seller, observation, bad), 422, "validation_error")
    done = await acknowledge(
        api, seller, observation, [{"text": "Ask for the order", "skill_code": "closing"}, {"text": "Recap"}]
    )
    assert done.status_code == 200, done.text
    assert [(c["text"], c["skill_code"]) for c in await commitments_of(api, seller)] == [
        ("Recap", None),
        ("Ask for the order", "closing"),
    ]


async def test_closing_takes_only_a_note(api: Api, team, line) -> None:
    url = f"/v1/commitments/{line['commitment']['id']}/complete"
    owner = api.as_(line["owner"])
    for body in ({"note": "x", "status": "done"}, {"note": "x" * 2001}, {"note": 3}):
        assert_problem(await owner.post(url, json=body), 422, "validation_error")
    done = await owner.post(url)
    assert done.status_code == 200 and done.json()["note"] is None and done.json()["status"] == "done"


# --- lists ----------------------------------------------------------------------------------------


async def test_commitments_filter_and_page_newest_first(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal_a, deal_b = await make_deal(api, seller), await make_deal(api, seller)
    first = await shared_observation(
        api, manager, await held_call(api, seller, manager, deal_a), strengths=["discovery"]
    )
    second = await shared_observation(
        api, manager, await held_call(api, seller, manager, deal_b), strengths=["discovery"]
    )
    await acknowledge(api, seller, first, ["One", "Two"])
    await acknowledge(api, seller, second, ["Three"])
    everything = await commitments_of(api, seller)
    assert [c["text"] for c in everything] == ["Three", "Two", "One"]
    await api.as_(seller).post(f"/v1/commitments/{everything[1]['id']}/complete")

    async def texts(who: Person = seller, **params: Any) -> list[str]:
        return [c["text"] for c in await commitments_of(api, who, **params)]

    assert await texts(status="open") == ["Three", "One"]
    assert await texts(status="done") == ["Two"]
    assert await texts(status="dropped") == []
    assert await texts(deal_id=deal_a["id"]) == ["Two", "One"]
    assert await texts(manager, member_id=seller.id, deal_id=deal_b["id"]) == ["Three"]
    assert await texts(team["peer"]) == []
    pages, cursor = [], None
    while True:
        params = {"limit": 1, "member_id": seller.id, **({"cursor": cursor} if cursor else {})}
        page = (await api.as_(team["hos"]).get("/v1/commitments", params=params)).json()
        pages.append([c["text"] for c in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["Three"], ["Two"], ["One"]]


async def test_the_feedback_digest_pages_newest_first_within_a_range(app, api: Api, team) -> None:
    seller, manager, hos = team["seller"], team["manager"], team["hos"]
    reviews = []
    for n, day in enumerate((3, 1, 2)):
        review = await lost_review(api, seller)
        await complete_review(api, manager, seller, review, product_feedback=f"Feedback {n}")
        await set_review(app, review["id"], completed_at=dt.datetime(2026, 11, day, 12, tzinfo=dt.UTC))
        reviews.append(review)
    pending = await lost_review(api, seller)  # no feedback until completed
    await api.as_(manager).patch(f"{REVIEWS}/{pending['id']}", json={"product_feedback": "Not yet"})
    silent = await lost_review(api, seller)
    await complete_review(api, manager, seller, silent, product_feedback="")

    async def pages(**params: Any) -> list[list[str]]:
        found, cursor = [], None
        while True:
            query = {"kind": "product", "limit": 2, **params, **({"cursor": cursor} if cursor else {})}
            response = await api.as_(hos).get(f"{REVIEWS}/feedback", params=query)
            assert response.status_code == 200, response.text
            found.append([i["feedback"] for i in response.json()["items"]])
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return found

    assert await pages() == [["Feedback 0", "Feedback 2"], ["Feedback 1"]]
    assert await pages(**{"from": "2026-11-02"}) == [["Feedback 0", "Feedback 2"]]
    assert await pages(to="2026-11-02") == [["Feedback 2", "Feedback 1"]]
    assert await pages(**{"from": "2026-11-02", "to": "2026-11-02", "limit": 1}) == [["Feedback 2"]]
    assert await pages(to="9999-12-31") == [["Feedback 0", "Feedback 2"], ["Feedback 1"]]
    item = (await api.as_(hos).get(f"{REVIEWS}/feedback", params={"kind": "product", "limit": 1})).json()["items"][0]
    assert item == {
        "review_id": reviews[0]["id"],
        "deal_id": reviews[0]["deal_id"],
        "loss_reason_code": "price",
        "competitor": None,
        "completed_at": "2026-11-03T12:00:00Z",
        "feedback": "Feedback 0",
    }


async def test_a_review_completed_again_does_not_repeat_its_action_items(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    review = await lost_review(api, seller)
    item = {"description": "Call the champion", "assignee_id": seller.id}
    await complete_review(api, manager, seller, review, action_items=[item])
    reopened = await api.as_(seller).patch(f"/v1/deals/{review['deal_id']}", json={"stage": "negotiation"})
    assert reopened.status_code == 200, reopened.text
    lost = await api.as_(seller).patch(
        f"/v1/deals/{review['deal_id']}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}}
    )
    assert lost.status_code == 200, lost.text
    second = {"description": "Map the buying committee", "assignee_id": manager.id, "due_date": "2026-12-01"}
    await complete_review(api, manager, seller, review, action_items=[item, second])
    made = await commitments_of(api, team["hos"])
    assert sorted((c["member_id"], c["text"], c["due_on"]) for c in made) == sorted(
        [(seller.id, "Call the champion", None), (manager.id, "Map the buying committee", "2026-12-01")]
    )
