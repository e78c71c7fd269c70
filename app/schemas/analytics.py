from __future__ import annotations

from pydantic import Field

from app.schemas import acme
from app.schemas.common import ResponseModel, examples
from app.schemas.deals import MoneyPublic

# --- closed-lost analytics -------------------------------------------------------


class ClosedLostFigures(ResponseModel):
    model_config = examples(acme.PRICE_LOSSES)

    key: str | None = Field(
        description="The group's loss reason, competitor, skill code, owner id or reviewer id; null for "
        "losses without one (no competitor, no skill gap, no reviewer) and on the total",
        examples=["price"],
    )
    count: int = Field(description="Lost deals (their reviews) in the group")
    lost_amounts: list[MoneyPublic] = Field(description="Lost amounts, one sum per currency")
    review_completion_rate: float | None = Field(
        ge=0, le=1, description="Completed reviews ÷ count; null when count is 0", examples=[0.75]
    )
    median_days_to_review: float | None = Field(
        description="Median days from the loss to the review's completion, over completed reviews; null when none",
        examples=[3.5],
    )


class ClosedLostAnalytics(ResponseModel):
    model_config = examples(
        {
            "groups": [
                acme.PRICE_LOSSES,
                {
                    "key": "no_decision",
                    "count": 2,
                    "lost_amounts": [{"amount": "31000.00", "currency": "EUR"}],
                    "review_completion_rate": 1.0,
                    "median_days_to_review": 5.0,
                },
            ],
            "total": {
                "key": None,
                "count": 6,
                "lost_amounts": [{"amount": "127500.00", "currency": "EUR"}, acme.UMBRELLA_AMOUNT],
                "review_completion_rate": 0.8333,
                "median_days_to_review": 4.0,
            },
        }
    )

    groups: list[ClosedLostFigures] = Field(description="Largest groups first, then by key")
    total: ClosedLostFigures = Field(
        description="Every loss in scope once (a loss naming two skill gaps counts in two skill groups but once here)"
    )
