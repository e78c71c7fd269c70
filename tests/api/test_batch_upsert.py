"""Batch upsert, set-based: a batch means exactly what its records mean upserted one by one
(outcomes, problems, deals, versions, reviews, events in order, outbox rows), in a number of
statements that does not grow with the records."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from app.schemas.deals import DealBatchResults
from app.settings import Settings
from tests.conftest import settings_for
from tests.helpers import Api, Person
from tests.statements import record_statements


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Private webhook URLs allowed: the batches' events must reach the outbox like any other.
    return settings_for(database_url, webhooks_allow_private=True)


def _deal(owner: Person, n: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"Deal {n}",
        "account_name": f"Account {n}",
        "owner_id": owner.id,
        "amount": {"amount": "5000.00", "currency": "USD"},
        "stage": "qualification",
        **extra,
    }


async def _existing(api: Api, team: dict[str, Person], source: str) -> None:
    """The deals the records find already there, under ``source``."""
    crm = api.as_(team["integration"])
    seller, peer, outsider = team["seller"], team["peer"], team["outsider"]
    lost = {"stage": "closed_lost", "loss": {"reason_code": "price"}}
    for ref, body in {
        "E1": _deal(seller, "E1"),
        "E2": _deal(peer, "E2", stage="proposal"),
        "E3": _deal(outsider, "E3", stage="prospecting"),
        "E4": _deal(seller, "E4", **lost),
        "E5": _deal(seller, "E5", stage="closed_won"),
    }.items():
        response = await crm.put(f"/v1/deals/by-external-ref/{source}/{ref}", json=body)
        assert response.status_code == 201, response.text
    refs = [{"source": source, "external_id": "E6"}, {"source": source, "external_id": "E6-alt"}]
    response = await api.post("/v1/deals", json=_deal(seller, "E6", external_refs=refs))
    assert response.status_code == 201, response.text


def _records(team: dict[str, Person]) -> list[tuple[str, dict[str, Any]]]:
    """(external id, fields): creations, updates, no-ops, a refusal of each kind, references
    named twice (and one deal named by two references), transfers, losses, reopenings."""
    seller, peer, manager, outsider = team["seller"], team["peer"], team["manager"], team["outsider"]
    lost = {"stage": "closed_lost", "loss": {"reason_code": "price"}}
    return [
        ("N1", _deal(seller, "N1")),
        ("N1", {"amount": {"amount": "7000", "currency": "USD"}}),
        ("N1", {"amount": {"amount": "7000.00", "currency": "USD"}, "name": "Deal N1"}),
        ("N2", _deal(manager, "N2")),
        ("N3", {"name": "No owner"}),
        ("N4", _deal(seller, "N4", stage="closed_lost")),
        ("N5", _deal(seller, "N5", loss={"reason_code": "price"})),
        ("N6", _deal(seller, "N6", stage="closed_lost", loss={"reason_code": "astrology"})),
        ("N7", _deal(seller, "N7", **lost)),
        ("E1", {"owner_id": peer.id}),
        ("E1", {"owner_id": peer.id, "transfer_reason": "Territory change"}),
        ("E1", {"stage": "negotiation", "name": "Renamed E1"}),
        ("E5", {"name": "Renamed after winning"}),
        ("E4", {"stage": "negotiation"}),
        ("E4", {"stage": "closed_lost", "loss": {"reason_code": "competitor", "competitor": "Globex"}}),
        ("E3", {"name": "Renamed E3"}),
        ("N8", _deal(outsider, "N8")),
        ("E6", {"name": "Renamed E6"}),
        ("E6-alt", {"amount": {"amount": "9000", "currency": "EUR"}}),
        ("N7", {"stage": "discovery"}),
        ("N7", {"stage": "closed_lost", "loss": {"reason_code": "timing", "detail": "Next year"}}),
        ("E2", {"owner_id": manager.id, "transfer_reason": "Manager takes over"}),
        ("E2", {"stage": "closed_won"}),
        ("E2", {"name": "Renamed after winning"}),
        ("N1", {"loss": {"reason_code": "price"}}),
        ("N1", {"expected_close_date": "2027-03-31", "amount": None}),
    ]


async def _last_seq(api: Api) -> int:
    seq, cursor = 0, None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/events", params=params)).json()
        seq = max([seq, *(e["seq"] for e in page["items"])])
        cursor = page["next_cursor"]
        if cursor is None:
            return seq


async def _events_after(api: Api, after_seq: int) -> list[dict[str, Any]]:
    events, cursor = [], None
    while True:
        params: dict[str, Any] = {"after_seq": after_seq, "limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/events", params=params)).json()
        events += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


async def _deal_ids(api: Api, source: str) -> dict[str, str]:
    """External id -> deal id, for the deals with a reference under ``source``."""
    found: dict[str, str] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/deals", params=params)).json()
        for deal in page["items"]:
            for ref in deal["external_refs"]:
                if ref["source"] == source:
                    found[ref["external_id"]] = deal["id"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def _same_refs(data: Any, source: str) -> Any:
    """Event data with the references' source written as "x" (the two runs differ only there)."""
    if isinstance(data, dict):
        return {k: ("x" if k == "source" and v == source else _same_refs(v, source)) for k, v in data.items()}
    if isinstance(data, list):
        return [_same_refs(v, source) for v in data]
    return data


