"""Closed-lost analytics: every figure, for leadership and for each manager's line, per grouping
(docs/rules.md: Analytics).

The world, all losses closed in November 2026 unless said otherwise (days = days to complete):

    hos ── mA ── a1    1  price        —        1000.00 EUR  completed 2.0  gaps negotiation
     │      │    a1    2  competitor   Initech   500.00 USD  completed 4.0  gaps presentation, negotiation
     │      │    a1    8  price        —         999.00 EUR  deal reopened since: no loss
     │      └─ sA ─ a2 3  price        —         250.50 EUR  pending        gaps closing
     │              a2 4  competitor   Initech      300 JPY  completed 3.0  gaps presentation
     └──── mB ── b1    5  price        Globex   2000.00 EUR  completed 6.5  gaps negotiation
                 b1    6  timing       —        (no amount)  pending
                 b1    7  price        —         100.00 USD  pending, closed 31 October: out of range

Reviewers are the owners' managers: 1, 2 → mA; 3, 4 → sA; 5, 6, 7 → mB. Another organisation's
loss in the same month must never show.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from app.db.models import ClosedLostReview
from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem, make_deal

URL = "/v1/analytics/closed-lost"
NOVEMBER = {"from": "2026-11-01", "to": "2026-11-30"}
GROUPINGS = ["reason", "competitor", "skill_gap", "owner", "reviewer"]


def fig(
    key: str | None, count: int, amounts: list[tuple[str, str]], rate: float | None, median: float | None
) -> dict[str, Any]:
    return {
        "key": key,
        "count": count,
        "lost_amounts": [{"currency": c, "amount": a} for c, a in amounts],
        "review_completion_rate": rate,
        "median_days_to_review": median,
    }


def by_size_then_key(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documented order: largest groups first, then by key, a null key last."""
    return sorted(groups, key=lambda g: (-g["count"], g["key"] is None, g["key"] or ""))


async def _lose(
    api: Api, owner: Person, reason: str, amount: dict[str, str] | None, competitor: str | None
) -> dict[str, Any]:
    deal = await make_deal(api, owner, amount=amount)
    loss = {"reason_code": reason, **({"competitor": competitor} if competitor else {})}
    response = await api.as_(owner).patch(f"/v1/deals/{deal['id']}", json={"stage": "closed_lost", "loss": loss})
    assert response.status_code == 200, response.text
    opened = (await api.get("/v1/events", params={"type": "review.opened", "deal_id": deal["id"]})).json()["items"]
    return (await api.get(f"/v1/closed-lost-reviews/{opened[0]['subject_id']}")).json()


async def _place(app: Any, review_id: str, closed_at: dt.datetime, days: float | None) -> None:
    """Put the loss (and its completion) at a known time: time does not pass in a test."""
    iso = closed_at.isocalendar()
    values: dict[str, Any] = {"closed_at": closed_at, "closed_week": f"{iso.year}-W{iso.week:02d}"}
    if days is not None:
        values.update(completed_at=closed_at + dt.timedelta(days=days), days_to_complete=days)
    table = ClosedLostReview.__table__
    async with app.state.engine.begin() as conn:
        await conn.execute(sa.update(table).where(table.c.id == uuid.UUID(review_id)).values(**values))


