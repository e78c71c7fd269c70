"""The shared conventions of docs/rules.md: problem+json, strict bodies, pagination, concurrency."""

from __future__ import annotations

import base64
import json
import re

import pytest

from app.routers import integrations
from tests.helpers import Api, assert_problem


async def test_unknown_route_is_a_problem(api: Api) -> None:
    assert_problem(await api.get("/v1/nothing-here"), 404, "not_found")
    assert_problem(await api.as_(None).get("/nothing"), 404, "not_found")


async def test_wrong_method_is_a_problem_with_allow(api: Api) -> None:
    response = await api.delete("/v1/members")
    assert_problem(response, 405, "method_not_allowed")
    assert "GET" in response.headers["allow"] and "POST" in response.headers["allow"]


async def test_malformed_json_is_400(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"}
    response = await api.client.post("/v1/members", content=b'{"name": "x",', headers=headers)
    assert_problem(response, 400, "malformed_json")


NEW_MEMBER = b'{"name": "Pat", "email": "pat@acme.test", "role": "seller"}'


@pytest.mark.parametrize(
    ("method", "content_type", "body", "status"),
    [
        ("POST", None, NEW_MEMBER, 415),
        ("POST", "text/plain", NEW_MEMBER, 415),
        ("POST", None, b'{"name": "x",', 415),  # the media type is checked before the body is parsed
        ("PATCH", "application/x-www-form-urlencoded", b"name=Pat", 415),
        ("POST", "application/json; charset=utf-8", NEW_MEMBER, 201),
        ("PATCH", "application/merge-patch+json", b'{"name": "Pat"}', 200),
    ],
)
async def test_a_body_must_be_sent_as_json(
    api: Api, method: str, content_type: str | None, body: bytes, status: int
) -> None:
    me = (await api.get("/v1/me")).json()
    url = "/v1/members" if method == "POST" else f"/v1/members/{me['id']}"
    headers = {"Authorization": f"Bearer {api.key}", **({"Content-Type": content_type} if content_type else {})}
    response = await api.client.request(method, url, content=body, headers=headers)
    if status == 415:
        problem = assert_problem(response, 415, "unsupported_media_type")
        assert "`Content-Type: application/json`" in problem["detail"]
        assert (content_type or "no `Content-Type`") in problem["detail"]
    assert response.status_code == status, response.text
    names = {m["name"] for m in (await api.get("/v1/members")).json()["items"]}
    assert ("Pat" in names) is (status != 415)


async def test_validation_errors_list_each_field(api: Api) -> None:
    response = await api.post("/v1/members", json={"name": "", "email": "not-an-email", "role": "boss"})
    body = assert_problem(response, 422, "validation_error")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert {("body", "name"), ("body", "email"), ("body", "role")} <= locs
    assert all({"loc", "msg", "type"} == set(e) for e in body["errors"])


# What each read-only field of a member says when it is sent (app/errors.py, for every resource).
MEMBER_READ_ONLY = {
    "id": "`id` is read-only: the server assigns it",
    "organization_id": "`organization_id` is read-only: it is the API key's organisation",
    "version": "`version` is read-only: send it as `If-Match`",
    "created_at": "`created_at` is read-only: the server sets it",
    "updated_at": "`updated_at` is read-only: the server sets it",
}


@pytest.mark.parametrize(
    ("field", "type_"),
    [("id", "read_only"), ("version", "read_only"), ("created_at", "read_only"), ("is_admin", "extra_forbidden")],
)
async def test_unknown_and_read_only_fields_are_refused(api: Api, field: str, type_: str) -> None:
    body = {"name": "M", "email": "m@acme.test", "role": "seller", field: "x"}
    problem = assert_problem(await api.post("/v1/members", json=body), 422, "validation_error")
    [error] = [e for e in problem["errors"] if e["loc"] == ["body", field]]
    assert error["type"] == type_ and error["msg"] == MEMBER_READ_ONLY.get(field, "Extra inputs are not permitted")
    listed = (await api.get("/v1/members", params={"limit": 200})).json()["items"]
    assert "m@acme.test" not in {m["email"] for m in listed}


async def test_sending_back_what_get_returned_names_each_read_only_field(api: Api) -> None:
    member = await api.make_member("seller", key=False)
    url = f"/v1/members/{member.id}"
    read = await api.get(url)
    if_match = {"If-Match": read.headers["etag"]}
    problem = assert_problem(await api.patch(url, json=read.json(), headers=if_match), 422, "validation_error")
    assert {e["loc"][-1]: e["msg"] for e in problem["errors"]} == MEMBER_READ_ONLY
    writable = {k: v for k, v in read.json().items() if k not in MEMBER_READ_ONLY}
    renamed = await api.patch(url, json={**writable, "name": "Renamed"}, headers=if_match)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"


async def test_every_operation_refuses_a_query_parameter_it_does_not_declare(app, api: Api) -> None:
    # The CRMs' webhook receivers are called at URLs an admin types into the CRM, query and all.
    any_query = {
        route.path
        for route in integrations.router.routes
        if getattr(getattr(route, "endpoint", None), "accepts_any_query", False)
    }
    assert any_query == {
        "/v1/integrations/hubspot/webhooks",
        "/v1/integrations/pipedrive/webhooks",
        "/v1/integrations/salesforce/outbound-messages",
    }
    operations = [
        (m.upper(), path) for path, item in app.openapi()["paths"].items() for m in item if path not in any_query
    ]
    assert len(operations) > 80
    for method, path in operations:
        # Path values that are valid in shape (an id, a catalog code): only the query is wrong.
        url = re.sub(r"\{code\}", "negotiation", path)
        url = re.sub(r"\{provider\}", "pipedrive", url)
        url = re.sub(r"\{[^}]+\}", "01900000-0000-7000-8000-000000000000", url)
        response = await api.client.request(method, url, params={"stagee": "closed_lost"}, headers=api._headers(None))
        problem = assert_problem(response, 422, "validation_error")
        assert [e["loc"] for e in problem["errors"]] == [["query", "stagee"]], f"{method} {path}"


async def test_an_unknown_query_parameter_is_named_with_what_the_operation_takes(api: Api) -> None:
    problem = assert_problem(
        await api.get("/v1/deals", params={"stagee": "closed_lost", "stage": "proposal"}), 422, "validation_error"
    )
    [error] = problem["errors"]
    assert error["loc"] == ["query", "stagee"] and error["type"] == "extra_forbidden"
    assert "`stagee`" in error["msg"] and "`stage`" in error["msg"] and "`cursor`" in error["msg"]
    assert "takes none" in (await api.get("/v1/settings", params={"expand": "members"})).json()["errors"][0]["msg"]
    assert (await api.get("/v1/deals", params={"stage": "closed_lost", "limit": 5})).status_code == 200
    assert (await api.get("/v1/me")).status_code == 200


async def test_non_uuid_path_id_is_not_found(api: Api) -> None:
    assert_problem(await api.get("/v1/members/not-a-uuid"), 404, "not_found")
    assert_problem(await api.patch("/v1/members/123", json={"name": "x"}), 404, "not_found")
    assert_problem(await api.get("/v1/members/not-a-uuid", params={"stagee": "x"}), 404, "not_found")


async def test_text_that_cannot_be_stored_is_refused(api: Api) -> None:
    for name in ("nul\u0000byte", "lone\ud800surrogate"):
        raw = json.dumps({"name": name, "email": "z@acme.test", "role": "seller"})
        response = await api.client.post(
            "/v1/members",
            content=raw,
            headers={"Authorization": f"Bearer {api.key}", "Content-Type": "application/json"},
        )
        assert_problem(response, 422, "validation_error")


async def test_pagination_walks_every_item_once(api: Api) -> None:
    created = {(await api.make_member("seller", key=False)).id for _ in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/members", params=params)).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen += [m["id"] for m in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 8  # seven sellers and the admin
    assert created <= set(seen)
    assert seen == sorted(seen)
    assert pages == 3


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
async def test_limit_is_bounded(api: Api, limit: str) -> None:
    assert_problem(await api.get("/v1/members", params={"limit": limit}), 422, "validation_error")


async def test_limit_200_is_allowed(api: Api) -> None:
    assert (await api.get("/v1/members", params={"limit": 200})).status_code == 200


def _cursor(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "bm90IGpzb24",  # "not json"
        _cursor(["members", ["01900000-0000-7000-8000-000000000000"]]),  # the old, unsealed format
        _cursor(["01900000-0000-7000-8000-000000000000"]) + ".AAAAAAAAAAAAAAAAAAAAAA",  # a made-up seal
        "%00",
    ],
)
async def test_malformed_or_forged_cursor_is_refused(api: Api, cursor: str) -> None:
    assert_problem(await api.get("/v1/members", params={"cursor": cursor}), 422, "invalid_cursor")


async def test_cursor_from_another_listing_is_refused(api: Api) -> None:
    first = (await api.get("/v1/skills", params={"limit": 2})).json()
    assert_problem(await api.get("/v1/members", params={"cursor": first["next_cursor"]}), 422, "invalid_cursor")
    assert_problem(await api.get("/v1/loss-reasons", params={"cursor": first["next_cursor"]}), 422, "invalid_cursor")


async def test_cursor_from_another_organisation_is_refused(app, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    theirs = (await api.as_(other.admin_key).get("/v1/skills", params={"limit": 2})).json()["next_cursor"]
    assert (await api.as_(other.admin_key).get("/v1/skills", params={"cursor": theirs})).status_code == 200
    assert_problem(await api.get("/v1/skills", params={"cursor": theirs}), 422, "invalid_cursor")


async def test_a_tampered_cursor_is_refused(api: Api) -> None:
    cursor = (await api.get("/v1/skills", params={"limit": 2})).json()["next_cursor"]
    assert (await api.get("/v1/skills", params={"cursor": cursor})).status_code == 200
    key, _, seal = cursor.partition(".")
    forged = _cursor(["zzz"]) + "." + seal  # another key under the genuine seal
    flipped = cursor[:3] + ("A" if cursor[3] != "A" else "B") + cursor[4:]
    for bad in (forged, flipped, key, cursor + "A", cursor[:-1]):
        assert_problem(await api.get("/v1/skills", params={"cursor": bad}), 422, "invalid_cursor")


@pytest.mark.parametrize("length", [513, 4_000, 60_000])
async def test_an_over_long_cursor_is_invalid_cursor_not_a_validation_error(api: Api, length: int) -> None:
    assert_problem(await api.get("/v1/members", params={"cursor": "A" * length}), 422, "invalid_cursor")


async def test_cursors_hold_across_apps_with_the_same_secret_only(app, api: Api, settings) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from pydantic import SecretStr

    from app.main import create_app

    cursor = (await api.get("/v1/skills", params={"limit": 2})).json()["next_cursor"]
    headers = {"Authorization": f"Bearer {api.key}"}
    for secret, status in ((settings.secret_key, 200), (SecretStr("another deployment's secret"), 422)):
        twin = create_app(settings.model_copy(update={"secret_key": secret}))
        async with twin.router.lifespan_context(twin):
            transport = httpx.ASGITransport(app=twin)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
                response = await client.get("/v1/skills", params={"cursor": cursor}, headers=headers)
        assert response.status_code == status, response.text


async def test_if_match_guards_against_lost_updates(api: Api) -> None:
    seller = await api.make_member("seller", key=False)
    read = await api.get(f"/v1/members/{seller.id}")
    etag = read.headers["etag"]
    assert etag == '"1"'
    first = await api.patch(f"/v1/members/{seller.id}", json={"name": "First"}, headers={"If-Match": etag})
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    second = await api.patch(f"/v1/members/{seller.id}", json={"name": "Second"}, headers={"If-Match": etag})
    assert_problem(second, 412, "version_conflict")
    assert (await api.get(f"/v1/members/{seller.id}")).json()["name"] == "First"
    weak = await api.patch(f"/v1/members/{seller.id}", json={"name": "Third"}, headers={"If-Match": 'W/"2"'})
    assert weak.status_code == 200
    assert_problem(
        await api.patch(f"/v1/members/{seller.id}", json={"name": "X"}, headers={"If-Match": "garbage"}),
        412,
        "version_conflict",
    )
    star = await api.patch(f"/v1/members/{seller.id}", json={"name": "Star"}, headers={"If-Match": "*"})
    assert star.status_code == 200 and star.json()["version"] == 4


@pytest.mark.parametrize("resource", ["deal", "strategy", "member", "assignment", "me"])
async def test_if_none_match_with_the_current_etag_is_304_without_a_body(api: Api, resource: str) -> None:
    seller = await api.make_member("seller", key=False)
    deal = (await api.post("/v1/deals", json={"name": "D", "account_name": "A", "owner_id": seller.id})).json()
    assignment_id = "no-assignment"
    if resource == "assignment":
        coach = await api.make_member("seller", key=False)
        body = {"member_id": coach.id, "role": "coach"}
        assignment_id = (await api.post(f"/v1/deals/{deal['id']}/assignments", json=body)).json()["id"]
    url = {
        "deal": f"/v1/deals/{deal['id']}",
        "strategy": f"/v1/deals/{deal['id']}/strategy",
        "member": f"/v1/members/{seller.id}",
        "assignment": f"/v1/assignments/{assignment_id}",
        "me": "/v1/me",
    }[resource]
    read = await api.get(url)
    etag = read.headers["etag"]
    assert etag == f'"{read.json()["version"]}"'
    for tags in (etag, f"W/{etag}", f'"999", {etag}', "*"):
        cached = await api.get(url, headers={"If-None-Match": tags})
        assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag, tags
    for tags in ('"999"', "garbage"):
        fresh = await api.get(url, headers={"If-None-Match": tags})
        assert fresh.status_code == 200 and fresh.json() == read.json()
    if resource == "me":
        return  # names nothing that could be missing
    nowhere = "01900000-0000-7000-8000-000000000000"
    missing = await api.get(
        url.replace(deal["id"], nowhere).replace(seller.id, nowhere).replace(assignment_id, nowhere),
        headers={"If-None-Match": "*"},
    )
    assert_problem(missing, 404, "not_found")


async def test_every_response_carries_a_request_id(api: Api) -> None:
    response = await api.get("/v1/me", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await api.get("/v1/me")
    assert len(generated.headers["x-request-id"]) == 32
    unsafe = await api.get("/v1/me", headers={"X-Request-ID": "bad id with spaces"})
    assert unsafe.headers["x-request-id"] != "bad id with spaces"
    problem = await api.get("/v1/nothing", headers={"X-Request-ID": "req-404"})
    assert problem.headers["x-request-id"] == "req-404"


async def test_unexpected_errors_are_a_500_problem_without_internals(app, api: Api) -> None:
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    app.include_router(router)
    response = await api.get("/v1/boom")
    body = assert_problem(response, 500, "internal_error")
    assert "secret" not in response.text
    assert body["instance"] == "/v1/boom"


@pytest.mark.parametrize("path", ["/v1/members/%0A", "/v1/approvals/%0A", "/v1/deals/%20"])
async def test_a_blank_path_id_is_not_found(api: Api, path: str) -> None:
    assert_problem(await api.get(path), 404, "not_found")


async def test_a_literal_path_answers_405_for_methods_it_does_not_serve(api: Api) -> None:
    response = await api.patch("/v1/deals/batch-upsert", json={})
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"
    # Whatever else is wrong with the request: an unknown query parameter, a body that is not JSON.
    weekly = await api.patch("/v1/closed-lost-reviews/weekly", params={"week": "2026-W47"}, json={})
    assert_problem(weekly, 405, "method_not_allowed")
    text = await api.patch("/v1/deals/batch-upsert", content=b"x", headers={"Content-Type": "text/plain"})
    assert_problem(text, 405, "method_not_allowed")
