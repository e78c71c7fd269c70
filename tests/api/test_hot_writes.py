"""The hot write: on PostgreSQL a new deal with no external reference and no loss is written with
its `deal.created` event in one statement, outside any transaction of its own (the caller's
authentication is the only other statement). What it writes is what the general path writes; an
organisation with an endpoint that takes `deal.created` gets the general path and its outbox."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from app.db.repositories import deal_writes, idempotency
from app.db.repositories.deal_writes import DealWrites
from app.domain.api_keys import hash_key
from app.http.idempotency import fingerprint
from app.schemas.deals import DealPublic
from tests.conftest import bootstrap
from tests.helpers import Api, assert_problem
from tests.pg import pg_exec_on
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


def _creates_as_owner(statement: Any) -> bool:
    """The statement that finds the caller and writes the deal when the caller is its owner."""
    return _creates(statement) and "AS AS_OWNER" in _flat(statement) and "FROM API_KEY JOIN MEMBER" in _flat(statement)


async def test_a_sellers_new_deal_is_one_statement(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The statement that authenticates the seller writes their deal: one round trip, its own
    transaction."""
    seller = team["seller"]
    seen = record_statements(app, monkeypatch)
    created = await api.as_(seller).post("/v1/deals", json={**BODY, "owner_id": seller.id})
    assert created.status_code == 201, created.text
    assert [s.via for s in seen] == ["asyncpg"] and _creates_as_owner(seen[0]), _sql(seen)
    assert not any(s.sql.strip().upper().rstrip(";") in ("BEGIN", "COMMIT") for s in seen)
    read = await api.as_(seller).get(created.headers["location"])
    assert read.json() == created.json()
    history = (await api.as_(seller).get(f"{created.headers['location']}/history")).json()["items"]
    assert [(e["type"], e["actor_id"]) for e in history] == [("deal.created", seller.id)]


async def test_an_unknown_key_writes_nothing_and_is_401_first(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    unknown = api.as_("dc_00000000_" + "x" * 43)
    seen = record_statements(app, monkeypatch)
    refused = await unknown.post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})
    assert_problem(refused, 401, "unauthenticated")
    assert len(seen) == 1 and _creates_as_owner(seen[0]), _sql(seen)
    # A deal that breaks a rule (lost with no loss) is not tried as the caller's own: the caller is
    # authenticated first, and an unknown one is still 401 before the rule's 422.
    lost = {**BODY, "owner_id": team["seller"].id, "stage": "closed_lost"}
    assert_problem(await unknown.post("/v1/deals", json=lost), 401, "unauthenticated")
    assert_problem(await api.as_(team["seller"]).post("/v1/deals", json=lost), 422, "loss_reason_required")
    assert (await api.as_(team["hos"]).get("/v1/deals")).json()["items"] == []


