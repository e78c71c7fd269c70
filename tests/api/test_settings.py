"""Organisation settings: defaults, admin-only changes, If-Match."""

from __future__ import annotations

import pytest

from tests.helpers import Api, assert_problem


async def test_defaults(api: Api) -> None:
    seller = await api.make_member("seller")
    response = await api.as_(seller).get("/v1/settings")
    assert response.status_code == 200
    body = response.json()
    assert body["max_improvements_per_observation"] == 3
    assert body["review_due_days"] == 7
    assert body["late_stages"] == ["negotiation"]
    assert response.headers["etag"] == f'"{body["version"]}"'


async def test_admin_updates_settings(api: Api) -> None:
    etag = (await api.get("/v1/settings")).headers["etag"]
    response = await api.patch(
        "/v1/settings",
        json={"late_stages": ["negotiation", "proposal", "proposal"], "review_due_days": 10},
        headers={"If-Match": etag},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["late_stages"] == ["proposal", "negotiation"]
    assert body["review_due_days"] == 10
    assert_problem(
        await api.patch("/v1/settings", json={"review_due_days": 5}, headers={"If-Match": etag}),
        412,
        "version_conflict",
    )
    events = (await api.get("/v1/events", params={"type": "settings.updated"})).json()["items"]
    assert len(events) == 1 and events[0]["data"]["changes"]["review_due_days"] == [7, 10]


@pytest.mark.parametrize(
    "body",
    [
        {"late_stages": ["closed_won"]},
        {"late_stages": ["someday"]},
        {"max_improvements_per_observation": 0},
        {"review_due_days": 1000},
        {"review_due_days": None},
        {"version": 9},
        {"colour": "blue"},
    ],
)
async def test_invalid_settings_are_refused(api: Api, body: dict) -> None:
    assert_problem(await api.patch("/v1/settings", json=body), 422, "validation_error")
    assert (await api.get("/v1/settings")).json()["version"] == 1


async def test_only_admins_change_settings(api: Api) -> None:
    hos = await api.make_member("head_of_sales")
    assert_problem(await api.as_(hos).patch("/v1/settings", json={"review_due_days": 3}), 403, "forbidden")
    assert (await api.get("/v1/settings")).json()["review_due_days"] == 7
