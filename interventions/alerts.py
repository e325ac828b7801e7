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


def detractor_alerts(
    answers,
    tickets,
    owner_of: Callable[[str], str | None],
    drivers: Mapping[str, list[dict]] | None = None,
    recent_days: int = 30,
    max_tickets: int = 5,
    changes: Mapping[str, dict | None] | None = None,
) -> list[tuple[str, dict[str, Any], str]]:
    """(dedup key, data, summary) of a ``detractor.answered`` alert per 0-6 answer.

    Each carries the owner, the comment, the customer's tickets of the ``recent_days`` before
    the answer, the prediction's drivers and why the score moved since the previous
    materialization (``change``), so the owner can act without opening five tools.
    """
    import pandas as pd

    out = []
    detractors = answers[answers["score"] <= 6]
    if tickets is not None and len(tickets):
        tickets = tickets.sort_values("created_at")
        by_customer = {cid: part for cid, part in tickets.groupby("customer_id", sort=False)}
    else:
        by_customer = {}
    for row in detractors.itertuples(index=False):
        cid = str(row.customer_id)
        when = pd.Timestamp(row.responded_at)
        mine = by_customer.get(cid)
        recent = []
        if mine is not None:
            window = mine[
                (mine["created_at"] <= when)
                & (mine["created_at"] > when - pd.Timedelta(days=recent_days))
            ].tail(max_tickets)
            for t in window.to_dict("records"):
                recent.append(
                    {
                        k: (v.isoformat() if hasattr(v, "isoformat") else v)
                        for k, v in t.items()
                        if k
                        in (
                            "ticket_id",
                            "created_at",
                            "resolved_at",
                            "priority",
                            "category",
                            "subject",
                        )
                        and not (isinstance(v, float) and v != v)
                        and v is not pd.NaT
                    }
                )
        comment = getattr(row, "comment", None)
        comment = (
            None
            if comment is None or (isinstance(comment, float) and comment != comment)
            else str(comment)
        )
        response_id = getattr(row, "response_id", None)
        key = f"detractor.answered:{response_id or cid + '@' + when.isoformat()}"
        owner = owner_of(cid)
        data = {
            "customer_id": cid,
            "score": int(row.score),
            "responded_at": when.isoformat(),
            "comment": comment,
            "owner": owner,
            "recent_tickets": recent,
            "drivers": (drivers or {}).get(cid, []),
            "change": (changes or {}).get(cid),
        }
        summary = f"detractor {int(row.score)}/10 from {cid} -> {owner or 'unassigned'}"
        if data["change"]:
            summary += f" ({data['change']['summary']})"
        out.append((key, data, summary))
    return out


def newly_at_risk_alerts(
    rows: list[Mapping[str, Any]], features_as_of: str
) -> list[tuple[str, dict, str]]:
    """(dedup key, data, summary) of ``customer.newly_at_risk`` per customer whose tier rose
    since the previous materialization, with why the score moved; once per customer and date."""
    out = []
    for row in rows:
        cid = str(row["customer_id"])
        change = row.get("change")
        data = {
            "customer_id": cid,
            "features_as_of": features_as_of,
            "risk_tier": row.get("risk_tier"),
            "previous_risk_tier": row.get("previous_risk_tier"),
            "churn_probability": row.get("churn_probability"),
            "owner": row.get("owner"),
            "intervention_status": row.get("intervention_status"),
            "drivers": row.get("drivers") or [],
            "change": change,
        }
        summary = (
            f"{cid} newly {row.get('risk_tier')} risk -> {row.get('owner') or 'unassigned'}"
            + (f": {change['summary']}" if change else "")
        )
        out.append((f"customer.newly_at_risk:{cid}:{features_as_of}", data, summary))
    return out


def segment_drop_alerts(
    dropped: list[dict], survey_date, plans: Mapping[str, dict] | None = None
) -> list[tuple[str, dict, str]]:
    """(dedup key, data, summary) of ``segment.dropped`` per segment forecast to drop, with the
    segment playbook planned for it (``plans`` by segment key) when one was."""
    from interventions.planning import segment_key

    out = []
    for seg in dropped:
        key = f"segment.dropped:{survey_date}:{seg['column']}={seg['value']}"
        data = {
            **seg,
            "survey_date": str(survey_date) if survey_date else None,
            "plan": (plans or {}).get(segment_key(seg["column"], seg["value"])),
        }
        summary = (
            f"{seg['column']}={seg['value']}: forecast NPS {seg['forecast_nps']} vs "
            f"{seg['last_measured_nps']} last measured before the survey of {survey_date}"
        )
        out.append((key, data, summary))
    return out


def raise_all(database, settings: Settings, kind: str, items) -> list[str]:
    """Raise each (dedup key, data, summary) alert; the ids (a repeat returns the first id)."""
    ids = []
    with database.session() as session:
        for key, data, summary in items:
            ids.append(raise_alert(session, kind, data, settings, summary=summary, dedup_key=key))
    return ids
