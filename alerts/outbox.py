"""The durable outbox: alerts and their per-channel deliveries, claimed atomically by relays.

A delivery moves pending -> sending (claimed, with a lease) -> sent, or back to pending with
a later ``next_attempt_at`` after a failure, or to dead after ``alerts.max_attempts`` tries.
A relay that dies mid-send leaves its lease to expire; another relay then retries with the
same alert id, so receivers deduplicate to one per alert.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.engine import Database
from db.models import AlertRecord, DeliveryRecord, utc_now
from npsrisk.settings import Settings

# The webhook types of API_CONTRACT.md; a typo'd type is a bug, caught when raised.
ALERT_TYPES = frozenset(
    {
        "detractor.answered",
        "segment.dropped",
        # An extension of the contract's list: a customer whose risk tier rose since the
        # previous materialization, with why the score moved (interventions, issue 11 item 8).
        "customer.newly_at_risk",
        "drift.detected",
        "performance.decayed",
        "intervention.planned",
        "intervention.status_changed",
    }
)
STATUSES = ("pending", "sending", "sent", "dead")


def _targets(settings: Settings, alert_type: str) -> list[tuple[str, str]]:
    a = settings.alerts
    targets = []
    if a.console:
        targets.append(("console", "stderr"))
    if a.file:
        targets.append(("file", str(settings.alerts_file_path)))
    for hook in a.webhooks:
        if not hook.types or alert_type in hook.types:
            targets.append(("webhook", hook.url))
    return targets


def alert_body(alert_type: str, created_at: datetime, data: dict[str, Any]) -> str:
    """The body of API_CONTRACT.md, serialized once: ``{"type", "timestamp", "data"}``."""
    body = {
        "type": alert_type,
        "timestamp": created_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "data": data,
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True, default=str, allow_nan=False)


def raise_alert(
    target: Session | Database,
    alert_type: str,
    data: dict[str, Any],
    settings: Settings | None = None,
    *,
    summary: str = "",
    dedup_key: str | None = None,
) -> str:
    """Enqueue an alert for every configured channel; returns its id (the ``webhook-id``).

    Given a Session, the alert is part of the caller's transaction; given a Database, it is
    committed here. With ``dedup_key``, raising the same alert again returns the first id.
    """
    if alert_type not in ALERT_TYPES:
        raise ValueError(f"unknown alert type {alert_type!r}; known: {sorted(ALERT_TYPES)}")
    if isinstance(target, Database):
        with target.session() as session:
            return raise_alert(
                session,
                alert_type,
                data,
                settings or target.settings,
                summary=summary,
                dedup_key=dedup_key,
            )
    if settings is None:
        raise ValueError("raise_alert(session, ...) needs the settings (its channels)")
    session = target
    if dedup_key is not None:
        existing = session.scalar(select(AlertRecord.id).where(AlertRecord.dedup_key == dedup_key))
        if existing is not None:
            return existing
    now = utc_now()
    record = AlertRecord(
        id=f"msg_{uuid.uuid4().hex}",
        type=alert_type,
        created_at=now,
        summary=summary,
        body=alert_body(alert_type, now, data),
        dedup_key=dedup_key,
    )
    record.deliveries = [
        DeliveryRecord(channel=c, target=t, status="pending", attempts=0, next_attempt_at=now)
        for c, t in _targets(settings, alert_type)
    ]
    if dedup_key is None:
        session.add(record)
        session.flush()
        return record.id
    try:  # a concurrent raiser with the same key may win the unique constraint
        with session.begin_nested():
            session.add(record)
        return record.id
    except IntegrityError:
        return session.scalar(select(AlertRecord.id).where(AlertRecord.dedup_key == dedup_key))


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before try ``attempt + 1``: exponential, capped, with "equal jitter" (half
    fixed, half random) so retries of many alerts do not arrive at a receiver in step."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


@dataclass(frozen=True)
class Claimed:
    id: int
    alert_id: str
    alert_type: str
    channel: str
    target: str
    attempts: int
    body: str
    summary: str
    token: str


def claim_due(
    db: Database,
    limit: int,
    lease_seconds: float,
    now: datetime | None = None,
    due_before: datetime | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due deliveries for this relay, atomically.

    One UPDATE moves them to 'sending' under a fresh token; a concurrent relay's UPDATE
    re-checks the status condition on each row and skips what was just taken, so two relays
    never hold the same delivery. Expired leases (a relay that died) count as due.
    ``due_before`` (default: now) bounds what counts as due, so one relay pass that started
    then tries each delivery at most once.
    """
    now = now or utc_now()
    cutoff = due_before or now
    token = uuid.uuid4().hex
    due = or_(
        and_(DeliveryRecord.status == "pending", DeliveryRecord.next_attempt_at <= cutoff),
        and_(DeliveryRecord.status == "sending", DeliveryRecord.lease_until < cutoff),
    )
    with db.session() as session:
        ids = (
            select(DeliveryRecord.id)
            .where(due)
            .order_by(DeliveryRecord.next_attempt_at, DeliveryRecord.id)
            .limit(limit)
        )
        session.execute(
            update(DeliveryRecord)
            .where(DeliveryRecord.id.in_(ids), due)
            .values(
                status="sending",
                claim_token=token,
                lease_until=now + timedelta(seconds=lease_seconds),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
    with db.session() as session:
        rows = session.execute(
            select(DeliveryRecord, AlertRecord)
            .join(AlertRecord, AlertRecord.id == DeliveryRecord.alert_id)
            .where(DeliveryRecord.claim_token == token)
            .order_by(DeliveryRecord.id)
        ).all()
        return [
            Claimed(d.id, a.id, a.type, d.channel, d.target, d.attempts, a.body, a.summary, token)
            for d, a in rows
        ]


def settle(
    db: Database,
    claimed: Claimed,
    ok: bool,
    settings: Settings,
    error: str | None = None,
    status_code: int | None = None,
    now: datetime | None = None,
) -> str:
    """Record one try's outcome; returns the new status. A relay whose lease expired and was
    overtaken does not overwrite the newer owner's row (the token no longer matches)."""
    now = now or utc_now()
    a = settings.alerts
    attempts = claimed.attempts + 1
    if ok:
        values: dict[str, Any] = {"status": "sent", "sent_at": now, "last_error": None}
    elif attempts >= a.max_attempts:
        values = {"status": "dead", "last_error": error}
    else:
        wait = backoff_delay(attempts, a.backoff_seconds, a.max_backoff_seconds)
        values = {
            "status": "pending",
            "next_attempt_at": now + timedelta(seconds=wait),
            "last_error": error,
        }
    with db.session() as session:
        session.execute(
            update(DeliveryRecord)
            .where(DeliveryRecord.id == claimed.id, DeliveryRecord.claim_token == claimed.token)
            .values(
                **values,
                attempts=attempts,
                last_status_code=status_code,
                claim_token=None,
                lease_until=None,
                updated_at=now,
            )
        )
    return values["status"]


@dataclass(frozen=True)
class AlertView:
    """An alert with its deliveries, for `npsrisk alerts` and tests."""

    id: str
    type: str
    created_at: datetime
    summary: str
    body: dict
    deliveries: list[dict]

    @property
    def status(self) -> str:
        """The worst delivery status: dead > pending/sending > sent."""
        states = {d["status"] for d in self.deliveries}
        for status in ("dead", "sending", "pending"):
            if status in states:
                return status
        return "sent" if states else "no channel"


def list_alerts(
    db: Database, status: str | None = None, alert_type: str | None = None, limit: int = 50
) -> list[AlertView]:
    """Newest first; ``status`` keeps alerts with at least one delivery in that state."""
    with db.session() as session:
        query = select(AlertRecord).order_by(AlertRecord.created_at.desc()).limit(limit)
        if alert_type:
            query = query.where(AlertRecord.type == alert_type)
        if status:
            query = query.where(
                AlertRecord.id.in_(
                    select(DeliveryRecord.alert_id).where(DeliveryRecord.status == status)
                )
            )
        views = []
        for alert in session.scalars(query):
            deliveries = [
                {
                    "channel": d.channel,
                    "target": d.target,
                    "status": d.status,
                    "attempts": d.attempts,
                    "next_attempt_at": d.next_attempt_at,
                    "last_error": d.last_error,
                    "last_status_code": d.last_status_code,
                    "sent_at": d.sent_at,
                }
                for d in alert.deliveries
            ]
            views.append(
                AlertView(
                    alert.id,
                    alert.type,
                    alert.created_at,
                    alert.summary,
                    json.loads(alert.body),
                    deliveries,
                )
            )
        return views


def redeliver(db: Database, alert_ids: list[str] | None = None, dead: bool = False) -> int:
    """Queue deliveries again (same alert ids): the named alerts' dead or sent deliveries, or
    with ``dead`` every dead one. Returns how many were queued."""
    if not alert_ids and not dead:
        return 0
    now = utc_now()
    condition = DeliveryRecord.status.in_(("dead", "sent")) if alert_ids else None
    query = update(DeliveryRecord)
    if alert_ids:
        query = query.where(DeliveryRecord.alert_id.in_(alert_ids), condition)
    else:
        query = query.where(DeliveryRecord.status == "dead")
    with db.session() as session:
        result = session.execute(
            query.values(
                status="pending", attempts=0, next_attempt_at=now, last_error=None, updated_at=now
            ).execution_options(synchronize_session=False)
        )
        return result.rowcount or 0
