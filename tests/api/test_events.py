"""The append-only event feed."""

from __future__ import annotations

from tests.helpers import Api, assert_problem


async def test_changes_append_events_in_seq_order(api: Api, org) -> None:
    seller = await api.make_member("seller")
    await api.patch(f"/v1/members/{seller.id}", json={"name": "Renamed"})
    feed = (await api.get("/v1/events")).json()["items"]
    types = [e["type"] for e in feed]
    assert types[:2] == ["organization.created", "member.created"]
    assert types[-3:] == ["member.created", "api_key.created", "member.updated"]
    seqs = [e["seq"] for e in feed]
    assert seqs == list(range(1, len(feed) + 1))
    updated = feed[-1]
    assert updated["actor_id"] == org.admin_id
    assert updated["subject_type"] == "member" and updated["subject_id"] == seller.id
    assert updated["data"]["changes"]["name"] == [seller.body["name"], "Renamed"]
    assert updated["deal_id"] is None and updated["occurred_at"].endswith("Z")


async def test_feed_filters_and_pages(api: Api) -> None:
    for _ in range(3):
        await api.make_member("seller", key=False)
    created = (await api.get("/v1/events", params={"type": "member.created"})).json()["items"]
    assert len(created) == 4 and {e["type"] for e in created} == {"member.created"}
    after = (await api.get("/v1/events", params={"after_seq": created[1]["seq"]})).json()["items"]
    assert all(e["seq"] > created[1]["seq"] for e in after)
    two_types = (
        await api.get("/v1/events", params=[("type", "member.created"), ("type", "organization.created")])
    ).json()
    assert len(two_types["items"]) == 5
    seen, cursor = [], None
    while True:
        page = (await api.get("/v1/events", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [e["seq"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 5
    assert_problem(await api.get("/v1/events", params={"after_seq": -1}), 422, "validation_error")
    assert_problem(await api.get("/v1/events", params={"cursor": "nope"}), 422, "invalid_cursor")


async def test_failed_writes_append_no_event(api: Api) -> None:
    before = (await api.get("/v1/events")).json()["items"]
    await api.post("/v1/members", json={"name": "X", "email": "ada@acme.test", "role": "seller"})  # email taken
    assert (await api.get("/v1/events")).json()["items"] == before


async def test_organisation_events_are_for_org_wide_roles(api: Api) -> None:
    seller = await api.make_member("seller")
    manager = await api.make_member("manager")
    hos = await api.make_member("head_of_sales")
    integration = await api.make_member("integration")
    assert (await api.as_(seller).get("/v1/events")).json()["items"] == []
    assert (await api.as_(manager).get("/v1/events")).json()["items"] == []
    assert len((await api.as_(hos).get("/v1/events")).json()["items"]) > 0
    assert len((await api.as_(integration).get("/v1/events")).json()["items"]) > 0


async def test_events_never_cross_organisations(app, api: Api) -> None:
    from tests.conftest import bootstrap

    other = await bootstrap(app, name="Globex", email="root@globex.test")
    await api.as_(other.admin_key).make_member("seller", key=False)
    ours = (await api.get("/v1/events")).json()["items"]
    assert [e["type"] for e in ours] == ["organization.created", "member.created"]
    theirs = (await api.as_(other.admin_key).get("/v1/events")).json()["items"]
    assert {e["id"] for e in ours}.isdisjoint({e["id"] for e in theirs})
    assert [e["seq"] for e in theirs] == [1, 2, 3]
