"""The input data contract (../shared/DATA_CONTRACT.md) as code: tables, columns, rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal["id", "string", "date", "timestamp", "integer", "number"]


@dataclass(frozen=True)
class Column:
    """One contract column. ``required`` columns must exist; ``nullable`` ones may be empty."""

    name: str
    kind: ColumnKind
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    """One contract table: its columns, unique key and the column that dates a row."""

    name: str
    columns: tuple[Column, ...]
    unique_key: str | None = None
    time_column: str | None = None
    references_customers: bool = True
    description: str = ""
    column_names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(c.name for c in self.columns))

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = TableSpec(
    name="customers",
    columns=(
        Column("customer_id", "id"),
        Column("signup_date", "date"),
        Column("plan_tier", "string", required=False, nullable=True),
        Column("industry", "string", required=False, nullable=True),
        Column("region", "string", required=False, nullable=True),
        Column("seats", "integer", required=False, nullable=True, minimum=0),
        Column("mrr", "number", required=False, nullable=True, minimum=0),
    ),
    unique_key="customer_id",
    time_column="signup_date",
    references_customers=False,
    description="one row per customer; other columns are static attributes",
)

USAGE = TableSpec(
    name="usage",
    columns=(
        Column("customer_id", "id"),
        Column("timestamp", "date"),
        Column("metric", "string"),
        Column("value", "number"),
    ),
    time_column="timestamp",
    description="product usage, long format",
)

TICKETS = TableSpec(
    name="tickets",
    columns=(
        Column("ticket_id", "id"),
        Column("customer_id", "id"),
        Column("created_at", "timestamp"),
        Column("resolved_at", "timestamp", required=False, nullable=True),
        Column("priority", "string", required=False, nullable=True),
        Column("category", "string", required=False, nullable=True),
        Column("csat", "number", required=False, nullable=True, minimum=1, maximum=5),
        Column("reopened", "integer", required=False, nullable=True, minimum=0),
        Column("subject", "string", required=False, nullable=True),
        Column("body", "string", required=False, nullable=True),
    ),
    unique_key="ticket_id",
    time_column="created_at",
    description="support tickets",
)

CHATS = TableSpec(
    name="chats",
    columns=(
        Column("conversation_id", "id"),
        Column("customer_id", "id"),
        Column("sent_at", "timestamp"),
        Column("author", "string", choices=("customer", "agent", "bot")),
        Column("text", "string", nullable=True),
    ),
    time_column="sent_at",
    description="support chat messages, one row per message",
)

NPS_RESPONSES = TableSpec(
    name="nps_responses",
    columns=(
        Column("response_id", "id", required=False, nullable=True),
        Column("customer_id", "id"),
        Column("responded_at", "timestamp"),
        Column("score", "integer", minimum=0, maximum=10),
        Column("comment", "string", required=False, nullable=True),
        Column("survey_type", "string", required=False, nullable=True),
    ),
    unique_key="response_id",
    time_column="responded_at",
    description="past survey answers",
)

SURVEYS = TableSpec(
    name="surveys",
    columns=(
        Column("customer_id", "id"),
        Column("sent_at", "timestamp"),
        Column("survey_type", "string", required=False, nullable=True),
    ),
    time_column="sent_at",
    description="survey invitations sent (optional): who a wave reaches, and who did not answer",
)

CHURN = TableSpec(
    name="churn",
    columns=(Column("customer_id", "id"), Column("churned_at", "date")),
    unique_key="customer_id",
    time_column="churned_at",
    description="when a customer left",
)

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in (CUSTOMERS, USAGE, TICKETS, CHATS, NPS_RESPONSES, SURVEYS, CHURN)
}
REQUIRED_TABLES = ("customers",)

# NPS categories as the survey defines them.
DETRACTOR_MAX = 6
PASSIVE_MAX = 8
NPS_CATEGORIES = ("detractor", "passive", "promoter")


def nps_category(score: float) -> str:
    """The survey category of a 0-10 score (9-10 promoter, 7-8 passive, 0-6 detractor)."""
    if score <= DETRACTOR_MAX:
        return "detractor"
    if score <= PASSIVE_MAX:
        return "passive"
    return "promoter"