async def test_a_caller_who_is_not_a_seller_owning_the_deal_writes_nothing_by_that_statement(
    app, api: Api, team, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Head of sales naming themself, or a seller naming a peer: the statement writes nothing and
    the caller it found goes the usual way (refused here), with no second authentication."""
    seen = record_statements(app, monkeypatch)
    own = await api.as_(team["hos"]).post("/v1/deals", json={**BODY, "owner_id": team["hos"].id})
    assert_problem(own, 422, "owner_must_be_seller")
    assert len(seen) == 1 and _creates_as_owner(seen[0]), _sql(seen)
    peer = await api.as_(team["seller"]).post("/v1/deals", json={**BODY, "owner_id": team["peer"].id})
    assert_problem(peer, 403, "forbidden")
    assert (await api.as_(team["hos"]).get("/v1/deals")).json()["items"] == []


async def test_a_manager_creating_for_the_line_adds_the_owner_lookup(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen = record_statements(app, monkeypatch)
    created = await api.as_(team["manager"]).post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})
    assert created.status_code == 201, created.text
    assert len(seen) == 3 and _creates_as_owner(seen[0]) and _creates(seen[2]), _sql(seen)
    # Outside the line, and a member who is not a seller: refused, and nothing written.
    del seen[:]
    outside = await api.as_(team["manager"]).post("/v1/deals", json={**BODY, "owner_id": team["outsider"].id})
    assert_problem(outside, 403, "forbidden")
    not_seller = await api.as_(team["hos"]).post("/v1/deals", json={**BODY, "owner_id": team["manager"].id})
    assert_problem(not_seller, 422, "owner_must_be_seller")
    assert [s for s in seen if "INSERT" in s.sql.upper() and not _creates_as_owner(s)] == [], _sql(seen)
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["owner_id"] for d in listed.json()["items"]] == [team["seller"].id]


async def test_a_sellers_new_deal_whose_deliveries_do_not_fit_takes_the_general_path(
    app, api: Api, team, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    names = {await _endpoint(api, name, ["deal.created"]): name for name in ("one", "two")}
    monkeypatch.setattr(deal_writes, "DELIVERY_SLOTS", 1)
    seen = record_statements(app, monkeypatch)
    created = await api.as_(team["seller"]).post("/v1/deals", json={**BODY, "owner_id": team["seller"].id})
    assert created.status_code == 201, created.text
    assert _creates_as_owner(seen[0]) and "COMMIT" in _transactions(seen), _sql(seen)
    assert await _deliveries(app, created.json()["id"], names) == [
        ("one", "deal.created", 0, "pending"),
        ("two", "deal.created", 0, "pending"),
    ]
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["id"] for d in listed.json()["items"]] == [created.json()["id"]]


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


def _stores_a_claim(statement: Any) -> bool:
    return "CLAIMED AS (INSERT INTO IDEMPOTENCY_KEY" in _flat(statement) and " AS STORED" in _flat(statement)


def _transactions(statements: list[Any]) -> list[str]:
    return [_flat(s).rstrip(";") for s in statements if _flat(s).startswith(("BEGIN", "COMMIT", "ROLLBACK"))]


async def test_an_idempotent_new_deal_is_written_by_the_statement_that_claims_its_key(
    app, api: Api, team, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The caller's authentication, then one statement, its own transaction: the key claimed with
    the response, the deal, its event. The retry replays that response byte for byte, which is
    what a read of the deal shows, and writes nothing."""
    seller = api.as_(team["seller"])
    seen = record_statements(app, monkeypatch)
    body = {**BODY, "owner_id": team["seller"].id}
    first = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "hot-1"})
    assert first.status_code == 201, first.text
    assert len(seen) == 2 and _stores_a_claim(seen[1]) and _creates(seen[1]), _sql(seen)
    assert "FROM API_KEY JOIN MEMBER" in _flat(seen[0]) and not _transactions(seen)
    assert first.content == DealPublic.model_validate_json(first.content).model_dump_json().encode()
    read = await seller.get(first.headers["location"])
    assert read.json() == first.json() and read.headers["etag"] == first.headers["etag"] == '"1"'
    again = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "hot-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["id"] for d in listed.json()["items"]] == [first.json()["id"]]
    feed = await api.as_(team["hos"]).get("/v1/events", params={"type": "deal.created"})
    assert [e["deal_id"] for e in feed.json()["items"]] == [first.json()["id"]]
    other = await seller.post("/v1/deals", json={**body, "name": "Other"}, headers={"Idempotency-Key": "hot-1"})
    assert_problem(other, 422, "idempotency_key_reused")


async def test_an_idempotent_refusal_is_stored_by_one_statement(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A rule refused before anything is written: the key is claimed with the refusal, which the
    retry replays, in one statement."""
    hos = api.as_(team["hos"])
    body = {**BODY, "owner_id": team["manager"].id}
    seen = record_statements(app, monkeypatch)
    refused = await hos.post("/v1/deals", json=body, headers={"Idempotency-Key": "refused-1"})
    assert_problem(refused, 422, "owner_must_be_seller")
    assert [_stores_a_claim(s) for s in seen][-1:] == [True] and not _transactions(seen), _sql(seen)
    assert not any(_creates(s) for s in seen)
    again = await hos.post("/v1/deals", json=body, headers={"Idempotency-Key": "refused-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.status_code == 422 and again.content == refused.content


async def test_an_idempotent_deal_with_references_claims_its_key_first(app, api: Api, team, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The general path needs a transaction: its unit of work claims the key first and runs in
    the claim's transaction, which commits the deal with the response, once. A retry finds the
    key answered as the unit of work claims it, and is answered with the replay."""
    seller = api.as_(team["seller"])
    body = {**BODY, "owner_id": team["seller"].id, "external_refs": [{"source": "hubspot", "external_id": "h-1"}]}
    seen = record_statements(app, monkeypatch)
    first = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "refs-1"})
    assert first.status_code == 201, first.text
    assert _transactions(seen).count("COMMIT") == 1 and not any(_stores_a_claim(s) for s in seen), _sql(seen)
    seen.clear()
    again = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "refs-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.status_code == 201 and again.content == first.content
    assert "COMMIT" not in _transactions(seen), _sql(seen)
    other = await seller.post("/v1/deals", json={**body, "name": "Other"}, headers={"Idempotency-Key": "refs-1"})
    assert_problem(other, 422, "idempotency_key_reused")
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["external_refs"] for d in listed.json()["items"]] == [body["external_refs"]]


