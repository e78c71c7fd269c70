"""Closed-lost reviews: opened by a loss, written by the reviewer and the seller, completed,
noted by leadership, gathered by week (docs/rules.md: Closed-lost reviews)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.models import ClosedLostReview
from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem, make_deal

REVIEWS = "/v1/closed-lost-reviews"


async def lose(api: Api, who: Person, deal: dict[str, Any], reason: str = "price", **loss: Any) -> dict[str, Any]:
    body = {"stage": "closed_lost", "loss": {"reason_code": reason, **loss}}
    response = await api.as_(who).patch(f"/v1/deals/{deal['id']}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


async def review_of(api: Api, deal_id: str) -> dict[str, Any]:
    """The deal's review, found through its review.opened event (as the admin, who sees every review)."""
    opened = await events_of(api, "review.opened", deal_id)
    assert opened, f"no review.opened event for deal {deal_id}"
    response = await api.get(f"{REVIEWS}/{opened[-1]['subject_id']}")
    assert response.status_code == 200, response.text
    return response.json()


async def events_of(api: Api, type_: str, deal_id: str) -> list[dict[str, Any]]:
    return (await api.get("/v1/events", params={"type": type_, "deal_id": deal_id})).json()["items"]


async def set_review(app, review_id: str, **values: Any) -> None:  # type: ignore[no-untyped-def]
    """Move a review's dates directly (tests only: time does not pass in a test)."""
    table = ClosedLostReview.__table__
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.update(table).where(table.c.id == uuid.UUID(review_id)).values(**values))


async def lost_review(api: Api, team: dict[str, Person], **deal_fields: Any) -> dict[str, Any]:
    deal = await make_deal(api, team["seller"], **deal_fields)
    await lose(api, team["seller"], deal, "price", competitor="Initech")
    return await review_of(api, deal["id"])


async def ready(api: Api, team: dict[str, Person], review: dict[str, Any]) -> None:
    """Everything completion needs: a confirmed reason, a lesson, the seller's reflection."""
    url = f"{REVIEWS}/{review['id']}"
    findings = {"loss_reason_confirmed": True, "lessons": ["Qualify budget early"]}
    found = await api.as_(team["manager"]).patch(url, json=findings)
    assert found.status_code == 200, found.text
    reflected = await api.as_(team["seller"]).patch(url, json={"seller_reflection": "I skipped the budget question."})
    assert reflected.status_code == 200, reflected.text


async def event_types(api: Api, deal_id: str) -> list[str]:
    return [e["type"] for e in (await api.get(f"/v1/deals/{deal_id}/history", params={"limit": 200})).json()["items"]]


# --- opening -----------------------------------------------------------------------------


async def test_losing_a_deal_opens_a_pending_review_with_the_reviewer(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller, amount={"amount": "4200.50", "currency": "USD"})
    lost = await lose(api, seller, deal, "price", competitor="Initech")
    review = await review_of(api, deal["id"])
    closed_day = dt.date.fromisoformat(lost["closed_at"][:10])
    assert review == {
        **review,
        "deal_id": deal["id"],
        "owner_id": seller.id,
        "reviewer_id": manager.id,
        "status": "pending",
        "deal_reopened": False,
        "closed_at": lost["closed_at"],
        "due_on": str(closed_day + dt.timedelta(days=7)),
        "overdue": False,
        "suggested_skills": ["negotiation", "closing"],
        "loss_reason_code": "price",
        "loss_reason_confirmed": False,
        "competitor": "Initech",
        "root_cause": None,
        "what_went_well": None,
        "lessons": [],
        "skill_gaps": [],
        "product_feedback": None,
        "enablement_feedback": None,
        "action_items": [],
        "seller_reflection": None,
        "leadership_notes": [],
        "completed_at": None,
        "version": 1,
    }
    assert set(review) == {
        "id",
        "deal_id",
        "owner_id",
        "reviewer_id",
        "status",
        "deal_reopened",
        "closed_at",
        "due_on",
        "overdue",
        "suggested_skills",
        "loss_reason_code",
        "loss_reason_confirmed",
        "competitor",
        "root_cause",
        "what_went_well",
        "lessons",
        "skill_gaps",
        "product_feedback",
        "enablement_feedback",
        "action_items",
        "seller_reflection",
        "leadership_notes",
        "completed_at",
        "version",
        "created_at",
        "updated_at",
    }
    fetched = await api.as_(manager).get(f"{REVIEWS}/{review['id']}")
    assert fetched.json() == review and fetched.headers["etag"] == '"1"'
    types = await event_types(api, deal["id"])
    assert types[-2:] == ["deal.stage_changed", "review.opened"]
    opened = (await events_of(api, "review.opened", deal["id"]))[0]
    assert opened["subject_type"] == "closed_lost_review" and opened["subject_id"] == review["id"]
    assert opened["data"]["reviewer_id"] == manager.id and opened["data"]["reused"] is False


