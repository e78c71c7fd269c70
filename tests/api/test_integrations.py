"""CRM integrations: the configuration (API.md: CRM integrations), admin only, credentials write-only."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.conftest import bootstrap
from tests.helpers import Api, Person, assert_problem

PIPEDRIVE = "/v1/integrations/pipedrive"


def config(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "enabled": True,
        "account_id": "12882925",
        "credentials": {"username": "dealcoach", "password": "s3cret-pass"},
        "stage_map": {"1": "prospecting", "2": "qualification"},
        "owner_map": {},
        "loss_reason_map": {"Too expensive": "price"},
        "default_currency": "EUR",
    }
    return body | overrides


async def test_unsaved_integration_is_version_0(api: Api) -> None:
    response = await api.get(PIPEDRIVE)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"0"'
    body = response.json()
    assert body["version"] == 0 and body["enabled"] is False and body["credentials_set"] is False
    assert body["member_id"] is None and body["account_id"] is None


async def test_save_creates_the_integration_member_once(api: Api, team: dict[str, Person]) -> None:
    seller = team["seller"]
    response = await api.put(PIPEDRIVE, json=config(owner_map={"18487521": seller.id}))
    assert response.status_code == 200, response.text
    body = response.json()
    assert "credentials" not in body and "s3cret-pass" not in response.text
    assert body["credentials_set"] is True and body["version"] == 1
    assert body["owner_map"] == {"18487521": seller.id}
    assert response.headers["etag"] == '"1"'
    member = (await api.get(f"/v1/members/{body['member_id']}")).json()
    assert member["role"] == "integration" and member["name"] == "Pipedrive integration"

    # Saved again without credentials: they are kept; the member stays the same.
    again = await api.put(PIPEDRIVE, json=config(credentials=None, enabled=False), headers={"If-Match": '"1"'})
    assert again.status_code == 200, again.text
    assert again.json()["member_id"] == body["member_id"]
    assert again.json()["credentials_set"] is True and again.json()["version"] == 2
    read = await api.get(PIPEDRIVE)
    assert "s3cret-pass" not in read.text and read.json()["enabled"] is False

    unchanged = await api.put(PIPEDRIVE, json=config(credentials=None, enabled=False))
    assert unchanged.json()["version"] == 2


async def test_stale_if_match_is_refused(api: Api) -> None:
    assert (await api.put(PIPEDRIVE, json=config())).status_code == 200
    assert_problem(
        await api.put(PIPEDRIVE, json=config(enabled=False), headers={"If-Match": '"0"'}), 412, "version_conflict"
    )
    assert (await api.put(PIPEDRIVE, json=config(enabled=False), headers={"If-Match": '"1"'})).status_code == 200


async def test_only_admins_configure(api: Api, team: dict[str, Person]) -> None:
    for who in ("hos", "seller", "integration"):
        assert_problem(await api.as_(team[who]).put(PIPEDRIVE, json=config()), 403, "forbidden")
        assert_problem(await api.as_(team[who]).get(PIPEDRIVE), 403, "forbidden")
        assert_problem(await api.as_(team[who]).get(f"{PIPEDRIVE}/events"), 403, "forbidden")


async def test_owner_map_takes_only_sellers(api: Api, team: dict[str, Person]) -> None:
    body = assert_problem(
        await api.put(PIPEDRIVE, json=config(owner_map={"1": team["seller"].id, "2": team["manager"].id})),
        422,
        "owner_must_be_seller",
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "owner_map", "2"]]
    unknown = "0190c8a4-6f1e-7000-8000-000000000000"
    body = assert_problem(await api.put(PIPEDRIVE, json=config(owner_map={"9": unknown})), 422, "unknown_member")
    assert [e["loc"] for e in body["errors"]] == [["body", "owner_map", "9"]]
    assert (await api.get(PIPEDRIVE)).json()["version"] == 0


async def test_loss_reason_map_takes_catalog_codes(api: Api) -> None:
    body = assert_problem(
        await api.put(PIPEDRIVE, json=config(loss_reason_map={"Too expensive": "price", "Gone": "vanished"})),
        422,
        "unknown_loss_reason",
    )
    assert [e["loc"] for e in body["errors"]] == [["body", "loss_reason_map", "Gone"]]


async def test_stage_map_takes_our_stages(api: Api) -> None:
    body = assert_problem(await api.put(PIPEDRIVE, json=config(stage_map={"1": "won"})), 422, "validation_error")
    assert body["errors"][0]["loc"][:2] == ["body", "stage_map"]


async def test_credentials_are_the_providers(api: Api) -> None:
    body = assert_problem(await api.put(PIPEDRIVE, json=config(credentials={"token": "x"})), 422, "validation_error")
    assert sorted(tuple(e["loc"]) for e in body["errors"]) == [
        ("body", "credentials", "password"),
        ("body", "credentials", "token"),
        ("body", "credentials", "username"),
    ]
    body = assert_problem(await api.put(PIPEDRIVE, json=config(credentials=None)), 422, "validation_error")
    assert {e["loc"][-1] for e in body["errors"]} == {"username", "password"}
    hubspot = config(account_id="62515", credentials={"client_secret": "cs", "access_token": "at"})
    assert (await api.put("/v1/integrations/hubspot", json=hubspot)).status_code == 200


async def test_read_only_fields_are_refused(api: Api) -> None:
    body = assert_problem(await api.put(PIPEDRIVE, json=config(credentials_set=True)), 422, "validation_error")
    assert body["errors"][0]["type"] == "read_only"


async def test_an_account_routes_to_one_organisation(api: Api, client: AsyncClient, app: Any) -> None:
    assert (await api.put(PIPEDRIVE, json=config())).status_code == 200
    other = await bootstrap(app, name="Globex", email="grace@globex.test")
    other_api = Api(client, other.admin_key)
    assert_problem(await other_api.put(PIPEDRIVE, json=config()), 409, "account_id_taken")
    assert (await other_api.put(PIPEDRIVE, json=config(account_id="777"))).status_code == 200
    # The same account id with another provider is another account.
    salesforce = config(credentials={"token": "t0k"})
    assert (await api.put("/v1/integrations/salesforce", json=salesforce)).status_code == 200


async def test_saving_is_recorded(api: Api) -> None:
    await api.put(PIPEDRIVE, json=config())
    await api.put(PIPEDRIVE, json=config(credentials={"username": "dealcoach", "password": "rotated-pass"}))
    feed = (await api.get("/v1/events", params={"type": ["integration.created", "integration.updated"]})).json()
    assert [(e["type"], e["data"]["provider"]) for e in feed["items"]] == [
        ("integration.created", "pipedrive"),
        ("integration.updated", "pipedrive"),
    ]
    assert feed["items"][1]["data"] == {"provider": "pipedrive", "fields": [], "credentials_changed": True}
    assert "pass" not in str(feed)
