"""The one database: SQLAlchemy models, sessions and Alembic migrations, shared by the alert
outbox and the interventions store. Nothing connects at import."""

from db.engine import Database, DatabaseNotReady, open_database
from db.migrate import current_revision, head_revision, upgrade_database

__all__ = [
    "Database",
    "DatabaseNotReady",
    "current_revision",
    "head_revision",
    "open_database",
    "upgrade_database",
]
