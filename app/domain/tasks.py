"""My tasks: what is waiting on a member, across deals, and how each reads in a list."""

from __future__ import annotations

import enum

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
    match kind:
        case TaskKind.next_step | TaskKind.commitment:
            title = detail or ""
        case TaskKind.assignment_request:
            title = _with(f"Asked to join as {_words(label)}", detail)
        case TaskKind.assignment_proposal:
            title = _with(f"Proposed to join as {_words(label)}", detail)
        case TaskKind.suggestion:
            title = _with(f"Suggestion on {_words(label)}", detail)
        case TaskKind.approval:
            title = "Sign-off requested on the deal's terms"
        case TaskKind.observation_to_share:
            title = _with("Share your observation of the call", detail)
        case TaskKind.observation_to_acknowledge:
            title = _with("Acknowledge the observation of your call", detail)
        case TaskKind.review_to_complete:
            title = f"Complete the closed-lost review (loss reason: {_words(label)})"
        case TaskKind.review_to_reflect:
            title = "Write your reflection for the closed-lost review"
    return _shortened(" ".join(title.split()))


def _with(what: str, detail: str | None) -> str:
    return f"{what}: {detail}" if detail else what


def _words(code: str | None) -> str:
    return (code or "").replace("_", " ")


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1].rstrip() + "…"
