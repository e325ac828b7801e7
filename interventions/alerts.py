"""Alerts for humans and CRM events from the interventions package, via the shared outbox.

Every alert goes through ``alerts.raise_alert`` (one mechanism with monitoring): signed
Standard Webhooks, a durable outbox, retries, one ``webhook-id`` per event. Store changes hand
their events over inside their own transaction, so an intervention and its event commit
together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from alerts import raise_alert
from npsrisk.settings import Settings

EventHook = Callable[[sa.Connection, str, dict[str, Any]], None]


def _summary(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "intervention.planned":
        return (
            f"{data.get('playbook')} planned for {data.get('customer_id')} "
            f"(owner {data.get('owner') or 'unassigned'}, due {data.get('due_date')})"
        )
    if kind == "intervention.status_changed":
        return (
            f"intervention {data.get('id')} {data.get('previous_status')} -> "
            f"{data.get('status')} by {data.get('actor')}"
        )
    return kind


def _dedup_key(kind: str, data: Mapping[str, Any]) -> str | None:
    # The same change raised twice (a retried request) is one event, never two.
    if kind == "intervention.planned":
        return f"{kind}:{data['id']}"
    if kind == "intervention.status_changed":
        return f"{kind}:{data['id']}:{data.get('updated_at')}:{data.get('status')}"
    return None


def outbox_hook(settings: Settings) -> EventHook:
    """The store's event hook: each event joins the outbox in the caller's transaction."""

    def hook(conn: sa.Connection, kind: str, data: dict[str, Any]) -> None:
        session = Session(bind=conn)  # joins the connection's open transaction
        try:
            raise_alert(
                session,
                kind,
                data,
                settings,
                summary=_summary(kind, data),
                dedup_key=_dedup_key(kind, data),
            )
            session.flush()
        finally:
            session.close()

    return hook
