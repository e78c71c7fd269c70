"""API keys: shown once, stored hashed, revocation effective on the next request."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from tests.helpers import Api, assert_problem, assert_tagged_by_content


async def test_key_is_shown_once_and_stored_only_as_a_hash(app, api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    response = await api.post(f"/v1/members/{seller.id}/api-keys", json={"label": "laptop"})
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["api_key"].startswith(created["prefix"])
    assert created["label"] == "laptop" and created["revoked_at"] is None
    assert response.headers["location"] == f"/v1/api-keys/{created['id']}"

    listed = (await api.get(f"/v1/members/{seller.id}/api-keys")).json()["items"]
    assert [k["id"] for k in listed] == [created["id"]]
    assert "api_key" not in listed[0]
    assert "api_key" not in (await api.get(f"/v1/api-keys/{created['id']}")).json()

    async with app.state.engine.connect() as conn:
        stored = (
            await conn.execute(sa.text("SELECT key_hash FROM api_key WHERE prefix = :p"), {"p": created["prefix"]})
        ).scalar_one()
        dump = " ".join(str(v) for row in (await conn.execute(sa.text("SELECT * FROM api_key"))).all() for v in row)
    assert stored == hashlib.sha256(created["api_key"].encode()).hexdigest()
    assert created["api_key"] not in dump

    me = await api.as_(created["api_key"]).get("/v1/me")
    assert me.status_code == 200 and me.json()["id"] == seller.id


async def test_the_response_with_the_secret_is_never_cached(api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    url = f"/v1/members/{seller.id}/api-keys"
    created = await api.post(url, json={"label": "ci"}, headers={"Idempotency-Key": "key-1"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    replayed = await api.post(url, json={"label": "ci"}, headers={"Idempotency-Key": "key-1"})
    assert replayed.headers["idempotent-replayed"] == "true" and replayed.headers["cache-control"] == "no-store"
    # Reads carry no secret and need no such header.
    assert "cache-control" not in (await api.get(url)).headers


def test_the_spec_declares_no_store_on_key_creation() -> None:
    from app.main import create_app

    created = create_app().openapi()["paths"]["/v1/members/{member_id}/api-keys"]["post"]["responses"]["201"]
    assert created["headers"]["Cache-Control"]["schema"] == {"type": "string", "enum": ["no-store"]}


async def test_body_is_optional(api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    response = await api.client.post(
        f"/v1/members/{seller.id}/api-keys", headers={"Authorization": f"Bearer {api.key}"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["label"] is None


async def test_revocation_is_effective_on_the_next_request(api: Api) -> None:
    seller = await api.make_member("seller")
    key_id = (await api.as_(seller).get("/v1/me")).json()["api_key_id"]
    assert (await api.delete(f"/v1/api-keys/{key_id}")).status_code == 204
    assert_problem(await api.as_(seller).get("/v1/me"), 401, "unauthenticated")
    listed = (await api.get(f"/v1/members/{seller.id}/api-keys")).json()["items"]
    assert listed[0]["revoked_at"] is not None
    # Revoking again changes nothing.
    assert (await api.delete(f"/v1/api-keys/{key_id}")).status_code == 204


async def test_only_an_admin_issues_or_revokes_keys(api: Api) -> None:
    seller = await api.make_member("seller")
    manager = await api.make_member("manager")
    assert_problem(await api.as_(seller).post(f"/v1/members/{seller.id}/api-keys", json={}), 403, "forbidden")
    own = (await api.as_(seller).get(f"/v1/members/{seller.id}/api-keys")).json()["items"]
    assert len(own) == 1
    # Admin-only writes answer 403 to everyone else: for their own key, for a key they cannot
    # list, and for no key at all (refused before the lookup, so nothing leaks).
    for caller, key_id in (
        (seller, own[0]["id"]),
        (manager, own[0]["id"]),
        (seller, "01900000-0000-7000-8000-000000000000"),
    ):
        assert_problem(await api.as_(caller).delete(f"/v1/api-keys/{key_id}"), 403, "forbidden")
    assert (await api.as_(seller).get("/v1/me")).status_code == 200
    assert (await api.as_(seller).get(f"/v1/api-keys/{own[0]['id']}")).json()["revoked_at"] is None
    assert (await api.delete(f"/v1/api-keys/{own[0]['id']}")).status_code == 204
    assert_problem(await api.as_(seller).get("/v1/me"), 401, "unauthenticated")


async def test_other_members_keys_are_hidden(api: Api) -> None:
    seller = await api.make_member("seller")
    manager = await api.make_member("manager")
    key_id = (await api.as_(seller).get("/v1/me")).json()["api_key_id"]
    assert_problem(await api.as_(manager).get(f"/v1/members/{seller.id}/api-keys"), 403, "forbidden")
    assert_problem(await api.as_(manager).get(f"/v1/api-keys/{key_id}"), 404, "not_found")
    assert (await api.as_(seller).get("/v1/me")).status_code == 200


async def test_keys_of_another_organisation_do_not_exist(app, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    foreign = await api.as_(other.admin_key).make_member("seller")
    foreign_key_id = (await api.as_(foreign).get("/v1/me")).json()["api_key_id"]
    assert_problem(await api.delete(f"/v1/api-keys/{foreign_key_id}"), 404, "not_found")
    assert_problem(await api.post(f"/v1/members/{foreign.id}/api-keys", json={}), 404, "not_found")
    assert (await api.as_(foreign).get("/v1/me")).status_code == 200


async def test_bad_keys_are_unauthenticated(api: Api) -> None:
    for header in ("Bearer nope", "Bearer dc_deadbeef_notakey", "Basic abc", "Bearer " + "dc_" + "x" * 500, ""):
        response = await api.client.get("/v1/me", headers={"Authorization": header} if header else {})
        body = assert_problem(response, 401, "unauthenticated")
        assert response.headers.get("www-authenticate") == "Bearer"
        assert "x" * 100 not in body["detail"]


async def test_a_key_is_tagged_by_its_content(api: Api) -> None:
    """A key has no version: its ETag is a tag of what GET sent, 304 while it holds, and revoking
    the key (revoked_at set) changes it."""
    seller = await api.make_member("seller", key=False)
    created = (await api.post(f"/v1/members/{seller.id}/api-keys", json={"label": "laptop"})).json()
    url = f"/v1/api-keys/{created['id']}"
    active = await assert_tagged_by_content(api, url)
    assert (await api.delete(url)).status_code == 204
    revoked = await api.get(url, headers={"If-None-Match": active})
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert revoked.headers["etag"] != active