async def test_due_days_come_from_the_settings_and_skills_from_the_reason(api: Api, team) -> None:
    assert (await api.patch("/v1/settings", json={"review_due_days": 3})).status_code == 200
    deal = await make_deal(api, team["seller"])
    lost = await lose(api, team["seller"], deal, "competitor")
    review = await review_of(api, deal["id"])
    assert review["due_on"] == str(dt.date.fromisoformat(lost["closed_at"][:10]) + dt.timedelta(days=3))
    assert review["suggested_skills"] == ["presentation", "communication", "competitive_positioning"]
    assert review["competitor"] is None


async def test_a_deal_created_or_synced_as_lost_opens_its_review(api: Api, team) -> None:
    seller = team["seller"]
    created = await make_deal(api, seller, stage="closed_lost", loss={"reason_code": "no_budget"})
    review = await review_of(api, created["id"])
    assert review["status"] == "pending" and review["loss_reason_code"] == "no_budget"
    assert review["closed_at"] == created["closed_at"] and review["owner_id"] == seller.id
    synced = await api.as_(team["integration"]).put(
        "/v1/deals/by-external-ref/hubspot/77",
        json={
            "name": "Synced",
            "account_name": "A",
            "owner_id": seller.id,
            "stage": "closed_lost",
            "loss": {"reason_code": "timing"},
        },
    )
    assert synced.status_code == 201, synced.text
    assert (await review_of(api, synced.json()["id"]))["reviewer_id"] == team["manager"].id
    batch = await api.post(
        "/v1/deals/batch-upsert",
        json={
            "records": [
                {
                    "source": "crm",
                    "external_id": "1",
                    "name": "B",
                    "account_name": "A",
                    "owner_id": seller.id,
                    "stage": "closed_lost",
                    "loss": {"reason_code": "price"},
                }
            ]
        },
    )
    assert (await review_of(api, batch.json()["results"][0]["deal_id"]))["loss_reason_code"] == "price"


async def test_a_seller_without_a_manager_is_reviewed_by_the_first_head_of_sales(api: Api, team) -> None:
    second_hos = await api.make_member("head_of_sales")
    lone = await api.make_member("seller")
    deal = await make_deal(api, lone)
    await lose(api, lone, deal)
    review = await review_of(api, deal["id"])
    assert review["reviewer_id"] == min(team["hos"].id, second_hos.id)
    # A seller reporting straight to a head of sales is reviewed by that head of sales.
    direct = await api.make_member("seller", manager=second_hos)
    deal = await make_deal(api, direct)
    await lose(api, direct, deal)
    assert (await review_of(api, deal["id"]))["reviewer_id"] == second_hos.id


async def test_without_any_head_of_sales_the_review_has_no_reviewer(api: Api) -> None:
    lone = await api.make_member("seller")
    deal = await make_deal(api, lone)
    await lose(api, lone, deal)
    review = await review_of(api, deal["id"])
    assert review["reviewer_id"] is None
    url = f"{REVIEWS}/{review['id']}"
    assert_problem(await api.as_(lone).patch(url, json={"lessons": ["x"]}), 403, "not_the_reviewer")
    assert (await api.as_(lone).patch(url, json={"seller_reflection": "x"})).status_code == 200


