from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from app.domain.deals import DealStatus, Stage
from app.domain.money import CURRENCIES, InvalidMoney, minor_units_of
from app.schemas import acme
from app.schemas.common import TOKEN_CHAR, IsoDate, Name, Page, RequestModel, ResponseModel, examples, omitted, trimmed
from app.schemas.expand import MemberId, Members

Source = Annotated[
    str,
    StringConstraints(max_length=40, pattern=r"^[a-z0-9][a-z0-9_.-]{0,39}$"),
    Field(description="The system the id comes from", examples=["hubspot"]),
]
ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=rf"^[^/{TOKEN_CHAR}]+$"),
    Field(description="The deal's id in that system", examples=["8812739"]),
]
Reason = trimmed(2000)


# A plain decimal below a thousand trillion: no sign, exponent, separator or spaces.
AMOUNT = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,3})?$"


class Money(RequestModel):
    model_config = examples(acme.GLOBEX_AMOUNT)

    amount: str = Field(
        max_length=19,
        pattern=AMOUNT,
        description="Decimal string, at most the currency's decimal places",
        examples=["12500.00"],
    )
    currency: str = Field(
        max_length=3,
        description="ISO 4217 code",
        examples=["EUR"],
        json_schema_extra={"enum": sorted(CURRENCIES)},
    )

    @model_validator(mode="after")
    def _valid(self) -> Money:
        try:
            minor_units_of(self.amount, self.currency)
        except InvalidMoney as exc:
            raise ValueError(str(exc)) from None
        return self


class MoneyPublic(ResponseModel):
    model_config = examples(acme.GLOBEX_AMOUNT)

    amount: str = Field(examples=["12500.00"])
    currency: str = Field(examples=["EUR"])


class ExternalRef(RequestModel):
    model_config = examples(acme.HUBSPOT_REF)

    source: Source
    external_id: ExternalId


class ExternalRefPublic(ResponseModel):
    model_config = examples(acme.HUBSPOT_REF)

    source: str
    external_id: str


class Loss(RequestModel):
    model_config = examples(acme.PRICE_LOSS)

    reason_code: str = Field(max_length=64, description="A code from the loss-reason catalog", examples=["price"])
    competitor: trimmed(200) | None = None
    detail: Reason | None = None


class LossPublic(ResponseModel):
    model_config = examples(acme.PRICE_LOSS)

    reason_code: str
    competitor: str | None
    detail: str | None


class DealCreate(RequestModel):
    model_config = examples(
        {
            "name": "Globex platform renewal",
            "account_name": "Globex",
            "amount": acme.GLOBEX_AMOUNT,
            "expected_close_date": "2026-12-15",
            "stage": "discovery",
            "owner_id": acme.SAM_ID,
            "external_refs": [acme.HUBSPOT_REF],
        }
    )

    name: Name = Field(examples=["Globex platform renewal"])
    account_name: Name = Field(examples=["Globex"])
    amount: Money | None = None
    expected_close_date: IsoDate | None = Field(default=None, examples=["2026-12-31"])
    stage: Stage = Stage.prospecting
    owner_id: uuid.UUID = Field(description="An active seller")
    external_refs: list[ExternalRef] = Field(default_factory=list, max_length=20)
    loss: Loss | None = Field(default=None, description="Required when stage is closed_lost")


class DealUpdate(RequestModel):
    """Fields to change; omitted fields stay as they are."""

    model_config = examples({"stage": "proposal", "amount": {"amount": "52000.00", "currency": "EUR"}})

    name: Name = omitted()
    account_name: Name = omitted()
    amount: Money | None = omitted()
    expected_close_date: IsoDate | None = omitted()
    stage: Stage = omitted()
    owner_id: uuid.UUID = omitted(description="A transfer: needs transfer_reason")
    transfer_reason: Reason = omitted(description="Why the deal changes owner")
    loss: Loss = omitted(description="Required when moving to closed_lost")


