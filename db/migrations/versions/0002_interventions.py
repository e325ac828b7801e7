"""Interventions store: waves, assignments (control/treatment), interventions, their events,
account owners. One open intervention per customer is a partial unique index.

Revision ID: 0002_interventions
Revises: 0001_alert_outbox
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from db.models import UtcDateTime

revision = "0002_interventions"
down_revision = "0001_alert_outbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_owners",
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer_owners")),
    )
    op.create_table(
        "intervention_waves",
        sa.Column("wave_id", sa.String(length=64), nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("control_share", sa.Float(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("first_survey_date", sa.Date(), nullable=True),
        sa.Column("last_survey_date", sa.Date(), nullable=True),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=True),
        sa.Column("features_as_of", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("wave_id", name=op.f("pk_intervention_waves")),
    )
    op.create_table(
        "intervention_assignments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("wave_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("survey_date", sa.Date(), nullable=False),
        sa.Column("arm", sa.String(length=24), nullable=False),
        sa.Column("risk_tier", sa.String(length=16), nullable=True),
        sa.Column("predicted_category", sa.String(length=16), nullable=True),
        sa.Column("p_detractor", sa.Float(), nullable=True),
        sa.Column("churn_probability", sa.Float(), nullable=True),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("too_soon", sa.Boolean(), nullable=False),
        sa.Column("intervention_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["intervention_waves.wave_id"],
            name=op.f("fk_intervention_assignments_wave_id_intervention_waves"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_assignments")),
        sa.UniqueConstraint("wave_id", "customer_id", "survey_date", name="uq_assignment_row"),
    )
    with op.batch_alter_table("intervention_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_assignments_customer", ["customer_id"], unique=False)

    op.create_table(
        "interventions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("wave_id", sa.String(length=64), nullable=True),
        sa.Column("customer_id", sa.String(length=200), nullable=False),
        sa.Column("playbook", sa.String(length=64), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("owner_role", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("survey_date", sa.Date(), nullable=True),
        sa.Column("too_soon", sa.Boolean(), nullable=False),
        sa.Column("snooze_until", sa.Date(), nullable=True),
        sa.Column("why", sa.JSON(), nullable=False),
        sa.Column("drivers", sa.JSON(), nullable=False),
        sa.Column("themes", sa.JSON(), nullable=False),
        sa.Column("revenue_at_risk", sa.Float(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["wave_id"],
            ["intervention_waves.wave_id"],
            name=op.f("fk_interventions_wave_id_intervention_waves"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interventions")),
    )
    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.create_index("ix_interventions_customer", ["customer_id"], unique=False)
        batch_op.create_index("ix_interventions_owner", ["owner"], unique=False)
        batch_op.create_index("ix_interventions_status", ["status"], unique=False)
        batch_op.create_index(
            "uq_interventions_open_customer",
            ["customer_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('planned', 'contacted', 'snoozed')"),
            postgresql_where=sa.text("status IN ('planned', 'contacted', 'snoozed')"),
        )

    op.create_table(
        "intervention_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("intervention_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=True),
        sa.Column("from_owner", sa.String(length=320), nullable=True),
        sa.Column("to_owner", sa.String(length=320), nullable=True),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("snooze_until", sa.Date(), nullable=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["intervention_id"],
            ["interventions.id"],
            name=op.f("fk_intervention_events_intervention_id_interventions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intervention_events")),
    )
    with op.batch_alter_table("intervention_events", schema=None) as batch_op:
        batch_op.create_index("ix_events_intervention", ["intervention_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("intervention_events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_intervention")

    op.drop_table("intervention_events")
    with op.batch_alter_table("interventions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_interventions_open_customer",
            sqlite_where=sa.text("status IN ('planned', 'contacted', 'snoozed')"),
            postgresql_where=sa.text("status IN ('planned', 'contacted', 'snoozed')"),
        )
        batch_op.drop_index("ix_interventions_status")
        batch_op.drop_index("ix_interventions_owner")
        batch_op.drop_index("ix_interventions_customer")

    op.drop_table("interventions")
    with op.batch_alter_table("intervention_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_assignments_customer")

    op.drop_table("intervention_assignments")
    op.drop_table("intervention_waves")
    op.drop_table("customer_owners")