async def test_reopening_marks_the_review_and_losing_again_reuses_it(app, api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    deal = await make_deal(api, seller)
    await lose(api, seller, deal, "price")
    first = await review_of(api, deal["id"])
    url = f"{REVIEWS}/{first['id']}"
    await ready(api, team, first)
    assert (await api.as_(manager).post(f"{url}/complete")).status_code == 200
    await api.as_(team["hos"]).post(f"{url}/leadership-notes", json={"note": "Good first pass"})

    reopened = await api.as_(manager).patch(f"/v1/deals/{deal['id']}", json={"stage": "negotiation"})
    assert reopened.status_code == 200, reopened.text
    marked = (await api.get(url)).json()
    assert marked["deal_reopened"] is True and marked["status"] == "completed"
    assert marked["version"] == first["version"] + 5  # two writes, completion, note, reopening
    assert (await event_types(api, deal["id"]))[-1] == "review.deal_reopened"

    # Lost again, to a competitor: the same review comes back for a new conversation.
    await lose(api, seller, deal, "competitor", competitor="Globex")
    again = (await api.get(url)).json()
    assert again["id"] == first["id"]
    assert again["deal_reopened"] is False and again["status"] == "pending" and again["completed_at"] is None
    assert again["loss_reason_code"] == "competitor" and again["loss_reason_confirmed"] is False
    assert again["competitor"] == "Globex"
    assert again["suggested_skills"] == ["presentation", "communication", "competitive_positioning"]
    assert again["lessons"] == ["Qualify budget early"]  # the earlier conversation is kept
    assert [n["note"] for n in again["leadership_notes"]] == ["Good first pass"]
    listed = (await api.get(REVIEWS, params={"owner_id": seller.id})).json()["items"]
    assert [r["id"] for r in listed if r["deal_id"] == deal["id"]] == [first["id"]]
    opened = await events_of(api, "review.opened", deal["id"])
    assert [e["data"]["reused"] for e in opened] == [False, True]
    async with app.state.engine.connect() as conn:
        table = ClosedLostReview.__table__
        count = await conn.scalar(sa.select(sa.func.count()).where(table.c.deal_id == uuid.UUID(deal["id"])))
        days = await conn.scalar(sa.select(table.c.days_to_complete).where(table.c.id == uuid.UUID(first["id"])))
    assert count == 1 and days is None


async def test_reopening_a_won_deal_touches_no_review(api: Api, team) -> None:
    deal = await make_deal(api, team["seller"])
    await api.as_(team["seller"]).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_won"})
    reopened = await api.as_(team["seller"]).patch(f"/v1/deals/{deal['id']}", json={"stage": "proposal"})
    assert reopened.status_code == 200
    assert not [t for t in await event_types(api, deal["id"]) if t.startswith("review.")]


# --- visibility ------------------------------------------------------------------------------


@pytest.fixture
async def deep(app, api: Api, team) -> dict[str, Any]:
    """A loss deep in a line: senior -> junior -> owner; the junior manager reviews it."""
    senior = await api.make_member("manager", manager=team["hos"])
    junior = await api.make_member("manager", manager=senior)
    owner = await api.make_member("seller", manager=junior)
    teammate = await api.make_member("seller", manager=junior)
    assigned = await api.make_member("seller", manager=team["other_manager"])
    deal = await make_deal(api, owner)
    request = await api.as_(owner).post(
        f"/v1/deals/{deal['id']}/assignments", json={"member_id": assigned.id, "role": "subject_matter_expert"}
    )
    await api.as_(assigned).post(f"/v1/assignments/{request.json()['id']}/accept")
    await lose(api, owner, deal)
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    foreign_admin = Person(id=other.admin_id, key=other.admin_key, body={})
    return {
        "review": await review_of(api, deal["id"]),
        "senior": senior,
        "junior": junior,
        "owner": owner,
        "teammate": teammate,
        "assigned": assigned,
        "foreign_admin": foreign_admin,
    }


@pytest.mark.parametrize("insider", ["owner", "junior", "senior", "hos", "admin"])
async def test_the_seller_the_reviewer_the_line_and_leadership_see_it(api: Api, team, deep, insider: str) -> None:
    who = {**team, **deep}.get(insider)
    caller = api if insider == "admin" else api.as_(who)
    review = deep["review"]
    assert review["reviewer_id"] == deep["junior"].id
    response = await caller.get(f"{REVIEWS}/{review['id']}")
    assert response.status_code == 200 and response.json() == review
    assert review["id"] in [r["id"] for r in (await caller.get(REVIEWS)).json()["items"]]


@pytest.mark.parametrize(
    "outsider", ["teammate", "assigned", "manager", "other_manager", "outsider", "integration", "foreign_admin"]
)
async def test_everyone_else_gets_404_on_every_review_endpoint(api: Api, team, deep, outsider: str) -> None:
    caller = api.as_({**team, **deep}[outsider])
    url = f"{REVIEWS}/{deep['review']['id']}"
    assert_problem(await caller.get(url), 404, "not_found")
    assert_problem(await caller.patch(url, json={"lessons": ["x"]}), 404, "not_found")
    assert_problem(await caller.post(f"{url}/complete"), 404, "not_found")
    assert_problem(await caller.post(f"{url}/leadership-notes", json={"note": "x"}), 404, "not_found")
    assert deep["review"]["id"] not in [r["id"] for r in (await caller.get(REVIEWS)).json()["items"]]


async def test_unknown_and_malformed_ids_are_not_found(api: Api) -> None:
    assert_problem(await api.get(f"{REVIEWS}/01900000-0000-7000-8000-000000000000"), 404, "not_found")
    assert_problem(await api.get(f"{REVIEWS}/not-a-uuid"), 404, "not_found")
    assert_problem(await api.patch(f"{REVIEWS}/123", json={}), 404, "not_found")


# --- writing ----------------------------------------------------------------------------------


async def test_the_reviewer_writes_the_findings_and_the_seller_the_reflection(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    findings = {
        "loss_reason_code": "competitor",
        "loss_reason_confirmed": True,
        "competitor": "Globex",
        "root_cause": "We never reached the economic buyer",
        "what_went_well": "Discovery call",
        "lessons": ["Multi-thread before the proposal", "Ask about budget in discovery"],
        "skill_gaps": ["stakeholder_management", "negotiation", "negotiation"],
        "product_feedback": "SSO was a blocker",
        "enablement_feedback": "A battlecard for Globex",
        "action_items": [
            {"description": "Shadow a pricing call", "assignee_id": seller.id, "due_date": "2026-12-15"},
            {"description": "Write the battlecard"},
        ],
    }
    written = await api.as_(manager).patch(url, json=findings, headers={"If-Match": '"1"'})
    assert written.status_code == 200, written.text
    body = written.json()
    assert written.headers["etag"] == '"2"' and body["version"] == 2
    assert body["skill_gaps"] == ["stakeholder_management", "negotiation"]
    assert body["suggested_skills"] == ["presentation", "communication", "competitive_positioning"]  # the new reason's
    assert body["action_items"] == [
        {"description": "Shadow a pricing call", "assignee_id": seller.id, "due_date": "2026-12-15"},
        {"description": "Write the battlecard", "assignee_id": None, "due_date": None},
    ]
    for key in ("loss_reason_code", "loss_reason_confirmed", "competitor", "root_cause", "lessons", "product_feedback"):
        assert body[key] == findings[key]
    reflected = await api.as_(seller).patch(url, json={"seller_reflection": "  I waited too long to ask.  "})
    assert reflected.json()["seller_reflection"] == "I waited too long to ask." and reflected.json()["version"] == 3
    assert (await api.as_(seller).get(url)).json() == reflected.json()
    updated = await events_of(api, "review.updated", review["deal_id"])
    assert [e["data"] for e in updated] == [
        {"fields": sorted(findings)},
        {"fields": ["seller_reflection"]},
    ]  # names only: the feed reaches everyone who sees the deal
    cleared = await api.as_(manager).patch(url, json={"competitor": None, "skill_gaps": [], "action_items": []})
    assert cleared.json()["competitor"] is None and cleared.json()["skill_gaps"] == []


async def test_nobody_writes_the_others_part(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    assert_problem(await api.as_(seller).patch(url, json={"root_cause": "Price"}), 403, "not_the_reviewer")
    assert_problem(await api.as_(seller).patch(url, json={"loss_reason_confirmed": True}), 403, "not_the_reviewer")
    assert_problem(
        await api.as_(seller).patch(url, json={"seller_reflection": "mine", "lessons": ["x"]}), 403, "not_the_reviewer"
    )
    assert_problem(await api.as_(manager).patch(url, json={"seller_reflection": "I think..."}), 403, "not_the_reviewer")
    for other in (team["hos"], None):
        caller = api.as_(other) if other else api
        assert_problem(await caller.patch(url, json={"lessons": ["x"]}), 403, "not_the_reviewer")
        assert_problem(await caller.patch(url, json={"seller_reflection": "x"}), 403, "not_the_reviewer")
    after = (await api.get(url)).json()
    assert after["version"] == 1 and after["seller_reflection"] is None and after["lessons"] == []


async def test_codes_come_from_the_catalogs_and_assignees_from_the_members(api: Api, team) -> None:
    manager = team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    assert_problem(await api.as_(manager).patch(url, json={"loss_reason_code": "aliens"}), 422, "unknown_loss_reason")
    assert_problem(await api.as_(manager).patch(url, json={"skill_gaps": ["juggling"]}), 422, "unknown_skill")
    await api.patch("/v1/loss-reasons/timing", json={"active": False})
    await api.patch("/v1/skills/closing", json={"active": False})
    assert_problem(await api.as_(manager).patch(url, json={"loss_reason_code": "timing"}), 422, "unknown_loss_reason")
    retired = await api.as_(manager).patch(url, json={"skill_gaps": ["negotiation", "closing"]})
    assert_problem(retired, 422, "unknown_skill")
    gone = await api.make_member("seller", key=False)
    await api.patch(f"/v1/members/{gone.id}", json={"active": False})
    for assignee in (gone.id, "01900000-0000-7000-8000-000000000000"):
        items = [{"description": "Follow up", "assignee_id": assignee}]
        assert_problem(await api.as_(manager).patch(url, json={"action_items": items}), 422, "unknown_member")
    assert (await api.get(url)).json()["version"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"status": "completed"},
        {"overdue": False},
        {"version": 3},
        {"id": "x"},
        {"suggested_skills": ["closing"]},
        {"deal_reopened": True},
        {"due_on": "2030-01-01"},
        {"completed_at": None},
        {"leadership_notes": []},
        {"lessons": None},
        {"loss_reason_code": None},
        {"loss_reason_confirmed": None},
        {"lessons": [""]},
        {"skill_gaps": ["Not A Code"]},
        {"action_items": [{"description": ""}]},
        {"action_items": [{"note": "x"}]},
        {"root_cause": "x" * 5001},
    ],
)
async def test_read_only_unknown_and_invalid_fields_are_refused(api: Api, team, body: dict[str, Any]) -> None:
    review = await lost_review(api, team)
    response = await api.as_(team["manager"]).patch(f"{REVIEWS}/{review['id']}", json=body)
    assert_problem(response, 422, "validation_error")


async def test_if_match_and_no_op_writes(api: Api, team) -> None:
    manager = team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    first = {"If-Match": '"1"'}
    assert (await api.as_(manager).patch(url, json={"root_cause": "One"}, headers=first)).status_code == 200
    stale = await api.as_(manager).patch(url, json={"root_cause": "Two"}, headers=first)
    assert_problem(stale, 412, "version_conflict")
    same = await api.as_(manager).patch(url, json={"root_cause": "One"})
    assert same.status_code == 200 and same.json()["version"] == 2 and same.headers["etag"] == '"2"'
    empty = await api.as_(team["hos"]).patch(url, json={})
    assert empty.status_code == 200 and empty.json()["version"] == 2
    updated = await events_of(api, "review.updated", review["deal_id"])
    assert len(updated) == 1


# --- completion -----------------------------------------------------------------------------------


async def test_only_the_reviewer_completes(api: Api, team) -> None:
    review = await lost_review(api, team)
    await ready(api, team, review)
    url = f"{REVIEWS}/{review['id']}/complete"
    for who in (team["seller"], team["hos"]):
        assert_problem(await api.as_(who).post(url), 403, "not_the_reviewer")
    assert_problem(await api.post(url), 403, "not_the_reviewer")


async def test_completion_needs_a_confirmed_reason_a_lesson_and_the_reflection(api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"

    async def missing() -> list[str]:
        return assert_problem(await api.as_(manager).post(f"{url}/complete"), 422, "review_incomplete")["missing"]

    assert await missing() == ["loss_reason_confirmed", "lessons", "seller_reflection"]
    await api.as_(manager).patch(url, json={"loss_reason_confirmed": True, "lessons": ["Call the CFO"]})
    assert await missing() == ["seller_reflection"]
    await api.as_(seller).patch(url, json={"seller_reflection": "   "})
    assert await missing() == ["seller_reflection"]
    await api.as_(seller).patch(url, json={"seller_reflection": "I should have called the CFO."})
    await api.as_(manager).patch(url, json={"loss_reason_confirmed": False})
    assert await missing() == ["loss_reason_confirmed"]
    assert (await api.get(url)).json()["status"] == "pending"


async def test_completing_records_how_long_it_took_and_makes_the_review_read_only(app, api: Api, team) -> None:
    seller, manager = team["seller"], team["manager"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    await ready(api, team, review)
    two_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    await set_review(app, review["id"], closed_at=two_days_ago)
    done = await api.as_(manager).post(f"{url}/complete", headers={"Idempotency-Key": "complete-1"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "completed" and body["completed_at"] is not None and body["overdue"] is False
    assert body["version"] == 4 and done.headers["etag"] == '"4"'
    replay = await api.as_(manager).post(f"{url}/complete", headers={"Idempotency-Key": "complete-1"})
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json() == body
    async with app.state.engine.connect() as conn:
        table = ClosedLostReview.__table__
        days = await conn.scalar(sa.select(table.c.days_to_complete).where(table.c.id == uuid.UUID(review["id"])))
    assert days == pytest.approx(2.0, abs=0.01)
    completed = await events_of(api, "review.completed", review["deal_id"])
    assert completed[0]["data"]["days_to_complete"] == pytest.approx(2.0, abs=0.01)

    assert_problem(await api.as_(manager).patch(url, json={"lessons": ["More"]}), 409, "review_completed")
    assert_problem(await api.as_(seller).patch(url, json={"seller_reflection": "Edited"}), 409, "review_completed")
    assert_problem(await api.as_(manager).post(f"{url}/complete"), 409, "review_completed")
    assert_problem(await api.as_(seller).post(f"{url}/complete"), 403, "not_the_reviewer")
    noted = await api.as_(team["hos"]).post(f"{url}/leadership-notes", json={"note": "Solid"})
    assert noted.status_code == 201


async def test_overdue_after_the_due_day_until_completed(app, api: Api, team) -> None:
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    today = dt.datetime.now(dt.UTC).date()
    await set_review(app, review["id"], due_on=today)
    assert (await api.get(url)).json()["overdue"] is False
    await set_review(app, review["id"], due_on=today - dt.timedelta(days=1))
    assert (await api.get(url)).json()["overdue"] is True
    await ready(api, team, review)
    assert (await api.as_(team["manager"]).post(f"{url}/complete")).json()["overdue"] is False


# --- leadership notes --------------------------------------------------------------------------------


async def test_a_head_of_sales_notes_a_review_the_reviewer_and_the_seller_read_it(api: Api, team) -> None:
    hos = team["hos"]
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    created = await api.as_(hos).post(f"{url}/leadership-notes", json={"note": "  Push the SSO feedback to product  "})
    assert created.status_code == 201, created.text
    note = created.json()
    assert created.headers["location"] == url
    assert note["review_id"] == review["id"] and note["author_id"] == hos.id
    assert note["note"] == "Push the SSO feedback to product"
    await api.as_(hos).post(f"{url}/leadership-notes", json={"note": "Second"})
    for reader in (team["seller"], team["manager"]):
        got = (await api.as_(reader).get(url)).json()
        assert [n["note"] for n in got["leadership_notes"]] == ["Push the SSO feedback to product", "Second"]
        assert got["leadership_notes"][0] == note
        assert got["version"] == 3
    noted = await events_of(api, "review.leadership_noted", review["deal_id"])
    assert noted[0]["data"]["note_id"] == note["id"]


@pytest.mark.parametrize("who", ["manager", "seller", "admin"])
async def test_only_a_head_of_sales_writes_leadership_notes(api: Api, team, who: str) -> None:
    review = await lost_review(api, team)
    caller = api if who == "admin" else api.as_(team[who])
    response = await caller.post(f"{REVIEWS}/{review['id']}/leadership-notes", json={"note": "x"})
    assert_problem(response, 403, "forbidden")


async def test_a_leadership_note_needs_text(api: Api, team) -> None:
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}/leadership-notes"
    for body in ({"note": "   "}, {}, {"note": "x", "author_id": team["hos"].id}):
        assert_problem(await api.as_(team["hos"]).post(url, json=body), 422, "validation_error")


# --- listing ------------------------------------------------------------------------------------------


async def test_list_filters_and_pages(app, api: Api, team) -> None:
    seller, peer, outsider = team["seller"], team["peer"], team["outsider"]
    a = await lost_review(api, team)
    deal_b = await make_deal(api, peer)
    await lose(api, peer, deal_b)
    b = await review_of(api, deal_b["id"])
    deal_c = await make_deal(api, outsider)
    await lose(api, outsider, deal_c)
    c = await review_of(api, deal_c["id"])
    await set_review(app, a["id"], closed_at=dt.datetime(2026, 11, 16, 0, 0, tzinfo=dt.UTC), closed_week="2026-W47")
    await set_review(app, b["id"], closed_at=dt.datetime(2026, 11, 22, 23, 59, tzinfo=dt.UTC), closed_week="2026-W47")
    await set_review(app, c["id"], closed_at=dt.datetime(2026, 11, 23, 0, 0, tzinfo=dt.UTC), closed_week="2026-W48")
    await ready(api, team, a)
    await api.as_(team["manager"]).post(f"{REVIEWS}/{a['id']}/complete")

    async def ids(caller: Api = api, **params: Any) -> list[str]:
        response = await caller.get(REVIEWS, params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    assert await ids() == [a["id"], b["id"], c["id"]]
    assert await ids(status="completed") == [a["id"]]
    assert await ids(status="pending") == [b["id"], c["id"]]
    assert await ids(reviewer_id=team["manager"].id) == [a["id"], b["id"]]
    assert await ids(owner_id=seller.id) == [a["id"]]
    assert await ids(deal_id=deal_b["id"]) == [b["id"]]
    assert await ids(api.as_(peer), deal_id=a["deal_id"]) == []  # a filter never widens what the caller sees
    assert await ids(week="2026-W47") == [a["id"], b["id"]]
    assert await ids(week="2026-W48") == [c["id"]]
    assert await ids(closed_from="2026-11-22", closed_to="2026-11-22") == [b["id"]]
    assert await ids(closed_from="2026-11-17") == [b["id"], c["id"]]
    assert await ids(closed_to="2026-11-16") == [a["id"]]
    assert await ids(closed_to="9999-12-31", closed_from="0001-01-01") == [a["id"], b["id"], c["id"]]
    assert await ids(api.as_(team["manager"])) == [a["id"], b["id"]]
    assert await ids(api.as_(peer)) == [b["id"]]
    assert await ids(api.as_(team["integration"])) == []
    pages, cursor = [], None
    while True:
        page = (await api.get(REVIEWS, params={"limit": 1, **({"cursor": cursor} if cursor else {})})).json()
        pages.append([r["id"] for r in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[a["id"]], [b["id"]], [c["id"]]]
    for params in (
        {"week": "2026-W54"},
        {"week": "2025-W53"},
        {"week": "2026-47"},
        {"status": "open"},
        {"closed_from": "yesterday"},
        {"reviewer_id": "nope"},
        {"deal_id": "nope"},
        {"limit": 0},
        {"stagee": "closed_lost"},
    ):
        assert_problem(await api.get(REVIEWS, params=params), 422, "validation_error")
    foreign = (await api.get("/v1/deals", params={"limit": 1})).json()["next_cursor"]
    assert_problem(await api.get(REVIEWS, params={"cursor": foreign}), 422, "invalid_cursor")


# --- the weekly view -------------------------------------------------------------------------------------


async def test_the_weekly_view_groups_the_weeks_losses_by_reviewer(app, api: Api, team) -> None:
    hos, manager, other_manager = team["hos"], team["manager"], team["other_manager"]
    lone = await api.make_member("seller")  # reviewed by the head of sales
    week, monday = "2026-W40", dt.datetime(2026, 9, 28, 9, 0, tzinfo=dt.UTC)
    plan = [  # (owner, name, amount, days after Monday)
        (team["seller"], "Alpha", {"amount": "1000.00", "currency": "EUR"}, 0),
        (team["peer"], "Beta", {"amount": "250.50", "currency": "EUR"}, 2),
        (team["seller"], "Gamma", {"amount": "300", "currency": "JPY"}, 6),
        (team["outsider"], "Delta", {"amount": "99.99", "currency": "USD"}, 1),
        (lone, "Epsilon", None, 3),
        (team["seller"], "Reopened", {"amount": "5.00", "currency": "EUR"}, 4),
        (team["seller"], "Next week", {"amount": "7.00", "currency": "EUR"}, 7),
    ]
    reviews = {}
    for owner, name, amount, offset in plan:
        deal = await make_deal(api, owner, name=name, amount=amount)
        await lose(api, owner, deal)
        review = await review_of(api, deal["id"])
        closed = monday + dt.timedelta(days=offset)
        iso = closed.isocalendar()
        await set_review(
            app,
            review["id"],
            closed_at=closed,
            closed_week=f"{iso.year}-W{iso.week:02d}",
            due_on=closed.date() + dt.timedelta(days=7),
        )
        reviews[name] = (await api.get(f"{REVIEWS}/{review['id']}")).json()
    await api.as_(team["seller"]).patch(f"/v1/deals/{reviews['Reopened']['deal_id']}", json={"stage": "proposal"})
    await ready(api, team, reviews["Alpha"])
    await api.as_(manager).post(f"{REVIEWS}/{reviews['Alpha']['id']}/complete")

    def item(name: str, status: str = "pending", overdue: bool = True) -> dict[str, Any]:
        r = reviews[name]
        deal_amount = next(p[2] for p in plan if p[1] == name)
        return {
            "id": r["id"],
            "deal_id": r["deal_id"],
            "deal_name": name,
            "owner_id": r["owner_id"],
            "amount": deal_amount,
            "status": status,
            "due_on": r["due_on"],
            "overdue": overdue,
        }

    managers_group = {
        "reviewer_id": manager.id,
        "pending": 2,
        "completed": 1,
        "overdue": 2,
        "lost_amounts": [{"currency": "EUR", "amount": "1250.50"}, {"currency": "JPY", "amount": "300"}],
        "reviews": [item("Alpha", "completed", False), item("Beta"), item("Gamma")],
    }
    others_group = {
        "reviewer_id": other_manager.id,
        "pending": 1,
        "completed": 0,
        "overdue": 1,
        "lost_amounts": [{"currency": "USD", "amount": "99.99"}],
        "reviews": [item("Delta")],
    }
    hos_group = {
        "reviewer_id": hos.id,
        "pending": 1,
        "completed": 0,
        "overdue": 1,
        "lost_amounts": [],
        "reviews": [item("Epsilon")],
    }

    async def weekly(caller: Api, week: str) -> dict[str, Any]:
        response = await caller.get(f"{REVIEWS}/weekly", params={"week": week})
        assert response.status_code == 200, response.text
        return response.json()

    assert await weekly(api.as_(manager), week) == {"week": week, "groups": [managers_group]}
    assert await weekly(api.as_(other_manager), week) == {"week": week, "groups": [others_group]}
    expected_all = sorted([managers_group, others_group, hos_group], key=lambda g: g["reviewer_id"])
    for leader in (api.as_(hos), api):
        assert await weekly(leader, week) == {"week": week, "groups": expected_all}
    assert await weekly(api.as_(manager), "2026-W39") == {"week": "2026-W39", "groups": []}
    next_week = (await weekly(api, "2026-W41"))["groups"]
    assert [r["deal_name"] for g in next_week for r in g["reviews"]] == ["Next week"]


@pytest.mark.parametrize("who", ["seller", "integration"])
async def test_sellers_and_machines_have_no_weekly_view(api: Api, team, who: str) -> None:
    assert_problem(await api.as_(team[who]).get(f"{REVIEWS}/weekly", params={"week": "2026-W47"}), 403, "forbidden")


async def test_the_weekly_view_is_this_week_by_default(api: Api, team) -> None:
    before = dt.datetime.now(dt.UTC).isocalendar()
    review = await lost_review(api, team)
    response = await api.as_(team["manager"]).get(f"{REVIEWS}/weekly")
    after = dt.datetime.now(dt.UTC).isocalendar()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["week"] in {f"{w.year}-W{w.week:02d}" for w in (before, after)}
    assert [r["id"] for g in body["groups"] for r in g["reviews"]] == [review["id"]]
    explicit = await api.as_(team["manager"]).get(f"{REVIEWS}/weekly", params={"week": body["week"]})
    assert explicit.json() == body


async def test_the_weekly_view_needs_an_iso_week(api: Api, team) -> None:
    caller = api.as_(team["manager"])
    for week in ("2026-W00", "2026-W54", "2025-W53", "2026W47", "47", "2026-W4"):
        assert_problem(await caller.get(f"{REVIEWS}/weekly", params={"week": week}), 422, "validation_error")
    assert (await caller.get(f"{REVIEWS}/weekly", params={"week": "2026-W53"})).status_code == 200
    response = await caller.patch(f"{REVIEWS}/weekly", json={})
    assert_problem(response, 405, "method_not_allowed")


# --- the history -----------------------------------------------------------------------------------------


async def test_every_transition_is_an_event_on_the_deal(api: Api, team) -> None:
    review = await lost_review(api, team)
    url = f"{REVIEWS}/{review['id']}"
    await ready(api, team, review)
    await api.as_(team["manager"]).post(f"{url}/complete")
    await api.as_(team["hos"]).post(f"{url}/leadership-notes", json={"note": "Seen"})
    await api.as_(team["seller"]).patch(f"/v1/deals/{review['deal_id']}", json={"stage": "proposal"})
    types = await event_types(api, review["deal_id"])
    assert types == [
        "deal.created",
        "deal.stage_changed",
        "review.opened",
        "review.updated",
        "review.updated",
        "review.completed",
        "review.leadership_noted",
        "deal.stage_changed",
        "review.deal_reopened",
    ]
    history = (await api.as_(team["seller"]).get(f"/v1/deals/{review['deal_id']}/history")).json()["items"]
    assert all(e["subject_id"] == review["id"] for e in history if e["type"].startswith("review."))
