"""Links between resources: every read of something that names members can include their
`{id, name, role}` (`?expand=members`) at the cost of one more statement, whatever the number of
objects; without it, nothing changes. (A lost deal's `review_id`: tests/api/test_deal_review_id.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel

from app.http.routes import declared_query_parameters
from app.main import create_app
from app.schemas.approvals import ApprovalPublic
from app.schemas.calls import CallPublic
from app.schemas.coaching import CoachingAnalytics
from app.schemas.deals import DealPage, DealPublic
from app.schemas.development import CallBrief, CommitmentPage
from app.schemas.events import EventPage
from app.schemas.expand import member_ids, names_members
from app.schemas.members import MemberPage
from app.schemas.reviews import ReviewPage, ReviewPublic, WeeklyReviews
from app.schemas.strategy import StrategyPublic, StrategyVersionPage
from app.settings import Settings
from tests.api.test_development import acknowledge, held_call, shared_observation
from tests.api.test_hot_reads import recording
from tests.helpers import Api, Person, assert_problem, make_deal
from tests.statements import record_statements

LOSS = {"stage": "closed_lost", "loss": {"reason_code": "price"}}


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture
async def world(api: Api, team) -> dict[str, Any]:
    """Something of every kind that names members: deals of two sellers, a lost one's review with an
    action item and a leadership note, a strategy with steps, a call, an observation, an approval."""
    seller, peer, manager, hos = team["seller"], team["peer"], team["manager"], team["hos"]
    deal = await make_deal(api, seller)
    await make_deal(api, peer)
    lost = await ok(await api.as_(peer).patch(f"/v1/deals/{(await make_deal(api, peer))['id']}", json=LOSS))
    review_url = f"/v1/closed-lost-reviews/{lost['review_id']}"
    items = [{"description": "Pair on pricing", "assignee_id": seller.id}]
    await ok(await api.as_(manager).patch(review_url, json={"action_items": items}))
    await ok(await api.as_(hos).post(f"{review_url}/leadership-notes", json={"note": "Good depth"}), 201)
    url = f"/v1/deals/{deal['id']}/strategy"
    steps = [{"description": "Call the CFO", "assignee_id": seller.id}, {"description": "Demo", "assignee_id": hos.id}]
    await ok(await api.as_(seller).put(url, json={"next_steps": steps}, headers={"If-Match": '"0"'}))
    call = await held_call(api, seller, manager, deal)
    observation = await shared_observation(api, manager, call, strengths=["discovery"])
    await ok(await acknowledge(api, seller, observation, ["Confirm value first"]))
    terms = [{"kind": "discount", "description": "Year one", "value": "15%", "applies_to": "Licences"}]
    approval = await ok(
        await api.as_(seller).post(
            f"/v1/deals/{deal['id']}/approvals", json={"approver_id": manager.id, "terms": terms}
        ),
        201,
    )
    return {"deal": deal, "lost": lost, "call": call, "observation": observation, "approval": approval}


def names(team: dict[str, Person], *who: str) -> dict[str, dict[str, Any]]:
    return {team[w].id: {"id": team[w].id, "name": team[w].body["name"], "role": team[w].body["role"]} for w in who}


async def test_a_single_object_carries_the_members_it_names(api: Api, team, world) -> None:
    manager = team["manager"]
    deal = await ok(await api.as_(manager).get(f"/v1/deals/{world['deal']['id']}", params={"expand": "members"}))
    assert deal["members"] == names(team, "seller")
    review_url = f"/v1/closed-lost-reviews/{world['lost']['review_id']}"
    review = await ok(await api.as_(manager).get(review_url, params={"expand": "members"}))
    # The owner and the reviewer, the action item's assignee, the leadership note's author.
    assert review["members"] == names(team, "peer", "manager", "seller", "hos")
    call = await ok(await api.as_(manager).get(f"/v1/calls/{world['call']['id']}", params={"expand": "members"}))
    assert call["members"] == names(team, "seller", "manager")
    strategy = await api.as_(manager).get(f"/v1/deals/{world['deal']['id']}/strategy", params={"expand": "members"})
    assert (await ok(strategy))["members"] == names(team, "seller", "hos")
    me = await ok(await api.as_(team["seller"]).get("/v1/me", params={"expand": "members"}))
    assert me["members"] == names(team, "manager")


async def test_a_page_carries_one_map_for_its_items(api: Api, team, world) -> None:
    page = await ok(await api.as_(team["manager"]).get("/v1/deals", params={"expand": "members", "limit": 200}))
    assert len(page["items"]) == 3 and all("members" not in item for item in page["items"])
    assert page["members"] == names(team, "seller", "peer")
    reviews = await ok(await api.as_(team["hos"]).get("/v1/closed-lost-reviews", params={"expand": "members"}))
    assert reviews["members"] == names(team, "peer", "manager", "seller", "hos")
    empty = await ok(await api.as_(team["outsider"]).get("/v1/deals", params={"expand": "members"}))
    assert empty == {"items": [], "next_cursor": None, "members": {}}


# Reads of every shape, with the model that reads their body: the members map holds exactly the
# members the body names.
READS: list[tuple[str, str, type[BaseModel]]] = [
    ("manager", "/v1/deals", DealPage),
    ("manager", "/v1/deals/{deal}", DealPublic),
    ("manager", "/v1/deals/{deal}/history", EventPage),
    ("hos", "/v1/events", EventPage),
    ("manager", "/v1/deals/{deal}/strategy", StrategyPublic),
    ("manager", "/v1/deals/{deal}/strategy/versions", StrategyVersionPage),
    ("manager", "/v1/calls/{call}", CallPublic),
    ("manager", "/v1/calls/{call}/brief", CallBrief),
    ("manager", "/v1/approvals/{approval}", ApprovalPublic),
    ("manager", "/v1/commitments", CommitmentPage),
    ("hos", "/v1/closed-lost-reviews", ReviewPage),
    ("hos", "/v1/closed-lost-reviews/{review}", ReviewPublic),
    ("hos", "/v1/closed-lost-reviews/weekly", WeeklyReviews),
    ("hos", "/v1/analytics/coaching", CoachingAnalytics),
    ("seller", "/v1/members", MemberPage),
]


async def test_every_read_maps_exactly_the_members_it_names(api: Api, team, world) -> None:
    ids = {
        "deal": world["deal"]["id"],
        "call": world["call"]["id"],
        "approval": world["approval"]["id"],
        "review": world["lost"]["review_id"],
    }
    for who, path, model in READS:
        url = path.format(**ids)
        plain = await ok(await api.as_(team[who]).get(url))
        body = await ok(await api.as_(team[who]).get(url, params={"expand": "members"}))
        named = {str(i) for i in member_ids(model.model_validate(body))}
        assert named, url
        members = body.pop("members")
        assert set(members) == named, url
        assert all(m == {"id": i, "name": m["name"], "role": m["role"]} for i, m in members.items()), url
        assert body == plain, url  # the rest is as without expand
        assert "members" not in plain, url


async def test_expand_takes_only_members_and_only_where_members_are_named(api: Api, team, world) -> None:
    response = await api.as_(team["seller"]).get("/v1/deals", params={"expand": "owner"})
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"][0]["loc"] == ["query", "expand", 0]
    # Catalogs and webhooks name no members: expand is an unknown parameter there.
    assert_problem(await api.get("/v1/skills", params={"expand": "members"}), 422, "validation_error")
    assert_problem(await api.get("/v1/me/tasks", params={"expand": "members"}), 422, "validation_error")


async def test_the_hot_reads_pay_one_statement_for_members_whatever_the_page(app, api: Api, team, monkeypatch) -> None:
    seller, manager = team["seller"], team["manager"]
    first = await make_deal(api, seller)

    async def statements(url: str, **params: Any) -> int:
        with recording(app, monkeypatch) as recorded:
            await ok(await api.as_(manager).get(url, params=params))
        return len(recorded.statements)

    assert await statements(f"/v1/deals/{first['id']}") == 1
    assert await statements(f"/v1/deals/{first['id']}", expand="members") == 2
    assert await statements("/v1/deals", expand="members") == 2
    for owner in (seller, team["peer"]) * 10:
        await make_deal(api, owner)
    assert await statements("/v1/deals", limit=200) == 1
    assert await statements("/v1/deals", expand="members", limit=200) == 2
    assert await statements("/v1/me", expand="members") == 2


async def test_other_reads_pay_one_statement_for_members_whatever_the_page(app, api: Api, team, monkeypatch) -> None:
    seller, manager = team["seller"], team["manager"]

    async def statements(url: str, **params: Any) -> int:
        with monkeypatch.context() as patched:
            recorded = record_statements(app, patched)
            await ok(await api.as_(manager).get(url, params={"limit": 200, **params}))
        return len([s for s in recorded if "pg_catalog" not in s.sql and "pg_type" not in s.sql])

    deal = await make_deal(api, seller)
    await ok(await api.as_(seller).patch(f"/v1/deals/{deal['id']}", json={"name": "Renamed"}))
    url = f"/v1/deals/{deal['id']}/history"
    few = await statements(url), await statements(url, expand="members")
    assert few[1] == few[0] + 1
    for i in range(20):
        await ok(await api.as_(manager).patch(f"/v1/deals/{deal['id']}", json={"name": f"Renamed {i}"}))
    many = await statements(url), await statements(url, expand="members")
    assert many == few


def test_every_read_of_something_naming_members_takes_expand() -> None:
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    reads = [
        route
        for route in iter_route_contexts(list(app.routes))
        if isinstance(route.original_route, APIRoute) and "GET" in route.methods and route.response_model
    ]
    expanding = set()
    for route in reads:
        model = route.response_model
        takes = "expand" in declared_query_parameters(route)
        assert takes is names_members(model), route.path_format
        if takes:
            assert "members" in model.model_fields, route.path_format
            expanding.add(route.path_format)
    assert {"/v1/deals", "/v1/deals/{deal_id}", "/v1/me", "/v1/closed-lost-reviews/{review_id}"} <= expanding


def test_members_in_a_model_are_found_nested_and_optional() -> None:
    seller, reviewer, assignee, author = (uuid.uuid4() for _ in range(4))
    page = ReviewPage.model_validate(
        {
            "items": [
                {
                    **{name: None for name in ReviewPublic.model_fields},
                    "id": uuid.uuid4(),
                    "deal_id": uuid.uuid4(),
                    "owner_id": seller,
                    "reviewer_id": None,
                    "status": "pending",
                    "deal_reopened": False,
                    "closed_at": "2026-11-03T10:00:00Z",
                    "due_on": "2026-11-10",
                    "overdue": False,
                    "suggested_skills": [],
                    "loss_reason_code": "price",
                    "loss_reason_confirmed": False,
                    "lessons": [],
                    "skill_gaps": [],
                    "action_items": [{"description": "x", "assignee_id": assignee, "due_date": None}],
                    "leadership_notes": [
                        {
                            "id": uuid.uuid4(),
                            "review_id": uuid.uuid4(),
                            "author_id": author,
                            "note": "n",
                            "created_at": "2026-11-03T10:00:00Z",
                        }
                    ],
                    "version": 1,
                    "created_at": "2026-11-03T10:00:00Z",
                    "updated_at": "2026-11-03T10:00:00Z",
                }
            ],
            "next_cursor": None,
        }
    )
    assert member_ids(page) == {seller, assignee, author}
    assert reviewer not in member_ids(page)