class DealUpsert(DealUpdate):
    """A CRM's view of the deal: given fields are set, omitted ones kept; name, account_name
    and owner_id are needed when the deal is new."""

    model_config = examples(
        {
            "name": "Globex platform renewal",
            "account_name": "Globex",
            "amount": acme.GLOBEX_AMOUNT,
            "expected_close_date": "2026-12-15",
            "stage": "proposal",
            "owner_id": acme.SAM_ID,
        }
    )


class DealBatchRecord(DealUpsert):
    model_config = examples(acme.GLOBEX_BATCH_RECORD)

    source: Source
    external_id: ExternalId


class DealBatch(RequestModel):
    model_config = examples(
        {
            "records": [
                acme.GLOBEX_BATCH_RECORD,
                {
                    "source": "hubspot",
                    "external_id": "8812740",
                    "stage": "closed_lost",
                    "loss": {"reason_code": "price", "competitor": "Initech"},
                },
            ]
        }
    )

    records: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=500,
        description="Up to 500 deal records, each a DealBatchRecord; each is validated on its own",
        json_schema_extra={"items": {"$ref": "#/components/schemas/DealBatchRecord"}},
    )


class DealPublic(ResponseModel):
    model_config = examples(
        {
            "id": acme.DEAL_ID,
            "name": "Globex platform renewal",
            "account_name": "Globex",
            "amount": acme.GLOBEX_AMOUNT,
            "expected_close_date": "2026-12-15",
            "stage": "proposal",
            "status": "open",
            "owner_id": acme.SAM_ID,
            "closed_at": None,
            "loss": None,
            "review_id": None,
            "external_refs": [acme.HUBSPOT_REF],
            "version": 4,
            "created_at": acme.DEAL_CREATED,
            "updated_at": acme.DEAL_UPDATED,
        }
    )

    id: uuid.UUID
    name: str
    account_name: str
    amount: MoneyPublic | None
    expected_close_date: dt.date | None
    stage: Stage
    status: DealStatus
    owner_id: MemberId
    closed_at: dt.datetime | None
    loss: LossPublic | None
    review_id: uuid.UUID | None = Field(description="The closed-lost review of a lost deal; null otherwise")
    external_refs: list[ExternalRefPublic]
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    members: Members = None


class DealPage(Page[DealPublic]):
    members: Members = None


class BatchProblem(ResponseModel):
    model_config = examples(
        {
            "status": 422,
            "code": "owner_must_be_seller",
            "detail": "A deal's owner must be an active seller",
        }
    )

    status: int
    code: str
    detail: str
    errors: list[dict[str, Any]] | None = None


class DealBatchResult(ResponseModel):
    model_config = examples(acme.GLOBEX_BATCH_RESULT)

    index: int
    source: str | None
    external_id: str | None
    outcome: Literal["created", "updated", "unchanged", "error"] = Field(examples=["created"])
    deal_id: uuid.UUID | None
    problem: BatchProblem | None


class DealBatchResults(ResponseModel):
    model_config = examples(
        {
            "results": [
                acme.GLOBEX_BATCH_RESULT,
                {
                    "index": 1,
                    "source": "hubspot",
                    "external_id": "8812740",
                    "outcome": "error",
                    "deal_id": None,
                    "problem": {
                        "status": 422,
                        "code": "unknown_loss_reason",
                        "detail": "The loss reason is not in the organisation's catalog",
                    },
                },
            ]
        }
    )

    results: list[DealBatchResult]


@dataclass(frozen=True, slots=True)
class ListFilters:
    """The deal list's query parameters, already validated by the router."""

    owner_id: uuid.UUID | None = None
    stage: Stage | None = None
    status: DealStatus | None = None
    closed_from: dt.date | None = None
    closed_to: dt.date | None = None
    updated_since: dt.datetime | None = None
    q: str | None = None
