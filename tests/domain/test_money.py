"""Money: exact minor units in ISO 4217 currencies."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.money import InvalidMoney, Money, from_minor, to_minor


@pytest.mark.parametrize(
    ("amount", "currency", "minor", "rendered"),
    [
        ("12500.00", "EUR", 1_250_000, "12500.00"),
        ("12500.5", "EUR", 1_250_050, "12500.50"),
        ("0", "USD", 0, "0.00"),
        ("1500", "JPY", 1500, "1500"),
        ("1.234", "KWD", 1234, "1.234"),
        ("999999999999999.99", "EUR", 99_999_999_999_999_999, "999999999999999.99"),
    ],
)
def test_round_trip(amount: str, currency: str, minor: int, rendered: str) -> None:
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == rendered


@pytest.mark.parametrize("currency", ["EUR", "JPY", "KWD"])
def test_rendering_is_the_exact_decimal(currency: str) -> None:
    """Integer arithmetic renders what Decimal does, at every magnitude and for a negative amount."""
    digits = len(from_minor(0, currency).partition(".")[2])
    values = [0, 1, 9, 10, 99, 100, 101, 1005, 123_456_789, 99_999_999_999_999_999, -1, -105, -123_456]
    for minor in values + [7**n for n in range(23)]:  # up to what the BIGINT column holds
        assert from_minor(minor, currency) == f"{Decimal(minor).scaleb(-digits):.{digits}f}", minor
        if 0 <= minor < 10**15 * 10**digits:  # what to_minor accepts
            assert to_minor(from_minor(minor, currency), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.001", "EUR"),
        ("1.5", "JPY"),
        ("-1", "EUR"),
        ("abc", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("1e15", "EUR"),
        ("10", "XXX"),
        ("10", "eur"),
        ("", "EUR"),
    ],
)
def test_invalid_money(amount: str, currency: str) -> None:
    with pytest.raises(InvalidMoney):
        to_minor(amount, currency)


def test_money_values_render_as_the_api_shows_them() -> None:
    assert Money.parse("12500.5", "EUR") == Money(1_250_050, "EUR")
    assert Money(1_250_050, "EUR").to_json() == {"amount": "12500.50", "currency": "EUR"}
    assert Money(1500, "JPY").amount == "1500"
    with pytest.raises(InvalidMoney):
        Money.parse("1.5", "JPY")
