"""CRM integrations' rules, pure: owners resolve to sellers only, a CRM deal reads into an upsert,
Pipedrive's Basic auth and event envelope."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from dataclasses import dataclass

import pytest

from app.domain.deals import UNSENT, Loss, Stage
from app.domain.errors import MissingFields, NotProviderFormat
from app.domain.integrations import CrmDeal, IntegrationMaps, Provider, deal_edit, resolve_owner
from app.domain.members import MemberRole
from app.domain.money import Money
from app.domain.pipedrive import account_of, basic_auth_matches, read_event

SELLER = uuid.uuid4()
MAPS = IntegrationMaps({"2": "qualification"}, {"Too expensive": "price"}, "EUR")


@dataclass
class M:
    role: MemberRole
    active: bool = True


def test_owner_resolves_to_an_active_seller_only() -> None:
    owner_map = {"7": str(SELLER)}
    assert resolve_owner(None, owner_map, None) is None
    resolved = resolve_owner("7", owner_map, M(MemberRole.seller))
    assert resolved is not None and resolved.member_id == SELLER
    for member, problem in [
        (M(MemberRole.manager), "owner_must_be_seller"),
        (M(MemberRole.seller, active=False), "owner_must_be_seller"),
        (None, "unknown_owner"),
    ]:
        assert resolve_owner("7", owner_map, member) == type(resolved)(None, problem)
    assert resolve_owner("8", owner_map, M(MemberRole.seller)) == type(resolved)(None, "unknown_owner")


def test_a_crm_deal_reads_into_an_upsert() -> None:
    crm = CrmDeal(title=" Deal 01 ", account_name="Acme", value="2786.5", value_sent=True, stage="2", status="open")
    edit = deal_edit(crm, MAPS, owner_id=SELLER, provider=Provider.pipedrive, new=True)
    assert (edit.name, edit.account_name, edit.stage, edit.owner_id) == ("Deal 01", "Acme", Stage.qualification, SELLER)
    assert edit.amount == Money.parse("2786.50", "EUR") and edit.expected_close_date is UNSENT
    existing = deal_edit(crm, MAPS, owner_id=None, provider=Provider.pipedrive, new=False)
    assert existing.account_name is None and existing.owner_id is None
    assert deal_edit(CrmDeal(stage="9"), MAPS, owner_id=None, provider=Provider.pipedrive, new=False).stage is None


def test_a_crm_loss_maps_its_reason_or_closes_as_other_with_its_text() -> None:
    mapped = deal_edit(
        CrmDeal(status="lost", lost_reason="Too expensive"), MAPS, owner_id=None, provider=Provider.pipedrive, new=False
    )
    assert (mapped.stage, mapped.loss) == (Stage.closed_lost, Loss("price"))
    unmapped = deal_edit(
        CrmDeal(status="lost", lost_reason="Went quiet"), MAPS, owner_id=None, provider=Provider.pipedrive, new=False
    )
    assert unmapped.loss == Loss("other", None, "Went quiet")
    assert (
        deal_edit(CrmDeal(status="won"), MAPS, owner_id=None, provider=Provider.pipedrive, new=False).stage
        == Stage.closed_won
    )


def test_an_amount_we_cannot_hold_is_refused() -> None:
    with pytest.raises(MissingFields):
        deal_edit(CrmDeal(value="-5", value_sent=True), MAPS, owner_id=None, provider=Provider.pipedrive, new=False)
    with pytest.raises(MissingFields):
        deal_edit(
            CrmDeal(value="1.5", value_sent=True, currency="JPY"),
            MAPS,
            owner_id=None,
            provider=Provider.pipedrive,
            new=False,
        )


def test_basic_auth_compares_both_parts() -> None:
    header = "Basic " + base64.b64encode(b"user:pa:ss").decode()
    assert basic_auth_matches(header, "user", "pa:ss")
    assert not basic_auth_matches(header, "user", "pa")
    assert not basic_auth_matches(header.replace("Basic", "Bearer"), "user", "pa:ss")
    assert not basic_auth_matches(None, "", "")


def test_the_envelope() -> None:
    body = {
        "meta": {
            "id": "e1",
            "company_id": 42,
            "action": "change",
            "entity": "deal",
            "entity_id": 7,
            "timestamp": 1727447128,
        }
    }
    assert account_of(body) == "42"
    event = read_event(body)
    assert (event.event_id, event.object_id, event.is_deal_event) == ("e1", "7", True)
    assert event.timestamp == dt.datetime(2024, 9, 27, 14, 25, 28, tzinfo=dt.UTC)
    for bad in ([], {"meta": {}}, {"meta": {"company_id": True}}, {"meta": {"company_id": "1\x00"}}):
        with pytest.raises(NotProviderFormat):
            account_of(bad)
