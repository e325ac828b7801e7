"""The interventions store's tables: waves, assignments, interventions, their events, owners.

Declared on the shared database layer's metadata (``db.models.Base``), so one Alembic history
creates them beside the alert outbox: revision ``0002_interventions``.
"""

from __future__ import annotations

import sqlalchemy as sa

from db.models import Base, UtcDateTime

metadata = Base.metadata

OPEN = ("planned", "contacted", "snoozed")
_open_clause = sa.text("status IN ('planned', 'contacted', 'snoozed')")

waves = sa.Table(
    "intervention_waves",
    metadata,
    sa.Column("wave_id", sa.String(64), primary_key=True),
    sa.Column("planned_on", sa.Date, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("seed", sa.BigInteger, nullable=False),
    sa.Column("control_share", sa.Float, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),  # api | cli
    sa.Column("first_survey_date", sa.Date, nullable=True),
    sa.Column("last_survey_date", sa.Date, nullable=True),
    sa.Column("customers", sa.Integer, nullable=False),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=True),
    sa.Column("features_as_of", sa.String(32), nullable=True),
)

assignments = sa.Table(
    "intervention_assignments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "wave_id", sa.String(64), sa.ForeignKey("intervention_waves.wave_id"), nullable=False
    ),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("survey_date", sa.Date, nullable=False),
    sa.Column("arm", sa.String(24), nullable=False),
    sa.Column("risk_tier", sa.String(16), nullable=True),
    sa.Column("predicted_category", sa.String(16), nullable=True),
    sa.Column("p_detractor", sa.Float, nullable=True),
    sa.Column("churn_probability", sa.Float, nullable=True),
    sa.Column("playbook", sa.String(64), nullable=True),  # for control: the would-be playbook
    sa.Column("too_soon", sa.Boolean, nullable=False, default=False),
    sa.Column("intervention_id", sa.String(64), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("wave_id", "customer_id", "survey_date", name="uq_assignment_row"),
    sa.Index("ix_assignments_customer", "customer_id"),
)

interventions = sa.Table(
    "interventions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("wave_id", sa.String(64), sa.ForeignKey("intervention_waves.wave_id"), nullable=True),
    sa.Column("customer_id", sa.String(200), nullable=False),
    sa.Column("playbook", sa.String(64), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("priority", sa.String(16), nullable=False),
    sa.Column("owner_role", sa.String(64), nullable=False),
    sa.Column("owner", sa.String(320), nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_date", sa.Date, nullable=True),
    sa.Column("survey_date", sa.Date, nullable=True),
    sa.Column("too_soon", sa.Boolean, nullable=False, default=False),
    sa.Column("snooze_until", sa.Date, nullable=True),
    sa.Column("why", sa.JSON, nullable=False),
    sa.Column("drivers", sa.JSON, nullable=False),
    sa.Column("themes", sa.JSON, nullable=False),
    sa.Column("revenue_at_risk", sa.Float, nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_interventions_status", "status"),
    sa.Index("ix_interventions_owner", "owner"),
    sa.Index("ix_interventions_customer", "customer_id"),
    # One open intervention per customer, enforced by the database even under concurrent plans.
    sa.Index(
        "uq_interventions_open_customer",
        "customer_id",
        unique=True,
        sqlite_where=_open_clause,
        postgresql_where=_open_clause,
    ),
)

events = sa.Table(
    "intervention_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("intervention_id", sa.String(64), sa.ForeignKey("interventions.id"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # status | owner
    sa.Column("from_status", sa.String(16), nullable=True),
    sa.Column("to_status", sa.String(16), nullable=True),
    sa.Column("from_owner", sa.String(320), nullable=True),
    sa.Column("to_owner", sa.String(320), nullable=True),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("snooze_until", sa.Date, nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_events_intervention", "intervention_id"),
)

customer_owners = sa.Table(
    "customer_owners",
    metadata,
    sa.Column("customer_id", sa.String(200), primary_key=True),
    sa.Column("owner", sa.String(320), nullable=False),
    sa.Column("source", sa.String(32), nullable=False),  # customers_table | reassigned
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)
