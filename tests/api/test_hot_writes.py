"""The hot write: on PostgreSQL a new deal with no external reference and no loss is written with
its `deal.created` event in one statement, outside any transaction of its own (the caller's
authentication is the only other statement). What it writes is what the general path writes; an
organisation with an endpoint that takes `deal.created` gets the general path and its outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.repositories import deal_writes
from app.db.repositories.deal_writes import DealWrites
from app.schemas.deals import DealPublic
from tests.conftest import bootstrap
from tests.helpers import Api, assert_problem
from tests.statements import record_statements

BODY = {
    "name": "Globex renewal",
    "account_name": "Globex",
    "amount": {"amount": "48000.00", "currency": "EUR"},
    "expected_close_date": "2027-03-31",
    "stage": "discovery",
}
_WRITTEN_ONCE = ("id", "created_at", "updated_at")


@pytest.fixture(autouse=True)
def _postgresql_only(app: Any) -> None:
    if app.state.engine.dialect.name != "postgresql":
        pytest.skip("the one-statement creation is PostgreSQL's (SQLite takes the general path)")


def _flat(statement: Any) -> str:
    return " ".join(statement.sql.split()).upper()


def _creates(statement: Any) -> bool:
    return "NEW_DEAL AS (INSERT INTO DEAL" in _flat(statement)


def _changes(statement: Any) -> bool:
    return "CHANGED AS (UPDATE DEAL" in _flat(statement)


def _authenticates(statement: Any) -> bool:
    """The read that finds the caller's member and the deal together."""
    flat = _flat(statement)
    return "FROM API_KEY JOIN MEMBER" in flat and "LATERAL" in flat


def _sql(statements: list[Any]) -> list[str]:
    return [_flat(s)[:40] for s in statements]


async def test_a_sellers_new_deal_is_authentication_and_one_statement(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seller = team["seller"]
    seen = record_statements(app, monkeypatch)
    created = await api.as_(seller).post("/v1/deals", json={**BODY, "owner_id": seller.id})
    assert created.status_code == 201, created.text
    assert len(seen) == 2, _sql(seen)
    assert [s.via for s in seen] == ["asyncpg", "asyncpg"]
    assert _creates(seen[1]), _sql(seen)
    assert not any(s.sql.strip().upper() in ("BEGIN", "COMMIT") for s in seen)


async def test_a_manager_creating_for_the_line_adds_the_owner_lookup(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = record_statements(app, monkeypatch)
    created = await api.as_(team["manager"]).post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})
    assert created.status_code == 201, created.text
    assert len(seen) == 3, _sql(seen)
    # Outside the line, and a member who is not a seller: refused, and nothing written.
    del seen[:]
    outside = await api.as_(team["manager"]).post("/v1/deals", json={**BODY, "owner_id": team["outsider"].id})
    assert_problem(outside, 403, "forbidden")
    not_seller = await api.as_(team["hos"]).post("/v1/deals", json={**BODY, "owner_id": team["manager"].id})
    assert_problem(not_seller, 422, "owner_must_be_seller")
    assert not any("INSERT" in s.sql.upper() for s in seen), _sql(seen)
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["owner_id"] for d in listed.json()["items"]] == [team["seller"].id]


