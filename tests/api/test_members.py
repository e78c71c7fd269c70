"""Members and reporting lines (docs/rules.md: Organisation, members, keys)."""

from __future__ import annotations

import pytest

from tests.helpers import Api, assert_problem


async def test_get_me_returns_the_key_s_member_and_organisation(api: Api, org) -> None:
    response = await api.get("/v1/me")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == org.admin_id
    assert body["organization"] == {"id": org.id, "name": "Acme"}
    assert body["role"] == "admin"
    assert body["api_key_id"]


async def test_admin_creates_member_with_location_and_etag(api: Api) -> None:
    manager = await api.make_member("manager")
    response = await api.post(
        "/v1/members",
        json={"name": " Sam Seller ", "email": "Sam@Acme.Test", "role": "seller", "manager_id": manager.id},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/members/{body['id']}"
    assert response.headers["etag"] == '"1"'
    assert body["name"] == "Sam Seller"
    assert body["email"] == "sam@acme.test"
    assert body["manager_id"] == manager.id
    assert body["active"] is True and body["version"] == 1
    fetched = await api.get(body["location"] if "location" in body else f"/v1/members/{body['id']}")
    assert fetched.json() == body
    assert fetched.headers["etag"] == '"1"'


@pytest.mark.parametrize("role", ["seller", "manager", "head_of_sales", "integration"])
async def test_only_admins_write_members(api: Api, role: str) -> None:
    caller = await api.make_member(role)
    response = await api.as_(caller).post("/v1/members", json={"name": "X", "email": "x@acme.test", "role": "seller"})
    assert_problem(response, 403, "forbidden")
    target = await api.make_member("seller")
    assert_problem(await api.as_(caller).patch(f"/v1/members/{target.id}", json={"name": "Y"}), 403, "forbidden")
    assert (await api.get(f"/v1/members/{target.id}")).json()["name"] == target.body["name"]
    listed = await api.get("/v1/members", params={"limit": 200})
    assert "x@acme.test" not in {m["email"] for m in listed.json()["items"]}


async def test_every_member_reads_members(api: Api) -> None:
    seller = await api.make_member("seller")
    other = await api.make_member("seller")
    assert (await api.as_(seller).get(f"/v1/members/{other.id}")).status_code == 200
    listed = await api.as_(seller).get("/v1/members")
    assert listed.status_code == 200
    assert {seller.id, other.id} <= {m["id"] for m in listed.json()["items"]}


async def test_duplicate_email_is_refused_case_insensitively(api: Api) -> None:
    await api.make_member("seller", email="dup@acme.test")
    response = await api.post("/v1/members", json={"name": "D", "email": "DUP@acme.test", "role": "seller"})
    assert_problem(response, 409, "email_taken")
    other = await api.make_member("seller")
    assert_problem(await api.patch(f"/v1/members/{other.id}", json={"email": "dup@acme.test"}), 409, "email_taken")


async def test_same_email_in_another_organisation_is_fine(app, client, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    await api.make_member("seller", email="shared@x.test")
    response = await api.as_(other.admin_key).post(
        "/v1/members", json={"name": "S", "email": "shared@x.test", "role": "seller"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("manager_role", ["seller", "admin", "integration"])
async def test_manager_must_be_a_manager_or_head_of_sales(api: Api, manager_role: str) -> None:
    not_a_manager = await api.make_member(manager_role, key=False)
    response = await api.post(
        "/v1/members", json={"name": "S", "email": "s@acme.test", "role": "seller", "manager_id": not_a_manager.id}
    )
    assert_problem(response, 422, "invalid_reporting_line")


@pytest.mark.parametrize("manager_role", ["manager", "head_of_sales"])
async def test_seller_may_report_to_manager_or_head_of_sales(api: Api, manager_role: str) -> None:
    boss = await api.make_member(manager_role, key=False)
    seller = await api.make_member("seller", manager=boss, key=False)
    assert seller.body["manager_id"] == boss.id


async def test_unknown_or_foreign_manager_is_refused(app, api: Api) -> None:
    from tests.conftest import bootstrap

    response = await api.post(
        "/v1/members",
        json={
            "name": "S",
            "email": "s@acme.test",
            "role": "seller",
            "manager_id": "01900000-0000-7000-8000-000000000000",
        },
    )
    assert_problem(response, 422, "invalid_reporting_line")
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    foreign = await api.as_(other.admin_key).make_member("manager", key=False)
    response = await api.post(
        "/v1/members", json={"name": "S", "email": "s2@acme.test", "role": "seller", "manager_id": foreign.id}
    )
    assert_problem(response, 422, "invalid_reporting_line")


async def test_reporting_lines_cannot_form_a_cycle(api: Api) -> None:
    top = await api.make_member("head_of_sales", key=False)
    middle = await api.make_member("manager", manager=top, key=False)
    bottom = await api.make_member("manager", manager=middle, key=False)
    response = await api.patch(f"/v1/members/{top.id}", json={"manager_id": bottom.id})
    assert_problem(response, 422, "invalid_reporting_line")
    assert_problem(
        await api.patch(f"/v1/members/{middle.id}", json={"manager_id": middle.id}), 422, "invalid_reporting_line"
    )
    assert (await api.get(f"/v1/members/{top.id}")).json()["manager_id"] is None


async def test_a_manager_with_reports_cannot_stop_being_a_manager(api: Api) -> None:
    manager = await api.make_member("manager", key=False)
    await api.make_member("seller", manager=manager, key=False)
    assert_problem(await api.patch(f"/v1/members/{manager.id}", json={"role": "seller"}), 422, "invalid_reporting_line")
    assert_problem(await api.patch(f"/v1/members/{manager.id}", json={"active": False}), 422, "invalid_reporting_line")
    # Promoting to head of sales keeps the line valid.
    response = await api.patch(f"/v1/members/{manager.id}", json={"role": "head_of_sales"})
    assert response.status_code == 200, response.text


async def test_admins_and_integrations_stand_outside_reporting_lines(api: Api) -> None:
    manager = await api.make_member("manager", key=False)
    response = await api.post(
        "/v1/members", json={"name": "I", "email": "i@acme.test", "role": "integration", "manager_id": manager.id}
    )
    assert_problem(response, 422, "invalid_reporting_line")


async def test_reassign_then_demote(api: Api) -> None:
    first = await api.make_member("manager", key=False)
    second = await api.make_member("manager", key=False)
    seller = await api.make_member("seller", manager=first, key=False)
    moved = await api.patch(f"/v1/members/{seller.id}", json={"manager_id": second.id})
    assert moved.status_code == 200 and moved.json()["manager_id"] == second.id
    demoted = await api.patch(f"/v1/members/{first.id}", json={"role": "seller"})
    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "seller"
    cleared = await api.patch(f"/v1/members/{seller.id}", json={"manager_id": None})
    assert cleared.json()["manager_id"] is None


async def test_patch_bumps_version_and_noop_patch_does_not(api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    response = await api.patch(f"/v1/members/{seller.id}", json={"name": "Renamed"})
    assert response.json()["version"] == 2 and response.headers["etag"] == '"2"'
    again = await api.patch(f"/v1/members/{seller.id}", json={"name": "Renamed"})
    assert again.json()["version"] == 2


async def test_patch_refuses_null_for_non_nullable_fields(api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    for field in ("name", "email", "role", "active"):
        assert_problem(await api.patch(f"/v1/members/{seller.id}", json={field: None}), 422, "validation_error")


async def test_deactivated_member_s_keys_stop_working(api: Api) -> None:
    seller = await api.make_member("seller")
    assert (await api.as_(seller).get("/v1/me")).status_code == 200
    assert (await api.patch(f"/v1/members/{seller.id}", json={"active": False})).status_code == 200
    assert_problem(await api.as_(seller).get("/v1/me"), 401, "unauthenticated")


async def test_list_members_filters(api: Api) -> None:
    manager = await api.make_member("manager", key=False)
    s1 = await api.make_member("seller", manager=manager, key=False)
    s2 = await api.make_member("seller", key=False)
    by_role = await api.get("/v1/members", params={"role": "manager"})
    assert {m["id"] for m in by_role.json()["items"]} == {manager.id}
    by_manager = await api.get("/v1/members", params={"manager_id": manager.id})
    assert {m["id"] for m in by_manager.json()["items"]} == {s1.id}
    await api.patch(f"/v1/members/{s2.id}", json={"active": False})
    inactive = await api.get("/v1/members", params={"active": "false"})
    assert {m["id"] for m in inactive.json()["items"]} == {s2.id}
    assert_problem(await api.get("/v1/members", params={"role": "boss"}), 422, "validation_error")


async def test_members_of_another_organisation_are_not_found(app, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    foreign = await api.as_(other.admin_key).make_member("seller", key=False)
    assert_problem(await api.get(f"/v1/members/{foreign.id}"), 404, "not_found")
    assert_problem(await api.patch(f"/v1/members/{foreign.id}", json={"name": "X"}), 404, "not_found")
    listed = await api.get("/v1/members", params={"limit": 200})
    assert foreign.id not in {m["id"] for m in listed.json()["items"]}
