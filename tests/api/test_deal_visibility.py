"""The visibility matrix: every deal endpoint answers 404 to those who may not see the deal."""

from __future__ import annotations

import pytest

from tests.conftest import bootstrap
from tests.helpers import Api, Person, make_deal

# (method, path template, body) for every endpoint that addresses one deal.
ENDPOINTS = [
    ("GET", "/v1/deals/{deal}", None),
    ("PATCH", "/v1/deals/{deal}", {"name": "Renamed"}),
    ("GET", "/v1/deals/{deal}/history", None),
    ("GET", "/v1/deals/{deal}/assignments", None),
    ("POST", "/v1/deals/{deal}/assignments", {"member_id": "{me}", "role": "observer", "purpose": "watch"}),
    ("GET", "/v1/deals/{deal}/strategy", None),
    ("PUT", "/v1/deals/{deal}/strategy", {"customer_objectives": "x"}),
    ("GET", "/v1/deals/{deal}/strategy/versions", None),
    ("GET", "/v1/deals/{deal}/strategy/suggestions", None),
    ("POST", "/v1/deals/{deal}/strategy/suggestions", {"section": "risks", "body": "Watch the budget"}),
]


@pytest.fixture
async def world(app, api: Api) -> dict[str, object]:
    hos = await api.make_member("head_of_sales")
    manager = await api.make_member("manager", manager=hos)
    senior = await api.make_member("manager", manager=hos)
    junior = await api.make_member("manager", manager=senior)
    owner = await api.make_member("seller", manager=manager)
    teammate = await api.make_member("seller", manager=manager)
    other_team_manager = await api.make_member("manager", manager=hos)
    other_team_seller = await api.make_member("seller", manager=other_team_manager)
    assigned = await api.make_member("seller", manager=other_team_manager)
    integration = await api.make_member("integration")
    deal = await make_deal(api, owner)
    request = await api.as_(owner).post(
        f"/v1/deals/{deal['id']}/assignments", json={"member_id": assigned.id, "role": "subject_matter_expert"}
    )
    await api.as_(assigned).post(f"/v1/assignments/{request.json()['id']}/accept")
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    foreign_admin = Person(id=other.admin_id, key=other.admin_key, body={})
    # A deal deeper in a line: the senior manager sees it through the junior one.
    deep_seller = await api.make_member("seller", manager=junior)
    deep_deal = await make_deal(api, deep_seller)
    return {
        "deal": deal,
        "deep_deal": deep_deal,
        "owner": owner,
        "manager": manager,
        "hos": hos,
        "teammate": teammate,
        "other_team_manager": other_team_manager,
        "other_team_seller": other_team_seller,
        "assigned": assigned,
        "integration": integration,
        "foreign_admin": foreign_admin,
        "senior": senior,
    }


def _fill(value, deal_id: str, me: str):  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        return value.replace("{deal}", deal_id).replace("{me}", me)
    if isinstance(value, dict):
        return {k: _fill(v, deal_id, me) for k, v in value.items()}
    return value


async def _call(api: Api, who: Person, method: str, path: str, body, deal_id: str):  # type: ignore[no-untyped-def]
    url = _fill(path, deal_id, who.id)
    caller = api.as_(who)
    if method == "GET":
        return await caller.get(url)
    return await getattr(caller, method.lower())(url, json=_fill(body, deal_id, who.id))


@pytest.mark.parametrize("outsider", ["foreign_admin", "other_team_manager", "other_team_seller", "teammate"])
async def test_outsiders_get_404_on_every_deal_endpoint(api: Api, world, outsider: str) -> None:
    who = world[outsider]
    for method, path, body in ENDPOINTS:
        response = await _call(api, who, method, path, body, world["deal"]["id"])
        assert response.status_code == 404, f"{outsider} {method} {path}: {response.status_code} {response.text}"
        assert response.json()["code"] == "not_found"
    listed = (await api.as_(who).get("/v1/deals")).json()["items"]
    assert world["deal"]["id"] not in {d["id"] for d in listed}
    feed = (await api.as_(who).get("/v1/events")).json()["items"]
    assert world["deal"]["id"] not in {e["deal_id"] for e in feed}


@pytest.mark.parametrize("insider", ["owner", "manager", "hos", "assigned", "integration"])
async def test_insiders_see_the_deal(api: Api, world, insider: str) -> None:
    who = world[insider]
    deal_id = world["deal"]["id"]
    for method, path, _ in ENDPOINTS:
        if method != "GET":
            continue
        response = await _call(api, who, method, path, None, deal_id)
        assert response.status_code == 200, f"{insider} {path}: {response.text}"
    listed = (await api.as_(who).get("/v1/deals", params={"limit": 200})).json()["items"]
    assert deal_id in {d["id"] for d in listed}
    feed = (await api.as_(who).get("/v1/events", params={"deal_id": deal_id})).json()["items"]
    assert feed and feed[0]["type"] == "deal.created"


async def test_managers_see_their_line_transitively(api: Api, world) -> None:
    senior = world["senior"]
    assert (await api.as_(senior).get(f"/v1/deals/{world['deep_deal']['id']}")).status_code == 200
    assert (await api.as_(senior).get(f"/v1/deals/{world['deal']['id']}")).status_code == 404
    assert (await api.as_(world["manager"]).get(f"/v1/deals/{world['deep_deal']['id']}")).status_code == 404