async def _state(api: Api, source: str, after_seq: int, upto_seq: int | None) -> dict[str, Any]:
    """What the records left under ``source``: deals, reviews, the events in feed order."""
    ids = await _deal_ids(api, source)
    keys = {deal_id: key for key, deal_id in ids.items()}
    deals = {}
    for key, deal_id in ids.items():
        deal = (await api.get(f"/v1/deals/{deal_id}")).json()
        deal["closed"] = deal.pop("closed_at") is not None
        deal["reviewed"] = deal.pop("review_id") is not None  # each run's own review
        for name in ("id", "created_at", "updated_at"):
            del deal[name]
        deals[key] = _same_refs(deal, source)
    events, reviews = [], {}
    for event in await _events_after(api, after_seq):
        if event["deal_id"] not in keys or (upto_seq is not None and event["seq"] > upto_seq):
            continue
        data = _same_refs(event["data"], source)
        if event["type"] == "review.opened":
            assert data.pop("due_on")  # a date from the deal's closing day: the runs may straddle midnight
            reviews[keys[event["deal_id"]]] = event["subject_id"]
        key = keys[event["deal_id"]]
        events.append((key, event["type"], event["actor_id"], event["subject_type"], data, event["id"]))
    for key, review_id in reviews.items():
        review = (await api.get(f"/v1/closed-lost-reviews/{review_id}")).json()
        reviews[key] = {
            name: review[name]
            for name in ("status", "deal_reopened", "version", "loss_reason_code", "competitor", "owner_id")
        } | {"reviewer_id": review["reviewer_id"], "suggested_skills": review["suggested_skills"]}
    return {"deals": deals, "reviews": reviews, "events": events}


@pytest.mark.parametrize("actor", ["integration", "manager"])
async def test_a_batch_means_what_its_records_mean_one_by_one(api: Api, team, actor: str) -> None:
    """The same records, once as a batch and once as one upsert each (PUT by external
    reference, the per-record path), give the same outcomes, problems, deals, versions,
    reviews, events in the same order, and outbox rows."""
    endpoint = await api.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/in", "event_types": ["*"]})
    assert endpoint.status_code == 201, endpoint.text
    await _existing(api, team, "batch")
    await _existing(api, team, "one")
    records = _records(team)
    caller = api.as_(team[actor])

    start = await _last_seq(api)
    body = {"records": [{"source": "batch", "external_id": key, **fields} for key, fields in records]}
    response = await caller.post("/v1/deals/batch-upsert", json=body)
    assert response.status_code == 200, response.text
    batched = [
        (
            r["outcome"],
            None if r["problem"] is None else (r["problem"]["status"], r["problem"]["code"], r["problem"]["detail"]),
        )
        for r in response.json()["results"]
    ]
    assert [r["index"] for r in response.json()["results"]] == list(range(len(records)))
    middle = await _last_seq(api)

    versions = {key: deal["version"] for key, deal in (await _state(api, "one", 0, None))["deals"].items()}
    one_by_one = []
    for key, fields in records:
        answer = await caller.put(f"/v1/deals/by-external-ref/one/{key}", json=fields)
        if answer.status_code >= 400:
            problem = answer.json()
            one_by_one.append(("error", (problem["status"], problem["code"], problem["detail"])))
            continue
        deal = answer.json()
        outcome = "created" if answer.status_code == 201 else "updated"
        if answer.status_code == 200 and deal["version"] == versions.get(key):
            outcome = "unchanged"
        for ref in deal["external_refs"]:  # one deal may answer to several references
            versions[ref["external_id"]] = deal["version"]
        one_by_one.append((outcome, None))

    assert batched == one_by_one
    codes = {problem[1] for _, problem in batched if problem is not None}
    expected = {
        "owner_must_be_seller",
        "validation_error",
        "loss_reason_required",
        "loss_requires_closed_lost",
        "unknown_loss_reason",
        "transfer_reason_required",
        "deal_closed",
    }
    assert expected <= codes, codes
    assert {outcome for outcome, _ in batched} == {"created", "updated", "unchanged", "error"}
    assert ("not_found" in codes and "forbidden" in codes) == (actor == "manager")

    batch_state = await _state(api, "batch", start, middle)
    one_state = await _state(api, "one", middle, None)
    batch_event_ids = [event.pop() for event in map(list, batch_state["events"])]
    assert batch_state["deals"] == one_state["deals"]
    assert batch_state["reviews"] == one_state["reviews"]
    assert [e[:-1] for e in batch_state["events"]] == [e[:-1] for e in one_state["events"]]
    assert "review.opened" in {e[1] for e in batch_state["events"]}
    if actor == "manager":
        assert "review.deal_reopened" in {e[1] for e in batch_state["events"]}

    # Each event of the batch went to the outbox, as every event does.
    deliveries, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await api.get(f"/v1/webhook-endpoints/{endpoint.json()['id']}/deliveries", params=params)).json()
        deliveries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(batch_event_ids) <= {d["event_id"] for d in deliveries}
    assert len({d["event_id"] for d in deliveries}) == len(deliveries)


