"""Coaching analytics: a manager who coaches early and observes, and one who joins late and takes over."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from app.db.models import ClosedLostReview
from tests.helpers import Api, Person, assert_problem, make_deal

TODAY = dt.datetime.now(dt.UTC).date()
WINDOW = {"from": (TODAY - dt.timedelta(days=1)).isoformat(), "to": (TODAY + dt.timedelta(days=1)).isoformat()}


async def _held_call(api: Api, owner: Person, deal: dict, attendee: Person, role: str, part: str) -> str:
    created = await api.as_(owner).post(
        f"/v1/deals/{deal['id']}/calls",
        json={
            "scheduled_at": dt.datetime.now(dt.UTC).isoformat(),
            "purpose": "Discovery",
            "attendees": [
                {"member_id": owner.id, "call_role": "lead", "agreed_part": None},
                {"member_id": attendee.id, "call_role": role, "agreed_part": part},
            ],
        },
    )
    assert created.status_code == 201, created.text
    call_id = created.json()["id"]
    held = await api.as_(owner).patch(f"/v1/calls/{call_id}", json={"held_at": dt.datetime.now(dt.UTC).isoformat()})
    assert held.status_code == 200, held.text
    return call_id


async def _observe(api: Api, observer: Person, call_id: str, strengths: int, improvements: int) -> str:
    response = await api.as_(observer).post(
        f"/v1/calls/{call_id}/observations",
        json={
            "strengths": [{"skill_code": "discovery", "note": f"good {i}"} for i in range(strengths)],
            "improvements": [
                {"skill_code": "closing", "note": f"improve {i}", "suggestion": "try"} for i in range(improvements)
            ],
            "summary": "Solid call",
        },
    )
    assert response.status_code == 201, response.text
    observation_id = response.json()["id"]
    assert (await api.as_(observer).post(f"/v1/observations/{observation_id}/share")).status_code == 200
    return observation_id


async def _lose(api: Api, owner: Person, deal: dict) -> str:
    lost = await api.as_(owner).patch(
        f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": {"reason_code": "price"}}
    )
    assert lost.status_code == 200, lost.text
    reviews = (await api.get("/v1/closed-lost-reviews", params={"owner_id": owner.id})).json()["items"]
    return next(r["id"] for r in reviews if r["deal_id"] == deal["id"])


async def _complete(api: Api, reviewer: Person, seller: Person, review_id: str) -> None:
    url = f"/v1/closed-lost-reviews/{review_id}"
    assert (
        await api.as_(reviewer).patch(url, json={"loss_reason_confirmed": True, "lessons": ["Sell value"]})
    ).status_code == 200
    assert (await api.as_(seller).patch(url, json={"seller_reflection": "I discounted too early"})).status_code == 200
    done = await api.as_(reviewer).post(f"{url}/complete")
    assert done.status_code == 200, done.text


@pytest.fixture
async def story(app, api: Api) -> dict[str, Person]:
    hos = await api.make_member("head_of_sales")
    coach = await api.make_member("manager", manager=hos)  # coaches early and observes
    rescuer = await api.make_member("manager", manager=hos)  # joins late and takes over
    seller_a = await api.make_member("seller", manager=coach)
    seller_b = await api.make_member("seller", manager=rescuer)

    # The coach: involved early on two deals, observes two held calls, one debrief completed.
    d1 = await make_deal(api, seller_a, stage="prospecting")
    d2 = await make_deal(api, seller_a, stage="discovery")
    proposal = await api.as_(coach).post(
        f"/v1/deals/{d1['id']}/assignments", json={"member_id": coach.id, "role": "coach"}
    )
    await api.as_(seller_a).post(f"/v1/assignments/{proposal.json()['id']}/accept")
    call_1 = await _held_call(api, seller_a, d2, coach, "observer", "Watch the discovery questions")
    call_2 = await _held_call(api, seller_a, d1, coach, "observer", "Watch the demo")
    first = await _observe(api, coach, call_1, strengths=2, improvements=1)
    await _observe(api, coach, call_2, strengths=2, improvements=1)
    ack = await api.as_(seller_a).post(
        f"/v1/observations/{first}/acknowledge", json={"reflection": "Noted", "commitments": ["Ask more"]}
    )
    assert ack.status_code == 200, ack.text

    # The rescuer: first involved in negotiation on two deals, takes over the one call.
    d3 = await make_deal(api, seller_b, stage="negotiation")
    d4 = await make_deal(api, seller_b, stage="negotiation")
    call_3 = await _held_call(api, seller_b, d3, rescuer, "contributor", "Answer pricing questions")
    takeover = await api.as_(rescuer).post(
        f"/v1/calls/{call_3}/interventions",
        json={"member_id": rescuer.id, "kind": "took_over", "note": "Ran the pricing talk"},
    )
    assert takeover.status_code == 201, takeover.text
    await api.as_(rescuer).post(
        f"/v1/deals/{d4['id']}/assignments", json={"member_id": rescuer.id, "role": "executive_sponsor"}
    )

    # Reviews: the coach completes both losses (2 and 4 days); the rescuer's stays pending.
    r1 = await _lose(api, seller_a, d1)
    r2 = await _lose(api, seller_a, d2)
    await _lose(api, seller_b, d3)
    await _complete(api, coach, seller_a, r1)
    await _complete(api, coach, seller_a, r2)
    # Reviews completed seconds after the loss: pin their durations to known values.
    reviews = ClosedLostReview.__table__
    async with app.state.engine.begin() as conn:
        for review_id, days in ((r1, 2.0), (r2, 4.0)):
            await conn.execute(
                sa.update(reviews).where(reviews.c.id == uuid.UUID(review_id)).values(days_to_complete=days)
            )
    return {"hos": hos, "coach": coach, "rescuer": rescuer, "seller_a": seller_a}


EXPECTED = {
    "coach": {
        "deals_involved": 2,
        "late_first_involvement_share": 0.0,
        "calls_attended": 2,
        "takeovers": 0,
        "takeovers_per_call": 0.0,
        "observations_given": 2,
        "strengths_per_improvement": 2.0,
        "debrief_completion_rate": 0.5,
        "reviews_completed": 2,
        "review_completion_rate": 1.0,
        "median_days_to_review": 3.0,
    },
    "rescuer": {
        "deals_involved": 2,
        "late_first_involvement_share": 1.0,
        "calls_attended": 1,
        "takeovers": 1,
        "takeovers_per_call": 1.0,
        "observations_given": 0,
        "strengths_per_improvement": None,
        "debrief_completion_rate": None,
        "reviews_completed": 0,
        "review_completion_rate": 0.0,
        "median_days_to_review": None,
    },
}


async def test_head_of_sales_sees_every_manager(api: Api, story) -> None:
    response = await api.as_(story["hos"]).get("/v1/analytics/coaching", params=WINDOW)
    assert response.status_code == 200, response.text
    by_id = {m["manager_id"]: m for m in response.json()["managers"]}
    assert set(by_id) == {story["hos"].id, story["coach"].id, story["rescuer"].id}
    for who, figures in EXPECTED.items():
        assert by_id[story[who].id] == {"manager_id": story[who].id, **figures}, who
    assert by_id[story["hos"].id]["deals_involved"] == 0
    one = await api.as_(story["hos"]).get(
        "/v1/analytics/coaching", params={**WINDOW, "manager_id": story["rescuer"].id}
    )
    assert [m["manager_id"] for m in one.json()["managers"]] == [story["rescuer"].id]


async def test_a_manager_sees_only_themself(api: Api, story) -> None:
    mine = await api.as_(story["coach"]).get("/v1/analytics/coaching", params=WINDOW)
    assert mine.json()["managers"] == [{"manager_id": story["coach"].id, **EXPECTED["coach"]}]
    other = await api.as_(story["coach"]).get("/v1/analytics/coaching", params={"manager_id": story["rescuer"].id})
    assert_problem(other, 403, "forbidden")
    for who in ("seller_a",):
        assert_problem(await api.as_(story[who]).get("/v1/analytics/coaching"), 403, "forbidden")
    assert_problem(await api.get("/v1/analytics/coaching"), 403, "forbidden")


async def test_the_period_bounds_the_figures(api: Api, story) -> None:
    past = {"from": "2020-01-01", "to": "2020-12-31"}
    response = await api.as_(story["hos"]).get("/v1/analytics/coaching", params=past)
    coach = next(m for m in response.json()["managers"] if m["manager_id"] == story["coach"].id)
    assert coach["deals_involved"] == 0 and coach["late_first_involvement_share"] is None
    assert coach["calls_attended"] == 0 and coach["observations_given"] == 0 and coach["review_completion_rate"] is None
    assert_problem(
        await api.as_(story["hos"]).get("/v1/analytics/coaching", params={"from": "soon"}), 422, "validation_error"
    )
