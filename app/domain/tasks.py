"""My tasks: what is waiting on a member, across deals, and how each reads in a list."""

from __future__ import annotations

import enum
from collections.abc import Callable

# A task's title is a line in a list; what it summarises (a suggestion's body, a commitment) may be
# long, and is read whole on the object the task links to.
MAX_TITLE = 200


class TaskKind(enum.StrEnum):
    """What a member is waited on for, each by the rule that makes it theirs."""

    next_step = "next_step"  # an open next step of a deal's strategy assigned to them
    assignment_request = "assignment_request"  # a role the deal's owner asked them to take
    assignment_proposal = "assignment_proposal"  # a role someone proposed on a deal they own
    suggestion = "suggestion"  # an undecided suggestion on the strategy of a deal they own
    approval = "approval"  # a pending approval they are the approver of
    observation_to_share = "observation_to_share"  # their draft observation of a call
    observation_to_acknowledge = "observation_to_acknowledge"  # a shared observation of a call they led
    review_to_complete = "review_to_complete"  # a pending closed-lost review they are the reviewer of
    review_to_reflect = "review_to_reflect"  # a pending review of their lost deal still without their reflection
    commitment = "commitment"  # their open commitment


def task_title(kind: TaskKind, label: str | None, detail: str | None) -> str:
    """The line a task shows: what to do, and what about (``label``: a role, a section, a loss
    reason; ``detail``: a step, a purpose, a body, a summary, a commitment's text)."""
    return _shortened(" ".join(_TITLES[kind](label, detail).split()))


def _with(what: str, detail: str | None) -> str:
    return f"{what}: {detail}" if detail else what


def _words(code: str | None) -> str:
    return (code or "").replace("_", " ")


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1].rstrip() + "…"


# Each kind's line, of its label and detail (looked up, not matched: a page titles 50 tasks or more).
_TITLES: dict[TaskKind, Callable[[str | None, str | None], str]] = {
    TaskKind.next_step: lambda label, detail: detail or "",
    TaskKind.commitment: lambda label, detail: detail or "",
    TaskKind.assignment_request: lambda label, detail: _with(f"Asked to join as {_words(label)}", detail),
    TaskKind.assignment_proposal: lambda label, detail: _with(f"Proposed to join as {_words(label)}", detail),
    TaskKind.suggestion: lambda label, detail: _with(f"Suggestion on {_words(label)}", detail),
    TaskKind.approval: lambda label, detail: "Sign-off requested on the deal's terms",
    TaskKind.observation_to_share: lambda label, detail: _with("Share your observation of the call", detail),
    TaskKind.observation_to_acknowledge: lambda label, detail: _with(
        "Acknowledge the observation of your call", detail
    ),
    TaskKind.review_to_complete: lambda label, detail: (
        f"Complete the closed-lost review (loss reason: {_words(label)})"
    ),
    TaskKind.review_to_reflect: lambda label, detail: "Write your reflection for the closed-lost review",
}