async def test_the_results_are_the_bytes_that_the_results_model_renders(api: Api, team) -> None:
    """The results are rendered as plain data and serialised once: the bytes are those of
    DealBatchResults, for every kind of result and problem, and for any text a record sends back."""
    odd = 'Ré\u2028\u00a0"\\/\t\u0001 ☃ \U0001f600'
    records: list[Any] = [
        {"source": "crm", "external_id": "R1", **_deal(team["seller"], "R1")},
        {"source": "crm", "external_id": "R1", "amount": {"amount": "12.5", "currency": "EUR"}},
        {"source": "crm", "external_id": "R1", "name": "Deal R1"},
        {"source": "crm", "external_id": odd, "name": odd, "account_name": "x", "owner_id": team["seller"].id},
        {"source": "crm", "external_id": f"x{odd}", "name": "x", odd: 1, "version": 3, "amount": 12},
        {"source": 7, "external_id": ["x"]},
        {"source": "crm", "external_id": "R2", "name": "No owner"},
        {"source": "crm", "external_id": "R3", **_deal(team["manager"], "R3")},
        {"source": "crm", "external_id": "R4", **_deal(team["seller"], "R4", loss={"reason_code": "price"})},
    ]
    response = await api.as_(team["integration"]).post("/v1/deals/batch-upsert", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.content == DealBatchResults.model_validate(response.json()).model_dump_json().encode()
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["created", "updated", "unchanged", *["error"] * 6]
    problems = [r["problem"] for r in results[3:]]
    assert [p["code"] for p in problems] == [
        "validation_error",
        "validation_error",
        "validation_error",
        "validation_error",
        "owner_must_be_seller",
        "loss_requires_closed_lost",
    ]
    assert problems[-1]["errors"] is None and problems[1]["errors"]
    assert (results[4]["source"], results[4]["external_id"], results[5]["source"]) == ("crm", f"x{odd}", None)


def _sized_batch(team: dict[str, Person], tag: str, size: int) -> list[dict[str, Any]]:
    """A batch of ``size`` records of every kind: creations (one lost), an update, a loss, a
    reopening, a no-op and a refusal, against the deals ``tag`` set up."""
    seller = team["seller"]
    records = [
        {"source": "crm", "external_id": f"{tag}-open", "name": "Updated"},
        {"source": "crm", "external_id": f"{tag}-lose", "stage": "closed_lost", "loss": {"reason_code": "price"}},
        {"source": "crm", "external_id": f"{tag}-lost", "stage": "negotiation"},
        {"source": "crm", "external_id": f"{tag}-same", "name": f"Deal {tag}-same"},
        {"source": "crm", "external_id": f"{tag}-bad", **_deal(team["manager"], "bad")},
        {
            "source": "crm",
            "external_id": f"{tag}-new-lost",
            **_deal(seller, "x", stage="closed_lost", loss={"reason_code": "timing"}),
        },
    ]
    records += [
        {
            "source": "crm",
            "external_id": f"{tag}-new-{n}",
            **_deal(seller, f"{tag}-{n}", expected_close_date="2027-01-31"),
        }
        for n in range(size - len(records))
    ]
    return records


async def test_a_batch_sends_as_many_statements_for_200_records_as_for_10(app, monkeypatch, api: Api, team) -> None:
    """Set-based: one statement per kind of read and write, not per record."""
    endpoint = await api.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/in", "event_types": ["deal.*"]})
    assert endpoint.status_code == 201, endpoint.text
    head = api.as_(team["hos"])  # sees and may reopen every deal
    seller = team["seller"]
    setup = [
        {"source": "crm", "external_id": f"{tag}-{kind}", **_deal(seller, f"{tag}-{kind}", **extra)}
        for tag in ("small", "large")
        for kind, extra in (
            ("open", {}),
            ("lose", {}),
            ("same", {}),
            ("lost", {"stage": "closed_lost", "loss": {"reason_code": "no_budget"}}),
        )
    ]
    assert (await head.post("/v1/deals/batch-upsert", json={"records": setup})).status_code == 200

    counts, outcomes = {}, {}
    for tag, size in (("small", 10), ("large", 200)):
        statements = record_statements(app, monkeypatch)
        response = await head.post("/v1/deals/batch-upsert", json={"records": _sized_batch(team, tag, size)})
        assert response.status_code == 200, response.text
        counts[tag] = len(statements)
        results = response.json()["results"]
        outcomes[tag] = [r["outcome"] for r in results[:7]] + sorted({r["outcome"] for r in results[7:]})
        monkeypatch.undo()
    assert (
        outcomes["small"]
        == outcomes["large"]
        == [
            "updated",
            "updated",
            "updated",
            "unchanged",
            "error",
            "created",
            "created",
            "created",
        ]
    )
    assert counts["small"] == counts["large"], counts
    assert counts["large"] <= 30, counts


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_reference_created_meanwhile_by_another_transaction_is_reported_taken(
    api: Api, team, database_url: str
) -> None:
    """A reference the batch creates, which another transaction creates after the batch read its
    references and commits first: the batch's deal for it goes, and every record that named it
    is reported external_ref_taken (409), as a lone upsert losing that race is; the rest stands."""
    crm, seller = api.as_(team["integration"]), team["seller"]
    org_id = (await api.get("/v1/me")).json()["organization_id"]
    start = await _last_seq(api)
    other = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        raced = uuid.uuid4()
        transaction = other.transaction()
        await transaction.start()
        await other.execute(
            "INSERT INTO deal (id, organization_id, name, account_name, stage, owner_id, version, created_at, updated_at)"
            " VALUES ($1, $2, 'Raced', 'Elsewhere', 'prospecting', $3, 1, now(), now())",
            raced,
            uuid.UUID(org_id),
            uuid.UUID(seller.id),
        )
        await other.execute(
            "INSERT INTO deal_external_ref (id, organization_id, deal_id, source, external_id)"
            " VALUES ($1, $2, $3, 'crm', 'RACE')",
            uuid.uuid4(),
            uuid.UUID(org_id),
            raced,
        )
        records = [
            {"source": "crm", "external_id": "RACE", **_deal(seller, "race")},
            {"source": "crm", "external_id": "FINE", **_deal(seller, "fine")},
            {"source": "crm", "external_id": "RACE", "name": "Renamed"},
        ]
        batch = asyncio.ensure_future(crm.post("/v1/deals/batch-upsert", json={"records": records}))
        for _ in range(200):  # until the batch waits for the other transaction's reference
            waiting = await other.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if waiting or batch.done():
                break
            await asyncio.sleep(0.02)
        assert waiting and not batch.done()
        await transaction.commit()
        response = await batch
    finally:
        await other.close()
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["outcome"] for r in results] == ["error", "created", "error"]
    assert [r["problem"]["code"] for r in (results[0], results[2])] == ["external_ref_taken"] * 2
    assert results[0]["problem"]["status"] == 409
    deals = {d["name"]: d for d in (await api.get("/v1/deals", params={"limit": 200})).json()["items"]}
    assert "Deal race" not in deals and "Renamed" not in deals
    assert deals["Raced"]["version"] == 1 and deals["Deal fine"]["id"] == results[1]["deal_id"]
    events = await _events_after(api, start)
    assert [(e["type"], e["deal_id"]) for e in events] == [("deal.created", results[1]["deal_id"])]
