"""The interventions store: plans, assignments, interventions and their history, owners.

Thin I/O around the pure planning and life-cycle logic. Every write is one transaction; the
events that notify CRMs (``intervention.planned``, ``intervention.status_changed``) are handed
to ``on_event`` inside that same transaction, so the shared outbox records an event exactly
when the change commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from interventions.planning import OpenIntervention, WavePlan
from interventions.states import OPEN_STATUSES, PLANNED, SNOOZED, check_transition
from interventions.tables import assignments, customer_owners, events, interventions, waves

EventHook = Callable[[sa.Connection, str, dict[str, Any]], None]


class NotFoundError(LookupError):
    """No intervention with that id."""


class PlanConflictError(RuntimeError):
    """Another plan opened an intervention for one of these customers at the same time."""


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:  # SQLite hands back naive UTC
            value = value.replace(tzinfo=UTC)
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return value


def _planned_event(
    intervention_id: str, owner: str | None, source: str, note: str, now: datetime
) -> dict[str, Any]:
    """The first event of every intervention: made by a plan, new → planned."""
    return {
        "intervention_id": intervention_id,
        "kind": "status",
        "from_status": None,
        "to_status": PLANNED,
        "from_owner": None,
        "to_owner": owner,
        "actor": f"plan:{source}",
        "note": note,
        "snooze_until": None,
        "at": now,
    }


def _chunks(values: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class InterventionStore:
    def __init__(self, engine: sa.Engine, on_event: EventHook | None = None):
        self.engine = engine
        self.on_event = on_event

    def _emit(self, conn: sa.Connection, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event(conn, kind, data)

    # --- planning -------------------------------------------------------------------------
    def open_interventions(
        self, customer_ids: Sequence[str], conn: sa.Connection | None = None
    ) -> dict[str, OpenIntervention]:
        ids = sorted(set(customer_ids))
        out: dict[str, OpenIntervention] = {}

        def run(c: sa.Connection) -> None:
            for part in _chunks(ids):
                rows = c.execute(
                    sa.select(
                        interventions.c.id,
                        interventions.c.customer_id,
                        interventions.c.playbook,
                        interventions.c.status,
                    )
                    .where(interventions.c.customer_id.in_(part))
                    .where(interventions.c.status.in_(OPEN_STATUSES))
                )
                for r in rows:
                    out[r.customer_id] = OpenIntervention(r.id, r.playbook, r.status)

        if conn is not None:
            run(conn)
        else:
            with self.engine.connect() as c:
                run(c)
        return out

    def held_out(
        self, customer_ids: Sequence[str], conn: sa.Connection | None = None
    ) -> frozenset[tuple[str, date]]:
        """(customer, survey date) pairs already assigned to control in a stored plan."""
        ids = sorted(set(customer_ids))
        out: set[tuple[str, date]] = set()

        def run(c: sa.Connection) -> None:
            for part in _chunks(ids):
                rows = c.execute(
                    sa.select(assignments.c.customer_id, assignments.c.survey_date)
                    .where(assignments.c.customer_id.in_(part))
                    .where(assignments.c.arm == "control")
                )
                out.update((r.customer_id, r.survey_date) for r in rows)

        if conn is not None:
            run(conn)
        else:
            with self.engine.connect() as c:
                run(c)
        return frozenset(out)

    def plan_and_save(
        self,
        customer_ids: Sequence[str],
        make_plan: Callable[[dict[str, OpenIntervention], frozenset], WavePlan],
        source: str,
        model_version: str | None = None,
        features_as_of: str | None = None,
    ) -> tuple[WavePlan, dict[str, str]]:
        """Plan against the open interventions and persist it, in one transaction.

        A concurrent plan that opened one of these customers first makes the unique index
        refuse ours; planning once more then sees it and lists the customer as already open.
        """
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    plan = make_plan(
                        self.open_interventions(customer_ids, conn),
                        self.held_out(customer_ids, conn),
                    )
                    ids = self._save(conn, plan, source, model_version, features_as_of)
                return plan, ids
            except IntegrityError:
                if attempt == 2:
                    raise PlanConflictError(
                        "interventions for these customers were being planned concurrently; "
                        "try again"
                    ) from None
        raise AssertionError("unreachable")

    def _save(
        self,
        conn: sa.Connection,
        plan: WavePlan,
        source: str,
        model_version: str | None,
        features_as_of: str | None,
    ) -> dict[str, str]:
        now = _now()
        dates = plan.survey_dates
        existing = conn.execute(
            sa.select(waves.c.wave_id).where(waves.c.wave_id == plan.wave_id)
        ).first()
        if existing is None:
            conn.execute(
                waves.insert().values(
                    wave_id=plan.wave_id,
                    planned_on=plan.planned_on,
                    created_at=now,
                    seed=plan.seed,
                    control_share=plan.control_share,
                    source=source,
                    first_survey_date=dates[0] if dates else None,
                    last_survey_date=dates[-1] if dates else None,
                    customers=len(plan.items),
                    counts=plan.counts(),
                    model_version=model_version,
                    features_as_of=features_as_of,
                )
            )
        created: dict[str, str] = {}
        new_rows, assignment_rows, event_rows = [], [], []
        seen: set[tuple[str, date]] = set()
        for item in plan.items:
            iv_id = None
            if item.intervene:
                iv_id = f"iv-{uuid.uuid4().hex[:20]}"
                created[item.customer_id] = iv_id
                new_rows.append(
                    {
                        "id": iv_id,
                        "wave_id": plan.wave_id,
                        "customer_id": item.customer_id,
                        "playbook": item.playbook,
                        "action": item.action,
                        "priority": item.priority,
                        "owner_role": item.owner_role,
                        "owner": item.owner,
                        "status": PLANNED,
                        "due_date": item.due_date,
                        "survey_date": item.survey_date,
                        "too_soon": item.too_soon,
                        "snooze_until": None,
                        "why": item.why,
                        "drivers": item.drivers,
                        "themes": item.themes,
                        "revenue_at_risk": item.revenue_at_risk,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                event_rows.append(
                    _planned_event(
                        iv_id,
                        item.owner,
                        source,
                        f"planned for the survey of {item.survey_date}",
                        now,
                    )
                )
            key = (item.customer_id, item.survey_date)
            if key in seen:
                continue
            seen.add(key)
            probs = (item.prediction or {}).get("category_probabilities") or {}
            assignment_rows.append(
                {
                    "wave_id": plan.wave_id,
                    "customer_id": item.customer_id,
                    "survey_date": item.survey_date,
                    "arm": item.arm,
                    "risk_tier": (item.prediction or {}).get("risk_tier"),
                    "predicted_category": (item.prediction or {}).get("nps_category"),
                    "p_detractor": probs.get("detractor"),
                    "churn_probability": (item.prediction or {}).get("churn_probability"),
                    "playbook": item.playbook,
                    "too_soon": item.too_soon,
                    "intervention_id": iv_id or item.open_intervention_id,
                    "created_at": now,
                }
            )
        if new_rows:
            conn.execute(interventions.insert(), new_rows)
            conn.execute(events.insert(), event_rows)
        if assignment_rows:
            conn.execute(assignments.insert(), assignment_rows)
        for row in new_rows:
            self._emit(conn, "intervention.planned", _public(row))
        return created

    def save_segment_plans(self, plans: Sequence[Any], source: str) -> dict[str, str]:
        """Store segment-level plans (``planning.plan_segments``) as interventions under their
        segment key, in one transaction; a segment with an open intervention is not planned
        twice. {segment key: new intervention id}."""
        if not plans:
            return {}
        with self.engine.begin() as conn:
            already = self.open_interventions([p.key for p in plans], conn)
            now = _now()
            created: dict[str, str] = {}
            rows, event_rows = [], []
            for plan in plans:
                if plan.key in already or plan.key in created:
                    continue
                iv_id = f"iv-{uuid.uuid4().hex[:20]}"
                created[plan.key] = iv_id
                rows.append(
                    {
                        "id": iv_id,
                        "wave_id": None,
                        "customer_id": plan.key,
                        "playbook": plan.playbook,
                        "action": plan.action,
                        "priority": plan.priority,
                        "owner_role": plan.owner_role,
                        "owner": plan.owner,
                        "status": PLANNED,
                        "due_date": plan.due_date,
                        "survey_date": plan.survey_date,
                        "too_soon": plan.too_soon,
                        "snooze_until": None,
                        "why": plan.why,
                        "drivers": [],
                        "themes": [],
                        "revenue_at_risk": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                event_rows.append(
                    _planned_event(
                        iv_id,
                        plan.owner,
                        source,
                        f"segment {plan.column}={plan.value} forecast to drop",
                        now,
                    )
                )
            if rows:
                conn.execute(interventions.insert(), rows)
                conn.execute(events.insert(), event_rows)
            for row in rows:
                self._emit(conn, "intervention.planned", _public(row))
        return created

    # --- reading --------------------------------------------------------------------------
    def list(
        self,
        status: str | None = None,
        owner: str | None = None,
        customer_id: str | None = None,
        playbook: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
        history: bool = True,
    ) -> tuple[list[dict[str, Any]], int]:
        q = sa.select(interventions)
        for column, value in (
            (interventions.c.status, status),
            (interventions.c.owner, owner),
            (interventions.c.customer_id, customer_id),
            (interventions.c.playbook, playbook),
        ):
            if value is not None:
                q = q.where(column == value)
        if since is not None:
            q = q.where(interventions.c.updated_at >= since)
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(q.subquery())).scalar_one()
            rows = (
                conn.execute(
                    q.order_by(interventions.c.created_at, interventions.c.id)
                    .limit(limit)
                    .offset(offset)
                )
                .mappings()
                .all()
            )
            out = [_public(dict(r)) for r in rows]
            if history and out:
                by_id = {r["id"]: r for r in out}
                for r in out:
                    r["history"] = []
                for part in _chunks(list(by_id)):
                    for e in conn.execute(
                        sa.select(events)
                        .where(events.c.intervention_id.in_(part))
                        .order_by(events.c.id)
                    ).mappings():
                        by_id[e["intervention_id"]]["history"].append(_event(dict(e)))
        return out, int(total)

    def get(self, intervention_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = (
                conn.execute(sa.select(interventions).where(interventions.c.id == intervention_id))
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"no intervention {intervention_id!r}")
            out = _public(dict(row))
            out["history"] = [
                _event(dict(e))
                for e in conn.execute(
                    sa.select(events)
                    .where(events.c.intervention_id == intervention_id)
                    .order_by(events.c.id)
                ).mappings()
            ]
        return out

    # --- changing -------------------------------------------------------------------------
    def change_status(
        self,
        intervention_id: str,
        status: str,
        actor: str | None,
        note: str | None = None,
        snooze_until: date | None = None,
        today: date | None = None,
    ) -> dict[str, Any]:
        """Move one intervention; TransitionError (allowed ones listed) when illegal."""
        with self.engine.begin() as conn:
            row = (
                conn.execute(
                    sa.select(interventions)
                    .where(interventions.c.id == intervention_id)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"no intervention {intervention_id!r}")
            change = check_transition(
                row["status"], status, actor, note, snooze_until, today or _now().date()
            )
            now = _now()
            conn.execute(
                interventions.update()
                .where(interventions.c.id == intervention_id)
                .values(status=change.status, snooze_until=change.snooze_until, updated_at=now)
            )
            conn.execute(
                events.insert().values(
                    intervention_id=intervention_id,
                    kind="status",
                    from_status=row["status"],
                    to_status=change.status,
                    actor=change.actor,
                    note=change.note,
                    snooze_until=change.snooze_until,
                    at=now,
                )
            )
            data = {
                **_public(
                    {
                        **dict(row),
                        "status": change.status,
                        "snooze_until": change.snooze_until,
                        "updated_at": now,
                    }
                ),
                "previous_status": row["status"],
                "actor": change.actor,
                "note": change.note,
            }
            self._emit(conn, "intervention.status_changed", data)
        return self.get(intervention_id)

    def reassign(
        self,
        to_owner: str,
        actor: str,
        intervention_ids: Sequence[str] | None = None,
        from_owner: str | None = None,
        note: str | None = None,
        open_only: bool = True,
    ) -> int:
        """Move interventions (by id, or all of one owner) to another person; each recorded."""
        if not intervention_ids and from_owner is None:
            raise ValueError("say which interventions: ids, or the owner to move them from")
        if not actor or not to_owner:
            raise ValueError("actor and the new owner are required")
        q = sa.select(interventions.c.id, interventions.c.owner)
        if intervention_ids:
            q = q.where(interventions.c.id.in_(list(intervention_ids)))
        if from_owner is not None:
            q = q.where(interventions.c.owner == from_owner)
        if open_only:
            q = q.where(interventions.c.status.in_(OPEN_STATUSES))
        now = _now()
        with self.engine.begin() as conn:
            rows = conn.execute(q.with_for_update()).all()
            moved = [r for r in rows if r.owner != to_owner]
            for part in _chunks([r.id for r in moved]):
                conn.execute(
                    interventions.update()
                    .where(interventions.c.id.in_(part))
                    .values(owner=to_owner, updated_at=now)
                )
            if moved:
                conn.execute(
                    events.insert(),
                    [
                        {
                            "intervention_id": r.id,
                            "kind": "owner",
                            "from_status": None,
                            "to_status": None,
                            "from_owner": r.owner,
                            "to_owner": to_owner,
                            "actor": actor,
                            "note": note,
                            "snooze_until": None,
                            "at": now,
                        }
                        for r in moved
                    ],
                )
        return len(moved)

    def wake_snoozed(self, today: date) -> int:
        """Snoozed interventions whose date has come go back to planned (actor: system)."""
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(interventions.c.id)
                    .where(interventions.c.status == SNOOZED)
                    .where(interventions.c.snooze_until <= today)
                )
                .scalars()
                .all()
            )
        for iv in due:
            self.change_status(iv, PLANNED, "system", "snooze ended", today=today)
        return len(due)

    # --- analysis inputs --------------------------------------------------------------------
    def assignments_frame(self, wave_id: str | None = None) -> pd.DataFrame:
        q = sa.select(assignments, waves.c.planned_on, waves.c.seed).join(
            waves, waves.c.wave_id == assignments.c.wave_id
        )
        if wave_id is not None:
            q = q.where(assignments.c.wave_id == wave_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q.order_by(assignments.c.id)).mappings().all())

    def history_of(self, customer_id: str) -> list[dict[str, Any]]:
        """Every wave this customer was scheduled in, with its arm: the assignment history."""
        frame = self.assignments_frame()
        if frame.empty:
            return []
        rows = frame[frame["customer_id"] == customer_id]
        return [{k: _iso(v) for k, v in r.items()} for r in rows.to_dict("records")]

    def waves(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(waves).order_by(waves.c.created_at)).mappings().all()
        return [{k: _iso(v) for k, v in dict(r).items()} for r in rows]

    def statuses_by_customer(self) -> dict[str, str]:
        """Each customer's most recent intervention status (open ones win)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(interventions.c.customer_id, interventions.c.status).order_by(
                    interventions.c.created_at
                )
            ).all()
        out: dict[str, str] = {}
        for cid, status in rows:
            if out.get(cid) in OPEN_STATUSES and status not in OPEN_STATUSES:
                continue
            out[cid] = status
        return out

    # --- owners -----------------------------------------------------------------------------
    def set_account_owners(self, owners: Mapping[str, str], source: str = "customers_table") -> int:
        """Upsert customer -> owner (from the customers table's owner column, or reassigned)."""
        now = _now()
        with self.engine.begin() as conn:
            current = dict(
                conn.execute(
                    sa.select(customer_owners.c.customer_id, customer_owners.c.owner)
                ).all()
            )
            inserts = [
                {"customer_id": c, "owner": o, "source": source, "updated_at": now}
                for c, o in owners.items()
                if c not in current
            ]
            changed = [(c, o) for c, o in owners.items() if c in current and current[c] != o]
            if inserts:
                conn.execute(customer_owners.insert(), inserts)
            for c, o in changed:
                conn.execute(
                    customer_owners.update()
                    .where(customer_owners.c.customer_id == c)
                    .values(owner=o, source=source, updated_at=now)
                )
        return len(inserts) + len(changed)

    def account_owners(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(
                conn.execute(
                    sa.select(customer_owners.c.customer_id, customer_owners.c.owner)
                ).all()
            )

    def owners_by_customer(self) -> dict[str, str]:
        """The owner of each customer's open intervention (for the at-risk owner filter)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(interventions.c.customer_id, interventions.c.owner)
                .where(interventions.c.status.in_(OPEN_STATUSES))
                .where(interventions.c.owner.is_not(None))
            ).all()
        return dict(rows)


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "wave_id",
        "customer_id",
        "playbook",
        "action",
        "priority",
        "owner_role",
        "owner",
        "status",
        "due_date",
        "survey_date",
        "too_soon",
        "snooze_until",
        "why",
        "drivers",
        "themes",
        "revenue_at_risk",
        "created_at",
        "updated_at",
    )
    return {k: _iso(row.get(k)) for k in keys}


def _event(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "kind",
        "from_status",
        "to_status",
        "from_owner",
        "to_owner",
        "actor",
        "note",
        "snooze_until",
        "at",
    )
    return {k: _iso(row.get(k)) for k in keys}
