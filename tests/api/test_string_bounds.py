"""Every request string is bounded (API.md: Limits); the bounds the spec newly declares are
enforced: one character over is 422 validation_error naming the input, at the bound it is read."""

from __future__ import annotations

from tests.helpers import Api, assert_problem, make_deal


def refused(response, *loc: str) -> None:  # type: ignore[no-untyped-def]
    body = assert_problem(response, 422, "validation_error")
    assert list(loc) in [e["loc"] for e in body["errors"]], body["errors"]


async def test_newly_bounded_strings(api: Api, team) -> None:
    seller = team["seller"]
    deal = await make_deal(api, seller)
    url = f"/v1/deals/{deal['id']}"
    refused(await api.patch(url, json={"amount": {"amount": "1" * 41, "currency": "EUR"}}), "body", "amount", "amount")
    refused(await api.patch(url, json={"amount": {"amount": "1", "currency": "EURO"}}), "body", "amount", "currency")
    ok = await api.patch(url, json={"amount": {"amount": "12500", "currency": "JPY"}})
    assert ok.status_code == 200, ok.text

    refused(await api.post("/v1/skills", json={"code": "a" * 65, "label": "L"}), "body", "code")
    assert (await api.post("/v1/skills", json={"code": "a" * 64, "label": "L"})).status_code == 201

    refused(await api.get("/v1/closed-lost-reviews", params={"week": "2026-W470"}), "query", "week")
    assert (await api.get("/v1/closed-lost-reviews", params={"week": "2026-W47"})).status_code == 200

    body = {"name": "N", "account_name": "A", "owner_id": seller.id}
    # A path that names nothing answers 404, as any invalid path input does.
    assert_problem(await api.put(f"/v1/deals/by-external-ref/{'s' * 41}/X-1", json=body), 404, "not_found")
    assert (await api.put(f"/v1/deals/by-external-ref/{'s' * 40}/X-1", json=body)).status_code == 201

    long_tag = ", ".join(['"1"'] * 205)  # 1,024 characters and one more
    assert len(long_tag) == 1023
    refused(await api.patch(url, json={"name": "X"}, headers={"If-Match": long_tag + ", "}), "header", "If-Match")
    assert_problem(await api.patch(url, json={"name": "X"}, headers={"If-Match": long_tag}), 412, "version_conflict")
