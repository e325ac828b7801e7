"""The life of an intervention: planned -> contacted -> resolved | dismissed, plus snoozed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

PLANNED, CONTACTED, RESOLVED, DISMISSED, SNOOZED = (
    "planned",
    "contacted",
    "resolved",
    "dismissed",
    "snoozed",
)
STATUSES = (PLANNED, CONTACTED, RESOLVED, DISMISSED, SNOOZED)
OPEN_STATUSES = (PLANNED, CONTACTED, SNOOZED)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    PLANNED: (CONTACTED, SNOOZED, DISMISSED),
    CONTACTED: (RESOLVED, SNOOZED, DISMISSED),
    SNOOZED: (PLANNED, CONTACTED, RESOLVED, DISMISSED),
    RESOLVED: (),
    DISMISSED: (),
}


class TransitionError(ValueError):
    """A status change the life cycle does not allow; ``allowed`` lists the legal ones."""

    def __init__(self, current: str, wanted: str, allowed: tuple[str, ...], why: str = ""):
        self.current, self.wanted, self.allowed = current, wanted, allowed
        options = ", ".join(allowed) if allowed else "none: it is closed"
        super().__init__(
            why or f"cannot move from {current} to {wanted}; allowed from {current}: {options}"
        )


@dataclass(frozen=True)
class Change:
    """A validated status change, ready to record."""

    status: str
    actor: str
    note: str | None
    snooze_until: date | None


def check_transition(
    current: str,
    wanted: str,
    actor: str | None,
    note: str | None = None,
    snooze_until: date | None = None,
    today: date | None = None,
) -> Change:
    """The change to record, or TransitionError saying what is allowed."""
    allowed = TRANSITIONS.get(current, ())
    if wanted not in STATUSES:
        raise TransitionError(current, wanted, allowed, f"unknown status {wanted!r}")
    if wanted not in allowed:
        raise TransitionError(current, wanted, allowed)
    if not actor or not actor.strip():
        raise ValueError("actor is required: who made the change")
    if wanted == SNOOZED:
        if snooze_until is None:
            raise ValueError("snoozed needs snooze_until (the date to pick it up again)")
        if today is not None and snooze_until <= today:
            raise ValueError(f"snooze_until must be after today ({today})")
        if not note or not note.strip():
            raise ValueError("snoozed needs a note giving the reason")
    elif snooze_until is not None:
        raise ValueError("snooze_until only goes with status snoozed")
    return Change(wanted, actor.strip(), note, snooze_until)


def utc_now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)