@pytest.fixture
async def world(app, api: Api) -> dict[str, Any]:
    hos = await api.make_member("head_of_sales")
    m_a = await api.make_member("manager", manager=hos)
    s_a = await api.make_member("manager", manager=m_a)
    m_b = await api.make_member("manager", manager=hos)
    a1 = await api.make_member("seller", manager=m_a)
    a2 = await api.make_member("seller", manager=s_a)
    b1 = await api.make_member("seller", manager=m_b)
    eur, usd, jpy = ({"amount": a, "currency": c} for a, c in (("1000.00", "EUR"), ("500.00", "USD"), ("300", "JPY")))

    def nov(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
        return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)

    halloween = dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=dt.UTC)
    plan = [  # (number, owner, reason, amount, competitor, closed_at, gaps, days to complete)
        (1, a1, "price", eur, None, nov(2, 10), ["negotiation"], 2.0),
        (2, a1, "competitor", usd, "Initech", nov(5, 12), ["presentation", "negotiation"], 4.0),
        (3, a2, "price", {"amount": "250.50", "currency": "EUR"}, None, nov(10), ["closing"], None),
        (4, a2, "competitor", jpy, "Initech", nov(16, 8), ["presentation"], 3.0),
        (5, b1, "price", {"amount": "2000.00", "currency": "EUR"}, "Globex", nov(23, 9), ["negotiation"], 6.5),
        (6, b1, "timing", None, None, nov(30, 23, 30), [], None),
        (7, b1, "price", {"amount": "100.00", "currency": "USD"}, None, halloween, [], None),
        (8, a1, "price", {"amount": "999.00", "currency": "EUR"}, None, nov(3), [], None),
    ]
    reviews = {}
    for number, owner, reason, amount, competitor, closed_at, gaps, days in plan:
        review = await _lose(api, owner, reason, amount, competitor)
        reviewer = next(p for p in (m_a, s_a, m_b) if p.id == review["reviewer_id"])
        url = f"/v1/closed-lost-reviews/{review['id']}"
        if gaps:
            assert (await api.as_(reviewer).patch(url, json={"skill_gaps": gaps})).status_code == 200
        if days is not None:
            await api.as_(reviewer).patch(url, json={"loss_reason_confirmed": True, "lessons": ["A lesson"]})
            await api.as_(owner).patch(url, json={"seller_reflection": "A reflection"})
            assert (await api.as_(reviewer).post(f"{url}/complete")).status_code == 200
        await _place(app, review["id"], closed_at, days)
        reviews[number] = review
    reopened = await api.as_(a1).patch(f"/v1/deals/{reviews[8]['deal_id']}", json={"stage": "proposal"})
    assert reopened.status_code == 200
    assert [reviews[n]["reviewer_id"] for n in (1, 3, 5, 7)] == [m_a.id, s_a.id, m_b.id, m_b.id]
    # Another organisation loses a deal in the same month.
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    other_api = Api(api.client, other.admin_key)
    other_seller = await other_api.make_member("seller")
    foreign = await _lose(other_api, other_seller, "price", eur, "Initech")
    await _place(app, foreign["id"], nov(15), None)
    return {"hos": hos, "mA": m_a, "sA": s_a, "mB": m_b, "a1": a1, "a2": a2, "b1": b1, "other_admin": other.admin_key}


