"""What an edit of a deal means (facts, stage, transfer, loss, nothing at all), the rules it must
pass, and the events it records: table tests on DealChange."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from app.domain.deals import (
    Access,
    DealChange,
    DealEdit,
    DealFacts,
    Loss,
    Stage,
    StageChange,
    ensure_can_change,
    ensure_new_deal,
    status_of,
)
from app.domain.errors import (
    DealClosed,
    DomainError,
    Forbidden,
    LossReasonRequired,
    LossRequiresClosedLost,
    MissingFields,
    TransferReasonRequired,
)
from app.domain.members import Actor, MemberRole
from app.domain.money import Money

R = MemberRole
OWNER_ID, PEER_ID = uuid.UUID(int=1), uuid.UUID(int=2)
CLOSE = dt.date(2026, 12, 31)
EUR = Money(1_250_000, "EUR")
PRICE = Loss("price", "Initech", "Too dear")

OPEN = DealFacts(
    name="Globex renewal",
    account_name="Globex",
    owner_id=OWNER_ID,
    stage=Stage.proposal,
    amount=EUR,
    expected_close_date=CLOSE,
)
LOST = replace(OPEN, stage=Stage.closed_lost, loss=PRICE)
WON = replace(OPEN, stage=Stage.closed_won)

OWNER = Access(is_owner=True, in_owner_line=False)
LINE = Access(is_owner=False, in_owner_line=True)
NONE = Access(is_owner=False, in_owner_line=False)


def actor(role: MemberRole) -> Actor:
    return Actor(
        member_id=uuid.uuid4(), organization_id=uuid.uuid4(), role=role, manager_id=None, api_key_id=uuid.uuid4()
    )


def change_of(before: DealFacts, edit: DealEdit) -> DealChange:
    change = DealChange.of(before, edit)
    assert change is not None
    return change


# --- what an edit changes -------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "edit"),
    [
        pytest.param(OPEN, DealEdit(), id="nothing sent"),
        pytest.param(OPEN, DealEdit(name=OPEN.name, account_name="Globex"), id="the same facts"),
        pytest.param(OPEN, DealEdit(amount=Money(1_250_000, "EUR")), id="the same amount"),
        pytest.param(OPEN, DealEdit(expected_close_date=CLOSE), id="the same close date"),
        pytest.param(OPEN, DealEdit(stage=Stage.proposal), id="the same stage"),
        pytest.param(OPEN, DealEdit(owner_id=OWNER_ID), id="the same owner"),
        pytest.param(OPEN, DealEdit(transfer_reason="Territory"), id="a reason without a transfer"),
        pytest.param(LOST, DealEdit(loss=PRICE), id="a CRM resending the recorded loss"),
        pytest.param(LOST, DealEdit(stage=Stage.closed_lost, loss=PRICE), id="resending the loss and its stage"),
        pytest.param(replace(OPEN, amount=None), DealEdit(amount=None), id="clearing an empty amount"),
    ],
)
def test_an_edit_that_changes_nothing_is_no_change(before: DealFacts, edit: DealEdit) -> None:
    assert DealChange.of(before, edit) is None


@pytest.mark.parametrize(
    ("edit", "facts"),
    [
        (DealEdit(name="Globex platform"), {"name": ("Globex renewal", "Globex platform")}),
        (DealEdit(account_name="Globex Inc"), {"account_name": ("Globex", "Globex Inc")}),
        (DealEdit(expected_close_date=None), {"expected_close_date": (CLOSE, None)}),
        (DealEdit(amount=Money(1_300_000, "EUR")), {"amount_minor": (1_250_000, 1_300_000)}),
        (DealEdit(amount=Money(1_250_000, "USD")), {"currency": ("EUR", "USD")}),
        (DealEdit(amount=None), {"amount_minor": (1_250_000, None), "currency": ("EUR", None)}),
        (
            DealEdit(amount=Money(1500, "JPY"), name="Globex JP"),
            {"name": ("Globex renewal", "Globex JP"), "amount_minor": (1_250_000, 1500), "currency": ("EUR", "JPY")},
        ),
    ],
)
def test_fact_changes(edit: DealEdit, facts: dict[str, tuple[Any, Any]]) -> None:
    change = change_of(OPEN, edit)
    assert change.facts == facts
    assert change.stage is None and not change.transfers and change.loss is None


@pytest.mark.parametrize(
    ("before", "edit", "stage", "loss_after"),
    [
        pytest.param(OPEN, DealEdit(stage=Stage.negotiation), StageChange(Stage.proposal, Stage.negotiation), None),
        pytest.param(OPEN, DealEdit(stage=Stage.closed_won), StageChange(Stage.proposal, Stage.closed_won), None),
        pytest.param(
            OPEN,
            DealEdit(stage=Stage.closed_lost, loss=PRICE),
            StageChange(Stage.proposal, Stage.closed_lost),
            PRICE,
            id="losing records the loss",
        ),
        pytest.param(
            LOST,
            DealEdit(stage=Stage.negotiation),
            StageChange(Stage.closed_lost, Stage.negotiation),
            None,
            id="reopening clears the loss",
        ),
        pytest.param(WON, DealEdit(stage=Stage.discovery), StageChange(Stage.closed_won, Stage.discovery), None),
    ],
)
def test_stage_changes(before: DealFacts, edit: DealEdit, stage: StageChange, loss_after: Loss | None) -> None:
    change = change_of(before, edit)
    assert change.stage == stage and change.facts == {}
    assert change.after.loss == loss_after


def test_stage_change_kinds() -> None:
    assert StageChange(Stage.proposal, Stage.closed_lost).closes
    assert StageChange(Stage.proposal, Stage.closed_lost).loses
    assert not StageChange(Stage.proposal, Stage.closed_won).loses
    assert StageChange(Stage.closed_won, Stage.prospecting).reopens
    assert not StageChange(Stage.closed_won, Stage.closed_lost).reopens
    assert not StageChange(Stage.proposal, Stage.negotiation).closes


def test_a_transfer() -> None:
    change = change_of(OPEN, DealEdit(owner_id=PEER_ID, transfer_reason="Territory"))
    assert change.transfers and change.after.owner_id == PEER_ID and change.transfer_reason == "Territory"
    assert change.facts == {} and change.stage is None


def test_a_different_loss_on_a_lost_deal_is_a_change_the_rules_refuse() -> None:
    change = change_of(LOST, DealEdit(loss=Loss("timing")))
    assert change.loss == Loss("timing") and change.after.loss == PRICE  # only a move of stage sets the loss
    with pytest.raises(DealClosed):
        ensure_can_change(actor(R.seller), OWNER, change)


def test_a_loss_resent_with_a_fact_change_is_only_the_fact_change() -> None:
    change = change_of(LOST, DealEdit(loss=PRICE, name="Renamed"))
    assert change.loss is None and set(change.facts) == {"name"}


# --- the rules of a change ----------------------------------------------------------

T = TransferReasonRequired
RENAME = DealEdit(name="Renamed")
TRANSFER = DealEdit(owner_id=PEER_ID, transfer_reason="Territory change")


@pytest.mark.parametrize(
    ("role", "access", "before", "edit", "refused"),
    [
        # an open deal: the owner, their line, leadership, admins and integrations edit it
        (R.seller, OWNER, OPEN, RENAME, None),
        (R.manager, LINE, OPEN, RENAME, None),
        (R.head_of_sales, NONE, OPEN, RENAME, None),
        (R.admin, NONE, OPEN, RENAME, None),
        (R.integration, NONE, OPEN, RENAME, None),
        (R.seller, NONE, OPEN, RENAME, Forbidden),
        (R.manager, NONE, OPEN, RENAME, Forbidden),
        (R.seller, OWNER, OPEN, DealEdit(stage=Stage.negotiation), None),
        # a transfer needs a reason, and one that is not blank
        (R.manager, LINE, OPEN, TRANSFER, None),
        (R.manager, LINE, OPEN, DealEdit(owner_id=PEER_ID), T),
        (R.manager, LINE, OPEN, DealEdit(owner_id=PEER_ID, transfer_reason=""), T),
        (R.manager, LINE, OPEN, DealEdit(owner_id=PEER_ID, transfer_reason="   "), T),
        (R.integration, NONE, OPEN, TRANSFER, None),
        (R.seller, NONE, OPEN, DealEdit(owner_id=PEER_ID), Forbidden),  # who may comes before the reason
        # losing needs a loss, and a loss needs losing
        (R.seller, OWNER, OPEN, DealEdit(stage=Stage.closed_lost), LossReasonRequired),
        (R.seller, OWNER, OPEN, DealEdit(stage=Stage.closed_lost, loss=PRICE), None),
        (R.seller, OWNER, OPEN, DealEdit(stage=Stage.closed_won, loss=PRICE), LossRequiresClosedLost),
        (R.seller, OWNER, OPEN, DealEdit(loss=PRICE), LossRequiresClosedLost),
        (R.seller, OWNER, LOST, DealEdit(stage=Stage.proposal, loss=PRICE), LossRequiresClosedLost),
        # a closed deal accepts only a reopen
        (R.seller, OWNER, WON, RENAME, DealClosed),
        (R.seller, OWNER, LOST, RENAME, DealClosed),
        (R.seller, OWNER, WON, TRANSFER, DealClosed),
        (R.seller, OWNER, LOST, TRANSFER, DealClosed),
        (R.seller, OWNER, WON, DealEdit(stage=Stage.closed_lost, loss=PRICE), DealClosed),
        (R.seller, OWNER, LOST, DealEdit(stage=Stage.closed_won), DealClosed),
        (R.admin, NONE, LOST, RENAME, DealClosed),  # closed comes before who may
        (R.seller, OWNER, WON, DealEdit(stage=Stage.proposal, name="Renamed"), None),
        (R.seller, OWNER, LOST, DealEdit(stage=Stage.proposal, owner_id=PEER_ID), T),
        # ... by the owner and their line
        (R.seller, OWNER, LOST, DealEdit(stage=Stage.negotiation), None),
        (R.manager, LINE, LOST, DealEdit(stage=Stage.negotiation), None),
        (R.head_of_sales, NONE, WON, DealEdit(stage=Stage.negotiation), None),
        (R.admin, NONE, LOST, DealEdit(stage=Stage.negotiation), Forbidden),
        (R.integration, NONE, LOST, DealEdit(stage=Stage.negotiation), Forbidden),
        (R.manager, NONE, WON, DealEdit(stage=Stage.negotiation), Forbidden),
        (R.seller, NONE, WON, DealEdit(stage=Stage.negotiation), Forbidden),
    ],
)
def test_the_rules_of_a_change(
    role: MemberRole, access: Access, before: DealFacts, edit: DealEdit, refused: type[DomainError] | None
) -> None:
    change = change_of(before, edit)
    if refused is None:
        ensure_can_change(actor(role), access, change)
    else:
        with pytest.raises(refused) as info:
            ensure_can_change(actor(role), access, change)
        assert type(info.value) is refused


# --- the events a change records -------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "edit", "events"),
    [
        (
            OPEN,
            DealEdit(name="Renamed", expected_close_date=dt.date(2027, 1, 15)),
            [
                (
                    "deal.updated",
                    {
                        "changes": {
                            "name": ["Globex renewal", "Renamed"],
                            "expected_close_date": ["2026-12-31", "2027-01-15"],
                        }
                    },
                )
            ],
        ),
        (
            OPEN,
            DealEdit(amount=None),
            [("deal.updated", {"changes": {"amount_minor": [1_250_000, None], "currency": ["EUR", None]}})],
        ),
        (
            OPEN,
            DealEdit(owner_id=PEER_ID, transfer_reason="  Territory change "),
            [("deal.owner_transferred", {"from": str(OWNER_ID), "to": str(PEER_ID), "reason": "Territory change"})],
        ),
        (
            OPEN,
            DealEdit(stage=Stage.closed_lost, loss=PRICE),
            [
                (
                    "deal.stage_changed",
                    {
                        "from": "proposal",
                        "to": "closed_lost",
                        "reopened": False,
                        "loss": {"reason_code": "price", "competitor": "Initech", "detail": "Too dear"},
                    },
                )
            ],
        ),
        (
            LOST,
            DealEdit(stage=Stage.negotiation),
            [("deal.stage_changed", {"from": "closed_lost", "to": "negotiation", "reopened": True})],
        ),
        (
            OPEN,
            DealEdit(stage=Stage.closed_won, owner_id=PEER_ID, transfer_reason="Handover", name="Won it"),
            [
                ("deal.updated", {"changes": {"name": ["Globex renewal", "Won it"]}}),
                ("deal.owner_transferred", {"from": str(OWNER_ID), "to": str(PEER_ID), "reason": "Handover"}),
                ("deal.stage_changed", {"from": "proposal", "to": "closed_won", "reopened": False}),
            ],
        ),
    ],
)
def test_the_events_a_change_records(
    before: DealFacts, edit: DealEdit, events: list[tuple[str, dict[str, Any]]]
) -> None:
    assert change_of(before, edit).events() == events


# --- new deals ---------------------------------------------------------------------------


def test_a_new_deal_from_an_upsert_needs_its_name_account_and_owner() -> None:
    with pytest.raises(MissingFields) as info:
        DealEdit(name="Globex", transfer_reason="x").new_deal()
    assert [f.path for f in info.value.fields] == [("account_name",), ("owner_id",)]
    facts = DealEdit(name="Globex", account_name="Globex", owner_id=OWNER_ID, transfer_reason="x").new_deal()
    assert facts == DealFacts(name="Globex", account_name="Globex", owner_id=OWNER_ID, stage=Stage.prospecting)
    edit = DealEdit(name="G", account_name="G", owner_id=OWNER_ID, amount=EUR, stage=Stage.closed_lost, loss=PRICE)
    assert edit.new_deal() == DealFacts("G", "G", OWNER_ID, Stage.closed_lost, EUR, None, PRICE)


def test_a_new_deal_lost_carries_its_loss_and_only_then() -> None:
    ensure_new_deal(OPEN)
    ensure_new_deal(LOST)
    with pytest.raises(LossReasonRequired):
        ensure_new_deal(replace(LOST, loss=None))
    with pytest.raises(LossRequiresClosedLost):
        ensure_new_deal(replace(OPEN, loss=PRICE))


def test_the_snapshot_of_a_deal() -> None:
    assert LOST.to_json() == {
        "name": "Globex renewal",
        "account_name": "Globex",
        "amount": {"amount": "12500.00", "currency": "EUR"},
        "stage": "closed_lost",
        "owner_id": str(OWNER_ID),
        "expected_close_date": "2026-12-31",
        "loss": {"reason_code": "price", "competitor": "Initech", "detail": "Too dear"},
    }
    assert DealFacts("G", "A", OWNER_ID).to_json()["amount"] is None


def test_facts_of_a_stored_deal() -> None:
    class Row:
        name, account_name, owner_id, stage = "Globex renewal", "Globex", OWNER_ID, "closed_lost"
        amount_minor, currency, expected_close_date = 1_250_000, "EUR", CLOSE
        loss_reason_code, loss_competitor, loss_detail = "price", "Initech", "Too dear"

    assert DealFacts.of(Row()) == LOST


@pytest.mark.parametrize(
    ("stage", "status"),
    [(s, "open") for s in ("prospecting", "qualification", "discovery", "proposal", "negotiation")]
    + [("closed_won", "won"), ("closed_lost", "lost")],
)
def test_the_status_of_a_stage(stage: str, status: str) -> None:
    assert status_of(stage) == status
    assert status_of(Stage(stage)) == status
