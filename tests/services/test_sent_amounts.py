"""A sent amount is parsed once: the request model checks it, the service reads it back."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.domain.money import InvalidMoney, Money, minor_units_of, to_minor
from app.schemas.deals import DealUpsert
from app.services.deals import edit_of


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("0", "EUR"),
        ("12500.5", "EUR"),
        ("12500.50", "USD"),
        ("7", "JPY"),
        ("1.234", "KWD"),
        ("999999999999999.99", "EUR"),
    ],
)
def test_the_remembered_parse_is_the_parse(amount: str, currency: str) -> None:
    for _ in range(2):  # the second time from the cache
        assert minor_units_of(amount, currency) == to_minor(amount, currency)
    edit = edit_of(DealUpsert.model_validate({"amount": {"amount": amount, "currency": currency}}))
    assert edit.amount == Money.parse(amount, currency)


def test_a_refused_amount_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(InvalidMoney):
            minor_units_of("1.001", "EUR")
        with pytest.raises(ValidationError, match="at most 2 decimal places"):
            DealUpsert.model_validate({"amount": {"amount": "1.001", "currency": "EUR"}})