async def test_an_idempotent_deal_whose_deliveries_do_not_fit_claims_its_key_first(
    app, api: Api, team, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """More endpoints take `deal.created` than the statement carries: it claims nothing and writes
    nothing, and the request runs again with its key claimed first."""
    names = {await _endpoint(api, name, ["deal.created"]): name for name in ("one", "two")}
    monkeypatch.setattr(deal_writes, "DELIVERY_SLOTS", 1)
    seller = api.as_(team["seller"])
    body = {**BODY, "owner_id": team["seller"].id}
    seen = record_statements(app, monkeypatch)
    created = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "wide-1"})
    assert created.status_code == 201, created.text
    assert _stores_a_claim(seen[1]) and _transactions(seen).count("COMMIT") == 1, _sql(seen)
    assert await _deliveries(app, created.json()["id"], names) == [
        ("one", "deal.created", 0, "pending"),
        ("two", "deal.created", 0, "pending"),
    ]
    again = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "wide-1"})
    assert again.headers.get("idempotent-replayed") == "true" and again.content == created.content
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["id"] for d in listed.json()["items"]] == [created.json()["id"]]


async def test_idempotent_duplicates_at_once_write_one_deal(app, api: Api, team) -> None:  # type: ignore[no-untyped-def]
    seller = api.as_(team["seller"])
    body = {**BODY, "owner_id": team["seller"].id}
    responses = await asyncio.gather(
        *(seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "same"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} <= {201, 409}, [r.text for r in responses]
    created = [r for r in responses if r.status_code == 201]
    assert created and len({r.content for r in created}) == 1
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "idempotency_in_progress")
    listed = await api.as_(team["hos"]).get("/v1/deals")
    assert [d["id"] for d in listed.json()["items"]] == [created[0].json()["id"]]


async def test_an_idempotent_deal_in_flight_elsewhere_is_409(app, api: Api, team) -> None:  # type: ignore[no-untyped-def]
    seller = api.as_(team["seller"])
    body = {**BODY, "owner_id": team["seller"].id}
    fp = fingerprint("POST", "/v1/deals", "", json.dumps(body).encode())
    now = dt.datetime.now(dt.UTC)
    async with app.state.engine.begin() as conn:  # another worker claimed the key and is running the request
        caller, turn, claimed = await idempotency.claim(
            conn,
            hash_key(team["seller"].key),
            key="busy",
            fingerprint=fp,
            now=now,
            expires_at=now + dt.timedelta(hours=1),
        )
    assert caller is not None and turn and claimed
    response = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "busy"})
    assert_problem(response, 409, "idempotency_in_progress")
    assert (await api.as_(team["hos"]).get("/v1/deals")).json()["items"] == []


async def test_an_idempotent_deal_whose_claim_fails_is_not_written(app, api: Api, team, database_url: str) -> None:  # type: ignore[no-untyped-def]
    """The deal and its key are one statement: when storing the key fails (the database goes away
    at that moment), the answer is 503 and no deal is kept; a retry then writes it."""
    await pg_exec_on(
        database_url,
        """CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.key = 'doomed' THEN
                RAISE EXCEPTION 'connection lost' USING ERRCODE = '08006';
            END IF;
            RETURN NEW;
        END $$""",
        "CREATE TRIGGER refuse_claim BEFORE INSERT ON idempotency_key FOR EACH ROW EXECUTE FUNCTION refuse_claim()",
    )
    seller = api.as_(team["seller"])
    body = {**BODY, "owner_id": team["seller"].id}
    response = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "doomed"})
    assert_problem(response, 503, "database_unavailable")
    assert (await api.as_(team["hos"]).get("/v1/deals")).json()["items"] == []
    retried = await seller.post("/v1/deals", json=body, headers={"Idempotency-Key": "retried"})
    assert retried.status_code == 201, retried.text
    assert len((await api.as_(team["hos"]).get("/v1/deals")).json()["items"]) == 1


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
                assert len(seen) == 1 + 2 and _creates_as_owner(seen[0]) and _changes(seen[2]), _sql(seen)
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
