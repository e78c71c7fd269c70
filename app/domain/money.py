"""Money: a decimal amount in an ISO 4217 currency, stored exactly as integer minor units."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# Active ISO 4217 codes.
CURRENCIES = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD
    CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF
    GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP
    LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB
    PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG""".split()
)

# Currencies whose minor unit is not the cent.
_MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}

# Amounts up to a thousand trillion in the major unit fit a signed 64-bit minor-unit column.
MAX_MAJOR = Decimal(10) ** 15


class InvalidMoney(ValueError):
    pass


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def to_minor(amount: str, currency: str) -> int:
    """The exact number of minor units in ``amount``; refuses more precision than the currency has."""
    if currency not in CURRENCIES:
        raise InvalidMoney(f"{currency!r} is not an ISO 4217 currency code")
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise InvalidMoney('amount must be a decimal string such as "12500.00"') from None
    if not value.is_finite() or value < 0:
        raise InvalidMoney("amount must be a finite, non-negative number")
    if value >= MAX_MAJOR:
        raise InvalidMoney("amount is too large")
    scaled = value.scaleb(minor_units(currency))
    if scaled != scaled.to_integral_value():
        raise InvalidMoney(f"{currency} amounts have at most {minor_units(currency)} decimal places")
    return int(scaled)


@functools.lru_cache(maxsize=1024)
def minor_units_of(amount: str, currency: str) -> int:
    """``to_minor``, remembered: a request's amount is checked when its model is validated, and
    parsed again by the service (``edit_of``, through ``Money.parse``); the second time, for each of a batch's 500
    records, is a lookup. (A refused amount raises each time: exceptions are not cached.)"""
    return to_minor(amount, currency)


def from_minor(minor: int, currency: str) -> str:
    """The decimal string for ``minor`` units, with exactly the currency's decimal places (in
    integer arithmetic: every deal a page renders passes here)."""
    digits = minor_units(currency)
    if digits == 0:
        return str(minor)
    whole, part = divmod(abs(minor), 10**digits)
    return f"{'-' if minor < 0 else ''}{whole}.{part:0{digits}d}"


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: integer minor units of an ISO 4217 currency."""

    minor: int
    currency: str

    @classmethod
    def parse(cls, amount: str, currency: str) -> Money:
        """Money from its decimal string, e.g. ``Money.parse("12500.00", "EUR")``."""
        return cls(minor_units_of(amount, currency), currency)

    @property
    def amount(self) -> str:
        return from_minor(self.minor, self.currency)

    def to_json(self) -> dict[str, str]:
        """As the API and history show money: ``{"amount": "12500.00", "currency": "EUR"}``."""
        return {"amount": self.amount, "currency": self.currency}
