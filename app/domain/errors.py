"""The error tree: every rule the domain protects raises one of these.

Each error carries a stable ``code`` (the one API.md lists); the HTTP status
is chosen once, by base class, in ``app/errors.py``.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "domain_error"
    title = "Request refused"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class NotFound(DomainError):
    code = "not_found"
    title = "Not Found"


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Missing or invalid API key"


class Forbidden(DomainError):
    code = "forbidden"
    title = "Forbidden"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class RuleViolation(DomainError):
    code = "rule_violation"
    title = "Rule violation"


class PreconditionFailed(DomainError):
    code = "precondition_failed"
    title = "Precondition failed"


class Unavailable(DomainError):
    code = "unavailable"
    title = "Service unavailable"


# --- conventions -----------------------------------------------------------


class InvalidCursor(RuleViolation):
    code = "invalid_cursor"
    title = "The cursor is malformed or belongs to another listing"


class VersionConflict(PreconditionFailed):
    code = "version_conflict"
    title = "The resource changed since the version given in If-Match"


class IdempotencyKeyReused(RuleViolation):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was used with a different request"


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    title = "A request with this Idempotency-Key is still in progress"


class DatabaseUnavailable(Unavailable):
    code = "database_unavailable"
    title = "The database is unreachable; retry shortly"


# --- organisation, members, keys, catalogs --------------------------------


class InvalidReportingLine(RuleViolation):
    code = "invalid_reporting_line"
    title = "Invalid reporting line"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "A member of this organisation already uses this email"


class CodeTaken(Conflict):
    code = "code_taken"
    title = "This code is already used in the organisation's catalog"


class UnknownSkill(RuleViolation):
    code = "unknown_skill"
    title = "Unknown skill code"