async def test_it_writes_what_the_general_path_writes(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The same request through both paths: the same response but for the deal's id and times,
    the same deal.created event, numbered next in the feed."""
    seller = api.as_(team["seller"])
    results = []
    for _, path in _both_paths(monkeypatch):
        with path:
            for stage in ("discovery", "closed_won"):
                created = await seller.post("/v1/deals", json={**BODY, "stage": stage, "owner_id": team["seller"].id})
                assert created.status_code == 201, created.text
                assert created.headers["location"] == f"/v1/deals/{created.json()['id']}"
                assert created.headers["etag"] == '"1"'
                assert created.content == DealPublic.model_validate_json(created.content).model_dump_json().encode()
                history = await seller.get(f"/v1/deals/{created.json()['id']}/history")
                (event,) = history.json()["items"]
                read = await seller.get(f"/v1/deals/{created.json()['id']}")
                assert read.json() == created.json()
                results.append((_without(created.json(), *_WRITTEN_ONCE, "closed_at"), _event(event)))
    alone_results, general_results = results[:2], results[2:]
    assert alone_results == general_results
    feed = (await api.as_(team["hos"]).get("/v1/events", params={"type": "deal.created"})).json()["items"]
    assert [e["seq"] for e in feed] == sorted(e["seq"] for e in feed)
    assert len({e["seq"] for e in feed}) == 4
    won = [d for d in (await api.as_(team["hos"]).get("/v1/deals")).json()["items"] if d["stage"] == "closed_won"]
    assert len(won) == 2 and all(d["closed_at"] is not None for d in won)


async def test_an_idempotent_new_deal_is_written_in_the_claims_transaction(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seller = api.as_(team["seller"])
    seen = record_statements(app, monkeypatch)
    body = {**BODY, "owner_id": team["seller"].id}
    first = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "hot-1"})
    assert first.status_code == 201, first.text
    # The claim's transaction: SQLAlchemy opens it with the caller, its turn and the claim in one
    # statement; the deal and the stored response go on the driver, one statement each.
    work = [(s.via, _flat(s)[:30]) for s in seen if not _flat(s).startswith(("BEGIN", "COMMIT"))]
    assert work == [
        ("sqlalchemy", "WITH ME AS (SELECT API_KEY.ID "),
        ("asyncpg", "WITH DELIVERIES AS (SELECT WAN"),
        ("asyncpg", "WITH COMPLETED AS (UPDATE IDEM"),
    ], work
    again = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "hot-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["id"] for d in listed.json()["items"]] == [first.json()["id"]]


def _both_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[bool, AbstractContextManager[pytest.MonkeyPatch]]]:
    """The one-statement path, then the general path (the deal writes unavailable)."""
    yield True, monkeypatch.context()
    yield False, _general_path(monkeypatch)


@contextmanager
def _general_path(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    with monkeypatch.context() as patched:
        patched.setattr(DealWrites, "__init__", _unavailable(DealWrites.__init__))
        yield patched


def _unavailable(init: Any) -> Any:
    def unavailable(self: DealWrites, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.available = False

    return unavailable


def _without(document: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in names}


def _event(event: dict[str, Any]) -> dict[str, Any]:
    data = _without(event["data"], "owner_id")
    return {"type": event["type"], "actor_id": event["actor_id"], "subject_type": event["subject_type"], "data": data}


async def test_an_owners_change_is_a_read_and_one_statement(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The read that starts the change authenticates the caller too: two round trips in all."""
    seller = api.as_(team["seller"])
    deal = (await seller.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
    seen = record_statements(app, monkeypatch)
    changed = await seller.patch(
        f"/v1/deals/{deal['id']}",
        json={"name": "Globex renewal 2027", "stage": "proposal"},
        headers={"If-Match": '"1"'},
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["etag"] == '"2"'
    assert changed.content == DealPublic.model_validate_json(changed.content).model_dump_json().encode()
    assert len(seen) == 2, _sql(seen)
    assert [s.via for s in seen] == ["asyncpg"] * 2
    assert _authenticates(seen[0]) and _changes(seen[1]), _sql(seen)
    # A stale If-Match is refused after the read, with nothing written.
    del seen[:]
    stale = await seller.patch(f"/v1/deals/{deal['id']}", json={"name": "Stale"}, headers={"If-Match": '"1"'})
    assert_problem(stale, 412, "version_conflict")
    assert len(seen) == 1 and not any(_changes(s) for s in seen), _sql(seen)
    assert (await seller.get(f"/v1/deals/{deal['id']}")).json()["name"] == "Globex renewal 2027"


async def test_a_change_authenticates_once_on_every_path(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An unknown key is refused by the read, with nothing more sent; a caller who does not own the
    deal, an unknown deal and another organisation's deal take the general path as the member the
    read found, without authenticating again."""
    deal = (await api.as_(team["seller"]).post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
    seen = record_statements(app, monkeypatch)
    unknown = await api.as_("dc_" + "0" * 40).patch(f"/v1/deals/{deal['id']}", json={"name": "X"})
    assert_problem(unknown, 401, "unauthenticated")
    assert len(seen) == 1 and _authenticates(seen[0]), _sql(seen)
    for who, path, status in (
        ("manager", f"/v1/deals/{deal['id']}", 200),  # the owner's manager: the general path's rules
        ("outsider", f"/v1/deals/{deal['id']}", 404),  # a seller who cannot see it
        ("seller", f"/v1/deals/{uuid.uuid4()}", 404),  # no such deal
    ):
        del seen[:]
        response = await api.as_(team[who]).patch(path, json={"account_name": f"Globex ({who})"})
        assert response.status_code == status, (who, response.text)
        assert sum("API_KEY" in _flat(s) for s in seen) == 1 and _authenticates(seen[0]), (who, _sql(seen))
    other = await bootstrap(app, name="Globex", email="root@globex.test")
    del seen[:]
    foreign = await api.as_(other.admin_key).patch(f"/v1/deals/{deal['id']}", json={"name": "Theirs"})
    assert_problem(foreign, 404, "not_found")
    assert sum("API_KEY" in _flat(s) for s in seen) == 1, _sql(seen)
    read = (await api.as_(team["seller"]).get(f"/v1/deals/{deal['id']}")).json()
    assert (read["name"], read["account_name"], read["version"]) == (BODY["name"], "Globex (manager)", 2)


async def test_a_change_writes_what_the_general_path_writes(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seller = api.as_(team["seller"])
    results = []
    for _, path in _both_paths(monkeypatch):
        with path:
            deal = (await seller.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
            steps = [
                {"amount": {"amount": "52000.00", "currency": "EUR"}, "expected_close_date": None},
                {"stage": "negotiation", "account_name": "Globex Corp"},
                {"stage": "closed_won"},
                {"name": "After the win"},  # a closed deal takes only a reopen
                {"stage": "closed_won"},  # nothing changes: no event, same version
            ]
            answers = []
            for step in steps:
                response = await seller.patch(f"/v1/deals/{deal['id']}", json=step)
                answers.append(
                    (response.status_code, _without(response.json(), *_WRITTEN_ONCE, "closed_at", "instance"))
                )
            history = (await seller.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
            final = (await seller.get(f"/v1/deals/{deal['id']}")).json()
            assert final["closed_at"] is not None
            results.append((answers, [_event(e) for e in history]))
    assert results[0] == results[1]
    statuses = [status for status, _ in results[0][0]]
    assert statuses == [200, 200, 200, 409, 200]


async def test_a_deal_changed_since_it_was_read_takes_the_general_path(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The one statement writes only at the version it read: a change that lands between the read
    and the write leaves it writing nothing, and the general path applies the request on top."""
    seller = api.as_(team["seller"])
    deal = (await seller.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
    read = DealWrites.deal_of_caller
    raced = False

    async def read_then_race(self: DealWrites, credential: Any, deal_id: Any) -> Any:
        nonlocal raced
        row = await read(self, credential, deal_id)
        if not raced:
            raced = True
            other = await api.as_(team["manager"]).patch(f"/v1/deals/{deal['id']}", json={"account_name": "Globex AG"})
            assert other.status_code == 200, other.text
        return row

    monkeypatch.setattr(DealWrites, "deal_of_caller", read_then_race)
    changed = await seller.patch(f"/v1/deals/{deal['id']}", json={"name": "Raced"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["account_name"], changed.json()["version"]) == (
        "Raced",
        "Globex AG",
        3,
    )
    history = (await seller.get(f"/v1/deals/{deal['id']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [
        ("deal.created", team["seller"].id),
        ("deal.updated", team["manager"].id),
        ("deal.updated", team["seller"].id),
    ]


async def _endpoint(api: Api, name: str, event_types: list[str]) -> str:
    created = await api.post(
        "/v1/webhook-endpoints", json={"url": f"https://93.184.216.34/{name}", "event_types": event_types}
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _deliveries(app: Any, deal_id: str, names: dict[str, str]) -> list[tuple[str, str, int, str]]:
    """The deal's deliveries: (endpoint, event type, seq after the deal's first event, status)."""
    async with app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.text(
                    "SELECT endpoint_id, event_type, event_seq, status FROM webhook_delivery"
                    " WHERE deal_id = :deal ORDER BY event_seq, endpoint_id"
                ),
                {"deal": uuid.UUID(deal_id)},
            )
        ).all()
    first = min(row.event_seq for row in rows)
    return [(names[str(r.endpoint_id)], r.event_type, r.event_seq - first, r.status) for r in rows]


async def test_the_outbox_goes_in_the_same_statement(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """With endpoints, the one statement writes the deliveries too: the same rows the general path
    writes, each event to each endpoint that takes it, once."""
    names = {
        await _endpoint(api, "all", ["*"]): "all",
        await _endpoint(api, "deals", ["deal.*", "*"]): "deals",
        await _endpoint(api, "stages", ["deal.stage_changed"]): "stages",
    }
    seller = api.as_(team["seller"])
    results = []
    for alone, path in _both_paths(monkeypatch):
        with path as patched:
            seen = record_statements(app, patched)
            deal = (await seller.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
            changed = await seller.patch(f"/v1/deals/{deal['id']}", json={"name": "Renamed", "stage": "proposal"})
            assert changed.status_code == 200, changed.text
            if alone:
                assert len(seen) == 2 + 2 and _creates(seen[1]) and _changes(seen[3]), _sql(seen)
        results.append(await _deliveries(app, deal["id"], names))
    assert results[0] == results[1]
    assert results[0] == [
        ("all", "deal.created", 0, "pending"),
        ("deals", "deal.created", 0, "pending"),
        ("all", "deal.updated", 1, "pending"),
        ("deals", "deal.updated", 1, "pending"),
        ("all", "deal.stage_changed", 2, "pending"),
        ("deals", "deal.stage_changed", 2, "pending"),
        ("stages", "deal.stage_changed", 2, "pending"),
    ]


async def test_more_deliveries_than_one_statement_carries_take_the_general_path(
    app, api: Api, team, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    names = {await _endpoint(api, name, ["deal.stage_changed"]): name for name in ("one", "two")}
    monkeypatch.setattr(deal_writes, "DELIVERY_SLOTS", 1)
    seller = api.as_(team["seller"])
    deal = (await seller.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})).json()
    seen = record_statements(app, monkeypatch)
    changed = await seller.patch(f"/v1/deals/{deal['id']}", json={"stage": "proposal"})
    assert changed.status_code == 200, changed.text
    assert len(seen) > 2 and _changes(seen[1]), _sql(seen)  # tried, wrote nothing, then the general path
    assert await _deliveries(app, deal["id"], names) == [
        ("one", "deal.stage_changed", 0, "pending"),
        ("two", "deal.stage_changed", 0, "pending"),
    ]