def expected(world: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every figure, worked out by hand from the table in the module docstring."""
    a1, a2, b1 = world["a1"].id, world["a2"].id, world["b1"].id
    m_a, s_a, m_b = world["mA"].id, world["sA"].id, world["mB"].id
    eur_usd_a1 = [("EUR", "1000.00"), ("USD", "500.00")]
    eur_jpy_a2 = [("EUR", "250.50"), ("JPY", "300")]
    jpy_usd = [("JPY", "300"), ("USD", "500.00")]
    eur_b1 = [("EUR", "2000.00")]
    org_total = fig(None, 6, [("EUR", "3250.50"), ("JPY", "300"), ("USD", "500.00")], 4 / 6, 3.5)
    line_a_total = fig(None, 4, [("EUR", "1250.50"), ("JPY", "300"), ("USD", "500.00")], 3 / 4, 3.0)
    line_s_total = fig(None, 2, eur_jpy_a2, 1 / 2, 3.0)
    line_b_total = fig(None, 2, eur_b1, 1 / 2, 6.5)
    return {
        # Leadership: the whole organisation (losses 1-6).
        ("hos", "reason"): {
            "groups": [
                fig("price", 3, [("EUR", "3250.50")], 2 / 3, 4.25),
                fig("competitor", 2, jpy_usd, 1.0, 3.5),
                fig("timing", 1, [], 0.0, None),
            ],
            "total": org_total,
        },
        ("hos", "competitor"): {
            "groups": [
                fig(None, 3, [("EUR", "1250.50")], 1 / 3, 2.0),
                fig("Initech", 2, jpy_usd, 1.0, 3.5),
                fig("Globex", 1, eur_b1, 1.0, 6.5),
            ],
            "total": org_total,
        },
        ("hos", "skill_gap"): {
            "groups": [
                fig("negotiation", 3, [("EUR", "3000.00"), ("USD", "500.00")], 1.0, 4.0),
                fig("presentation", 2, jpy_usd, 1.0, 3.5),
                fig("closing", 1, [("EUR", "250.50")], 0.0, None),
                fig(None, 1, [], 0.0, None),
            ],
            "total": org_total,
        },
        ("hos", "owner"): {
            "groups": by_size_then_key(
                [
                    fig(a1, 2, eur_usd_a1, 1.0, 3.0),
                    fig(a2, 2, eur_jpy_a2, 0.5, 3.0),
                    fig(b1, 2, eur_b1, 0.5, 6.5),
                ]
            ),
            "total": org_total,
        },
        ("hos", "reviewer"): {
            "groups": by_size_then_key(
                [
                    fig(m_a, 2, eur_usd_a1, 1.0, 3.0),
                    fig(s_a, 2, eur_jpy_a2, 0.5, 3.0),
                    fig(m_b, 2, eur_b1, 0.5, 6.5),
                ]
            ),
            "total": org_total,
        },
        # mA's line, transitively through sA: losses 1-4.
        ("mA", "reason"): {
            "groups": [
                fig("competitor", 2, jpy_usd, 1.0, 3.5),
                fig("price", 2, [("EUR", "1250.50")], 0.5, 2.0),
            ],
            "total": line_a_total,
        },
        ("mA", "competitor"): {
            "groups": [
                fig("Initech", 2, jpy_usd, 1.0, 3.5),
                fig(None, 2, [("EUR", "1250.50")], 0.5, 2.0),
            ],
            "total": line_a_total,
        },
        ("mA", "skill_gap"): {
            "groups": [
                fig("negotiation", 2, eur_usd_a1, 1.0, 3.0),
                fig("presentation", 2, jpy_usd, 1.0, 3.5),
                fig("closing", 1, [("EUR", "250.50")], 0.0, None),
            ],
            "total": line_a_total,
        },
        ("mA", "owner"): {
            "groups": by_size_then_key(
                [
                    fig(a1, 2, eur_usd_a1, 1.0, 3.0),
                    fig(a2, 2, eur_jpy_a2, 0.5, 3.0),
                ]
            ),
            "total": line_a_total,
        },
        ("mA", "reviewer"): {
            "groups": by_size_then_key(
                [
                    fig(m_a, 2, eur_usd_a1, 1.0, 3.0),
                    fig(s_a, 2, eur_jpy_a2, 0.5, 3.0),
                ]
            ),
            "total": line_a_total,
        },
        # sA's line: losses 3 and 4.
        ("sA", "reason"): {
            "groups": [
                fig("competitor", 1, [("JPY", "300")], 1.0, 3.0),
                fig("price", 1, [("EUR", "250.50")], 0.0, None),
            ],
            "total": line_s_total,
        },
        ("sA", "competitor"): {
            "groups": [
                fig("Initech", 1, [("JPY", "300")], 1.0, 3.0),
                fig(None, 1, [("EUR", "250.50")], 0.0, None),
            ],
            "total": line_s_total,
        },
        ("sA", "skill_gap"): {
            "groups": [
                fig("closing", 1, [("EUR", "250.50")], 0.0, None),
                fig("presentation", 1, [("JPY", "300")], 1.0, 3.0),
            ],
            "total": line_s_total,
        },
        ("sA", "owner"): {"groups": [fig(a2, 2, eur_jpy_a2, 0.5, 3.0)], "total": line_s_total},
        ("sA", "reviewer"): {"groups": [fig(s_a, 2, eur_jpy_a2, 0.5, 3.0)], "total": line_s_total},
        # mB's line: losses 5 and 6 (7 was lost in October).
        ("mB", "reason"): {
            "groups": [
                fig("price", 1, eur_b1, 1.0, 6.5),
                fig("timing", 1, [], 0.0, None),
            ],
            "total": line_b_total,
        },
        ("mB", "competitor"): {
            "groups": [
                fig("Globex", 1, eur_b1, 1.0, 6.5),
                fig(None, 1, [], 0.0, None),
            ],
            "total": line_b_total,
        },
        ("mB", "skill_gap"): {
            "groups": [
                fig("negotiation", 1, eur_b1, 1.0, 6.5),
                fig(None, 1, [], 0.0, None),
            ],
            "total": line_b_total,
        },
        ("mB", "owner"): {"groups": [fig(b1, 2, eur_b1, 0.5, 6.5)], "total": line_b_total},
        ("mB", "reviewer"): {"groups": [fig(m_b, 2, eur_b1, 0.5, 6.5)], "total": line_b_total},
    }


async def test_every_figure_for_leadership_and_each_manager(app, api: Api, world) -> None:
    statements: list[str] = []

    @sa.event.listens_for(app.state.engine.sync_engine, "before_cursor_execute")
    def _record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    figures = expected(world)
    for (viewer, group_by), want in figures.items():
        statements.clear()
        response = await api.as_(world[viewer]).get(URL, params={**NOVEMBER, "group_by": group_by})
        assert response.status_code == 200, response.text
        assert response.json() == want, (viewer, group_by)
        # One statement computes every figure of the request.
        assert len([s for s in statements if "closed_lost_review" in s]) == 1, (viewer, group_by)
    for group_by in GROUPINGS:  # an admin sees what the head of sales sees
        response = await api.get(URL, params={**NOVEMBER, "group_by": group_by})
        assert response.json() == figures[("hos", group_by)]


async def test_the_range_is_inclusive_at_both_ends_and_open_when_omitted(api: Api, world) -> None:
    hos, a2 = world["hos"], world["a2"].id
    narrow = await api.as_(hos).get(URL, params={"from": "2026-11-10", "to": "2026-11-16", "group_by": "owner"})
    expected_a2 = fig(a2, 2, [("EUR", "250.50"), ("JPY", "300")], 0.5, 3.0)
    assert narrow.json() == {"groups": [expected_a2], "total": {**expected_a2, "key": None}}
    october = await api.as_(world["mB"]).get(URL, params={"to": "2026-10-31", "group_by": "reason"})
    out_of_range = fig("price", 1, [("USD", "100.00")], 0.0, None)
    assert october.json() == {"groups": [out_of_range], "total": {**out_of_range, "key": None}}
    everything = (await api.as_(hos).get(URL, params={"group_by": "reason"})).json()
    assert everything["total"] == fig(None, 7, [("EUR", "3250.50"), ("JPY", "300"), ("USD", "600.00")], 4 / 7, 3.5)
    backwards = {"from": "2026-12-01", "to": "2026-11-01", "group_by": "reason"}
    empty = {"groups": [], "total": fig(None, 0, [], None, None)}
    assert (await api.as_(hos).get(URL, params=backwards)).json() == empty
    widest = {"from": "0001-01-01", "to": "9999-12-31", "group_by": "reason"}
    assert (await api.as_(hos).get(URL, params=widest)).json() == everything


async def test_a_manager_without_a_line_sees_no_losses(api: Api, world) -> None:
    new_manager = await api.make_member("manager", manager=world["hos"])
    response = await api.as_(new_manager).get(URL, params={"group_by": "reason"})
    assert response.json() == {"groups": [], "total": fig(None, 0, [], None, None)}


async def test_another_organisation_sees_only_its_own_losses(api: Api, world) -> None:
    other = Api(api.client, world["other_admin"])
    response = await other.get(URL, params={**NOVEMBER, "group_by": "competitor"})
    foreign = fig("Initech", 1, [("EUR", "1000.00")], 0.0, None)
    assert response.json() == {"groups": [foreign], "total": {**foreign, "key": None}}


@pytest.mark.parametrize("who", ["a1", "integration"])
async def test_sellers_and_machines_get_no_analytics(api: Api, world, who: str) -> None:
    caller = world[who] if who in world else await api.make_member(who)
    assert_problem(await api.as_(caller).get(URL, params={"group_by": "reason"}), 403, "forbidden")


@pytest.mark.parametrize(
    "params",
    [{}, {"group_by": "deal"}, {"group_by": "reason", "from": "yesterday"}, {"group_by": "reason", "to": "2026-13-01"}],
)
async def test_analytics_parameters_are_validated(api: Api, world, params: dict[str, Any]) -> None:
    assert_problem(await api.as_(world["hos"]).get(URL, params=params), 422, "validation_error")


async def test_analytics_needs_a_key(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(URL, params={"group_by": "reason"}), 401, "unauthenticated")
