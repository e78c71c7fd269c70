"""What changed: the before/after of edited fields, as event data records it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append: its type, what it is about, and its data (JSON-ready)."""

    type: str
    subject_type: str
    subject_id: uuid.UUID
    data: dict[str, Any]
    deal_id: uuid.UUID | None = None


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for the fields that changed, JSON-ready."""
    return {k: [jsonable(before.get(k)), jsonable(v)] for k, v in after.items() if before.get(k) != v}


def jsonable(value: Any) -> Any:
    """Ids and dates as the strings JSON carries; lists element by element."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
